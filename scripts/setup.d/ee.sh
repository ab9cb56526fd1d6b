#!/usr/bin/env bash
# The local execution environment, localhost/hunter-ops-ee:local (execution-environment.local.yml):
# `ansible-builder create`, then `podman build` of that context on the Debian base image
# scripts/setup.d/containers.sh builds, with the community collections scripts/setup.sh unpacked.
# No registry, no Galaxy: PyPI and the Debian mirror only. tests/fleet/test_ee_job.py runs the
# preflight inside it. The image carries a label with the hash of its inputs (the definition,
# what it copies into the context, the base image's label, ansible-builder's version) and is
# rebuilt only when they changed.
# Called by scripts/setup.sh after containers.sh; runnable on its own. HUNTER_OPS_NO_CONTAINERS=1
# or HUNTER_OPS_NO_EE=1 skips it. A failure here does not stop the set-up: the fleet stage's
# execution environment tests then fail and name what is missing.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${CACHE:-${HUNTER_OPS_CACHE:-$HOME/.cache/hunter-ops}}"
VENV="${VENV:-$ROOT/.venv}"
IMAGE=localhost/hunter-ops-ee:local
BASE=localhost/hunter-ops-base:bookworm
DEFINITION=execution-environment.local.yml
# What the definition copies into the build context (additional_build_files, dependencies).
INPUTS=("$DEFINITION" ee galaxy.yml README.md CHANGELOG.md requirements-collection.txt bindep.txt
        meta plugins roles)
COMMUNITY=(community/postgresql community/general amazon/aws)
export CONTAINERS_CONF="$ROOT/.config/containers/containers.conf"
log() { printf '[setup:ee] %s\n' "$*"; }

[ "${HUNTER_OPS_NO_CONTAINERS:-0}" = 1 ] && { log "skipped (HUNTER_OPS_NO_CONTAINERS=1)"; exit 0; }
[ "${HUNTER_OPS_NO_EE:-0}" = 1 ] && { log "skipped (HUNTER_OPS_NO_EE=1)"; exit 0; }

# The CA bundle this machine's pip trusts (PIP_CERT, e.g. a TLS-inspecting proxy's CA), handed to
# the build's pip as a mounted site configuration (/etc/xdg/pip): not in any layer of the image.
pip_trust() {
  local ca="${PIP_CERT:-${REQUESTS_CA_BUNDLE:-}}" dir="$CACHE/ee/pip"
  [ -n "$ca" ] && [ -f "$ca" ] || return 0
  mkdir -p "$dir" && cp -L "$ca" "$dir/ca.crt" && printf '[global]\ncert = /etc/xdg/pip/ca.crt\n' >"$dir/pip.conf" \
    && printf '%s\n' --volume "$dir:/etc/xdg/pip:ro"
}

label_of() { podman image inspect --format '{{ index .Labels "hunter.ops.recipe" }}' "$1" 2>/dev/null; }

inputs_hash() {
  local coll="$ROOT/.ansible/collections/ansible_collections" name
  {
    label_of "$BASE"
    "$VENV/bin/ansible-builder" --version
    (cd "$ROOT" && find "${INPUTS[@]}" -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 \
      | sort -z | xargs -0 sha256sum)
    # an unpacked collection's MANIFEST.json holds its version and the checksum of its FILES.json
    for name in "${COMMUNITY[@]}"; do sha256sum "$coll/$name/MANIFEST.json"; done
  } | sha256sum | cut -c1-16
}

build() {
  local want ctx="$CACHE/ee/context" t0=$EPOCHREALTIME
  command -v podman >/dev/null 2>&1 || { log "ERROR: podman is missing (scripts/setup.d/containers.sh)"; return 1; }
  [ -n "$(label_of "$BASE")" ] || { log "ERROR: $BASE is missing (scripts/setup.d/containers.sh builds it)"; return 1; }
  [ -x "$VENV/bin/ansible-builder" ] || { log "ERROR: ansible-builder is missing from $VENV"; return 1; }
  want="$(inputs_hash)" || return 1
  if [ "$(label_of "$IMAGE")" = "$want" ]; then log "$IMAGE current"; return 0; fi
  log "building $IMAGE (log: $CACHE/ee/build.log)"
  rm -rf "$ctx"
  (cd "$ROOT" && "$VENV/bin/ansible-builder" create -f "$DEFINITION" -c "$ctx" --output-filename Containerfile) \
    >"$CACHE/ee/build.log" 2>&1 || { log "ERROR: ansible-builder create failed (see $CACHE/ee/build.log)"; return 1; }
  mkdir -p "$CACHE/containers/apt-archives"
  local trust=()
  mapfile -t trust < <(pip_trust)
  # --network host: apt and pip reach the mirror and PyPI as the machine does. The apt archive
  # cache is containers.sh's, mounted (ee/local/pkgmgr-apt keeps it out of the image).
  podman build --network host --label "hunter.ops.recipe=$want" \
    --volume "$CACHE/containers/apt-archives:/var/cache/apt/archives" "${trust[@]}" \
    -t "$IMAGE" -f "$ctx/Containerfile" "$ctx" >>"$CACHE/ee/build.log" 2>&1 \
    || { log "ERROR: podman build of $IMAGE failed (see $CACHE/ee/build.log)"; return 1; }
  # only our own dangling images (a replaced build, its stages): never the machine's others
  podman image prune -f --filter label=hunter.ops.recipe >/dev/null 2>&1 || true
  log "$IMAGE built in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}') s"
}

main() {
  mkdir -p "$CACHE/ee" "$CACHE/locks"
  # The same lock as containers.sh: one image build at a time in Podman's store.
  (
    flock -w 1800 9 || { log "ERROR: timed out waiting for another image build"; exit 1; }
    build
  ) 9>"$CACHE/locks/containers.lock"
}
main || log "ERROR: the execution environment image is not ready; tests/fleet/test_ee_job.py will fail (see above)"
exit 0

#!/usr/bin/env bash
# Podman and the fleet test bed's images (sandbox/fleet.py, tests/fleet/), built from Debian's
# packages: no registry, no Docker engine.
#   localhost/hunter-ops-base:bookworm        debootstrap minbase + python3, imported
#   localhost/hunter-ops-fleet-host:latest    + openssh-server, sudo (a bare managed host)
#   localhost/hunter-ops-fleet-db:latest      + the PostgreSQL server
#   localhost/hunter-ops-fleet-cache:latest   + redis-server
# Images live in Podman's store (outside the clone) and carry a label with the hash of their
# recipe (and their parent's): an image is rebuilt only when its recipe changed.
# Podman runs with the project's .config/containers/containers.conf (CONTAINERS_CONF).
# Called by scripts/setup.sh; runnable on its own. HUNTER_OPS_NO_CONTAINERS=1 skips it.
# A failure here does not stop the set-up: the fleet stage then fails and names what is missing.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${CACHE:-${HUNTER_OPS_CACHE:-$HOME/.cache/hunter-ops}}"
RECIPES="$ROOT/sandbox/containers"
SUITE=bookworm
export CONTAINERS_CONF="$ROOT/.config/containers/containers.conf"
log() { printf '[setup:containers] %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

[ "${HUNTER_OPS_NO_CONTAINERS:-0}" = 1 ] && { log "skipped (HUNTER_OPS_NO_CONTAINERS=1)"; exit 0; }

tools() {
  local missing=()
  command -v podman >/dev/null 2>&1 || missing+=(podman)
  command -v runc >/dev/null 2>&1 || missing+=(runc)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  command -v ssh >/dev/null 2>&1 || missing+=(openssh-client)
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 || { log "ERROR: missing ${missing[*]} and no apt-get"; return 1; }
  log "installing ${missing[*]} with apt-get"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
}

# The Debian mirror this machine uses (the base image's apt source), else deb.debian.org.
mirror() {
  local m="${HUNTER_OPS_DEBIAN_MIRROR:-}"
  [ -n "$m" ] || m="$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null)"
  [ -n "$m" ] || m="$(awk '/^deb / && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)"
  echo "${m:-http://deb.debian.org/debian}"
}

label_of() { podman image inspect --format '{{ index .Labels "hunter.ops.recipe" }}' "$1" 2>/dev/null; }

base_image() {
  local name=localhost/hunter-ops-base:$SUITE want rootfs
  # The recipe is this function's parameters: suite, variant, packages.
  want="$(printf 'debootstrap minbase %s python3 v1' "$SUITE" | sha256sum | cut -c1-16)"
  if [ "$(label_of "$name")" = "$want" ]; then log "$name current"; return 0; fi
  rootfs="$(mktemp -d "$CACHE/containers/rootfs.XXXXXX")"
  log "building $name with debootstrap from $(mirror)"
  as_root debootstrap --variant=minbase --include=python3 "$SUITE" "$rootfs" "$(mirror)" >"$CACHE/containers/debootstrap.log" 2>&1 \
    || { log "ERROR: debootstrap failed (see $CACHE/containers/debootstrap.log)"; as_root rm -rf "$rootfs"; return 1; }
  as_root tar -C "$rootfs" -c . | podman import --change "LABEL hunter.ops.recipe=$want" - "$name" >/dev/null 2>>"$CACHE/containers/debootstrap.log"
  local rc=$?
  as_root rm -rf "$rootfs"
  [ $rc -eq 0 ] || { log "ERROR: podman import failed"; return 1; }
}

# layer NAME RECIPE PARENT: podman build of sandbox/containers/RECIPE.Containerfile FROM PARENT.
layer() {
  local name="$1" recipe="$RECIPES/$2.Containerfile" parent="$3" want
  want="$( { label_of "$parent"; cat "$recipe"; } | sha256sum | cut -c1-16)"
  if [ "$(label_of "$name")" = "$want" ]; then log "$name current"; return 0; fi
  log "building $name"
  mkdir -p "$CACHE/containers/apt-archives"
  # --network host: apt reaches the mirror as the machine does; the apt archive cache is shared
  # between builds (outside the image).
  podman build --quiet --network host --build-arg "BASE=$parent" --label "hunter.ops.recipe=$want" \
    --volume "$CACHE/containers/apt-archives:/var/cache/apt/archives" \
    -t "$name" -f "$recipe" "$RECIPES" >"$CACHE/containers/build-$2.log" 2>&1 \
    || { log "ERROR: podman build of $name failed (see $CACHE/containers/build-$2.log)"; return 1; }
  # only our own dangling images (a replaced build, its stages): never the machine's others
  podman image prune -f --filter label=hunter.ops.recipe >/dev/null 2>&1 || true
}

main() {
  mkdir -p "$CACHE/containers" "$CACHE/locks"
  tools || return 1
  local t0=$EPOCHREALTIME
  (
    flock -w 1800 9 || { log "ERROR: timed out waiting for another image build"; exit 1; }
    base_image &&
      layer localhost/hunter-ops-fleet-host:latest host "localhost/hunter-ops-base:$SUITE" &&
      layer localhost/hunter-ops-fleet-db:latest db localhost/hunter-ops-fleet-host:latest &&
      layer localhost/hunter-ops-fleet-cache:latest cache localhost/hunter-ops-fleet-host:latest
  ) 9>"$CACHE/locks/containers.lock" || return 1
  log "images ready in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}') s"
}
main || log "ERROR: the fleet test bed's images are not ready; the fleet stage will fail (see above)"
exit 0

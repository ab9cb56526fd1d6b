#!/usr/bin/env bash
# Set up everything hunter.ops needs on this machine, idempotently:
#   system packages (PostgreSQL and Redis servers), the project virtualenv,
#   and the Ansible collections (without Galaxy, from the `ansible` wheel).
# Re-running is cheap: each step is skipped when its stamp is current.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
COLL="$ROOT/.ansible/collections/ansible_collections"
CACHE="${HUNTER_OPS_CACHE:-$HOME/.cache/hunter-ops}"
ANSIBLE_BUNDLE_VERSION="${ANSIBLE_BUNDLE_VERSION:-12.3.0}"
WANTED_COLLECTIONS=(community/postgresql community/general amazon/aws)

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

pick_python() {
  for py in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$py" ] || continue
    if command -v "$py" >/dev/null 2>&1 &&
       "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$py"; return 0
    fi
  done
  return 1
}

pg_bindir() {
  local d
  while IFS= read -r d; do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r)
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return 0; }
  return 1
}

system_packages() {
  local missing=()
  pg_bindir >/dev/null || missing+=(postgresql postgresql-client)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  command -v zstd >/dev/null 2>&1 || missing+=(zstd)
  command -v lz4 >/dev/null 2>&1 || missing+=(lz4)
  command -v crontab >/dev/null 2>&1 || missing+=(cron)
  command -v rsync >/dev/null 2>&1 || missing+=(rsync)
  # sshd: the SSH smoke test of bench/scale.py starts its own on loopback addresses
  [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  [ ${#missing[@]} -eq 0 ] && { log "system packages present"; return 0; }
  if command -v apt-get >/dev/null 2>&1; then
    log "installing ${missing[*]} with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    die "missing: ${missing[*]}. Install PostgreSQL (server and client, 13+), redis-server (6+), zstd, lz4, cron, rsync and openssh-server with your package manager, then re-run."
  fi
  id postgres >/dev/null 2>&1 || die "user 'postgres' is missing (it comes with the PostgreSQL server package)"
}

python_env() {
  local py stamp want
  py="$(pick_python)" || die "Python 3.11 or newer is required (set PYTHON=/path/to/python3.11)"
  want="$(cat requirements.txt requirements-collection.txt requirements-dev.txt | sha256sum | cut -c1-16)"
  stamp="$VENV/.hunter-ops-stamp"
  if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    log "virtualenv current ($VENV)"; return 0
  fi
  log "creating virtualenv with $py"
  [ -x "$VENV/bin/python" ] || "$py" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip
  "$VENV/bin/pip" install -q --disable-pip-version-check -r requirements-dev.txt
  echo "$want" > "$stamp"
}

collections() {
  local stamp="$COLL/.hunter-ops-stamp" wheel
  mkdir -p "$COLL/hunter"
  ln -sfn "$ROOT" "$COLL/hunter/ops"
  if [ "$(cat "$stamp" 2>/dev/null)" = "$ANSIBLE_BUNDLE_VERSION" ]; then
    log "collections current (ansible $ANSIBLE_BUNDLE_VERSION bundle)"; return 0
  fi
  mkdir -p "$CACHE/wheels"
  local wheels=("$CACHE"/wheels/ansible-"$ANSIBLE_BUNDLE_VERSION"-*.whl)
  wheel="${wheels[0]}"
  if [ ! -f "$wheel" ]; then
    log "downloading the ansible $ANSIBLE_BUNDLE_VERSION wheel (collections only are unpacked)"
    "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps --only-binary=:all: \
      "ansible==$ANSIBLE_BUNDLE_VERSION" -d "$CACHE/wheels"
    wheels=("$CACHE"/wheels/ansible-"$ANSIBLE_BUNDLE_VERSION"-*.whl)
    wheel="${wheels[0]}"
  fi
  "$VENV/bin/python" - "$wheel" "$COLL" "${WANTED_COLLECTIONS[@]}" <<'PY'
import shutil, sys, zipfile, pathlib
wheel, dest, wanted = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3:]
for name in wanted:
    shutil.rmtree(dest / name, ignore_errors=True)
with zipfile.ZipFile(wheel) as zf:
    for member in zf.namelist():
        for name in wanted:
            prefix = f"ansible_collections/{name}/"
            if member.startswith(prefix) and not member.endswith("/"):
                target = dest / member[len("ansible_collections/"):]
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
PY
  echo "$ANSIBLE_BUNDLE_VERSION" > "$stamp"
  log "collections unpacked into $COLL"
}

main() {
  system_packages
  python_env
  collections
  for hook in scripts/setup.d/*.sh; do
    [ -e "$hook" ] || continue
    log "running $hook"
    VENV="$VENV" CACHE="$CACHE" bash "$hook"
  done
  log "done. Activate with: source .venv/bin/activate"
}
main "$@"

#!/usr/bin/env bash
# Bugsink (Sentry-compatible error tracker, PyPI `bugsink`) in its own virtualenv,
# for the tests and the demo sandbox (sandbox/bugsink.py). It pins Django and
# requests tightly, so it never shares the project venv.
# Idempotent: skipped when the stamp matches the pinned version.
# Called by scripts/setup.sh (VENV, CACHE set); runnable on its own.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
BUGSINK_VERSION="${BUGSINK_VERSION:-2.6.2}"
BVENV="$ROOT/.venv-bugsink"
stamp="$BVENV/.hunter-ops-stamp"
log() { printf '[setup:bugsink] %s\n' "$*"; }

if [ -x "$BVENV/bin/bugsink-manage" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$BUGSINK_VERSION" ]; then
  log "bugsink $BUGSINK_VERSION current ($BVENV)"; exit 0
fi
# The same interpreter as the project venv (3.11+), found through its pyvenv.cfg.
py="$("$VENV/bin/python" -c 'import sys; print(sys._base_executable)')"
log "installing bugsink $BUGSINK_VERSION into $BVENV"
[ -x "$BVENV/bin/python" ] || "$py" -m venv "$BVENV"
"$BVENV/bin/pip" install -q --disable-pip-version-check "bugsink==$BUGSINK_VERSION"
# Migrated template databases depend on the version: drop stale ones (sandbox/bugsink.py rebuilds).
rm -rf "${CACHE:-${HUNTER_OPS_CACHE:-$HOME/.cache/hunter-ops}}/bugsink-template"
echo "$BUGSINK_VERSION" > "$stamp"
log "bugsink $BUGSINK_VERSION installed"

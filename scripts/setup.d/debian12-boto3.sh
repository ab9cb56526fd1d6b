#!/usr/bin/env bash
# Debian 12's boto3 stack (python3-boto3 1.26.27, python3-botocore 1.29.27, python3-s3transfer 0.6.0,
# with its urllib3 1.26.12): what playbooks/prepare_hosts.yml installs on db hosts that copy to S3.
# The S3 tests run the modules' S3 code on it as well as on the project venv's newest boto3
# (tests/integration/test_s3_library_versions.py): a library directory put first on PYTHONPATH.
# Idempotent: skipped when the stamp matches. Called by scripts/setup.sh; runnable on its own.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
LIBS="$ROOT/.venv-debian12-boto3"
PINS="boto3==1.26.27 botocore==1.29.27 s3transfer==0.6.0 urllib3==1.26.12"
stamp="$LIBS/.hunter-ops-stamp"
log() { printf '[setup:debian12-boto3] %s\n' "$*"; }

if [ "$(cat "$stamp" 2>/dev/null)" = "$PINS" ]; then
  log "current ($LIBS)"; exit 0
fi
rm -rf "$LIBS"
# shellcheck disable=SC2086  # PINS is a list of requirements
"$VENV/bin/pip" install -q --disable-pip-version-check --target "$LIBS" $PINS
echo "$PINS" > "$stamp"
log "installed $PINS into $LIBS"

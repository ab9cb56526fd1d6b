#!/usr/bin/env bash
# The whole preflight against the local sandbox, in one command.
#
#   scripts/demo.sh          setup, start the sandbox, run preflight.yml, print the report path
#   scripts/demo.sh stop     stop the sandbox, remove its generated inventory vars and delete .sandbox/
#   scripts/demo.sh status   what the sandbox runs
#
# The sandbox (PostgreSQL, Redis, the sample service, ...) keeps running after the
# demo so you can look around (curl http://127.0.0.1:8000/healthz/ready); stop it
# with `scripts/demo.sh stop`. Extra arguments after `run` go to ansible-playbook:
#   scripts/demo.sh run -v
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2
PY="$ROOT/.venv/bin/python"

case "${1:-run}" in
  stop|status)
    [ -x "$PY" ] || { echo "no virtualenv: run scripts/setup.sh" >&2; exit 1; }
    exec "$PY" -m sandbox "$1" ;;
  run) shift || true ;;
  -*) ;;  # options for ansible-playbook
  *) echo "usage: scripts/demo.sh [run [ansible-playbook options]] | stop | status" >&2; exit 2 ;;
esac

bash scripts/setup.sh || { echo "[demo] setup failed" >&2; exit 1; }
"$PY" -m sandbox start || { echo "[demo] the sandbox did not start" >&2; exit 1; }

[ -f preflight.yml ] || { echo "[demo] preflight.yml is missing" >&2; exit 1; }
export ANSIBLE_CONFIG="$ROOT/ansible.cfg"
"$ROOT/.venv/bin/ansible-playbook" preflight.yml -i inventories/local "$@"
rc=$?

report="$ROOT/reports/latest"
if [ -e "$report/report.md" ]; then
  echo "[demo] report: $(readlink -f "$report")/report.md (also report.json, junit.xml)"
else
  echo "[demo] no report was written under $ROOT/reports" >&2
fi
metrics="${HUNTER_SANDBOX_DIR:-$ROOT/.sandbox}/metrics"
if compgen -G "$metrics/*.prom" >/dev/null; then
  echo "[demo] metrics for node_exporter (docs/METRICS.md): $(cd "$metrics" && echo *.prom) in $metrics"
fi
echo "[demo] preflight exit code $rc ($([ $rc -eq 0 ] && echo GO || echo 'NO-GO or error'));" \
     "the sandbox keeps running: scripts/demo.sh stop"
exit "$rc"

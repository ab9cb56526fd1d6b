#!/usr/bin/env bash
# shellcheck disable=SC2329  # stage_* functions are called as "stage_$stage"
# The one test command of hunter.ops (CI runs it through .ci/run).
#
#   scripts/test.sh                 every stage
#   scripts/test.sh --quick         skip the slow stages (sanity, faults, molecule, fleet)
#   scripts/test.sh lint sanity     only the named stages, in canonical order
#   scripts/test.sh --list          list the stages
#
# Stages: lint, sanity, build, unit, integration (alias: pytest = unit + integration),
# faults (the fault matrix, tests/faults: its table in reports/test-results/faults.md), molecule,
# fleet. Every selected stage runs even when an earlier one failed; the exit
# code is non-zero when any selected stage failed. A stage that finds nothing to
# test (no pytest tests, no Molecule scenario) fails: an empty gate is not a pass.
#
# Knobs (environment): PYTEST_ADDOPTS (passed to pytest as usual),
#   HUNTER_OPS_NO_SETUP=1           do not run scripts/setup.sh first
#   HUNTER_OPS_SANITY_DIR=DIR       where the sanity copy lives (kept between runs)
#   HUNTER_OPS_SANITY_PYTHON=3.11   Python version ansible-test sanity uses
#   HUNTER_OPS_INTEGRATION_WORKERS=2  pytest-xdist workers of the integration stage, one test file
#                                   each at a time (0 = all in this one process, in file order)
#   MOLECULE_SCENARIOS="a b"        only these Molecule scenarios
# Output: per-stage logs in reports/test-logs/, JUnit XML in reports/test-results/.
set -uo pipefail
# One brace group: bash parses it whole before running, so editing this file
# during a run (git pull, an edit) cannot derail the run in progress.
{

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2
VENV="$ROOT/.venv"
CACHE="${HUNTER_OPS_CACHE:-$HOME/.cache/hunter-ops}"
REPORTS="$ROOT/reports"
RESULTS="$REPORTS/test-results"
LOGS="$REPORTS/test-logs"
LOCKS="$CACHE/locks"
ALL_STAGES=(lint sanity build unit integration faults molecule fleet)
SLOW_STAGES=(sanity faults molecule fleet)
BUILD_TEST="tests/unit/test_collection_build.py"

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
warn() { printf '[test] %s\n' "$*" >&2; }

usage() { sed -n '3,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

# ---------------------------------------------------------------- arguments
quick=0
requested=()
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    --list) printf '%s\n' "${ALL_STAGES[@]}"; exit 0 ;;
    -h|--help) usage; exit 0 ;;
    pytest) requested+=(unit integration) ;;
    lint|sanity|build|unit|integration|faults|molecule|fleet) requested+=("$arg") ;;
    *) warn "unknown stage or option: $arg (stages: ${ALL_STAGES[*]} pytest; options: --quick --list)"; exit 2 ;;
  esac
done

is_in() { local x="$1"; shift; local y; for y in "$@"; do [ "$x" = "$y" ] && return 0; done; return 1; }

selected=()
for stage in "${ALL_STAGES[@]}"; do
  if [ ${#requested[@]} -gt 0 ]; then
    is_in "$stage" "${requested[@]}" || continue
  fi
  if [ "$quick" -eq 1 ] && is_in "$stage" "${SLOW_STAGES[@]}"; then continue; fi
  selected+=("$stage")
done
[ ${#selected[@]} -gt 0 ] || { warn "no stage selected"; exit 2; }

# ---------------------------------------------------------------- setup
if [ "${HUNTER_OPS_NO_SETUP:-0}" != 1 ]; then
  say "setup (scripts/setup.sh)"
  bash "$ROOT/scripts/setup.sh" || { warn "scripts/setup.sh failed; no stage can run"; exit 1; }
fi
[ -x "$VENV/bin/python" ] || { warn "$VENV is missing: run scripts/setup.sh"; exit 1; }

export PATH="$VENV/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$ROOT/.ansible/collections"
export ANSIBLE_CONFIG="$ROOT/ansible.cfg"
export ANSIBLE_FORCE_COLOR="${ANSIBLE_FORCE_COLOR:-0}"
export PY_COLORS="${PY_COLORS:-0}"
mkdir -p "$RESULTS" "$LOGS" "$LOCKS"

# Run "$@" holding an exclusive lock, so two engineers' runs of a stage that
# uses shared state (ansible-test's venv cache, Molecule's ephemeral dirs) queue
# instead of colliding.
with_lock() {
  local name="$1"; shift
  ( flock -w 3600 9 || { warn "timed out waiting for lock $name"; exit 1; }; "$@" ) 9>"$LOCKS/$name.lock"
}

# pytest exit 5 means "no tests collected": not a pass for a gate.
run_pytest() {
  local name="$1"; shift
  pytest -p no:cacheprovider --junitxml="$RESULTS/pytest-$name.xml" -o junit_suite_name="$name" "$@"
  local rc=$?
  if [ "$rc" -eq 5 ]; then
    warn "pytest collected no tests for '$name': failing the stage (an empty gate is not a pass)"
  fi
  return "$rc"
}

# The collection's source files, NUL-separated, relative to the repo: what git
# tracks or would track (.gitignore'd output stays out) minus galaxy.yml's
# build_ignore (sandbox/, bench/, ...: not shipped, so not the collection) and
# local environments/caches even when someone forgot to ignore them.
collection_files() {
  git -C "$ROOT" ls-files -z --cached --others --exclude-standard | python -c '
import fnmatch, sys, yaml
with open(sys.argv[1]) as f:
    ignore = yaml.safe_load(f).get("build_ignore") or []
local = [".git", ".venv*", ".ansible", ".sandbox", ".cache", "reports", "tests/output",
         "*__pycache__", "*.pyc", "*.pytest_cache", "*.mypy_cache", "*.ruff_cache", "*.tar.gz"]
def dropped(path):
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    return any(fnmatch.fnmatchcase(p, pat) for p in prefixes for pat in ignore + local)
paths = [p for p in sys.stdin.buffer.read().decode().split("\0") if p]
sys.stdout.write("".join(p + "\0" for p in paths if not dropped(p)))
' "$ROOT/galaxy.yml"
}

# ---------------------------------------------------------------- stages
stage_lint() {
  ansible-lint --offline
}

stage_sanity() {
  with_lock sanity sanity_locked
}

sanity_locked() {
  local base="${HUNTER_OPS_SANITY_DIR:-$CACHE/sanity}"
  local dest="$base/ansible_collections/hunter/ops"
  local py="${HUNTER_OPS_SANITY_PYTHON:-3.11}"
  # ansible-test fetches a get-pip bootstrap from a host we cannot reach; make sure
  # the local stand-in exists (cheap when it is current).
  VENV="$VENV" CACHE="$CACHE" bash "$ROOT/scripts/setup.d/ansible-test-pip.sh" || return 1
  mkdir -p "$dest"
  # Copy the source tree: what git tracks or would track (.gitignore'd files such
  # as reports/ or generated sandbox vars stay out), minus local environments and
  # caches even when someone forgot to ignore them. The copy is refreshed in place
  # and kept between runs, with its tests/output, so ansible-test reuses the
  # delegation venv it keeps in tests/output/.tmp.
  find "$dest" -mindepth 1 -maxdepth 1 ! -name tests -exec rm -rf {} +
  find "$dest/tests" -mindepth 1 -maxdepth 1 ! -name output -exec rm -rf {} + 2>/dev/null
  # tar, not rsync: rsync is not on every machine of this kind.
  collection_files | tar -C "$ROOT" --null --files-from=- --ignore-failed-read -cf - \
    | tar -C "$dest" -xf - || return 1
  rm -rf "$dest/tests/output/junit" "$dest/tests/output/bot" "$dest/tests/output/data"
  local rc=0
  ( cd "$dest" && ansible-test sanity --venv --python "$py" --color no --junit ) || rc=$?
  rm -rf "$RESULTS/sanity"
  if [ -d "$dest/tests/output/junit" ]; then
    mkdir -p "$RESULTS/sanity" && cp "$dest"/tests/output/junit/*.xml "$RESULTS/sanity/" 2>/dev/null
  fi
  return "$rc"
}

stage_build() {
  # ansible-galaxy collection build into a temp dir and check the tarball's content.
  run_pytest build "$BUILD_TEST"
}

stage_unit() {
  run_pytest unit tests/unit --ignore="$BUILD_TEST"
}

# One process keeps about one of 2 cores busy (its tests wait on ansible-playbook, services, timeouts:
# 60 s CPU in 66 s wall on three files at load ~2), so a second worker finishes sooner (56 s there);
# a few tests bound times and fail at loads far above the cores (seen at 20-40). Whole files per worker (--dist loadfile): a file's module
# fixtures start once; in collection order (the must-fail matrix, the longest file, first: tests/conftest.py)
# rather than xdist's largest-test-count first. Session services (PostgreSQL, Redis, Bugsink, moto) start
# once per worker.
stage_integration() {
  local workers="${HUNTER_OPS_INTEGRATION_WORKERS:-2}" xdist=()
  if [ "$workers" != 0 ]; then
    xdist=(-n "$workers" --dist loadfile --no-loadscope-reorder)
  fi
  run_pytest integration tests/integration "${xdist[@]}"
}

# The fault matrix (tests/faults/table.py): real faults, real signals, marker secrets searched for
# everywhere. Runs as root for the full-disk rows (tmpfs mounts); prints its table at the end.
stage_faults() {
  run_pytest faults tests/faults
}

# The preflight over SSH against containers (sandbox/fleet.py): one fleet for every test.
# Queued behind another engineer's fleet (same loopback addresses) instead of failing. Its own
# basetemp: pytest prunes all but the 3 newest /tmp/pytest-of-<user> dirs, and other pytest
# sessions of the same user would delete the fleet's SSH key and known_hosts under it.
stage_fleet() {
  with_lock fleet-stage run_pytest fleet tests/fleet --basetemp="$CACHE/fleet-pytest"
}

# Prefix Molecule's step lines with the seconds since the scenario began.
stamp_steps() {
  local t0="$1" line
  while IFS= read -r line; do
    case "$line" in
      INFO*\[*) printf '%s [+%ss]\n' "$line" "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}')" ;;
      *) printf '%s\n' "$line" ;;
    esac
  done
}

stage_molecule() {
  with_lock molecule molecule_locked
}

molecule_locked() {
  local scenarios=() name rc=0 t0 dt status
  if [ -n "${MOLECULE_SCENARIOS:-}" ]; then
    read -r -a scenarios <<<"$MOLECULE_SCENARIOS"
  else
    for f in molecule/*/molecule.yml; do
      [ -e "$f" ] || continue
      name="$(basename "$(dirname "$f")")"
      scenarios+=("$name")
    done
  fi
  if [ ${#scenarios[@]} -eq 0 ]; then
    warn "no Molecule scenario (molecule/<name>/molecule.yml): failing the stage"
    return 5
  fi
  export MOLECULE_GLOB="molecule/*/molecule.yml"
  # One `molecule test -s` per scenario (same as `molecule test --all`, which
  # stops at the first failing scenario) so every scenario runs and reports.
  local junit="$RESULTS/molecule.xml" cases=""
  local failures=0
  for name in "${scenarios[@]}"; do
    say "molecule test -s $name"
    t0=$EPOCHREALTIME
    molecule test -s "$name" 2>&1 | stamp_steps "$t0"
    if [ "${PIPESTATUS[0]}" -eq 0 ]; then status=pass; else status=fail; rc=1; failures=$((failures + 1)); fi
    dt=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}')
    MOL_SUMMARY+=("$(printf '%-28s %-5s %7ss' "$name" "$status" "$dt")")
    cases+="<testcase classname=\"molecule\" name=\"$name\" time=\"$dt\">"
    [ "$status" = pass ] || cases+="<failure message=\"molecule test -s $name failed (see reports/test-logs/molecule.log)\"/>"
    cases+="</testcase>"
  done
  printf '<?xml version="1.0" encoding="utf-8"?>\n<testsuites><testsuite name="molecule" tests="%d" failures="%d">%s</testsuite></testsuites>\n' \
    "${#scenarios[@]}" "$failures" "$cases" > "$junit"
  printf '\nMolecule scenarios:\n'; printf '  %s\n' "${MOL_SUMMARY[@]}"
  return "$rc"
}
MOL_SUMMARY=()

# ---------------------------------------------------------------- run
summary=()
failed=0 n_pass=0 n_fail=0
total_t0=$EPOCHREALTIME
for stage in "${selected[@]}"; do
  say "stage: $stage"
  t0=$EPOCHREALTIME
  "stage_$stage" 2>&1 | tee "$LOGS/$stage.log"
  rc=${PIPESTATUS[0]}
  dt=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}')
  if [ "$rc" -eq 0 ]; then result=PASS; n_pass=$((n_pass + 1)); else result="FAIL (rc=$rc)"; failed=1; n_fail=$((n_fail + 1)); fi
  summary+=("$(printf '%-12s %-14s %8ss' "$stage" "$result" "$dt")")
done
total_dt=$(awk -v a="$total_t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}')

say "summary"
for stage in "${ALL_STAGES[@]}"; do
  if is_in "$stage" "${selected[@]}"; then
    for line in "${summary[@]}"; do [ "${line%% *}" = "$stage" ] && printf '  %s\n' "$line"; done
  else
    printf '  %-12s %-14s\n' "$stage" "skipped"
  fi
done
printf '  %-12s %-14s %8ss\n' "total" "$([ $failed -eq 0 ] && echo PASS || echo FAIL)" "$total_dt"
printf '  logs: %s  junit: %s\n' "${LOGS#"$ROOT"/}" "${RESULTS#"$ROOT"/}"
printf 'stages: %d passed, %d failed\n' "$n_pass" "$n_fail"
exit "$failed"
}

"""The fault matrix (issue 11): every row is a real fault of a real service, a real signal, or a bad
input of the inventory, with what a run must observe.

Rows of ``run="preflight"`` are hosts of ONE run of preflight.yml (tests/faults/test_matrix.py), beside a
healthy baseline host of each group (f-baseline-app, -cache, -db): the fault of a row is confined to its
host's services and variables. Rows of ``run="drill"`` are db hosts of one run of the restore drill and
the report (tests/faults/playbooks/drill_report.yml), with the run's report folder unwritable. Rows of
``run="interrupts"`` each need their own run, signalled mid-module (tests/faults/test_interrupts.py).

For every host row the runner asserts:

- ``expect``: each item's status and a message pattern (re.search), for the host of the row;
- ``verdict``: NO-GO when the host blocks GO (a required item not passing), GO when it does not;
- every other item the host reports has the status the baseline host of its group has in the same run
  (nothing else changed), and the host reports the same set of items;
- nothing is left behind: no partial backup or temp manifest in the host's backup folder, no scratch
  database, nothing in the run's private TMPDIR, local or remote Ansible temp folder;
- no seeded marker secret anywhere (run-wide): output, artifacts, report, temp folders, /tmp, /var/tmp,
  /dev/shm, ~/.ansible/tmp, and the process list sampled during the run.

``build(ctx, host)`` returns the host's inventory variables (tests/faults/conftest.py FaultContext).
``bug`` marks a row that exposes a real defect: the row states what it should observe, and fails.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

FAIL, WARN, PASS, SKIP = "fail", "warn", "pass", "skip"

BACKUP_ITEMS = ("BACKUP-CMD", "BACKUP-VALID", "BACKUP-LOCATION", "BACKUP-RETENTION", "BACKUP-SCHEDULE")
RESTORE_ITEMS = ("RESTORE-DRYRUN", "RESTORE-RTO")
HEALTH_ITEMS = ("HEALTH-LIVE", "HEALTH-READY", "HEALTH-STARTUP", "HEALTH-ENV", "HEALTH-DB", "HEALTH-REDIS",
                "HEALTH-DIAG")
SENTRY_ITEMS = ("SENTRY-DSN", "SENTRY-EVENT", "SENTRY-ENV", "SENTRY-DETAIL", "SENTRY-ALERTS")
API_ITEMS = ("API-V1-LEADS", "API-V1-SCAN", "API-V1-SALES", "API-LEGACY", "API-COMPAT")
APP_REDIS_ITEMS = ("REDIS-APP-PING", "REDIS-HEALTH")
CACHE_ITEMS = ("REDIS-PING", "REDIS-OPS", "REDIS-POOL")


@dataclass(frozen=True)
class Row:
    name: str                        # unique; a host row's host is "f-<name>"
    scenario: str                    # the fault, as an operator would describe it
    run: str                         # preflight | drill | interrupts
    expect: dict                     # item -> (status, message pattern); items the fault must change
    verdict: str = "NO-GO"           # the host's own verdict: NO-GO when it blocks GO
    group: str = ""                  # the host's inventory group (host rows)
    build: Callable | None = None    # build(ctx, host) -> inventory variables
    bug: str = ""                    # a real defect this row exposes (the row fails until it is fixed)
    extra: tuple = field(default=())  # what else the row asserts, in words (for the table)


class RowNotRun(Exception):
    """A row's build cannot make its fault on this machine (say why): the row is listed as not run."""


def every(items, status, pattern) -> dict:
    return {i: (status, pattern) for i in items}


def expected_text(row: Row) -> str:
    statuses: dict[str, list[str]] = {}
    for item, (status, _pattern) in row.expect.items():
        statuses.setdefault(status, []).append(item)
    parts = [f"{row.verdict}"] if row.verdict else []
    parts += [f"{', '.join(items)}={status}" for status, items in statuses.items()]
    return "; ".join(parts + list(row.extra))


def check_items(row: Row, items: dict) -> list[str]:
    """Problems with the row's expected items among `items` (id -> {status, message})."""
    problems = []
    for item, (status, pattern) in row.expect.items():
        got = items.get(item)
        if got is None:
            problems.append(f"{item} not reported")
        elif got["status"] != status:
            problems.append(f"{item} is {got['status']}, expected {status}: {got['message'][:300]}")
        elif not re.search(pattern, got["message"]):
            problems.append(f"{item} message does not match /{pattern}/: {got['message'][:300]}")
    return problems


# What a backup that wrote nothing does to the items after it (the same for every such row).
NO_BACKUP = {"BACKUP-VALID": (FAIL, r"."),
             "BACKUP-LOCATION": (FAIL, r"no backup from this run to keep or copy"),
             "BACKUP-RETENTION": (WARN, r"not applied: this run wrote no backup"),
             "RESTORE-DRYRUN": (FAIL, r"."), "RESTORE-RTO": (FAIL, r".")}


def no_backup(cmd_pattern) -> dict:
    return dict(NO_BACKUP, **{"BACKUP-CMD": (FAIL, cmd_pattern)})


# -- the preflight run: one host per row -----------------------------------------------------------------

def _down(kind):
    return lambda ctx, host: ctx.down_host(kind, host)


def _hung(kind):
    return lambda ctx, host: ctx.hung_host(kind, host)


PREFLIGHT = [
    # Redis
    Row("redis-down", "the cache's Redis is down (stopped)", "preflight", group="cache",
        expect=every(CACHE_ITEMS, FAIL, r"(?i)refused|connect"), build=_down("redis")),
    Row("redis-hung", "the cache's Redis hangs (SIGSTOP: connects, never answers)", "preflight", group="cache",
        expect=every(CACHE_ITEMS, FAIL, r"(?i)timed? ?out"), build=_hung("redis")),
    # PostgreSQL
    Row("pg-down", "the database server is down (stopped)", "preflight", group="db",
        expect=no_backup(r"(?i)connection refused"), build=_down("pg")),
    Row("pg-hung", "the database server hangs (postmaster SIGSTOP: connects, never answers)", "preflight",
        group="db", expect=no_backup(r"(?i)timeout expired"), build=_hung("pg")),
    # the application
    Row("app-down", "the application is down (its process stopped)", "preflight", group="app",
        expect=dict(every(HEALTH_ITEMS[:-1] + API_ITEMS[:-1] + SENTRY_ITEMS[:-1], FAIL, r"."),
                    **{"HEALTH-DIAG": (WARN, r"both dependencies answer .*inventory.s copy of the settings"),
                       "HEALTH-LIVE": (FAIL, r"(?i)refused"),
                       "REDIS-HEALTH": (FAIL, r"no readiness body to read")}),
        build=_down("app")),
    Row("app-hung", "the application hangs (SIGSTOP: connects, never answers)", "preflight", group="app",
        expect=dict(every(HEALTH_ITEMS[:-1] + API_ITEMS[:-1], FAIL, r"(?i)timed? ?out"),
                    **{"HEALTH-DIAG": (WARN, r"both dependencies answer .*inventory.s copy of the settings"),
                       "REDIS-HEALTH": (FAIL, r"no readiness body to read")}),
        build=_hung("app")),
    # the error tracker
    Row("tracker-down", "the error tracker is down (its DSN host and API refuse connections)", "preflight",
        group="app", expect=dict(every(("SENTRY-EVENT", "SENTRY-ENV", "SENTRY-DETAIL"), FAIL, r"."),
                                 **{"SENTRY-ALERTS": (FAIL, r"Bugsink API unreachable.*connection refused")}),
        build=lambda ctx, host: ctx.tracker_down_host(host)),
    Row("dsn-wrong-key", "the application's DSN has a wrong key (the tracker refuses its events)", "preflight",
        group="app", expect=dict(every(("SENTRY-EVENT", "SENTRY-ENV"), FAIL, r"."),
                                 **{"SENTRY-DETAIL": (FAIL, r"no event from this probe was found")}),
        build=lambda ctx, host: ctx.wrong_dsn_key_host(host)),
    # S3
    Row("s3-down", "the S3 endpoint is down (connection refused)", "preflight", group="db",
        expect={"BACKUP-LOCATION": (FAIL, r"s3 copy s3://"), "BACKUP-RETENTION": (WARN, r"bucket not pruned")},
        verdict="NO-GO", build=_down("s3")),
    Row("s3-hung", "the S3 endpoint hangs (accepts, never answers)", "preflight", group="db",
        expect={"BACKUP-LOCATION": (FAIL, r"s3 copy s3://"), "BACKUP-RETENTION": (WARN, r"bucket not pruned")},
        verdict="NO-GO", build=_hung("s3")),
    # the backup's own faults
    Row("lock-held", "another backup of the database holds the backup lock", "preflight", group="db",
        expect=no_backup(r"another backup of this database is running.*waited 2 s"),
        build=lambda ctx, host: ctx.lock_held_host(host)),
    Row("table-locked", "a session holds ACCESS EXCLUSIVE on a table (a migration)", "preflight", group="db",
        expect=no_backup(r"waited 2 s for .*ACCESS EXCLUSIVE on public\.companies \(application \"migrate-0042\""),
        build=lambda ctx, host: ctx.table_locked_host(host)),
    # unreachable
    Row("unreachable", "the app host is unreachable (SSH refused)", "preflight", group="app",
        expect=every(HEALTH_ITEMS + SENTRY_ITEMS + API_ITEMS + APP_REDIS_ITEMS, FAIL, r"(?i)unreachable"),
        build=lambda ctx, host: ctx.app_host(ctx.baseline_service, ansible_connection="ssh",
                                             ansible_host="127.0.0.1", ansible_port=ctx.dead_port(),
                                             ansible_user="hunter-ops-nobody", ansible_timeout=5)),
    # bad inputs: one host each, on the healthy services
    Row("bad-url", "bad input: a malformed application URL", "preflight", group="app",
        expect=dict(every(("HEALTH-LIVE", "HEALTH-READY", "HEALTH-STARTUP", "HEALTH-ENV", "HEALTH-DB", "HEALTH-REDIS",
                           "API-V1-LEADS", "API-V1-SCAN", "API-V1-SALES", "API-LEGACY"), FAIL, r"hunter_app_url"),
                    **{"REDIS-HEALTH": (FAIL, r"no readiness body to read")}),
        build=lambda ctx, host: ctx.app_host(ctx.baseline_service, hunter_app_url="http//127.0.0.1:8000")),
    Row("bad-port", "bad input: a non-numeric database port (HEALTH-DIAG is not required: GO)", "preflight",
        group="app", verdict="GO",
        expect=every(("HEALTH-DIAG",), FAIL, r"hunter_app_db_port.*port must be a number"),
        build=lambda ctx, host: ctx.app_host(ctx.baseline_service, hunter_app_db_port="54x32")),
    Row("bad-dsn-scheme", "bad input: a DSN with a bad scheme", "preflight", group="app",
        expect=dict(every(("SENTRY-DSN",), FAIL, r"(?i)scheme"),
                    **every(("SENTRY-EVENT", "SENTRY-ENV", "SENTRY-DETAIL"), FAIL, r".")),
        build=lambda ctx, host: ctx.app_host(ctx.baseline_service, hunter_sentry_dsn_source="value",
                                             hunter_sentry_dsn=ctx.bad_scheme_dsn)),
    Row("bad-jmespath", "bad input: a bad JMESPath expression (HEALTH-ENV is not required: GO)", "preflight",
        group="app", verdict="GO",
        expect=every(("HEALTH-ENV",), FAIL, r"health_check_environment_query"),
        build=lambda ctx, host: ctx.app_host(ctx.baseline_service, health_check_environment_query="env.[")),
    Row("bad-relative-path", "bad input: a relative backup folder", "preflight", group="db",
        expect=dict(NO_BACKUP, **every(("BACKUP-CMD", "BACKUP-VALID", "RESTORE-DRYRUN", "RESTORE-RTO"), FAIL,
                                       r"backup_dir: must be an absolute path")),
        build=lambda ctx, host: ctx.db_host(host, hunter_backup_dir="backups/hunter")),
    Row("bad-decision", "bad input: an unknown legacy decision", "preflight", group="app",
        expect=every(("API-LEGACY",), FAIL, r"hunter_api_legacy_decision|legacy_decision"),
        build=lambda ctx, host: ctx.app_host(ctx.baseline_service, hunter_api_legacy_decision="maybe")),
    Row("bad-empty", "bad input: an empty required value (the expected environment)", "preflight", group="app",
        expect={"HEALTH-ENV": (SKIP, r"no expected environment configured"),
                "SENTRY-ENV": (FAIL, r"bad input: hunter_expected_environment .*required")},
        build=lambda ctx, host: ctx.app_host(ctx.baseline_service, hunter_expected_environment="")),
    Row("bad-non-json", "a non-JSON answer: an HTML catch-all server (200 to every path) where the application "
        "should be; liveness and startup are judged by status alone (they pass)", "preflight",
        group="app", expect=dict(every(("HEALTH-READY", "HEALTH-ENV", "HEALTH-DB", "HEALTH-REDIS") + API_ITEMS[:-1],
                                       FAIL, r"."),
                                 **{"HEALTH-DIAG": (WARN, r"both dependencies answer .*inventory.s copy of the settings"),
                                    "REDIS-HEALTH": (FAIL, r"no readiness body to read")}),
        build=lambda ctx, host: ctx.app_host(ctx.baseline_service, hunter_app_url=ctx.html_catch_all())),
]

# A full disk in every backup format: the backup folder on a 1 MiB tmpfs, the database 4 MB of
# incompressible rows. The default format (directory) is a host of the preflight (what the role makes of a
# backup that could not be written); the other formats are tasks of one run of hunter.ops.pg_backup
# (test_matrix.test_full_disk_in_every_format), one tmpfs each.
FORMATS = {
    "plain": {"format": "plain"},
    "plain-gzip": {"format": "plain-gzip"},
    "custom": {"format": "custom"},
    "plain-zstd": {"format": "plain", "compression": "zstd"},
    "custom-lz4": {"format": "custom", "compression": "lz4"},
    "plain-gzip-external": {"format": "plain", "compression": "gzip", "compressor": "external",
                            "compression_level": 6},
}
DISK_FULL = r"(No space left on device|lz4 failed .*Write error).*partial output removed"
PREFLIGHT.append(Row(
    "disk-full-directory", "the backup disk is full (directory, the default format)", "preflight", group="db",
    expect=no_backup(DISK_FULL), build=lambda ctx, host: ctx.disk_full_host(host)))
FULL_DISK = [Row(f"disk-full-{name}", f"the backup disk is full ({name})", "formats", verdict="",
                 expect={"BACKUP-CMD": (FAIL, DISK_FULL), "BACKUP-VALID": (FAIL, r".")},
                 extra=("no partial", "nothing kept"), build=lambda ctx, host, _a=args: _a)
             for name, args in FORMATS.items()]

# -- the drill run: the newest backup damaged; the report folder unwritable --------------------------------

DRILL = [
    Row("newest-corrupt", "the newest backup is corrupt (bytes changed, checksum no longer matches)", "drill",
        group="db", expect={"RESTORE-DRYRUN": (FAIL, r"is not valid: size is \d+ bytes, manifest says \d+"),
                            "RESTORE-RTO": (FAIL, r".")},
        build=lambda ctx, host: ctx.corrupt_host(host, keep_checksum=False)),
    Row("newest-corrupt-valid-checksum", "the newest backup is corrupt behind a valid checksum (manifest "
        "rewritten to match)", "drill", group="db",
        # past the checksum, the restore itself fails
        expect={"RESTORE-DRYRUN": (FAIL, r"^restore of backup_pre_v1\.0_\d{8}_\d{6}\.sql into restore_drill_"),
                "RESTORE-RTO": (FAIL, r".")},
        build=lambda ctx, host: ctx.corrupt_host(host, keep_checksum=True)),
]

# A run-wide row of the drill run, checked by test_matrix itself.
REPORT_DIR_ROW = Row("report-dir-unwritable", "the report folder cannot be written", "drill", expect={},
                     verdict="NO-GO", extra=("table and verdict printed", "report in the fallback folder"))

# -- rows that each need a run of their own, signalled mid-module (test_interrupts.py) -----------------------

INTERRUPTS = [
    Row("backup-SIGINT", "Ctrl-C (SIGINT) to the run during a backup", "interrupts", expect={}, verdict="",
        extra=("run ends rc!=0", "no partial", "no secret on disk")),
    Row("backup-SIGTERM", "SIGTERM to the run during a backup", "interrupts", expect={}, verdict="",
        extra=("run ends rc!=0", "no partial", "no secret on disk")),
    Row("backup-SIGKILL", "SIGKILL to every process of the run during a backup (AWX cancel: container kill)",
        "interrupts", expect={}, verdict="", extra=("run ends rc!=0", "no secret on disk", "the next backup succeeds")),
    Row("backup-SIGKILL-group", "SIGKILL to ansible-playbook's process group during a backup (ansible-runner "
        "cancel without a container)", "interrupts", expect={}, verdict="",
        extra=("run ends rc!=0", "the backup in flight completes and verifies", "no partial", "no secret on disk")),
    Row("pg-dump-killed", "pg_dump killed (SIGKILL) mid-dump", "interrupts",
        expect={"BACKUP-CMD": (FAIL, r"pg_dump"), "BACKUP-VALID": (FAIL, r".")}, verdict="",
        extra=("no partial", "earlier backup intact")),
    Row("two-backups", "two backups of the database at once", "interrupts",
        expect={"BACKUP-CMD": (FAIL, r"another backup of this database is running")}, verdict="",
        extra=("the first succeeds", "no partial")),
    Row("s3-killed-mid-upload", "the S3 server killed (SIGKILL) in the middle of a multipart upload",
        "interrupts", expect={"BACKUP-LOCATION": (FAIL, r"s3")}, verdict="",
        extra=("local backup intact", "no secret")),
    Row("drill-SIGINT", "Ctrl-C (SIGINT) to the run during a restore drill", "interrupts", expect={}, verdict="",
        extra=("run ends rc!=0", "no scratch database", "no secret on disk")),
    Row("drill-SIGTERM", "SIGTERM to the run during a restore drill", "interrupts", expect={}, verdict="",
        extra=("run ends rc!=0", "no scratch database", "no secret on disk")),
    Row("drill-SIGKILL", "SIGKILL to every process of the run during a restore drill (AWX cancel: container kill)",
        "interrupts", expect={},
        verdict="", extra=("run ends rc!=0", "no secret on disk", "the next drill drops the scratch database")),
]

ROWS = PREFLIGHT + FULL_DISK + DRILL + [REPORT_DIR_ROW] + INTERRUPTS

# Filled by the runners: name -> (scenario, expected, observed, seconds, result); printed at the end of the
# session and written to reports/test-results/faults.md (tests/faults/conftest.py).
OBSERVED: dict[str, tuple[str, str, str, float, str]] = {}


def record(row: Row, observed: str, seconds: float, problems: list[str]) -> None:
    result = "ok" if not problems else ("BUG" if row.bug else "FAIL")
    OBSERVED[row.name] = (row.scenario, expected_text(row), observed, round(seconds, 1), result)


def record_not_run(row: Row, reason: str) -> None:
    OBSERVED[row.name] = (row.scenario, expected_text(row), f"not run: {reason}", 0.0, "NOT RUN")


def row_named(name: str) -> Row:
    return next(r for r in ROWS if r.name == name)

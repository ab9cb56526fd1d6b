"""The must-fail matrix: for every checklist item, realistic broken deployments that must not pass it.

One row = one broken deployment = one inventory host of a real run (tests/integration/test_must_fail.py)
against real services: the sample service (its fault switches: HUNTER_BREAK in sandbox/app.py),
PostgreSQL, Redis, Bugsink, moto. The runner puts every row of a group into one ansible-playbook run
beside a healthy baseline host, then asserts for each row that:

- every item of ``items`` is reported for the row's host and is not ``pass``;
- every item of ``items`` that is required for GO (CHECKLIST 6.5 default) blocks GO on that host;
- the baseline host of the same run passes every required item it owns (the run itself works).

A row's ``build(ctx)`` returns the host's inventory variables, usually ``ctx.app_host(...)`` with
overrides; ``ctx`` (test_must_fail.MatrixContext) starts what the row needs: ``ctx.service(breaks=...,
env=...)`` a private sample service, ``ctx.redis()``/``ctx.pg()`` private servers it may stop, and
gives the shared ones (``ctx.pg_shared``, ``ctx.redis_shared``, ``ctx.bugsink``, ``ctx.api_key``).

Add rows in the section of the item; keep ``why`` one line an operator would recognise.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from sandbox.services import venv_without
from tests.harness import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / ".ansible" / "collections"))
from ansible_collections.hunter.ops.plugins.module_utils import backup  # noqa: E402


@dataclass(frozen=True)
class Case:
    name: str                       # short, unique: the host is "mf-<name>"
    items: tuple[str, ...]          # IDs that must not pass on this host
    why: str                        # the broken deployment, as an operator would describe it
    build: Callable                 # build(ctx) -> inventory variables of the host
    group: str = "app"              # app | cache | db: which run the row joins
    profile: str = "A"              # sample-service profile: A (sandbox/app.py), B (sandbox/app_unlike_runbook.py)
    # (ID, status, regex): the item must have failed for the row's reason, not another one
    expect: tuple[tuple[str, str, str], ...] = ()


# -- 6.1 Health checks --------------------------------------------------------------------------------

def _dead_database_url(ctx) -> str:
    """The application's database, down: nothing listens on its port any more."""
    from sandbox.services import refused_port
    return f"postgresql://{ctx.pg_shared.user}:{ctx.pg_shared.password}@127.0.0.1:{refused_port()}/{ctx.pg_shared.database}"


def _with_pidfile(ctx, service, **overrides) -> dict:
    """An application host whose settings the probes read from the running process (its pidfile)."""
    return ctx.app_host(service, hunter_app_pidfile=str(service.pid_path), **overrides)


HEALTH = [
    Case("live-503", ("HEALTH-LIVE",), "liveness answers 503",
         lambda ctx: ctx.app_host(ctx.service(env={"HUNTER_FAULTS": "live:503"}))),
    Case("startup-never", ("HEALTH-STARTUP",), "the service never finishes starting up",
         lambda ctx: ctx.app_host(ctx.service(env={"HUNTER_STARTUP_DELAY": "600"}))),
    Case("db-down", ("HEALTH-READY", "HEALTH-STARTUP", "HEALTH-DB", "HEALTH-DIAG"),
         "the application's database is down (the diagnosis reads the application's own settings)",
         lambda ctx: _with_pidfile(ctx, ctx.service(env={"HUNTER_DATABASE_URL": _dead_database_url(ctx)})),
         expect=(("HEALTH-DIAG", "fail", r"^database unreachable"),)),
    Case("ready-200-db-down", ("HEALTH-READY", "HEALTH-DB"),
         "readiness answers 200 while its body says the database is down",
         lambda ctx: ctx.app_host(ctx.service(env={"HUNTER_DATABASE_URL": _dead_database_url(ctx)},
                                              breaks=("ready-always-200",)))),
    Case("ready-200-redis-down", ("HEALTH-READY", "HEALTH-REDIS"),
         "readiness answers 200 while its body says Redis is down",
         lambda ctx: ctx.app_host(ctx.service(env={"HUNTER_REDIS_URL": ctx.stopped_redis_url()},
                                              breaks=("ready-always-200",)))),
    Case("wrong-environment", ("HEALTH-ENV",), "the production service runs with environment staging",
         lambda ctx: ctx.app_host(ctx.service(env={"HUNTER_ENVIRONMENT": "staging"}))),
    Case("env-on-info-wrong", ("HEALTH-ENV",),
         "the environment shows only on GET /api/v1/info (env.name), and it says staging there",
         lambda ctx: ctx.app_host(ctx.service(env={"HUNTER_ENVIRONMENT": "staging"}, breaks=("env-only-on-info",)),
                                  health_check_environment_from="endpoint",
                                  health_check_environment_path="/api/v1/info",
                                  health_check_environment_query="env.name")),
]

# -- 6.2 Monitoring and Sentry ------------------------------------------------------------------------


def _sentry_env_file_only(ctx):
    """The DSN is in the env file the probe is told to read, but the service was started without it."""
    env_file = ctx.tmp_path / "sentry-env-file-only.env"
    env_file.write_text(f"HUNTER_SENTRY_DSN={ctx.bugsink.dsn}\nHUNTER_ENVIRONMENT=production\n")
    return ctx.app_host(ctx.service(env={"HUNTER_SENTRY_DSN": None}), hunter_sentry_dsn_source="envfile",
                        hunter_sentry_env_files=[str(env_file)])


def _sentry_other_project(ctx):
    other = ctx.bugsink.create_project("mf-elsewhere-" + secrets.token_hex(4))
    return ctx.app_host(ctx.service(env={"HUNTER_SENTRY_DSN": other["dsn"]}))


def _sentry_alerts_off(ctx):
    quiet = ctx.bugsink.create_project("mf-quiet-" + secrets.token_hex(4), alert_on_new_issue=False,
                                       alert_on_regression=False, alert_on_unmute=False)
    return ctx.app_host(ctx.service(env={"HUNTER_SENTRY_DSN": quiet["dsn"]}), hunter_sentry_project=str(quiet["id"]))


# Each row is one run. A second run after the first (the previous run's event still in the tracker while
# reporting is now off) cannot be a row: tests/integration/test_sentry_probe.py,
# test_second_run_with_reporting_off_is_no_go, runs that case (two preflights back to back, NO-GO).
SENTRY = [
    Case("sentry-dsn-missing", ("SENTRY-DSN", "SENTRY-EVENT"), "the application runs without a Sentry DSN",
         lambda ctx: ctx.app_host(ctx.service(env={"HUNTER_SENTRY_DSN": None}))),
    Case("sentry-off", ("SENTRY-EVENT", "SENTRY-ENV"),
         "error reporting switched off: the app never initialises Sentry although its DSN is set",
         lambda ctx: ctx.app_host(ctx.service(breaks=("sentry-off",)))),
    Case("sentry-sdk-missing", ("SENTRY-EVENT", "SENTRY-ENV"),
         "the app's virtualenv has no sentry-sdk (it starts and reports nothing)",
         lambda ctx: ctx.app_host(ctx.service(python=venv_without(ctx.tmp_path / "venv-no-sentry-sdk",
                                                                  ["sentry_sdk"])))),
    Case("sentry-other-project", ("SENTRY-EVENT", "SENTRY-ENV"),
         "the DSN is another project's: the app's events land elsewhere", _sentry_other_project),
    Case("sentry-wrong-environment", ("SENTRY-ENV",),
         "the app's Sentry environment is staging while production is expected",
         lambda ctx: ctx.app_host(ctx.service(env={"HUNTER_SENTRY_ENVIRONMENT": "staging"}))),
    Case("sentry-swallowed", ("SENTRY-EVENT", "SENTRY-ENV"),
         "the test-error endpoint answers 500 but the app never reports it (method B)",
         lambda ctx: ctx.app_host(ctx.service(breaks=("sentry-swallow",)), hunter_sentry_method="endpoint")),
    Case("sentry-no-stack-trace", ("SENTRY-DETAIL",),
         "the app reports errors as plain messages: its events carry no stack trace (method B)",
         lambda ctx: ctx.app_host(ctx.service(breaks=("sentry-message-only",)), hunter_sentry_method="endpoint"),
         expect=(("SENTRY-DETAIL", "fail", r"no exception in the event"),)),
    Case("sentry-alerts-off", ("SENTRY-ALERTS",),
         "the project's every alert condition is off: events arrive and nobody is notified",
         _sentry_alerts_off, expect=(("SENTRY-ALERTS", "warn", r"every alert condition"),)),
    Case("sentry-env-file-only", ("SENTRY-EVENT", "SENTRY-ENV"),
         "the DSN is in the env file the probe reads, but the running app never loaded it", _sentry_env_file_only),
]

# -- 6.4 Redis ------------------------------------------------------------------------------------------


def _app_env_file_redis_down(ctx) -> dict:
    """The application reads its Redis URL from its env file (a dead Redis); the inventory's copy is fine."""
    dead = ctx.stopped_redis_url()
    env_file = ctx.tmp_path / f"app-env-{dead.rsplit(':', 1)[-1].split('/')[0]}.env"
    env_file.write_text(f"HUNTER_ENVIRONMENT=production\nHUNTER_REDIS_URL={dead}\n")
    env_file.chmod(0o600)
    return ctx.app_host(ctx.service(env={"HUNTER_REDIS_URL": dead}), hunter_app_env_file=str(env_file),
                        redis_check_connect_timeout=1, redis_check_command_timeout=1)


def _app_on_dead_redis(ctx, breaks=()) -> dict:
    """The application and the inventory agree on the application's Redis, which is down."""
    dead = ctx.stopped_redis_url()
    return ctx.app_host(ctx.service(env={"HUNTER_REDIS_URL": dead}, breaks=breaks), hunter_app_redis_url=dead)


def _cache_on(ctx, server, password=None, **extra) -> dict:
    return ctx.cache_host(hunter_redis_host=server.host, hunter_redis_port=server.port,
                          hunter_redis_password=password or "", redis_check_connect_timeout=1,
                          redis_check_command_timeout=1, **extra)


def _stopped_cache(ctx) -> dict:
    server = ctx.redis(password="gone-" + ctx.api_key[-12:])
    server.stop()
    return _cache_on(ctx, server, server.password)


def _full_cache(ctx) -> dict:
    """maxmemory reached under noeviction: every write is refused with OOM."""
    import redis
    server = ctx.redis(extra_args=["--maxmemory", "2mb", "--maxmemory-policy", "noeviction"])
    client = server.client()
    for batch in range(2000):
        pipe = client.pipeline(transaction=False)
        for i in range(50):
            pipe.set(f"filler:{batch}:{i}", b"x" * 4096)
        try:
            pipe.execute()
        except redis.exceptions.OutOfMemoryError:
            return _cache_on(ctx, server)
    raise AssertionError("the cache never reached maxmemory")


REDIS = [
    Case("app-redis-down", ("REDIS-APP-PING",), "the Redis the application is configured with is down",
         lambda ctx: ctx.app_host(ctx.service(), hunter_app_redis_url=ctx.stopped_redis_url())),
    Case("app-env-file-redis-down", ("REDIS-APP-PING", "HEALTH-READY"),
         "the application's env file points at a Redis that is down; the inventory's copy of the URL is healthy",
         _app_env_file_redis_down),
    Case("ready-ignores-redis", ("REDIS-APP-PING",),
         "readiness never asks Redis and says ok while the application's Redis is down",
         lambda ctx: _app_on_dead_redis(ctx, breaks=("ready-ignores-redis",))),
    Case("redis-health-down", ("REDIS-HEALTH", "HEALTH-REDIS", "HEALTH-READY"),
         "the readiness body says Redis is down (the application's Redis stopped)",
         _app_on_dead_redis),
    Case("cache-down", ("REDIS-PING", "REDIS-OPS", "REDIS-POOL"), "the cache's Redis is down",
         _stopped_cache, group="cache"),
    Case("cache-readonly-replica", ("REDIS-OPS",), "the cache address is a read-only replica",
         lambda ctx: _cache_on(ctx, ctx.redis(replicaof=ctx.redis_shared)), group="cache"),
    Case("cache-no-replicas-to-write", ("REDIS-OPS",),
         "the cache refuses writes: min-replicas-to-write 1 and no replica connected",
         lambda ctx: _cache_on(ctx, ctx.redis(extra_args=["--min-replicas-to-write", "1"])), group="cache"),
    Case("cache-full", ("REDIS-OPS",), "the cache is full: maxmemory reached under noeviction",
         _full_cache, group="cache"),
    Case("cache-maxclients", ("REDIS-POOL",), "the cache accepts 4 clients; the application's pool needs 10",
         lambda ctx: _cache_on(ctx, ctx.redis(extra_args=["--maxclients", "4"])), group="cache"),
]

# -- 6.4 API versioning -----------------------------------------------------------------------------


def _html_catch_all() -> str:
    """The URL of a web server answering every path with 200 and an HTML page (a default virtual host,
    a single-page app's fallback), started for the row and stopped when the test process ends."""
    import atexit

    from sandbox.services import HtmlCatchAllServer
    server = HtmlCatchAllServer()
    atexit.register(server.stop)
    return server.url


_LEGACY_SUPPORTED = {"HUNTER_LEGACY": "supported", "HUNTER_LEGACY_DEPRECATION": "1"}

API = [
    Case("sales-500", ("API-V1-SALES",), "the sales summary endpoint crashes (500)",
         lambda ctx: ctx.app_host(ctx.service(env={"HUNTER_FAULTS": "sales-summary:500"}))),
    Case("api-key-revoked", ("API-V1-LEADS",), "the API key the probe sends was revoked (the service answers 401)",
         lambda ctx: ctx.app_host(ctx.service(breaks=("api-key-revoked",)))),
    Case("api-key-vault-missing", ("API-V1-LEADS",),
         "hunter_api_key comes from a vault variable that is not defined (an empty key, nothing sent)",
         lambda ctx: ctx.app_host(ctx.service(), hunter_api_key="{{ vault_hunter_api_key }}")),
    Case("scan-validation-broken", ("API-V1-SCAN",), "the scan refuses a valid domain with 400 (validation broken)",
         lambda ctx: ctx.app_host(ctx.service(breaks=("scan-validation-broken",)))),
    Case("scan-empty-body", ("API-V1-SCAN",), "the scan answers 200 with an empty body",
         lambda ctx: ctx.app_host(ctx.service(breaks=("scan-empty-body",)))),
    Case("scan-body-invalid", ("API-V1-SCAN",), "the scan answers 200 with JSON that is not a scan result",
         lambda ctx: ctx.app_host(ctx.service(breaks=("scan-body-invalid",)))),
    Case("sales-route-removed", ("API-V1-SALES",),
         "the sales-summary route is gone: the framework's generic 404 for every domain",
         lambda ctx: ctx.app_host(ctx.service(breaks=("sales-route-removed",)))),
    Case("html-catch-all", ("API-V1-LEADS", "API-V1-SCAN", "API-V1-SALES", "API-LEGACY"),
         "a web server answering every path with 200 and an HTML page sits where the API should be",
         lambda ctx: ctx.app_host(ctx.service(), hunter_app_url=_html_catch_all())),
    Case("legacy-half-removed-as-removed", ("API-LEGACY",),
         "legacy /scan is removed but /leads still answers 200; the decision says 'removed'",
         lambda ctx: ctx.app_host(ctx.service(env=_LEGACY_SUPPORTED, breaks=("legacy-scan-removed",)))),
    Case("legacy-half-removed-as-supported", ("API-LEGACY",),
         "legacy /scan is removed but /leads still answers 200; the decision says 'supported'",
         lambda ctx: ctx.app_host(ctx.service(env=_LEGACY_SUPPORTED, breaks=("legacy-scan-removed",)),
                                  hunter_api_legacy_decision="supported")),
    Case("legacy-shape-changed", ("API-COMPAT",),
         "legacy is supported as documented but answers in another shape (renamed keys, other types)",
         lambda ctx: ctx.app_host(ctx.service(env=dict(_LEGACY_SUPPORTED, HUNTER_LEGACY_SHAPE="different")),
                                  hunter_api_legacy_decision="supported")),
]

# -- 6.3 Backup and restore ------------------------------------------------------------------------
# Database rows run the backup and the drill on the shared PostgreSQL, each host with its own backup
# directory, S3 prefix and schedule files (ctx.db_host), beside a healthy mf-baseline-db.

CRON_ENV = {"HOME": os.environ.get("HOME", "/root"), "LOGNAME": "root", "PATH": "/usr/bin:/bin", "SHELL": "/bin/sh"}


def _db_home(ctx, name: str) -> Path:
    home = ctx.tmp_path / "db" / name
    home.mkdir(parents=True, exist_ok=True)
    return home


def _rewrite_manifest(path: Path, **changes) -> None:
    """A manifest that describes ``path`` as it is now (size, checksum), with ``changes``."""
    manifest = backup.load_manifest(str(path))
    manifest.update(size_bytes=backup.backup_size(str(path)), sha256=backup.backup_sha256(str(path)), **changes)
    backup.write_manifest(str(path), manifest)


def _retention_delete_refused(ctx) -> dict:
    """Three month-old backups past the 7-day policy that the volume refuses to delete (immutable)."""
    name = "retention-delete-refused"
    host = ctx.db_host(name)
    seed = ctx.backup(_db_home(ctx, name) / "seed", format="custom", label="manual")
    target = Path(host["hunter_backup_dir"])
    target.mkdir(parents=True, exist_ok=True)
    for day in (1, 2, 3):
        copy = target / ("backup_manual_202601%02d_020000%s" % (day, seed.name[seed.name.index("."):]))
        shutil.copy2(seed, copy)
        shutil.copy2(backup.manifest_path(str(seed)), backup.manifest_path(str(copy)))
        _rewrite_manifest(copy, backup=copy.name, started_at="2026-01-%02dT02:00:00Z" % day)
        subprocess.run(["chattr", "+i", str(copy)], check=True)
        ctx.cleanups.append(lambda path=copy: subprocess.run(["chattr", "-i", str(path)], check=False))
    return host


def _schedule_last_run_failed(ctx) -> dict:
    """The nightly job is installed (on purpose, by its playbook) and its last run failed: the database
    password it uses was rotated. The preflight's own backup, with the right password, succeeds."""
    name = "schedule-last-run-failed"
    home = _db_home(ctx, name)
    host = ctx.db_host(name, pg_backup_schedule_check_daemon=False)
    (home / "cron.d").mkdir(exist_ok=True)
    job = dict(host, ansible_connection="local", ansible_python_interpreter=sys.executable,
               hunter_db_password="rotated-" + ctx.api_key[-12:])
    inventory = home / "job-inventory.json"
    inventory.write_text(json.dumps({"all": {"children": {"db": {"hosts": {"mf-" + name: job}}}}}))
    inventory.chmod(0o600)
    install = ctx.run_playbook("playbooks/install_backup_schedule.yml", str(inventory))
    assert install.rc == 0, install.stdout[-3000:]
    night = subprocess.run([str(home / "schedule" / ("pg_backup_mf-%s.py" % name))], env=CRON_ENV, cwd="/",
                           capture_output=True, text=True, timeout=600, check=False)
    assert night.returncode != 0, "the scheduled run with a rotated password did not fail"
    return host


def _drill_source_damaged(ctx) -> dict:
    """The drill reads the backup host's copy; its newest backup was damaged in transit (its manifest
    still describes the original)."""
    name = "drill-newest-damaged"
    copies = _db_home(ctx, name) / "backup-host-copy"
    seed = ctx.backup(copies, format="plain-gzip", label="manual")
    seed.write_bytes(seed.read_bytes()[:-100] + bytes(100))
    return ctx.db_host(name, pg_restore_dryrun_backup_dir=str(copies))


def _drill_source_cut(ctx) -> dict:
    """The newest backup the drill reads was cut off mid-way, and its manifest was written after the
    damage (checksums match): only restoring it shows the backup is unusable."""
    name = "drill-newest-cut"
    copies = _db_home(ctx, name) / "backup-host-copy"
    seed = ctx.backup(copies, format="plain", label="manual")
    seed.write_bytes(seed.read_bytes()[:int(seed.stat().st_size * 0.7)])
    _rewrite_manifest(seed)
    return ctx.db_host(name, pg_restore_dryrun_backup_dir=str(copies))


BACKUP = [
    Case("backup-password-rotated", ("BACKUP-CMD", "BACKUP-VALID", "RESTORE-DRYRUN"),
         "the database password was rotated; the inventory still has the old one",
         lambda ctx: ctx.db_host("backup-password-rotated", hunter_db_password="old-" + ctx.api_key[-12:]),
         group="db"),
    Case("offsite-bucket-down", ("BACKUP-LOCATION",), "the off-host copy's S3 endpoint is down",
         lambda ctx: ctx.db_host("offsite-bucket-down", hunter_backup_s3_endpoint_url=_dead_url()), group="db"),
    Case("retention-delete-refused", ("BACKUP-RETENTION",),
         "backups older than the policy cannot be deleted (the volume refuses): they pile up",
         _retention_delete_refused, group="db",
         expect=(("BACKUP-RETENTION", "fail", r"Operation not permitted"),)),
    Case("schedule-last-run-failed", ("BACKUP-SCHEDULE",),
         "the nightly backup job's last run failed (it still uses a rotated password)",
         _schedule_last_run_failed, group="db",
         expect=(("BACKUP-SCHEDULE", "fail", r"failed with exit status"),)),
    Case("drill-newest-damaged", ("RESTORE-DRYRUN",),
         "the newest backup the drill reads is damaged (checksum differs from its manifest)",
         _drill_source_damaged, group="db", expect=(("RESTORE-DRYRUN", "fail", r"is not valid: sha256"),)),
    Case("drill-newest-cut", ("RESTORE-DRYRUN", "RESTORE-RTO"),
         "the newest backup was cut off mid-way (its manifest matches): it does not restore",
         _drill_source_cut, group="db"),
    Case("rto-beyond-target", ("RESTORE-RTO",),
         "production holds 20 TB: at the drill's measured throughput the restore takes far beyond 15 min",
         lambda ctx: ctx.db_host("rto-beyond-target", hunter_production_db_size="20TB"), group="db"),
]


def _dead_url() -> str:
    from sandbox.services import refused_port
    return "http://127.0.0.1:%d" % refused_port()


# -- Profile B: the same service shaped unlike the runbook ----------------------------------------------
# sandbox/app_unlike_runbook.py, configured by the example inventory inventories/examples/unlike_runbook
# (ctx.profile_b_host: its app group_vars as they are). Its settings live in the .env of its working
# directory, so a broken dependency is broken there; its API faults are its own BREAKS switches. A
# virtualenv without sentry-sdk is no row here: profile B imports sentry_sdk at start in production, so
# that deployment never starts (nothing to probe).


def _b(settings=None, breaks=(), **overrides):
    return lambda ctx: ctx.profile_b_host(ctx.service_b(settings=settings, breaks=breaks), **overrides)


def _b_dead_redis(ctx) -> dict:
    return ctx.profile_b_host(ctx.service_b(settings={"REDIS_URL": ctx.stopped_redis_url()}),
                              redis_check_connect_timeout=1, redis_check_command_timeout=1)


def _b_other_project(ctx) -> dict:
    other = ctx.bugsink.create_project("mf-b-elsewhere-" + secrets.token_hex(4))
    return ctx.profile_b_host(ctx.service_b(settings={"SENTRY_DSN": other["dsn"]}))


PROFILE_B = [
    Case("b-db-down", ("HEALTH-READY", "HEALTH-DB"),
         "the database in the app's .env is down (readiness 503, checks.database false)",
         lambda ctx: ctx.profile_b_host(ctx.service_b(settings={"DATABASE_URL": _dead_database_url(ctx)})),
         profile="B"),
    Case("b-redis-down", ("HEALTH-READY", "HEALTH-REDIS", "REDIS-APP-PING", "REDIS-HEALTH"),
         "the Redis in the app's .env is down; the inventory holds no copy of its URL", _b_dead_redis, profile="B"),
    Case("b-staging", ("HEALTH-ENV", "SENTRY-EVENT", "SENTRY-ENV"),
         "the service runs with ENVIRONMENT=staging: /api/v1/info says so, and it sets up no Sentry outside production",
         _b({"ENVIRONMENT": "staging"}), profile="B"),
    Case("b-sentry-dsn-missing", ("SENTRY-DSN", "SENTRY-EVENT"), "the app's .env has no SENTRY_DSN",
         _b({"SENTRY_DSN": None}), profile="B"),
    Case("b-sentry-other-project", ("SENTRY-EVENT", "SENTRY-ENV"),
         "SENTRY_DSN in the app's .env is another project's", _b_other_project, profile="B"),
    Case("b-api-key-revoked", ("API-V1-LEADS",), "the API key the probe sends was revoked (401 whatever key)",
         _b(breaks=("api-key-revoked",)), profile="B"),
    Case("b-scan-validation-broken", ("API-V1-SCAN",), "POST /api/v1/scan refuses a valid domain with 422",
         _b(breaks=("scan-validation-broken",)), profile="B"),
    Case("b-scan-empty-body", ("API-V1-SCAN",), "POST /api/v1/scan answers 200 with an empty body",
         _b(breaks=("scan-empty-body",)), profile="B"),
    Case("b-sales-route-removed", ("API-V1-SALES",),
         "the sales-summary route is gone: the framework's generic 404 for every domain",
         _b(breaks=("sales-route-removed",)), profile="B"),
    Case("b-legacy-half-removed", ("API-LEGACY",),
         "legacy GET /leads is gone while legacy POST /scan still answers; the decision says 'supported'",
         _b(breaks=("legacy-leads-removed",)), profile="B"),
    Case("b-legacy-live-decision-removed", ("API-LEGACY",),
         "the decision says 'removed' but both legacy routes still answer 200",
         _b(hunter_api_legacy_decision="removed"), profile="B"),
    Case("b-legacy-shape-changed", ("API-COMPAT",),
         "legacy is supported as documented but answers in another shape (renamed keys, other types)",
         _b(breaks=("legacy-shape-changed",)), profile="B"),
    Case("b-html-catch-all", ("API-V1-LEADS", "API-V1-SCAN", "API-V1-SALES", "API-LEGACY"),
         "a web server answering every path with 200 and an HTML page sits where profile B's API should be",
         lambda ctx: ctx.profile_b_host(ctx.service_b(), hunter_app_url=_html_catch_all()), profile="B"),
]

CASES = HEALTH + SENTRY + REDIS + API + BACKUP + PROFILE_B

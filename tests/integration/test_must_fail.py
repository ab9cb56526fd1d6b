"""The must-fail matrix (tests/integration/must_fail_table.py): every row is a real broken deployment
that must not pass its items, judged in one real run per group beside a healthy baseline host.

The table of what was expected and observed is printed at the end of the test session
(tests/conftest.py) and written to reports/test-results/must_fail.md.
"""
from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from tests.harness import REPO_ROOT
from tests.integration.must_fail_table import CASES

PLAYBOOKS = {"app": Path(__file__).parent / "playbooks" / "must_fail_app.yml",
             "db": Path(__file__).parent / "playbooks" / "must_fail_db.yml"}
BASELINE = {"app": "mf-baseline-app", "db": "mf-baseline-db"}
# The healthy profile-B host of the application run (configured by the example inventory).
BASELINE_B = "mf-baseline-b"
# One run probes every row's Sentry at once (forks): the method-A script (importing the app and sentry-sdk)
# and Bugsink's API get slow on a loaded machine. Healthy hosts must not fail for that; a broken row fails
# on what it observes, not on these limits.
SENTRY_UNDER_LOAD = {"sentry_probe_command_timeout": 90, "sentry_probe_timeout": 15}
# Dozens of sample services start four at a time; on a loaded machine one may need more than the
# sandbox's own wait to import and answer (a slow start is no broken deployment).
SERVICE_START_TIMEOUT = 120.0
# Profile B (sandbox/app_unlike_runbook.py) is described by the example inventory's app group_vars.
EXAMPLE_APP_VARS = REPO_ROOT / "inventories" / "examples" / "unlike_runbook" / "group_vars" / "app"
# Rows of these groups join another group's run: cache hosts join the application run, whose
# redis_check play covers them (beside the healthy mf-baseline-cache).
JOINS = {"cache": "app"}


class MatrixContext:
    """What a row's build(ctx) may use: private servers it can break, the shared healthy ones."""

    def __init__(self, *, pg, redis_server, bugsink, api_key, make_service, make_redis, tmp_path,
                 s3=None, ansible=None, make_profile_b=None):
        self.pg_shared, self.redis_shared, self.bugsink, self.api_key = pg, redis_server, bugsink, api_key
        self._make_service, self._make_redis, self.tmp_path = make_service, make_redis, tmp_path
        self.s3, self.ansible = s3, ansible
        self._make_profile_b = make_profile_b
        self._lock = threading.Lock()
        self._ansible_lock = threading.Lock()   # the harness numbers its private directories
        self.cleanups = []                      # run at teardown, last first

    def service(self, env: dict | None = None, breaks: tuple[str, ...] = (), python=None):
        """A private sample service reporting to Bugsink; env merges over the healthy defaults
        (None removes a variable), breaks are HUNTER_BREAK fault switches, python another interpreter."""
        merged = {"HUNTER_SENTRY_DSN": self.bugsink.dsn, "HUNTER_ENVIRONMENT": "production"}
        merged.update(env or {})
        if breaks:
            merged["HUNTER_BREAK"] = ",".join(breaks)
        with self._lock:  # the factory keeps a list; starting happens outside the lock
            service = self._make_service(env=merged, start=False, **({"python": python} if python else {}))
        service.ready_timeout = SERVICE_START_TIMEOUT
        return service.start()

    def service_b(self, settings: dict | None = None, breaks: tuple[str, ...] = (), python=None):
        """A private profile-B sample service (its settings in the .env of its working directory) reporting
        to Bugsink in production; settings merge over that (None removes one), breaks are its HUNTER_BREAK
        fault switches (sandbox/app_unlike_runbook.py BREAKS), python another interpreter."""
        merged = {"SENTRY_DSN": self.bugsink.dsn}
        merged.update(settings or {})
        with self._lock:
            service = self._make_profile_b(settings=merged, breaks=breaks, start=False, python=python)
        service.ready_timeout = SERVICE_START_TIMEOUT
        return service.start()

    def profile_b_host(self, service, **overrides) -> dict:
        """Inventory variables of a profile-B application host: the example inventory's app group_vars
        as they are, plus this sandbox's addresses, paths, tracker and secrets (as the example's test)."""
        host = {}
        for path in sorted(EXAMPLE_APP_VARS.glob("*.yml")):
            host.update(yaml.safe_load(path.read_text()) or {})
        host.update({
            "hunter_app_url": service.url, "hunter_app_env_file": str(service.env_file_path),
            "hunter_app_pidfile": str(service.pid_path), "hunter_expected_environment": "production",
            "hunter_api_key": self.api_key, "hunter_sentry_backend": "bugsink",
            "hunter_sentry_api_url": self.bugsink.url, "hunter_sentry_api_token": self.bugsink.token,
            "hunter_sentry_project": str(self.bugsink.project_id), "hunter_sentry_allow_http": True,
            # Bugsink digests events in the background: with every host's event at once, a loaded
            # machine needs more than 20 s (the broken rows fail without waiting, so this costs nothing).
            "sentry_probe_wait_timeout": 60, "health_check_startup_timeout": 2,
            "health_check_startup_interval": 0.5, "health_check_timeout": 3, **SENTRY_UNDER_LOAD,
        })
        host.update(overrides)
        return host

    def redis(self, **kwargs):
        with self._lock:
            return self._make_redis(**kwargs)

    def stopped_redis_url(self) -> str:
        """The URL of a Redis that was there and is stopped now (its password is real)."""
        server = self.redis(password="gone-" + self.api_key[-12:])
        server.stop()
        return server.url

    def app_host(self, service, **overrides) -> dict:
        """Inventory variables of an application host running ``service`` on the shared database
        and Redis, configured for every app-side item."""
        host = {
            "hunter_app_url": service.url, "hunter_expected_environment": "production",
            "hunter_api_key": self.api_key, "hunter_api_legacy_decision": "removed",
            "hunter_app_db_host": self.pg_shared.host, "hunter_app_db_port": self.pg_shared.port,
            "hunter_app_db_name": self.pg_shared.database, "hunter_app_db_user": self.pg_shared.user,
            "hunter_app_db_password": self.pg_shared.password, "hunter_app_redis_url": self.redis_shared.url,
            "hunter_sentry_dsn_source": "process", "hunter_sentry_pidfile": str(service.pid_path),
            "hunter_sentry_app_module": "sandbox.app",
            "hunter_sentry_backend": "bugsink", "hunter_sentry_api_url": self.bugsink.url,
            "hunter_sentry_api_token": self.bugsink.token, "hunter_sentry_project": str(self.bugsink.project_id),
            "hunter_sentry_allow_http": True, "sentry_probe_wait_timeout": 20,
            "health_check_startup_timeout": 2, "health_check_startup_interval": 0.5, "health_check_timeout": 3,
            **SENTRY_UNDER_LOAD,
        }
        host.update(overrides)
        return host

    def db_host(self, name: str, **overrides) -> dict:
        """Inventory variables of a database host backing up the shared database into its own
        directory, with an off-host copy to the shared S3 bucket, then drilling the newest backup."""
        home = self.tmp_path / "db" / name
        host = {
            "hunter_db_host": self.pg_shared.host, "hunter_db_port": self.pg_shared.port,
            "hunter_db_name": self.pg_shared.database, "hunter_db_user": self.pg_shared.user,
            "hunter_db_password": self.pg_shared.password, "hunter_backup_dir": str(home / "backups"),
            "hunter_ops_metrics_dir": str(home / "metrics"),
            "hunter_backup_s3_endpoint_url": self.s3.endpoint_url, "hunter_backup_s3_region": self.s3.region,
            "hunter_backup_s3_bucket": self.s3_bucket, "hunter_backup_s3_prefix": name + "/",
            "hunter_backup_s3_access_key": self.s3.access_key, "hunter_backup_s3_secret_key": self.s3.secret_key,
            "pg_backup_s3_timeout": 5, "pg_backup_schedule_dir": str(home / "schedule"),
            "pg_backup_schedule_cron_file": str(home / "cron.d" / "hunter-backup"),
            "pg_restore_dryrun_tables": ["companies", "domain_signals"],
        }
        host.update(overrides)
        return host

    @property
    def s3_bucket(self) -> str:
        with self._lock:
            if not getattr(self, "_bucket", None):
                self._bucket = "must-fail-%d" % id(self)
                self.s3.create_bucket(self._bucket)
        return self._bucket

    def backup(self, directory: Path, **args) -> Path:
        """A real backup of the shared database taken by hunter.ops.pg_backup into ``directory``."""
        options = dict(db_host=self.pg_shared.host, db_port=self.pg_shared.port, db_name=self.pg_shared.database,
                       db_user=self.pg_shared.user, db_password=self.pg_shared.password, backup_dir=str(directory),
                       label="seed")
        options.update(args)
        with self._ansible_lock:
            result = self.ansible.run_module("hunter.ops.pg_backup", options)
        assert not result.get("check_task_failed"), result.get("msg")
        return Path(result["backup"])

    def run_playbook(self, playbook, inventory, **kwargs):
        with self._ansible_lock:
            return self.ansible.run_playbook(playbook, inventory, **kwargs)

    def cache_host(self, **overrides) -> dict:
        host = {"hunter_redis_host": self.redis_shared.host, "hunter_redis_port": self.redis_shared.port,
                "hunter_redis_password": self.redis_shared.password, "hunter_redis_db": 0}
        host.update(overrides)
        return host


@pytest.fixture
def matrix_ctx(pg, redis_server, bugsink, api_key, make_service, make_redis, make_unlike_runbook_service, tmp_path,
               s3_server, ansible):
    ctx = MatrixContext(pg=pg, redis_server=redis_server, bugsink=bugsink, api_key=api_key,
                        make_service=make_service, make_redis=make_redis, tmp_path=tmp_path, s3=s3_server,
                        ansible=ansible, make_profile_b=make_unlike_runbook_service)
    yield ctx
    for cleanup in reversed(ctx.cleanups):
        cleanup()


def _baselines(group, ctx, cases) -> dict:
    """{inventory group: {host: vars}} of the healthy hosts a group's run judges beside its rows."""
    if group == "db":
        return {"db": {BASELINE["db"]: ctx.db_host("baseline")}}
    app = {BASELINE["app"]: ctx.app_host(ctx.service())}
    if any(c.profile == "B" for c in cases):
        app[BASELINE_B] = ctx.profile_b_host(ctx.service_b())
    return {"app": app, "cache": {"mf-baseline-cache": ctx.cache_host()}}


def _baseline_names(groups) -> list[list[str]]:
    return [[h for h in hosts if h.startswith("mf-baseline-")] for hosts in groups.values()]


def _row(case, items, required, blocking_ids):
    observed, problems = [], []
    for check_id in case.items:
        item = items.get(check_id)
        status = item["status"] if item else "missing"
        # the start of the message shows the item failed for the row's reason, not another
        said = (item or {}).get("message", "").replace("|", "/")
        observed.append(f"{check_id}={status}" + (f" ({said[:70]}{'...' if len(said) > 70 else ''})" if said else ""))
        if item is None:
            problems.append(f"{check_id} not reported")
        elif status == "pass":
            problems.append(f"{check_id} passed: {item['message']}")
        elif check_id in required and check_id not in blocking_ids:
            problems.append(f"{check_id} is required but does not block GO")
    for check_id, status, pattern in case.expect:
        item = items.get(check_id) or {}
        if item.get("status") != status or not re.search(pattern, item.get("message", "")):
            problems.append(f"{check_id} is {item.get('status')} ({item.get('message')!r}), expected {status} "
                            f"matching {pattern!r}: failed for another reason")
    return observed, problems


@pytest.mark.parametrize("group", sorted(PLAYBOOKS))
def test_broken_deployments_never_pass_their_items(group, ansible, matrix_ctx, request):
    cases = [c for c in CASES if JOINS.get(c.group, c.group) == group]
    assert cases, f"no must-fail row for group {group}"
    names = [c.name for c in cases]
    assert len(set(names)) == len(names), "row names must be unique"
    with ThreadPoolExecutor(4) as pool:  # private services start concurrently
        built = list(pool.map(lambda c: c.build(matrix_ctx), cases))
        groups = _baselines(group, matrix_ctx, cases)
    for case, host_vars in zip(cases, built):
        groups.setdefault(case.group, {})["mf-" + case.name] = host_vars
    inventory = {"all": {"children": dict((name, {"hosts": hosts}) for name, hosts in groups.items())}}
    run = ansible.run_playbook(PLAYBOOKS[group], inventory)
    assert run.report is not None, run.stdout[-3000:]
    required = set(run.report["required"])
    by_host: dict[str, dict] = {}
    for item in run.report["items"]:
        by_host.setdefault(item["host"], {})[item["id"]] = item
    blocking: dict[str, set] = {}
    for b in run.report["blocking"]:
        blocking.setdefault(b["host"], set()).add(b["id"])

    # The run itself works: the healthy hosts pass every required item they own.
    for host in (h for hosts in _baseline_names(groups) for h in hosts):
        assert not blocking.get(host), {i: by_host[host][i]["message"] for i in blocking[host]}

    failures = []
    for case in cases:
        host = "mf-" + case.name
        observed, problems = _row(case, by_host.get(host, {}), required, blocking.get(host, set()))
        # the session's table (tests/conftest.py MUST_FAIL_ROWS)
        request.node.user_properties.append(("must_fail_row", (
            case.group, case.profile, case.name, case.why, ", ".join(case.items), ", ".join(observed),
            "ok" if not problems else ("FALSE PASS" if any(" passed: " in p for p in problems) else "WRONG REASON"))))
        if problems:
            failures.append(f"{case.name} ({case.why}): " + "; ".join(problems))
    assert not failures, "\n".join(failures)

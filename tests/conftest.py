"""Shared fixtures: private services (session scope), fault-test factories, ansible-runner.

The classes live in sandbox/services.py and tests/harness.py; this file only wires
them to pytest's lifetimes. Every server binds 127.0.0.1 on a free port and is
stopped (and its files removed) when its fixture ends.
"""
from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from sandbox.bugsink import BugsinkServer
from sandbox.services import (PostgresServer, RedisServer, SampleService, SilentServer,
                              seed, venv_python as _venv_python)
from tests.harness import REPO_ROOT, AnsibleHarness, assert_no_secret as _assert_no_secret


def pytest_collection_modifyitems(config, items):
    """Everything under tests/integration is an integration test."""
    integration_dir = Path(__file__).parent / "integration"
    for item in items:
        if integration_dir in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)
    # The must-fail matrix is the longest file (its application and database runs, ~6 min): first, so that
    # with pytest-xdist workers (scripts/test.sh, integration) the others run the rest meanwhile instead of
    # one worker running it alone at the end.
    items.sort(key=lambda item: Path(str(item.fspath)).name != "test_must_fail.py")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def venv_python() -> Path:
    return _venv_python()


# -- session services ----------------------------------------------------------------

@pytest.fixture(scope="session")
def pg(tmp_path_factory):
    """Seeded PostgreSQL: app role `hunter` owns db `hunter` (CREATEDB); superuser `postgres`."""
    server = PostgresServer(tmp_path_factory.mktemp("pg")).start()
    seed(server)
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"), password=secrets.token_urlsafe(16)).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """moto S3 in server mode on loopback (`.endpoint_url`, `.access_key`, `.secret_key`, `.client()`,
    `.create_bucket(name)`, `.objects(bucket, prefix)`); buckets are per test, by unique name."""
    from sandbox.s3 import MotoServer
    server = MotoServer(tmp_path_factory.mktemp("moto")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def bugsink(tmp_path_factory):
    """Bugsink (Sentry-compatible, own venv) with team, project, DSN and token made at start.

    `.dsn`, `.token`, `.project_id`, `.url`, `.startup_seconds`; `create_project(name)`.
    The migrated databases come from a cached template (sandbox/bugsink.py).
    """
    server = BugsinkServer(tmp_path_factory.mktemp("bugsink")).start()
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def api_key() -> str:
    return "hk_" + secrets.token_urlsafe(24)


def _service_env(pg, redis_server, api_key, extra=None) -> dict:
    env = {"HUNTER_DATABASE_URL": pg.dsn, "HUNTER_REDIS_URL": redis_server.url,
           "HUNTER_API_KEYS": api_key, "HUNTER_ENVIRONMENT": "production",
           "HUNTER_SANDBOX_ADMIN": "1"}
    env.update(extra or {})
    return {k: v for k, v in env.items() if v is not None}


@pytest.fixture(scope="session")
def sample_service(tmp_path_factory, pg, redis_server, api_key):
    """The sample service on pg + redis_server, API key enforced, admin endpoint on.

    Tests that change its behaviour use `service_config`, which resets it afterwards.
    """
    service = SampleService(tmp_path_factory.mktemp("sample-service"),
                            env=_service_env(pg, redis_server, api_key)).start()
    yield service
    service.stop()


@pytest.fixture
def service_config(sample_service):
    """`service_config.configure(legacy="supported", ...)`; defaults restored after the test."""
    yield sample_service
    sample_service.reset()


# -- factories for fault tests (function scope, always cleaned up) ---------------------

@pytest.fixture
def make_pg(tmp_path):
    """make_pg(seeded=True, **PostgresServer kwargs) -> a started, private PostgresServer."""
    made = []

    def factory(seeded: bool = True, **kwargs) -> PostgresServer:
        server = PostgresServer(tmp_path / f"pg{len(made)}", **kwargs)
        made.append(server)
        server.start()
        if seeded:
            seed(server)
        return server

    yield factory
    for server in made:
        server.destroy()


@pytest.fixture
def make_redis(tmp_path):
    """make_redis(password=..., extra_args=(...), replicaof=...) -> a started RedisServer."""
    made = []

    def factory(**kwargs) -> RedisServer:
        server = RedisServer(tmp_path / f"redis{len(made)}", **kwargs)
        made.append(server)
        return server.start()

    yield factory
    for server in made:
        server.stop()


@pytest.fixture
def make_service(tmp_path, pg, redis_server, api_key):
    """make_service(env={...}, start=True) -> a SampleService.

    env is merged over the session defaults (pg, redis_server, api_key, production,
    admin on); a value of None removes that variable.
    """
    made = []

    def factory(env: dict | None = None, start: bool = True, **kwargs) -> SampleService:
        merged = _service_env(pg, redis_server, api_key, env)
        service = SampleService(tmp_path / f"service{len(made)}", env=merged, **kwargs)
        made.append(service)
        return service.start() if start else service

    yield factory
    for service in made:
        service.stop()


@pytest.fixture
def silent_server():
    """A TCP listener that accepts and never answers (`.port`, `.url`)."""
    server = SilentServer()
    yield server
    server.stop()


# -- ansible -----------------------------------------------------------------------------

@pytest.fixture
def ansible(tmp_path, repo_root, venv_python) -> AnsibleHarness:
    """run_playbook(playbook, inventory, extravars=None, limit=None) / run_module(fqcn, args, ...)."""
    return AnsibleHarness(base_dir=tmp_path / "ansible", repo_root=repo_root, python=venv_python)


@pytest.fixture
def assert_no_secret():
    return _assert_no_secret


# -- the must-fail matrix's table ---------------------------------------------------------------------

# (group, profile, row, why, items, observed, verdict) per row, from the reports of the must-fail tests: they
# record their rows as the user property "must_fail_row", which reaches this process from pytest-xdist's
# workers too (a list filled inside the test would stay in the worker's process).
MUST_FAIL_ROWS: list[tuple[str, ...]] = []


def pytest_runtest_logreport(report):
    if report.when == "call":
        MUST_FAIL_ROWS.extend(tuple(value) for name, value in report.user_properties if name == "must_fail_row")


def pytest_terminal_summary(terminalreporter):
    """Print the must-fail matrix (rows x items) when it ran, and keep it under reports/test-results/."""
    if not MUST_FAIL_ROWS:
        return
    rows = MUST_FAIL_ROWS
    items = sum(len(r[4].split(", ")) for r in rows)
    covered = sorted({i for r in rows for i in r[4].split(", ")})
    profiles = sorted({r[1] for r in rows})
    lines = [f"must-fail matrix: {len(rows)} broken deployments x their items = {items} checks, "
             f"{len(covered)} checklist items covered; sample-service profiles: "
             + ", ".join(f"{p} ({sum(1 for r in rows if r[1] == p)} rows)" for p in profiles),
             "| group | profile | row | broken deployment | must not pass | observed | result |",
             "|---|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    terminalreporter.write_sep("=", "must-fail matrix")
    for line in lines:
        terminalreporter.write_line(line)
    out = REPO_ROOT / "reports" / "test-results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "must_fail.md").write_text("\n".join(lines) + "\n")


# -- the sample service's profile B (sandbox/app_unlike_runbook.py) -------------------------------------

@pytest.fixture
def make_unlike_runbook_service(tmp_path, pg, redis_server, api_key):
    """make_unlike_runbook_service(settings={...}, breaks=(...), start=True, python=None) -> a SampleService running
    profile B on pg + redis_server, its settings in the .env file of its working directory
    (`.env_file_path`): DATABASE_URL, REDIS_URL, API_KEYS, ENVIRONMENT (production), SANDBOX_ADMIN (1),
    SENTRY_DSN when given; a None value removes a setting. breaks are HUNTER_BREAK fault switches;
    python another interpreter (a virtualenv without sentry-sdk)."""
    made = []

    def factory(settings: dict | None = None, breaks: tuple = (), start: bool = True,
                python=None) -> SampleService:
        env = {"DATABASE_URL": pg.dsn, "REDIS_URL": redis_server.url, "API_KEYS": api_key,
               "ENVIRONMENT": "production", "SANDBOX_ADMIN": "1"}
        env.update(settings or {})
        if breaks:
            env["HUNTER_BREAK"] = ",".join(breaks)
        service = SampleService(tmp_path / f"profile-b{len(made)}", app_module="sandbox.app_unlike_runbook",
                                env={k: v for k, v in env.items() if v is not None}, python=python)
        made.append(service)
        return service.start() if start else service

    yield factory
    for service in made:
        service.stop()

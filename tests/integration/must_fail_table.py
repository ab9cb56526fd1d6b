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

import secrets
from dataclasses import dataclass
from typing import Callable

from sandbox.services import venv_without


@dataclass(frozen=True)
class Case:
    name: str                       # short, unique: the host is "mf-<name>"
    items: tuple[str, ...]          # IDs that must not pass on this host
    why: str                        # the broken deployment, as an operator would describe it
    build: Callable                 # build(ctx) -> inventory variables of the host
    group: str = "app"              # app | cache | db: which run the row joins


# -- 6.1 Health checks --------------------------------------------------------------------------------

HEALTH = [
    Case("live-503", ("HEALTH-LIVE",), "liveness answers 503",
         lambda ctx: ctx.app_host(ctx.service(env={"HUNTER_FAULTS": "live:503"}))),
    Case("startup-never", ("HEALTH-STARTUP",), "the service never finishes starting up",
         lambda ctx: ctx.app_host(ctx.service(env={"HUNTER_STARTUP_DELAY": "600"}))),
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
    Case("sentry-env-file-only", ("SENTRY-EVENT", "SENTRY-ENV"),
         "the DSN is in the env file the probe reads, but the running app never loaded it", _sentry_env_file_only),
]

# -- 6.4 Redis ------------------------------------------------------------------------------------------

REDIS = [
    Case("app-redis-down", ("REDIS-APP-PING",), "the Redis the application is configured with is down",
         lambda ctx: ctx.app_host(ctx.service(), hunter_app_redis_url=ctx.stopped_redis_url())),
]

# -- 6.4 API versioning -----------------------------------------------------------------------------

API = [
    Case("sales-500", ("API-V1-SALES",), "the sales summary endpoint crashes (500)",
         lambda ctx: ctx.app_host(ctx.service(env={"HUNTER_FAULTS": "sales-summary:500"}))),
]

CASES = HEALTH + SENTRY + REDIS + API

# Filled by the runner: (group, row, why, items, observed, verdict) per row, printed at the end of
# the session (tests/conftest.py).
OBSERVED: list[tuple[str, str, str, str, str, str]] = []

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

from dataclasses import dataclass
from typing import Callable


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

SENTRY = [
    Case("sentry-dsn-missing", ("SENTRY-DSN", "SENTRY-EVENT"), "the application runs without a Sentry DSN",
         lambda ctx: ctx.app_host(ctx.service(env={"HUNTER_SENTRY_DSN": None}))),
]

# -- 6.4 Redis ------------------------------------------------------------------------------------------

REDIS = [
    Case("app-redis-down", ("REDIS-APP-PING",), "the Redis the application is configured with is down",
         lambda ctx: ctx.app_host(ctx.service(), hunter_app_redis_url=ctx.stopped_redis_url())),
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

CASES = HEALTH + SENTRY + REDIS + API

# Filled by the runner: (group, row, why, items, observed, verdict) per row, printed at the end of
# the session (tests/conftest.py).
OBSERVED: list[tuple[str, str, str, str, str, str]] = []

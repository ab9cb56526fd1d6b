"""The sample service the checks run against: a small lead-scanning API.

Configured by HUNTER_* environment variables (see docs/INVENTORY.md and the
module constants below); with HUNTER_SANDBOX_ADMIN=1, tests change behaviour at
run time through PUT /_sandbox/config instead of restarting it.
"""
from __future__ import annotations

import os
import re
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import psycopg
import redis
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response

STARTED = time.monotonic()
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)(?!-)([a-z0-9-]{1,63}(?<!-)\.)+[a-z]{2,63}$")
SENTRY_DSN = os.environ.get("HUNTER_SENTRY_DSN", "")
API_KEYS = {k.strip() for k in os.environ.get("HUNTER_API_KEYS", "").split(",") if k.strip()}
SUNSET = "Wed, 31 Dec 2025 23:59:59 GMT"


def parse_faults(spec: str | dict | None) -> dict[str, str]:
    """'sales-summary:500,ready:503' -> {'sales-summary': '500', 'ready': '503'}."""
    if isinstance(spec, dict):
        return {str(k): str(v) for k, v in spec.items()}
    pairs = (item.split(":", 1) for item in (spec or "").split(",") if ":" in item)
    return {route.strip(): status.strip() for route, status in pairs}


# Fault switches for the must-fail matrix (tests/integration/must_fail_table.py): HUNTER_BREAK="a,b"
# makes this process misbehave in the named, realistic ways, with no change in the collection.
# Every name is listed here with what it breaks; an unknown name stops the service at start, so a
# typo never runs a "broken" case against a healthy service. Add a name, then use it where the
# behaviour lives: `if "name" in CONFIG["breaks"]:`.
BREAKS: dict[str, str] = {
    # Health (6.1) and Redis (6.4)
    "ready-always-200": "readiness and startup answer 200 whatever the dependencies say (the body still reports them)",
    "ready-ignores-redis": "the health bodies never ask Redis: they report redis ok while it is down",
    "env-only-on-info": "the health bodies leave the environment out; GET /api/v1/info shows it under env.name",
    # API (6.4)
    "api-key-revoked": "the API key clients send is no longer accepted: 401 whatever key is sent",
    "scan-validation-broken": "the scan refuses valid domains with 400 (broken input validation)",
    "scan-empty-body": "the scan answers 200 with an empty body",
    "scan-body-invalid": "the scan answers 200 with JSON that is not a scan result",
    "sales-route-removed": "the sales-summary route is gone: the framework's generic 404 for every domain",
    "legacy-scan-removed": "legacy GET /scan answers the framework's 404; the other legacy routes follow HUNTER_LEGACY",
    "sentry-off": "error reporting switched off: Sentry is never initialised although HUNTER_SENTRY_DSN is set",
    "sentry-swallow": "errors are answered (500) but swallowed: Sentry is never called, no event is sent",
    "sentry-message-only": "errors are reported as a message (capture_message): the event has no stack trace",
}


def parse_breaks(spec: str | list | None) -> frozenset[str]:
    names = spec if isinstance(spec, (list, tuple, set, frozenset)) else (spec or "").split(",")
    names = frozenset(n.strip() for n in names if n and n.strip())
    unknown = sorted(names - set(BREAKS))
    if unknown:
        raise ValueError(f"HUNTER_BREAK: unknown fault switch(es) {unknown}; known: {sorted(BREAKS)}")
    return names


def env_config() -> dict:
    env = os.environ.get
    return {
        "breaks": parse_breaks(env("HUNTER_BREAK")),
        "environment": env("HUNTER_ENVIRONMENT", "production"),
        "legacy": env("HUNTER_LEGACY", "removed"),
        "legacy_shape": env("HUNTER_LEGACY_SHAPE", "same"),
        "legacy_deprecation": env("HUNTER_LEGACY_DEPRECATION", "0") == "1",
        "health_shape": env("HUNTER_HEALTH_SHAPE", "runbook"),
        "faults": parse_faults(env("HUNTER_FAULTS")),
        "startup_until": STARTED + float(env("HUNTER_STARTUP_DELAY", "0") or 0),
    }


CONFIG = env_config()

# Sentry's environment: HUNTER_SENTRY_ENVIRONMENT, else the service's own environment (an operator
# can leave the former at "staging" while the service says "production").
SENTRY_ENVIRONMENT = os.environ.get("HUNTER_SENTRY_ENVIRONMENT") or CONFIG["environment"]
SENTRY_ACTIVE = False
if SENTRY_DSN and "sentry-off" not in CONFIG["breaks"]:
    try:
        import sentry_sdk
        from sentry_sdk.integrations.fastapi import FastApiIntegration
        from sentry_sdk.integrations.starlette import StarletteIntegration
    except ImportError:  # like many services: a runtime without sentry-sdk runs, reporting nothing
        print("sentry-sdk is not installed: error reporting is off", flush=True)
    else:
        # HTTPExceptions are answers, not crashes: only real exceptions become events
        # (and the ones we capture ourselves, with the probe's tag).
        sentry_sdk.init(dsn=SENTRY_DSN, environment=SENTRY_ENVIRONMENT, release="hunter-sample@1.0.0",
                        traces_sample_rate=0, send_default_pii=False,
                        integrations=[StarletteIntegration(failed_request_status_codes=set()),
                                      FastApiIntegration(failed_request_status_codes=set())])
        SENTRY_ACTIVE = True

app = FastAPI(title="hunter sample service", docs_url=None, redoc_url=None)
_redis = None


def redis_client():
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(os.environ["HUNTER_REDIS_URL"], socket_timeout=1,
                                      socket_connect_timeout=1, max_connections=20)
    return _redis


def db():
    # libpq rounds connect_timeout below 2 s up to 2 s
    return psycopg.connect(os.environ["HUNTER_DATABASE_URL"], connect_timeout=2,
                           options="-c statement_timeout=2000")


def query(sql: str, params=()) -> list[dict]:
    with db() as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def report_exception(exc: Exception, request: Request, route: str):
    """Send exc to Sentry (when configured) with the probe's tag and context."""
    if not SENTRY_ACTIVE or "sentry-swallow" in CONFIG["breaks"]:
        return None
    import sentry_sdk

    probe_id = request.headers.get("X-Probe-Id")
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("route", route)
        if probe_id:
            scope.set_tag("probe_id", probe_id)
        scope.set_context("probe", {"probe_id": probe_id, "route": route,
                                    "path": request.url.path, "method": request.method})
        if "sentry-message-only" in CONFIG["breaks"]:
            event_id = sentry_sdk.capture_message("%s: %s" % (type(exc).__name__, exc), level="error")
        else:
            event_id = sentry_sdk.capture_exception(exc)
    sentry_sdk.flush(timeout=5)
    return event_id


def guard(request: Request, route: str, needs_key: bool = True) -> None:
    """Injected faults first, then the API key."""
    fault = CONFIG["faults"].get(route)
    if fault:
        status = int(fault)
        if status >= 500:
            try:
                raise RuntimeError(f"injected fault on {route}")
            except RuntimeError as exc:
                event_id = report_exception(exc, request, route)
            raise HTTPException(status, {"error": "injected fault", "event_id": event_id})
        raise HTTPException(status, "injected fault")
    if needs_key and (API_KEYS or "api-key-revoked" in CONFIG["breaks"]):
        given = request.headers.get("X-API-Key", "")
        accepted = () if "api-key-revoked" in CONFIG["breaks"] else API_KEYS
        if not any(secrets.compare_digest(given, key) for key in accepted):
            raise HTTPException(401, "invalid or missing API key")


# -- health ----------------------------------------------------------------------

def check_db() -> bool:
    try:
        with db() as conn:
            conn.execute("SELECT 1")
        return True
    except Exception:  # any failure means "not ok"; the probe reports it, not us
        return False


def check_redis() -> bool:
    try:
        return bool(redis_client().ping())
    except Exception:
        return False


def health(request: Request, route: str) -> JSONResponse:
    guard(request, route, needs_key=False)
    if route == "startup" and time.monotonic() < CONFIG["startup_until"]:
        return JSONResponse({"status": "starting"}, status_code=503)
    with ThreadPoolExecutor(2) as pool:
        db_ok, redis_ok = pool.submit(check_db), pool.submit(check_redis)
        db_ok, redis_ok = db_ok.result(), redis_ok.result()
    if "ready-ignores-redis" in CONFIG["breaks"]:
        redis_ok = True
    ok = db_ok and redis_ok
    if CONFIG["health_shape"] == "checks":
        body = {"status": "ready" if ok else "not_ready",
                "checks": {"database": db_ok, "redis": redis_ok}}
    else:
        word = lambda flag: "ok" if flag else "error"  # noqa: E731
        body = {"status": "ok" if ok else "degraded", "environment": CONFIG["environment"],
                "db": {"status": word(db_ok)}, "redis": {"status": word(redis_ok)}}
        if "env-only-on-info" in CONFIG["breaks"]:
            del body["environment"]
    return JSONResponse(body, status_code=200 if ok or "ready-always-200" in CONFIG["breaks"] else 503)


@app.get("/healthz/live")
def live(request: Request):
    guard(request, "live", needs_key=False)
    return {"status": "ok"}


@app.get("/healthz/ready")
def ready(request: Request):
    return health(request, "ready")


@app.get("/healthz/startup")
def startup(request: Request):
    return health(request, "startup")


@app.get("/api/v1/info")
def info(request: Request):
    """What the service says about itself (no key): HEALTH-ENV can read the environment here."""
    guard(request, "info", needs_key=False)
    return {"service": "hunter", "version": "1.0.0", "env": {"name": CONFIG["environment"]}}


# -- API v1 -----------------------------------------------------------------------

def leads_body(limit: int) -> dict:
    rows = query("SELECT domain, name, segment, country, employees, score, created_at "
                 "FROM companies ORDER BY id LIMIT %s", (limit,))
    for row in rows:
        row["created_at"] = row["created_at"].isoformat()
    return {"leads": rows, "count": len(rows)}


def scan_body(domain: str) -> dict:
    domain = (domain or "").strip().lower()
    if not DOMAIN_RE.match(domain) or "scan-validation-broken" in CONFIG["breaks"]:
        raise HTTPException(400, "invalid domain")
    if "scan-body-invalid" in CONFIG["breaks"]:
        return {"status": "queued"}
    rows = query("SELECT s.signal_type, c.score FROM domain_signals s JOIN companies c "
                 "ON c.id = s.company_id WHERE s.domain = %s ORDER BY s.id", (domain,))
    return {"domain": domain, "known": bool(rows), "score": rows[0]["score"] if rows else 0,
            "signals": [row["signal_type"] for row in rows],
            "scanned_at": datetime.now(timezone.utc).isoformat()}


@app.get("/api/v1/leads")
def v1_leads(request: Request, limit: int = 50):
    guard(request, "leads")
    return leads_body(max(1, min(limit, 500)))


def scan_answer(body: dict):
    if "scan-empty-body" in CONFIG["breaks"]:
        return Response(status_code=200, media_type="application/json")
    return body


@app.get("/api/v1/scan")
def v1_scan(request: Request, domain: str = ""):
    guard(request, "scan")
    return scan_answer(scan_body(domain))


@app.post("/api/v1/scan")
async def v1_scan_post(request: Request):
    guard(request, "scan")
    try:
        payload = await request.json()
    except ValueError:
        raise HTTPException(400, "body must be JSON") from None
    domain = payload.get("domain", "") if isinstance(payload, dict) else ""
    return scan_answer(scan_body(str(domain)))


@app.get("/api/v1/leads/{domain}/sales-summary")
def v1_sales_summary(request: Request, domain: str):
    if "sales-route-removed" in CONFIG["breaks"]:
        raise HTTPException(404)  # what the framework answers for a route it does not have
    guard(request, "sales-summary")
    rows = query("SELECT c.domain, c.name, c.segment, c.score, count(s.id) AS signals, "
                 "max(s.observed_at) AS last_signal_at FROM companies c "
                 "LEFT JOIN domain_signals s ON s.company_id = c.id "
                 "WHERE c.domain = %s GROUP BY c.id", (domain.lower(),))
    if not rows:
        raise HTTPException(404, "unknown domain")
    row = rows[0]
    row["last_signal_at"] = row["last_signal_at"].isoformat() if row["last_signal_at"] else None
    return row


# -- legacy (unversioned) routes --------------------------------------------------

def legacy(request: Request, route: str, body_factory) -> JSONResponse:
    if CONFIG["legacy"] != "supported" or (route == "legacy-scan" and "legacy-scan-removed" in CONFIG["breaks"]):
        raise HTTPException(404, "Not Found")
    guard(request, route)
    body = body_factory()
    if CONFIG["legacy_shape"] == "different":  # renamed key and changed types
        if "leads" in body:
            body = {"results": body.pop("leads"), **body, "count": str(body["count"])}
        else:
            body = {**body, "score": str(body["score"]), "signals": ",".join(body["signals"])}
    headers = {}
    if CONFIG["legacy_deprecation"]:
        headers = {"Deprecation": "@1735689600", "Sunset": SUNSET,
                   "Link": f'</api/v1{request.url.path}>; rel="successor-version"'}
    return JSONResponse(body, headers=headers)


@app.get("/leads")
def legacy_leads(request: Request, limit: int = 50):
    return legacy(request, "legacy-leads", lambda: leads_body(max(1, min(limit, 500))))


@app.get("/scan")
def legacy_scan(request: Request, domain: str = ""):
    return legacy(request, "legacy-scan", lambda: scan_body(domain))


@app.post("/scan")
async def legacy_scan_post(request: Request):
    try:
        payload = await request.json()
    except ValueError:
        payload = None
    domain = payload.get("domain", "") if isinstance(payload, dict) else ""
    return legacy(request, "legacy-scan", lambda: scan_body(str(domain)))


# -- Sentry test error -----------------------------------------------------------------

@app.post("/debug/test-error")
def debug_test_error(request: Request):
    guard(request, "test-error")
    try:
        raise ZeroDivisionError(f"hunter sentry test error (probe {request.headers.get('X-Probe-Id', '-')})")
    except ZeroDivisionError as exc:
        event_id = report_exception(exc, request, "test-error")
    return JSONResponse({"error": "test error raised", "event_id": event_id,
                         "sentry": "enabled" if SENTRY_ACTIVE else "disabled"}, status_code=500)


# -- sandbox admin ----------------------------------------------------------------------

@app.put("/_sandbox/config")
async def sandbox_config(request: Request):
    if os.environ.get("HUNTER_SANDBOX_ADMIN") != "1":
        raise HTTPException(404, "Not Found")
    changes = await request.json()
    allowed = {"legacy", "legacy_shape", "legacy_deprecation", "health_shape", "faults",
               "environment", "startup_delay", "breaks", "reset"}
    unknown = set(changes) - allowed
    if unknown:
        raise HTTPException(400, f"unknown settings: {sorted(unknown)}")
    if changes.pop("reset", False):
        CONFIG.update(env_config())
        CONFIG["startup_until"] = 0.0  # warm-up is over after a reset
    if "faults" in changes:
        changes["faults"] = parse_faults(changes["faults"])
    if "breaks" in changes:
        try:
            changes["breaks"] = parse_breaks(changes["breaks"])
        except ValueError as err:
            raise HTTPException(400, str(err)) from None
    if "startup_delay" in changes:
        changes["startup_until"] = time.monotonic() + float(changes.pop("startup_delay"))
    CONFIG.update(changes)
    return {k: (sorted(v) if k == "breaks" else v) for k, v in CONFIG.items() if k != "startup_until"} | {
        "starting": time.monotonic() < CONFIG["startup_until"]}

"""Sample service, profile B: the same lead-scanning API, shaped unlike the runbook (issue 9).

sandbox/app.py speaks the runbook's shapes. This one is what a real deployment nobody here wrote
looks like, so that the checks have to be adapted by configuration only (docs/INVENTORY.md):

- settings come from the env file ``.env`` in the working directory (DATABASE_URL, REDIS_URL,
  API_KEYS, ENVIRONMENT, SENTRY_DSN, SANDBOX_ADMIN), never from the process environment;
- readiness reports booleans under ``checks`` (``{"status": "ready", "checks": {"database": true,
  "redis": true}}``); no probe shows the environment: only ``GET /api/v1/info`` does;
- leads are ``{"items": [...], "total": n}``; the scan is ``POST /api/v1/scan`` with a JSON body
  ``{"domain": ...}``: a known domain 200, an unknown one 404 ``{"error": {"code": "domain_not_found"}}``,
  invalid input 422 (the framework's validation error);
- the sales summary of an unknown domain is 404 ``{"error": {"code": "unknown_domain"}}``; a path
  with no route gets the framework's ``{"detail": "Not Found"}``;
- no test-error endpoint;
- the legacy routes (``GET /leads``, ``POST /scan``) still answer, with the v1 shapes and no
  Deprecation/Sunset headers;
- Sentry is set up only when ENVIRONMENT is ``production`` (and SENTRY_DSN is set).

Fault switches, as in sandbox/app.py: ``HUNTER_BREAK="a,b"`` in the process environment (the
sandbox's switch, not one of the application's settings), or ``breaks`` through
``PUT /_sandbox/config`` when SANDBOX_ADMIN=1. Run it with
``SampleService(dir, app_module="sandbox.app_unlike_runbook", env={...})`` (sandbox/services.py),
which writes the env file into the service's working directory.
"""
from __future__ import annotations

import os
import re
import secrets
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import redis
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, field_validator

ENV_FILE = ".env"
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)(?!-)([a-z0-9-]{1,63}(?<!-)\.)+[a-z]{2,63}$")
VERSION = "2.4.0"

# Fault switches of this profile (HUNTER_BREAK); an unknown name stops the service at start.
BREAKS: dict[str, str] = {
    "api-key-revoked": "the API key clients send is no longer accepted: 401 whatever key is sent",
    "scan-validation-broken": "the scan refuses valid domains with 422 (broken input validation)",
    "scan-empty-body": "the scan answers 200 with an empty body",
    "sales-route-removed": "the sales-summary route is gone: the framework's generic 404 for every domain",
    "legacy-leads-removed": "legacy GET /leads answers the framework's 404 while legacy POST /scan still answers",
    "legacy-shape-changed": "the legacy routes answer in another shape (renamed keys, other types)",
}


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines (blank lines and # comments ignored, optional quotes stripped)."""
    settings = {}
    if not path.is_file():
        return settings
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        settings[key.strip()] = value
    return settings


def parse_breaks(spec) -> frozenset[str]:
    names = spec if isinstance(spec, (list, tuple, set, frozenset)) else (spec or "").split(",")
    names = frozenset(n.strip() for n in names if n and n.strip())
    unknown = sorted(names - set(BREAKS))
    if unknown:
        raise ValueError(f"HUNTER_BREAK: unknown fault switch(es) {unknown}; known: {sorted(BREAKS)}")
    return names


SETTINGS = read_env_file(Path.cwd() / ENV_FILE)
API_KEYS = {k.strip() for k in SETTINGS.get("API_KEYS", "").split(",") if k.strip()}
ENVIRONMENT = SETTINGS.get("ENVIRONMENT", "development")
STATE = {"breaks": parse_breaks(os.environ.get("HUNTER_BREAK"))}

SENTRY_ENABLED = ENVIRONMENT == "production" and bool(SETTINGS.get("SENTRY_DSN"))
if SENTRY_ENABLED:
    import sentry_sdk

    sentry_sdk.init(dsn=SETTINGS["SENTRY_DSN"], environment=ENVIRONMENT, release=f"hunter@{VERSION}",
                    traces_sample_rate=0, send_default_pii=False)

app = FastAPI(title="hunter (profile B)", docs_url=None, redoc_url=None, openapi_url=None)
_redis = None


def broken(name: str) -> bool:
    return name in STATE["breaks"]


def redis_client():
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(SETTINGS["REDIS_URL"], socket_timeout=1, socket_connect_timeout=1)
    return _redis


def query(sql: str, params=()) -> list[dict]:
    with psycopg.connect(SETTINGS["DATABASE_URL"], connect_timeout=2, options="-c statement_timeout=2000") as conn, \
            conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def require_key(request: Request) -> JSONResponse | None:
    given = request.headers.get("X-API-Key", "")
    accepted = () if broken("api-key-revoked") else API_KEYS
    if (API_KEYS or broken("api-key-revoked")) and not any(secrets.compare_digest(given, k) for k in accepted):
        return error(401, "unauthorized", "a valid X-API-Key is required")
    return None


# -- health and info ------------------------------------------------------------------------------

def _ok(check) -> bool:
    try:
        return bool(check())
    except Exception:  # any failure means "not ok"
        return False


@app.get("/healthz/live")
def live():
    return {"status": "alive"}


@app.get("/healthz/ready")
def ready():
    checks = {"database": _ok(lambda: query("SELECT 1")), "redis": _ok(lambda: redis_client().ping())}
    ok = all(checks.values())
    return JSONResponse({"status": "ready" if ok else "not_ready", "checks": checks}, status_code=200 if ok else 503)


@app.get("/healthz/startup")
def startup():
    return {"status": "started"}


@app.get("/api/v1/info")
def info():
    return {"service": "hunter", "version": VERSION, "environment": ENVIRONMENT}


# -- API v1 ------------------------------------------------------------------------------------------

class ScanRequest(BaseModel):
    domain: str

    @field_validator("domain")
    @classmethod
    def valid_domain(cls, value: str) -> str:
        value = value.strip().lower()
        if not DOMAIN_RE.match(value) or broken("scan-validation-broken"):
            raise ValueError("not a valid domain name")
        return value


def leads_body(limit: int) -> dict:
    rows = query("SELECT domain, name, segment, country, employees, score, created_at "
                 "FROM companies ORDER BY id LIMIT %s", (max(1, min(limit, 500)),))
    for row in rows:
        row["created_at"] = row["created_at"].isoformat()
    return {"items": rows, "total": len(rows)}


def scan(domain: str):
    rows = query("SELECT s.signal_type, c.score FROM domain_signals s JOIN companies c "
                 "ON c.id = s.company_id WHERE s.domain = %s ORDER BY s.id", (domain,))
    if not rows:
        return error(404, "domain_not_found", f"no signals for {domain}")
    return {"domain": domain, "known": True, "score": rows[0]["score"],
            "signals": [row["signal_type"] for row in rows], "scanned_at": datetime.now(timezone.utc).isoformat()}


@app.get("/api/v1/leads")
def v1_leads(request: Request, limit: int = 50):
    return require_key(request) or leads_body(limit)


@app.post("/api/v1/scan")
def v1_scan(request: Request, body: ScanRequest):
    refused = require_key(request)
    if refused:
        return refused
    if broken("scan-empty-body"):
        return Response(status_code=200, media_type="application/json")
    return scan(body.domain)


@app.get("/api/v1/leads/{domain}/sales-summary")
def v1_sales_summary(request: Request, domain: str):
    if broken("sales-route-removed"):
        raise HTTPException(404)  # what the framework answers for a route it does not have
    refused = require_key(request)
    if refused:
        return refused
    rows = query("SELECT c.domain, c.name, c.segment, c.score, count(s.id) AS signals, "
                 "max(s.observed_at) AS last_signal_at FROM companies c "
                 "LEFT JOIN domain_signals s ON s.company_id = c.id WHERE c.domain = %s GROUP BY c.id",
                 (domain.lower(),))
    if not rows:
        return error(404, "unknown_domain", f"no company with domain {domain}")
    row = rows[0]
    row["last_signal_at"] = row["last_signal_at"].isoformat() if row["last_signal_at"] else None
    return row


# -- legacy routes: still live, same shapes, no deprecation announced -------------------------------------

def legacy_shape(body):
    if not broken("legacy-shape-changed") or not isinstance(body, dict):
        return body
    if "items" in body:
        return {"results": body["items"], "count": str(body["total"])}
    return {**body, "score": str(body.get("score")), "signals": ",".join(body.get("signals", []))}


@app.get("/leads")
def legacy_leads(request: Request, limit: int = 50):
    if broken("legacy-leads-removed"):
        raise HTTPException(404)
    return require_key(request) or legacy_shape(leads_body(limit))


@app.post("/scan")
def legacy_scan(request: Request, body: ScanRequest):
    refused = require_key(request)
    if refused:
        return refused
    answer = scan(body.domain)
    return answer if isinstance(answer, Response) else legacy_shape(answer)


# -- sandbox admin ----------------------------------------------------------------------------------------

@app.put("/_sandbox/config")
async def sandbox_config(request: Request):
    if SETTINGS.get("SANDBOX_ADMIN") != "1":
        raise HTTPException(404)
    changes = await request.json()
    unknown = set(changes) - {"breaks", "reset"}
    if unknown:
        raise HTTPException(400, f"unknown settings: {sorted(unknown)}")
    if changes.get("reset"):
        STATE["breaks"] = parse_breaks(os.environ.get("HUNTER_BREAK"))
    if "breaks" in changes:
        try:
            STATE["breaks"] = parse_breaks(changes["breaks"])
        except ValueError as err:
            raise HTTPException(400, str(err)) from None
    return {"breaks": sorted(STATE["breaks"]), "environment": ENVIRONMENT, "sentry": SENTRY_ENABLED}

"""CHECKLIST 6.1 against real services: the sample service on PostgreSQL and Redis, a TLS endpoint,
a listener that never answers, and a port nobody listens on.

Runs are grouped to keep ansible-playbook invocations few: several module calls share one
playbook (the harness's `run_tasks`), and the two role runs cover several hosts each.
"""
from __future__ import annotations

import http.server
import json
import ssl
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from sandbox.services import refused_port

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / ".ansible" / "collections"))
from ansible_collections.hunter.ops.plugins.module_utils.checklist import BY_ID, DEFAULT_REQUIRED  # noqa: E402

HEALTH_IDS = ["HEALTH-LIVE", "HEALTH-READY", "HEALTH-STARTUP", "HEALTH-ENV", "HEALTH-DB", "HEALTH-REDIS",
              "HEALTH-DIAG"]
PROBE_IDS = HEALTH_IDS[:-1]
REQUIRED = ["HEALTH-LIVE", "HEALTH-READY", "HEALTH-STARTUP"]
PLAYBOOK = Path(__file__).parent / "playbooks" / "health_preflight.yml"
CHECKS_SHAPE_VARS = {
    "health_check_assertions": {"HEALTH-DB": "checks.database == `true`", "HEALTH-REDIS": "checks.redis == `true`",
                                "HEALTH-READY": "status == 'ready'"},
    "health_check_environment_query": "",
}


def statuses(checks: dict) -> dict:
    return {check_id: item["status"] for check_id, item in checks.items()}


def probe(**args):
    return {"hunter.ops.health_probe": args}


def report_items(run, host):
    assert run.report is not None, f"no report written (rc={run.rc}):\n{run.stdout[-3000:]}"
    return {item["id"]: item for item in run.report["items"] if item.get("host") == host}


def app_host(service, pg, redis_url, **extra):
    """Inventory vars of an application host whose service, database and Redis are the given ones."""
    host = {"hunter_app_url": service.url, "hunter_expected_environment": "production",
            "hunter_app_db_host": pg.host, "hunter_app_db_port": pg.port, "hunter_app_db_name": pg.database,
            "hunter_app_db_user": pg.user, "hunter_app_db_password": pg.password,
            "hunter_app_redis_url": redis_url, "health_check_startup_timeout": 2,
            "health_check_startup_interval": 0.5, "health_check_timeout": 3}
    host.update(extra)
    return host


# -- a real TLS endpoint ---------------------------------------------------------------------

@pytest.fixture
def tls_service(tmp_path):
    """HTTPS on 127.0.0.1 with a self-signed certificate; answers the runbook body and echoes X-API-Key."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = {"status": "ok", "environment": "production", "db": {"status": "ok"},
                    "redis": {"status": "ok"}, "echo": self.headers.get("X-API-Key", "")}
            raw = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"https://127.0.0.1:{server.server_address[1]}", "ca": str(cert)}
    server.shutdown()
    server.server_close()


# -- module: happy path, faults, TLS, bad input (one playbook run) ---------------------------------

def test_probe_cases_against_the_sample_service(ansible, sample_service, silent_server,
                                                tls_service, assert_no_secret):
    down_url = f"http://127.0.0.1:{refused_port()}"
    probe_key = "pk_" + uuid.uuid4().hex
    redis_secret = "rp_" + uuid.uuid4().hex
    fast = dict(timeout=1, startup_timeout=1, startup_interval=0.3)
    tasks = [
        # 0: all green, in check mode
        dict(probe(base_url=sample_service.url, expected_environment="production"), check_mode=True),
        # 1: wrong environment
        probe(base_url=sample_service.url, expected_environment="staging"),
        # 2: nothing listens
        probe(base_url=down_url, expected_environment="production", **fast),
        # 3: accepts connections, never answers
        probe(base_url=silent_server.url, expected_environment="production", **fast),
        # 4-6: TLS: unknown CA, trusted CA (+ a secret header the server echoes), verification off
        probe(base_url=tls_service["url"], expected_environment="production", timeout=3, startup_timeout=0),
        probe(base_url=tls_service["url"], expected_environment="production", timeout=3, startup_timeout=0,
              ca_path=tls_service["ca"], headers={"X-Request-Source": "preflight-test"},
              secret_headers={"X-API-Key": "{{ probe_key }}"}),
        probe(base_url=tls_service["url"], expected_environment="production", timeout=3, startup_timeout=0,
              validate_certs=False),
        # 7-12: malformed input
        probe(base_url="http//127.0.0.1:8000"),
        probe(base_url=sample_service.url, ready_status="abc"),
        probe(base_url=sample_service.url, assertions={"HEALTH-DB": "db.status =="}),
        probe(base_url=sample_service.url, startup_timeout="soon"),
        {"hunter.ops.dependency_diag": {"redis_url": "redis://:{{ redis_secret }}@127.0.0.1:notaport/0"}},
        {"hunter.ops.dependency_diag": {"db_host": "127.0.0.1", "db_port": "five", "db_name": "x"}},
    ]
    run, r = ansible.run_tasks(tasks, extravars={"probe_key": probe_key, "redis_secret": redis_secret})

    # 0: every probe item passes, nothing changed, check mode honoured
    assert not r[0].get("check_task_failed"), r[0].get("msg")
    assert statuses(r[0]["checks"]) == dict.fromkeys(PROBE_IDS, "pass")
    assert r[0]["changed"] is False and r[0]["needs_diagnosis"] is False
    assert r[0]["ready_body"] == {"status": "ok", "environment": "production", "db": {"status": "ok"},
                                  "redis": {"status": "ok"}}
    assert r[0]["body_source"] == "ready"
    for check_id in ("HEALTH-LIVE", "HEALTH-READY", "HEALTH-STARTUP"):
        evidence = r[0]["checks"][check_id]["evidence"]
        assert evidence["status"] == 200 and evidence["polls"] == 1 and evidence["duration_ms"] > 0
        assert evidence["request"].startswith("GET " + sample_service.url)

    # 1: HEALTH-ENV fails on its own
    assert statuses(r[1]["checks"]) == dict(dict.fromkeys(PROBE_IDS, "pass"), **{"HEALTH-ENV": "fail"})
    assert r[1]["checks"]["HEALTH-ENV"]["message"] == "environment is 'production', expected 'staging'"

    # 2: service down: clear connection error naming the URL, within the timeouts
    for check_id in ("HEALTH-LIVE", "HEALTH-READY", "HEALTH-STARTUP"):
        item = r[2]["checks"][check_id]
        assert item["status"] == "fail"
        assert down_url in item["message"] and "connection refused" in item["message"]
    assert r[2]["checks"]["HEALTH-DB"]["status"] == "fail" and r[2]["needs_diagnosis"] is True
    assert r[2]["elapsed_ms"] < (1 + 1 + 2) * 1000  # startup_timeout + one request timeout + slack

    # 3: silent server: timed out after the configured per-request timeout, not hanging
    for check_id in ("HEALTH-LIVE", "HEALTH-READY", "HEALTH-STARTUP"):
        item = r[3]["checks"][check_id]
        assert item["status"] == "fail" and "timed out after 1.0s" in item["message"], item["message"]
        assert silent_server.url in item["message"]
    assert r[3]["elapsed_ms"] < (1 + 1 + 2) * 1000

    # 4-6: TLS verification and CA options
    assert r[4]["checks"]["HEALTH-LIVE"]["status"] == "fail"
    assert "TLS" in r[4]["checks"]["HEALTH-LIVE"]["message"] or "certificate" in r[4]["checks"]["HEALTH-LIVE"]["message"]
    assert statuses(r[5]["checks"]) == dict.fromkeys(PROBE_IDS, "pass")
    assert r[5]["ready_body"]["echo"] == "********"  # the secret header reached the server, and was hidden
    assert statuses(r[6]["checks"]) == dict.fromkeys(PROBE_IDS, "pass")

    # 7-12: a bad value fails exactly the items that use it, with one message naming the parameter;
    # no traceback, secrets hidden
    failing = [(PROBE_IDS, "base_url: "), (["HEALTH-READY"], "ready_status: "),
               (["HEALTH-DB", "HEALTH-READY"], "assertions.HEALTH-DB: "), (["HEALTH-STARTUP"], "startup_timeout: "),
               (["HEALTH-DIAG"], "redis_url: "), (["HEALTH-DIAG"], "db_port: ")]
    for result, (ids, param) in zip(r[7:], failing):
        assert not result.get("check_task_failed"), result.get("msg")
        assert {i for i, item in result["checks"].items() if item["status"] == "fail"} == set(ids), result["checks"]
        for check_id in ids:
            assert result["checks"][check_id]["message"].startswith(param), result["checks"][check_id]["message"]
        assert "Traceback" not in json.dumps(result) and "module_stderr" not in result
    assert r[8]["checks"]["HEALTH-READY"]["message"] == \
        "ready_status: HTTP status codes must be numbers between 100 and 599, got 'abc'"
    assert r[8]["checks"]["HEALTH-LIVE"]["status"] == "pass" and r[8]["needs_diagnosis"] is False

    assert_no_secret(run, probe_key, redis_secret)


# -- module: the alternative body shape, configured only ----------------------------------------------

def test_alternative_body_shape_by_configuration(ansible, service_config):
    service_config.configure(health_shape="checks")
    dummy, r = ansible.run_tasks([
        probe(base_url=service_config.url, expected_environment="production"),
        probe(base_url=service_config.url, expected_environment="production",
              assertions=CHECKS_SHAPE_VARS["health_check_assertions"], environment_query=""),
    ])
    runbook_defaults, configured = r[0]["checks"], r[1]["checks"]
    # the runbook expressions on this shape fail and say what they found; readiness includes them
    assert runbook_defaults["HEALTH-DB"]["status"] == "fail"
    assert "db.status is null" in runbook_defaults["HEALTH-DB"]["message"]
    assert runbook_defaults["HEALTH-READY"]["status"] == "fail"
    assert runbook_defaults["HEALTH-ENV"]["status"] == "fail"
    # configured for it, the same service passes; HEALTH-ENV is not checked, saying what is not configured
    assert statuses(configured) == dict(dict.fromkeys(PROBE_IDS, "pass"), **{"HEALTH-ENV": "skip"})
    assert configured["HEALTH-ENV"]["message"].startswith("not checked: no query for the environment is configured")
    assert r[1]["ready_body"] == {"status": "ready", "checks": {"database": True, "redis": True}}


# -- module: startup warm-up shorter / longer than the startup timeout -----------------------------------

def test_startup_polling_like_a_startup_probe(ansible, service_config):
    def set_delay(seconds):
        return {"ansible.builtin.uri": {"url": service_config.url + "/_sandbox/config", "method": "PUT",
                                        "body_format": "json", "body": {"startup_delay": seconds}}}

    dummy, r = ansible.run_tasks([
        set_delay(3),
        probe(base_url=service_config.url, expected_environment="production", startup_timeout=20,
              startup_interval=0.5),
        set_delay(60),
        probe(base_url=service_config.url, expected_environment="production", startup_timeout=2,
              startup_interval=0.5, timeout=2),
    ])
    passed, failed = r[1]["checks"]["HEALTH-STARTUP"], r[3]["checks"]["HEALTH-STARTUP"]
    assert passed["status"] == "pass" and passed["evidence"]["polls"] > 1, passed
    assert "passed after" in passed["message"]
    assert failed["status"] == "fail" and failed["evidence"]["polls"] > 1
    assert failed["evidence"]["status"] == 503 and "startup timeout 2.0s reached" in failed["message"]
    assert r[3]["needs_diagnosis"] is True
    assert 2000 <= r[3]["elapsed_ms"] < (2 + 2 + 2) * 1000
    # liveness does not wait for startup when it answers
    assert r[3]["checks"]["HEALTH-LIVE"]["status"] == "pass"


# -- role + report: GO (two shapes, configured per host), exit code 0 -----------------------------------------

def test_all_green_is_go(ansible, sample_service, make_service, pg, redis_server, assert_no_secret):
    checks_service = make_service(env={"HUNTER_HEALTH_SHAPE": "checks"})
    inventory = {"all": {"children": {"app": {"hosts": {
        "app-runbook": app_host(sample_service, pg, redis_server.url),
        "app-checks": app_host(checks_service, pg, redis_server.url, **CHECKS_SHAPE_VARS),
    }}}}}
    # The default required list (CHECKLIST 6.5), reduced to the items this play runs: HEALTH-READY
    # includes the dependency statuses.
    run = ansible.run_playbook(PLAYBOOK, inventory, extravars={"hunter_ops_required_checks": health_required()})
    assert run.rc == 0, run.stdout[-3000:]
    assert run.report["required"] == ["HEALTH-LIVE", "HEALTH-READY", "HEALTH-STARTUP"]
    assert run.report["verdict"] == "GO"
    runbook, checks = report_items(run, "app-runbook"), report_items(run, "app-checks")
    assert {i: runbook[i]["status"] for i in HEALTH_IDS} == dict(dict.fromkeys(PROBE_IDS, "pass"),
                                                                 **{"HEALTH-DIAG": "skip"})
    assert runbook["HEALTH-DIAG"]["message"] == "not needed: ready and startup passed"
    assert checks["HEALTH-DB"]["status"] == "pass" and checks["HEALTH-REDIS"]["status"] == "pass"
    assert checks["HEALTH-ENV"]["status"] == "skip"
    # nothing changed on the app hosts; the readiness body is kept for REDIS-HEALTH
    assert run.stats.get("changed", {}).get("app-runbook", 0) == 0
    facts = run.task_results(task="Keep the readiness body and the HEALTH-REDIS expression for REDIS-HEALTH (redis_check)",
                             host="app-runbook")[-1]["ansible_facts"]
    assert facts["hunter_ops_ready_body"]["redis"] == {"status": "ok"}
    assert facts["hunter_ops_health_redis_expression"] == "redis.status == 'ok'"
    assert_no_secret(run, pg.password, redis_server.password)


# -- role + report: dependencies down, bad settings -> NO-GO, exit code non-zero --------------------------------

def test_dependency_down_is_diagnosed_and_no_go(ansible, make_pg, make_redis, make_service, assert_no_secret):
    app_pg = make_pg(seeded=False)
    app_redis = make_redis(password="r_" + uuid.uuid4().hex)
    service = make_service(env={"HUNTER_DATABASE_URL": app_pg.dsn, "HUNTER_REDIS_URL": app_redis.url})

    # Redis stopped: ready fails, live still passes, HEALTH-DIAG names Redis.
    # The second host has a non-numeric setting: its items fail with a message naming it.
    app_redis.stop()
    inventory = {"all": {"children": {"app": {"hosts": {
        "app-redis-down": app_host(service, app_pg, app_redis.url),
        "app-bad-input": app_host(service, app_pg, app_redis.url, health_check_ready_status="2OO"),
        # the role's argument validation fails: the failure (which shows the argument spec) holds no secret
        "app-invalid": app_host(service, app_pg, app_redis.url, health_check_diag_enabled="maybe"),
    }}}}}
    run = ansible.run_playbook(PLAYBOOK, inventory, extravars={"hunter_ops_required_checks": REQUIRED})
    assert run.rc != 0
    assert run.report["verdict"] == "NO-GO"  # the report was written before the run failed
    items = report_items(run, "app-redis-down")
    assert items["HEALTH-LIVE"]["status"] == "pass"
    assert items["HEALTH-READY"]["status"] == "fail" and "503" in items["HEALTH-READY"]["message"]
    assert items["HEALTH-DB"]["status"] == "pass" and items["HEALTH-REDIS"]["status"] == "fail"
    assert items["HEALTH-DIAG"]["status"] == "fail"
    assert items["HEALTH-DIAG"]["message"].startswith("redis unreachable: connection refused")
    assert items["HEALTH-DIAG"]["evidence"]["database"]["ok"] is True
    bad = report_items(run, "app-bad-input")  # the bad value fails the item that uses it, named as set
    assert bad["HEALTH-READY"]["status"] == "fail"
    assert bad["HEALTH-READY"]["message"].startswith("health_check_ready_status: HTTP status codes must be numbers")
    assert bad["HEALTH-LIVE"]["status"] == "pass" and bad["HEALTH-REDIS"]["status"] == "fail"
    invalid = report_items(run, "app-invalid")
    assert invalid["HEALTH-LIVE"]["status"] == "pass" and invalid["HEALTH-DIAG"]["status"] == "fail"
    assert invalid["HEALTH-DIAG"]["message"] == "health_check_diag_enabled: must be true or false, got maybe"
    assert_no_secret(run, app_pg.password, app_redis.password)

    # PostgreSQL stopped (Redis back): HEALTH-DIAG names the database; a wrong Redis password is named too.
    app_redis.start()
    app_pg.stop()
    diag_args = {"db_host": app_pg.host, "db_port": app_pg.port, "db_name": app_pg.database,
                 "db_user": app_pg.user, "db_password": "{{ db_password }}", "db_connect_timeout": 2,
                 "redis_url": "{{ redis_url }}", "redis_timeout": 2}
    run, r = ansible.run_tasks([
        probe(base_url=service.url, expected_environment="production", startup_timeout=0, timeout=5),
        {"hunter.ops.dependency_diag": diag_args},
        {"hunter.ops.dependency_diag": dict(diag_args, redis_url="{{ wrong_redis_url }}")},
        {"hunter.ops.redis_probe": {"url": "{{ wrong_redis_url }}", "checks": ["ping"], "ping_id": "REDIS-APP-PING"}},
    ], extravars={"db_password": app_pg.password, "redis_url": app_redis.url,
                  "wrong_redis_url": f"redis://:wrong-{uuid.uuid4().hex[:6]}@{app_redis.host}:{app_redis.port}/0"})
    assert r[0]["checks"]["HEALTH-READY"]["status"] == "fail" and r[0]["checks"]["HEALTH-DB"]["status"] == "fail"
    assert r[0]["checks"]["HEALTH-LIVE"]["status"] == "pass"
    assert r[1]["changed"] is False and r[1]["down"] == ["database"]
    assert r[1]["checks"]["HEALTH-DIAG"]["message"].startswith("database unreachable: Connection refused")
    assert r[2]["down"] == ["database", "redis"]
    assert "redis: authentication failed" in r[2]["checks"]["HEALTH-DIAG"]["message"]
    # HEALTH-DIAG and REDIS-APP-PING read the same URL alike and name the same fault the same way
    assert r[2]["checks"]["HEALTH-DIAG"]["evidence"]["redis"]["error"] in r[3]["checks"]["REDIS-APP-PING"]["message"]
    assert_no_secret(run, app_pg.password, app_redis.password)


# -- issue 9 regressions (each failed before its fix) ------------------------------------------------------

REDIS_PLAYBOOK = Path(__file__).parent / "playbooks" / "redis_preflight.yml"


def health_required() -> list[str]:
    """The default required list (CHECKLIST 6.5, checklist.py) restricted to what health_check owns."""
    return [i for i in DEFAULT_REQUIRED if BY_ID[i].role == "health_check"]


def dead_database_url(pg) -> str:
    """The app's database, down: its port answers nothing."""
    return f"postgresql://{pg.user}:{pg.password}@127.0.0.1:{refused_port()}/{pg.database}"


def test_issue9_ready_200_whose_body_says_the_database_is_down_is_no_go(ansible, make_service, pg,
                                                                        redis_server):
    """Item 3: `200 {"db": {"status": "error"}}` gave GO; HEALTH-READY is "200 with DB and Redis OK"."""
    liar = make_service(env={"HUNTER_DATABASE_URL": dead_database_url(pg), "HUNTER_BREAK": "ready-always-200"})
    inventory = {"all": {"children": {"app": {"hosts": {
        "app-ready-lies": app_host(liar, pg, redis_server.url, health_check_diag_enabled=False)}}}}}
    run = ansible.run_playbook(PLAYBOOK, inventory, extravars={"hunter_ops_required_checks": health_required()})
    items = report_items(run, "app-ready-lies")
    assert items["HEALTH-READY"]["evidence"]["status"] == 200
    assert items["HEALTH-READY"]["status"] == "fail", items["HEALTH-READY"]
    assert "db.status" in items["HEALTH-READY"]["message"], items["HEALTH-READY"]["message"]
    assert items["HEALTH-DB"]["status"] == "fail" and items["HEALTH-REDIS"]["status"] == "pass"
    assert run.report["verdict"] == "NO-GO" and run.rc != 0
    assert ("HEALTH-READY", "app-ready-lies") in {(b["id"], b["host"]) for b in run.report["blocking"]}


def test_issue9_diag_uses_the_apps_own_settings_and_never_calls_not_checked_down(
        ansible, tmp_path, make_service, make_redis, pg, redis_server, assert_no_secret):
    """Item 7: HEALTH-DIAG pinged the inventory's copy of the app's Redis URL ("both dependencies
    answer") while the app's own Redis (its env file) was refused, as REDIS-APP-PING said."""
    gone = make_redis(password="gone-" + uuid.uuid4().hex)
    gone.stop()
    service = make_service(env={"HUNTER_REDIS_URL": gone.url})  # the app really uses the dead Redis
    app_env = tmp_path / "app.env"
    app_env.write_text(f"HUNTER_DATABASE_URL={pg.dsn}\nHUNTER_REDIS_URL={gone.url}\n")
    unknown_env = tmp_path / "unknown.env"  # the app's env file says nothing about Redis
    unknown_env.write_text(f"HUNTER_DATABASE_URL={pg.dsn}\n")
    fast = {"redis_check_connect_timeout": 1, "redis_check_command_timeout": 1, "health_check_redis_timeout": 1}
    inventory = {"all": {"children": {"app": {"hosts": {
        # the inventory's copy points at a healthy Redis; the application's env file at the dead one
        "app-env-file": app_host(service, pg, redis_server.url, hunter_app_env_file=str(app_env), **fast),
        "app-settings-unknown": app_host(service, pg, redis_server.url, hunter_app_env_file=str(unknown_env),
                                         **fast),
    }}}}}
    run = ansible.run_playbook(REDIS_PLAYBOOK, inventory, extravars={"hunter_ops_required_checks": ["HEALTH-READY"]})
    mine = report_items(run, "app-env-file")
    assert mine["HEALTH-READY"]["status"] == "fail"
    diag, app_ping = mine["HEALTH-DIAG"], mine["REDIS-APP-PING"]
    assert app_ping["status"] == "fail" and f"127.0.0.1:{gone.port}" in app_ping["message"]
    assert diag["status"] == "fail", diag
    assert diag["message"].startswith("redis unreachable: connection refused"), diag["message"]
    assert f"127.0.0.1:{gone.port}" in diag["message"]
    assert str(app_env) in json.dumps(diag["evidence"]["redis"])  # where the settings came from
    assert diag["evidence"]["database"]["ok"] is True

    unknown = report_items(run, "app-settings-unknown")["HEALTH-DIAG"]
    assert "redis not checked" in unknown["message"], unknown["message"]
    assert "redis unreachable" not in unknown["message"] and unknown["status"] != "fail", unknown
    assert unknown["evidence"]["redis"]["checked"] is False
    assert "HUNTER_REDIS_URL" in unknown["evidence"]["redis"]["reason"]
    assert report_items(run, "app-settings-unknown")["REDIS-APP-PING"]["status"] == "fail"
    assert_no_secret(run, pg.password, gone.password, redis_server.password)


def test_issue9_a_bad_value_fails_only_the_items_that_use_it(ansible, sample_service, pg, redis_server):
    """Item 12: a non-numeric port used only by HEALTH-DIAG, or a typo in the non-required HEALTH-DB
    expression, failed HEALTH-LIVE/READY/STARTUP; a bad Redis port failed items that never use it."""
    cache = {"hunter_redis_host": redis_server.host, "hunter_redis_port": redis_server.port,
             "hunter_redis_password": redis_server.password, "hunter_redis_db": 0}
    inventory = {"all": {"children": {
        "app": {"hosts": {
            # two bad values HEALTH-DIAG alone uses (and a Redis port only cache items use)
            "app-bad-diag": app_host(sample_service, pg, redis_server.url, hunter_app_db_port="fivefourthreetwo",
                                     health_check_redis_timeout="later", hunter_redis_port="sixthousand"),
            "app-bad-db-expression": app_host(sample_service, pg, redis_server.url,
                                              health_check_assertions={"HEALTH-DB": "db.status =="}),
            "app-bad-live-and-startup": app_host(sample_service, pg, redis_server.url,
                                                 health_check_live_status="2OO", health_check_startup_timeout="soon"),
        }},
        "cache": {"hosts": {
            "cache-bad-port": dict(cache, hunter_redis_port="sixthousand"),
            "cache-bad-pool": dict(cache, redis_check_pool_size="ten", redis_check_key_ttl=-3),
        }},
    }}}
    run = ansible.run_playbook(REDIS_PLAYBOOK, inventory, extravars={"hunter_ops_required_checks": ["REDIS-PING"]})
    assert run.report is not None, run.stdout[-3000:]
    assert "_AnsibleTagged" not in json.dumps(run.report)

    diag_host = report_items(run, "app-bad-diag")
    for check_id in PROBE_IDS + ["REDIS-APP-PING", "REDIS-HEALTH"]:
        assert diag_host[check_id]["status"] == "pass", (check_id, diag_host[check_id]["message"])
    diag = diag_host["HEALTH-DIAG"]
    assert diag["status"] == "fail", diag
    assert "hunter_app_db_port (health_check_db_port): port must be a number" in diag["message"], diag["message"]
    assert "health_check_redis_timeout: must be a number" in diag["message"], diag["message"]

    expr_host = report_items(run, "app-bad-db-expression")
    assert {i: expr_host[i]["status"] for i in ("HEALTH-LIVE", "HEALTH-STARTUP", "HEALTH-ENV", "HEALTH-REDIS")} == \
        dict.fromkeys(("HEALTH-LIVE", "HEALTH-STARTUP", "HEALTH-ENV", "HEALTH-REDIS"), "pass")
    for check_id in ("HEALTH-DB", "HEALTH-READY"):  # HEALTH-READY judges the database status with it
        assert expr_host[check_id]["status"] == "fail"
        assert "health_check_assertions.HEALTH-DB: invalid JMESPath expression" in expr_host[check_id]["message"]
    assert "failing" not in expr_host["HEALTH-DIAG"]["message"], expr_host["HEALTH-DIAG"]["message"]

    two = report_items(run, "app-bad-live-and-startup")
    assert two["HEALTH-READY"]["status"] == "pass"
    assert two["HEALTH-LIVE"]["status"] == "fail" and "health_check_live_status: " in two["HEALTH-LIVE"]["message"]
    assert two["HEALTH-STARTUP"]["status"] == "fail"
    assert "health_check_startup_timeout: must be a number" in two["HEALTH-STARTUP"]["message"]

    port = report_items(run, "cache-bad-port")
    for check_id in ("REDIS-PING", "REDIS-OPS", "REDIS-POOL"):
        assert port[check_id]["status"] == "fail"
        assert port[check_id]["message"].startswith("hunter_redis_port (redis_check_port): "), port[check_id]
    pool = report_items(run, "cache-bad-pool")
    assert pool["REDIS-PING"]["status"] == "pass", pool["REDIS-PING"]["message"]
    assert pool["REDIS-POOL"]["status"] == "fail" and "redis_check_pool_size" in pool["REDIS-POOL"]["message"]
    assert pool["REDIS-OPS"]["status"] == "fail" and "redis_check_key_ttl" in pool["REDIS-OPS"]["message"]
    assert run.report["verdict"] == "NO-GO"  # REDIS-PING fails on cache-bad-port


def test_issue9_environment_read_where_the_service_shows_it(ansible, tmp_path, make_service, pg, redis_server):
    """Items 4 and 8: HEALTH-ENV from any endpoint (JMESPath) or the app's configuration source; never the
    inventory's own value, and no message asserting the service "does not show" it."""
    prod = make_service(env={"HUNTER_BREAK": "env-only-on-info"})
    staging = make_service(env={"HUNTER_BREAK": "env-only-on-info", "HUNTER_ENVIRONMENT": "staging"})
    staging_env = tmp_path / "staging.env"
    staging_env.write_text("HUNTER_ENVIRONMENT=staging\n")
    endpoint = {"health_check_environment_from": "endpoint", "health_check_environment_path": "/api/v1/info",
                "health_check_environment_query": "env.name"}
    inventory = {"all": {"children": {"app": {"hosts": {
        "env-endpoint-ok": app_host(prod, pg, redis_server.url, **endpoint),
        "env-endpoint-wrong": app_host(staging, pg, redis_server.url, **endpoint),
        "env-body-missing": app_host(prod, pg, redis_server.url),
        "env-config-wrong": app_host(make_service(), pg, redis_server.url, hunter_app_env_file=str(staging_env),
                                     health_check_environment_from="config"),
        "env-not-read": app_host(prod, pg, redis_server.url, health_check_environment_query=""),
    }}}}}
    run = ansible.run_playbook(PLAYBOOK, inventory, extravars={"hunter_ops_required_checks": ["HEALTH-ENV"]})
    env = {host: report_items(run, host)["HEALTH-ENV"] for host in inventory["all"]["children"]["app"]["hosts"]}
    assert env["env-endpoint-ok"]["status"] == "pass", env["env-endpoint-ok"]
    assert "/api/v1/info" in env["env-endpoint-ok"]["evidence"]["source"]
    assert env["env-endpoint-wrong"]["status"] == "fail"
    assert "'staging'" in env["env-endpoint-wrong"]["message"]
    assert env["env-body-missing"]["status"] == "fail"
    assert env["env-config-wrong"]["status"] == "fail", env["env-config-wrong"]
    assert "HUNTER_ENVIRONMENT" in env["env-config-wrong"]["message"] and str(staging_env) in env["env-config-wrong"]["message"]
    assert env["env-not-read"]["status"] == "skip"
    assert "does not show" not in env["env-not-read"]["message"], env["env-not-read"]["message"]
    assert run.report["verdict"] == "NO-GO"


def test_issue9_check_mode_writes_a_dry_run_report_and_latest_follows(ansible, sample_service, pg, redis_server,
                                                                      tmp_path):
    """Item 10: a dry run printed a report path that was never written; `latest` then showed an older run."""
    reports = tmp_path / "reports"
    inventory = {"all": {"children": {"app": {"hosts": {"app1": app_host(sample_service, pg, redis_server.url)}}}}}
    extravars = {"hunter_ops_required_checks": health_required(), "hunter_ops_report_dir": str(reports)}
    real = ansible.run_playbook(PLAYBOOK, inventory, extravars=extravars)
    assert real.rc == 0, real.stdout[-3000:]
    first = (reports / "latest").resolve()
    dry = ansible.run_playbook(PLAYBOOK, inventory, extravars=extravars, cmdline="--check")
    latest = (reports / "latest").resolve()
    assert latest != first, "latest still shows the earlier run"
    assert "dry-run" in latest.name
    report = json.loads((latest / "report.json").read_text())
    assert report["dry_run"] is True
    assert "DRY RUN" in (latest / "report.md").read_text()
    printed = [line for line in dry.stdout.splitlines() if str(reports) in line]
    assert printed and all(str(latest) in line for line in printed), printed

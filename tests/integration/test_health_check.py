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
import threading
import uuid
from pathlib import Path

import pytest

from sandbox.services import free_port

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
    down_url = f"http://127.0.0.1:{free_port()}"
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

    # 7-12: one message naming the parameter, no traceback, secrets hidden
    expected_params = ["base_url: ", "ready_status: ", "assertions.HEALTH-DB: ", "startup_timeout",
                       "redis_url: ", "db_port"]
    for result, param in zip(r[7:], expected_params):
        assert result.get("check_task_failed") is True
        assert param in result["msg"], result["msg"]
        assert "Traceback" not in json.dumps(result) and "module_stderr" not in result
    assert r[8]["msg"] == "ready_status: HTTP status codes must be numbers between 100 and 599, got 'abc'"

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
    # the runbook expressions on this shape fail and say what they found
    assert runbook_defaults["HEALTH-DB"]["status"] == "fail"
    assert "db.status is null" in runbook_defaults["HEALTH-DB"]["message"]
    assert runbook_defaults["HEALTH-ENV"]["status"] == "fail"
    # configured for it, the same service passes; HEALTH-ENV is a skip with the reason
    assert statuses(configured) == dict(dict.fromkeys(PROBE_IDS, "pass"), **{"HEALTH-ENV": "skip"})
    assert "does not show its environment" in configured["HEALTH-ENV"]["message"]
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
    run = ansible.run_playbook(PLAYBOOK, inventory, extravars={
        "hunter_ops_required_checks": REQUIRED + ["HEALTH-DB", "HEALTH-REDIS"]})
    assert run.rc == 0, run.stdout[-3000:]
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
    bad = report_items(run, "app-bad-input")
    assert bad["HEALTH-READY"]["status"] == "fail"
    assert "ready_status: HTTP status codes must be numbers" in bad["HEALTH-READY"]["message"]
    assert {bad[i]["status"] for i in PROBE_IDS} == {"fail"}
    invalid = report_items(run, "app-invalid")
    assert {invalid[i]["status"] for i in HEALTH_IDS} == {"fail"}
    assert "health_check_diag_enabled" in invalid["HEALTH-DIAG"]["message"]
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

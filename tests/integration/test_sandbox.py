"""The test equipment itself: private servers, the sample service, the ansible harness."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import textwrap
import urllib.request

import psycopg
import pytest
import redis
import yaml

from tests.harness import assert_no_secret

pytestmark = pytest.mark.integration

RUNBOOK_OK = {"status": "ok", "environment": "production", "db": {"status": "ok"},
              "redis": {"status": "ok"}}


def get(service, path, key=None, **kw):
    status, headers, body = service.request("GET", path, headers={"X-API-Key": key} if key else {}, **kw)
    return status, headers, body


def test_health_endpoints_answer_in_the_runbook_shape(sample_service):
    assert get(sample_service, "/healthz/live")[0::2] == (200, {"status": "ok"})
    assert get(sample_service, "/healthz/ready")[0::2] == (200, RUNBOOK_OK)
    assert get(sample_service, "/healthz/startup")[0::2] == (200, RUNBOOK_OK)


def test_v1_endpoints_keys_and_errors(sample_service, api_key):
    assert get(sample_service, "/api/v1/leads")[0] == 401
    assert get(sample_service, "/api/v1/leads", key="wrong")[0] == 401
    status, dummy, body = get(sample_service, "/api/v1/leads", key=api_key)
    assert status == 200 and body["count"] == 50 and body["leads"][0]["domain"] == "example.com"

    status, dummy, body = get(sample_service, "/api/v1/scan?domain=example.com", key=api_key)
    assert status == 200 and body["known"] is True and len(body["signals"]) == 8
    assert get(sample_service, "/api/v1/scan?domain=not_a..domain", key=api_key)[0] == 400
    assert get(sample_service, "/api/v1/scan", key=api_key)[0] == 400
    status, dummy, body = sample_service.request(
        "POST", "/api/v1/scan", {"domain": "nonexistent-test-domain-12345.invalid"},
        headers={"X-API-Key": api_key})
    assert status == 200 and body["known"] is False

    status, dummy, body = get(sample_service, "/api/v1/leads/example.com/sales-summary", key=api_key)
    assert status == 200 and body["signals"] == 8
    assert get(sample_service, "/api/v1/leads/unknown.example/sales-summary", key=api_key)[0] == 404
    assert get(sample_service, "/api/v1/leads/example.com/sales-summary")[0] == 401


def test_legacy_decision_shape_and_deprecation_headers(service_config, api_key):
    assert get(service_config, "/leads", key=api_key)[0] == 404
    assert get(service_config, "/scan?domain=example.com", key=api_key)[0] == 404

    service_config.configure(legacy="supported")
    v1 = get(service_config, "/api/v1/leads", key=api_key)[2]
    status, headers, legacy = get(service_config, "/leads", key=api_key)
    assert status == 200 and legacy == v1 and "deprecation" not in {h.lower() for h in headers}
    assert get(service_config, "/leads")[0] == 401

    service_config.configure(legacy_shape="different", legacy_deprecation=True)
    status, headers, legacy = get(service_config, "/leads", key=api_key)
    assert status == 200 and set(legacy) != set(v1) and isinstance(legacy["count"], str)
    headers = {k.lower(): v for k, v in headers.items()}
    assert headers["deprecation"].startswith("@") and "sunset" in headers
    assert 'rel="successor-version"' in headers["link"]
    scan = get(service_config, "/scan?domain=example.com", key=api_key)[2]
    assert isinstance(scan["score"], str) and isinstance(scan["signals"], str)


def test_checks_shape_faults_and_environment_switch(service_config, api_key):
    service_config.configure(health_shape="checks", environment="staging")
    assert get(service_config, "/healthz/ready")[0::2] == (
        200, {"status": "ready", "checks": {"database": True, "redis": True}})
    service_config.configure(health_shape="runbook", faults="sales-summary:500,live:503")
    assert get(service_config, "/healthz/ready")[2]["environment"] == "staging"
    assert get(service_config, "/api/v1/leads/example.com/sales-summary", key=api_key)[0] == 500
    assert get(service_config, "/healthz/live")[0] == 503
    assert service_config.request("PUT", "/_sandbox/config", {"bogus": 1})[0] == 400
    service_config.reset()
    assert get(service_config, "/healthz/live")[0] == 200


def test_startup_warm_up_then_ready(make_service):
    service = make_service(env={"HUNTER_STARTUP_DELAY": "60"})
    assert get(service, "/healthz/startup")[0::2] == (503, {"status": "starting"})
    assert get(service, "/healthz/live")[0] == 200
    service.configure(startup_delay=0)
    assert get(service, "/healthz/startup")[0::2] == (200, RUNBOOK_OK)


def test_ready_degrades_per_dependency_and_live_stays_up(make_pg, make_redis, make_service):
    pg = make_pg(seeded=False)
    cache = make_redis(password="pw-" + pg.password)
    service = make_service(env={"HUNTER_DATABASE_URL": pg.dsn, "HUNTER_REDIS_URL": cache.url})
    assert get(service, "/healthz/ready")[0::2] == (200, RUNBOOK_OK)

    cache.kill()
    status, dummy, body = get(service, "/healthz/ready")
    assert status == 503 and body["status"] == "degraded"
    assert body["db"] == {"status": "ok"} and body["redis"] == {"status": "error"}
    assert get(service, "/healthz/live")[0::2] == (200, {"status": "ok"})

    pg.kill()
    assert not pg.is_running()
    status, dummy, body = get(service, "/healthz/startup")
    assert status == 503 and body["db"] == {"status": "error"}
    assert get(service, "/healthz/live")[0] == 200

    pg.start()  # same cluster comes back with its roles
    cache.start()
    assert get(service, "/healthz/ready")[0] == 200


def test_secrets_stay_out_of_process_arguments(pg, redis_server, sample_service, api_key):
    argv = subprocess.run(["ps", "axww", "-o", "args"], capture_output=True, text=True,
                          check=True).stdout
    assert str(pg.bindir / "postgres") in argv  # the processes are there to be looked at
    assert f"127.0.0.1:{redis_server.port}" in argv
    assert_no_secret(argv, pg.password, pg.superuser_password, redis_server.password, api_key)
    conf = redis_server.config_path
    assert conf.stat().st_mode & 0o077 == 0


def test_postgres_roles_auth_and_seed(pg):
    with psycopg.connect(pg.dsn, connect_timeout=5) as conn:
        assert conn.execute("SELECT count(*) FROM companies").fetchone()[0] == 50
        assert conn.execute("SELECT count(*) FROM domain_signals").fetchone()[0] == 400
        assert conn.execute("SELECT rolcreatedb FROM pg_roles WHERE rolname = current_user"
                            ).fetchone()[0] is True
    assert pg.psql("SELECT rolsuper FROM pg_roles WHERE rolname = current_user", superuser=True) == "t"
    assert pg.env["PGPASSWORD"] == pg.password and pg.dsn.startswith("postgresql://hunter:")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(pg.dsn.replace(pg.password, "wrong"), connect_timeout=5)


def test_redis_password_and_extra_args(make_redis):
    server = make_redis(password="s3cret-redis",
                        extra_args=("--maxmemory", "2mb", "--maxmemory-policy", "noeviction"))
    assert server.client().config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host=server.host, port=server.port, socket_timeout=2).ping()
    server.stop()
    server.stop()  # twice is fine
    assert not server.is_running()


def test_silent_server_never_answers(silent_server):
    with socket.create_connection(("127.0.0.1", silent_server.port), timeout=1) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        sock.settimeout(0.3)
        with pytest.raises(socket.timeout):
            sock.recv(1)


def test_ansible_harness_runs_playbooks_and_modules_without_leaking(ansible, tmp_path, venv_python):
    secret = "pw-" + tmp_path.name + "-xyz"
    playbook = tmp_path / "probe.yml"
    playbook.write_text(textwrap.dedent("""\
        - hosts: app
          gather_facts: false
          tasks:
            - name: use the secret quietly
              ansible.builtin.command: "true"
              environment: {PROBE_SECRET: "{{ probe_secret }}"}
              changed_when: false
              no_log: true
            - name: report dir
              ansible.builtin.file: {path: "{{ hunter_ops_report_dir }}/preflight_test_1", state: directory, mode: "0755"}
              delegate_to: localhost
            - name: write a report like preflight_report does
              ansible.builtin.copy:
                dest: "{{ hunter_ops_report_dir }}/preflight_test_1/report.json"
                content: '{"verdict": "GO", "python": "{{ ansible_playbook_python }}"}'
              delegate_to: localhost
            - name: publish
              ansible.builtin.set_stats: {data: {verdict: GO}}
        """))
    run = ansible.run_playbook(playbook, {"app": {"hosts": {"probe-app": {}}}},
                               extravars={"probe_secret": secret})
    assert run.rc == 0, run.stdout
    assert run.artifact_data == {"verdict": "GO"}
    assert run.report["verdict"] == "GO"
    assert run.stats["ok"]["probe-app"] >= 3
    assert_no_secret(run, secret)
    with pytest.raises(AssertionError, match="secret leaked"):
        assert_no_secret(run.all_text() + secret, secret)

    result = ansible.run_module("ansible.builtin.setup", {"gather_subset": ["!all", "!min", "python"]})
    assert result["ansible_facts"]["ansible_python"]["executable"] == str(venv_python)
    failed = ansible.run_module("ansible.builtin.command", {"argv": ["false"]})
    assert failed["failed"] is True and failed["rc"] == 1
    # arguments are passed literally, never templated
    assert ansible.run_module("ansible.builtin.debug", {"msg": "{{ nope }}"})["msg"] == "{{ nope }}"
    assert json.dumps(ansible.run_module("ansible.builtin.ping", {}, check=True))


def test_demo_sandbox_cli_start_status_stop(tmp_path, venv_python, repo_root):
    env = dict(os.environ, HUNTER_SANDBOX_DIR=str(tmp_path / "state"),
               HUNTER_SANDBOX_VARS_FILE=str(tmp_path / "zz_sandbox.yml"))

    def cli(*args):
        return subprocess.run([str(venv_python), "-m", "sandbox", *args], cwd=repo_root, env=env,
                              capture_output=True, text=True, timeout=120, check=False)

    started = cli("start")
    try:
        assert started.returncode == 0, started.stderr
        vars_file = tmp_path / "zz_sandbox.yml"
        assert vars_file.stat().st_mode & 0o777 == 0o600
        values = yaml.safe_load(vars_file.read_text())
        for name in ("hunter_app_url", "hunter_api_key", "hunter_app_db_host", "hunter_app_db_port",
                     "hunter_app_db_name", "hunter_app_db_user", "hunter_app_db_password",
                     "hunter_app_redis_url", "hunter_redis_password", "hunter_db_password",
                     "hunter_expected_environment", "hunter_api_legacy_decision"):
            assert values.get(name) not in (None, ""), name
        for name in ("hunter_sentry_dsn", "hunter_sentry_api_token", "hunter_sentry_api_url",
                     "hunter_sentry_project", "hunter_app_pidfile"):
            assert values.get(name) not in (None, ""), name
        secrets_ = [values["hunter_api_key"], values["hunter_app_db_password"],
                    values["hunter_redis_password"], values["hunter_sentry_dsn"],
                    values["hunter_sentry_api_token"]]
        assert_no_secret(started.stdout + started.stderr, *secrets_)

        # The servers outlive the command that started them.
        status = cli("status")
        from sandbox.cli import PLUGINS
        assert status.returncode == 0 and status.stdout.count("running") == len(PLUGINS), status.stdout
        with urllib.request.urlopen(values["hunter_app_url"] + "/healthz/ready", timeout=5) as resp:
            assert json.load(resp) == RUNBOOK_OK
        req = urllib.request.Request(values["hunter_app_url"] + "/api/v1/leads?limit=1",
                                     headers={"X-API-Key": values["hunter_api_key"]})
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200
        argv = subprocess.run(["ps", "axww", "-o", "args"], capture_output=True, text=True, check=False).stdout
        assert_no_secret(argv, *secrets_)
    finally:
        stopped = cli("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not (tmp_path / "zz_sandbox.yml").exists()
    assert cli("status").returncode == 3
    with pytest.raises(OSError):
        urllib.request.urlopen(values["hunter_app_url"] + "/healthz/live", timeout=2)

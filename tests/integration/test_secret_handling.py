"""Secrets by construction, on real services (issue 11, items 2, 3 and 5).

- A Redis whose password holds every URL delimiter (/ @ : % # ?), reached through a URL the
  inventory builds with hunter.ops.url_credential (and, for contrast, Jinja's urlencode).
- A real application process whose command line carries --ssl-keyfile-password: SENTRY-DSN's
  evidence names its executable, never its arguments.
- Credential headers of api_probe in secret_headers, and in plain headers (warned about).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

URL_PASSWORD = "HOPSMARK/r3d1s@p:a%ss#w?rd+=="


def test_redis_url_with_every_delimiter_in_the_password(ansible, make_redis, assert_no_secret):
    server = make_redis(password=URL_PASSWORD)
    assert server.client().ping() is True  # the server really has that password
    url = "redis://:{{ redis_password | hunter.ops.url_credential }}@%s:%d/0" % (server.host, server.port)
    jinja_url = "redis://:{{ redis_password | urlencode }}@%s:%d/0" % (server.host, server.port)
    run, results = ansible.run_tasks([
        {"hunter.ops.redis_probe": {"url": url, "checks": ["ping"], "ping_id": "REDIS-APP-PING"}},
        {"hunter.ops.dependency_diag": {"redis_url": url}},
        {"hunter.ops.redis_probe": {"url": jinja_url, "checks": ["ping"], "ping_id": "REDIS-APP-PING"}},
    ], extravars={"redis_password": URL_PASSWORD})
    ping, diag, jinja = results
    assert ping["checks"]["REDIS-APP-PING"]["status"] == "pass", ping["checks"]
    assert diag["checks"]["HEALTH-DIAG"]["evidence"]["redis"]["ok"] is True, diag["checks"]
    # urlencode leaves '/': the URL's authority ends inside the password and the item fails for the wrong reason
    bad_url = jinja["checks"]["REDIS-APP-PING"]
    assert bad_url["status"] == "fail" and bad_url["message"].startswith("url: "), jinja
    assert_no_secret(run, URL_PASSWORD, URL_PASSWORD.split("/")[1])


@pytest.fixture
def app_process(tmp_path):
    """A running 'application' whose command line holds a secret option and whose environment holds the DSN."""
    token = "hops-app-" + uuid.uuid4().hex[:10]
    keyfile_password = "HOPSMARK-keyfile-" + uuid.uuid4().hex[:10]
    dsn_key = uuid.uuid4().hex
    env = dict(os.environ, HUNTER_SENTRY_DSN=f"https://{dsn_key}@sentry.example.invalid/42",
               HUNTER_REDIS_URL=f"redis://:{URL_PASSWORD.replace('/', '%2F')}@127.0.0.1:6379/0")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", token,
                             "--ssl-keyfile-password", keyfile_password], env=env)
    deadline = time.monotonic() + 10
    while token.encode() not in Path(f"/proc/{proc.pid}/cmdline").read_bytes() and time.monotonic() < deadline:
        time.sleep(0.05)
    yield {"pid": proc.pid, "token": token, "keyfile_password": keyfile_password, "dsn_key": dsn_key}
    proc.kill()
    proc.wait()


def test_sentry_dsn_evidence_names_the_executable_never_its_arguments(ansible, app_process, assert_no_secret):
    assert app_process["keyfile_password"].encode() in Path(f"/proc/{app_process['pid']}/cmdline").read_bytes()
    run, results = ansible.run_tasks([
        {"hunter.ops.sentry_dsn": {"source": "process", "process_match": app_process["token"]}},
        {"hunter.ops.sentry_dsn": {"source": "process", "pid": app_process["pid"]}},
    ])
    for result in results:
        item = result["checks"]["SENTRY-DSN"]
        assert item["status"] == "pass", item
        evidence = item["evidence"]
        assert evidence["pid"] == app_process["pid"]
        assert evidence["executable"] == os.path.basename(sys.executable)
        assert evidence["arguments"] == "5, not shown"  # -c, the code, the token, the option, its value
        assert "cmdline" not in evidence
    assert_no_secret(run, app_process["keyfile_password"], app_process["dsn_key"],
                     URL_PASSWORD, URL_PASSWORD.replace("/", "%2F"))


def test_api_probe_credential_headers_never_show(ansible, sample_service, api_key, assert_no_secret):
    header_token = "HOPSMARK-hdr-" + uuid.uuid4().hex[:12]
    plain_token = "HOPSMARK-plain-" + uuid.uuid4().hex[:12]
    run, results = ansible.run_tasks([
        {"hunter.ops.api_probe": {
            "base_url": sample_service.url, "api_key": "{{ api_key }}", "legacy_decision": "removed",
            "secret_headers": {"X-Upstream-Token": "{{ header_token }}"},
            "headers": {"Authorization": "Bearer {{ plain_token }}", "X-Request-Source": "preflight"}}},
        {"hunter.ops.api_probe": {"base_url": sample_service.url, "secret_headers": {"X-Bad": {"nested": "value"}}}},
    ], extravars={"api_key": api_key, "header_token": header_token, "plain_token": plain_token})
    good, bad = results
    assert good["checks"]["API-V1-LEADS"]["status"] == "pass", good["checks"]["API-V1-LEADS"]
    warned = [w for w in good.get("warnings", []) if "Authorization" in w and "secret_headers" in w]
    assert len(warned) == 1, good.get("warnings")  # once, not once per request
    # a bad header value fails every item (every request uses it), named, without the module failing
    assert all(bad["checks"][i]["status"] == "fail" and "secret_headers: " in bad["checks"][i]["message"]
               for i in ("API-V1-LEADS", "API-V1-SCAN", "API-V1-SALES")), bad["checks"]
    assert_no_secret(run, header_token, plain_token, api_key)

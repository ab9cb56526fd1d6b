"""CHECKLIST 6.4 (API) on the sample service's profile B (sandbox/app_unlike_runbook.py), a service shaped
unlike the runbook, described by configuration only: the api_versioning variables of
inventories/examples/unlike_runbook/group_vars/app/api_versioning.yml, nothing else.

Healthy, the API items get a truthful GO (exit 0). Broken in the API ways (profile B's own fault switches,
an HTML server in front), each host gets NO-GO on exactly the items the breakage touches, and every other
API item of that host still passes.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from sandbox.services import HtmlCatchAllServer, ServiceError
from tests.harness import REPO_ROOT

PLAYBOOK = Path(__file__).parent / "playbooks" / "api_preflight.yml"
EXAMPLE = REPO_ROOT / "inventories" / "examples" / "unlike_runbook" / "group_vars" / "app" / "api_versioning.yml"
IDS = ["API-V1-LEADS", "API-V1-SCAN", "API-V1-SALES", "API-LEGACY", "API-COMPAT"]
REQUIRED = ["API-V1-LEADS", "API-V1-SCAN", "API-LEGACY"]  # CHECKLIST 6.5's API part
ALL = set(IDS)

# host -> (profile B fault switches, the items that must not pass)
BROKEN = {
    "b-key-revoked": (("api-key-revoked",), ALL),
    "b-scan-validation-broken": (("scan-validation-broken",), {"API-V1-SCAN", "API-LEGACY", "API-COMPAT"}),
    "b-scan-empty-body": (("scan-empty-body",), {"API-V1-SCAN", "API-COMPAT"}),
    "b-sales-route-removed": (("sales-route-removed",), {"API-V1-SALES"}),
    "b-legacy-leads-removed": (("legacy-leads-removed",), {"API-LEGACY", "API-COMPAT"}),
    "b-legacy-shape-changed": (("legacy-shape-changed",), {"API-LEGACY", "API-COMPAT"}),
}


def example_vars() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def host_vars(url: str, api_key: str) -> dict:
    return dict(example_vars(), hunter_app_url=url, hunter_api_key=api_key)


def by_host(report: dict) -> dict:
    items: dict[str, dict] = {}
    for item in report["items"]:
        items.setdefault(item["host"], {})[item["id"]] = item
    return items


def test_profile_b_gets_a_truthful_go_by_configuration(ansible, make_unlike_runbook_service, api_key,
                                                       assert_no_secret):
    service = make_unlike_runbook_service()

    def inventory(host, variables):
        return {"all": {"children": {"app": {"hosts": {host: variables}}}}}

    run = ansible.run_playbook(PLAYBOOK, inventory("profile-b", host_vars(service.url, api_key)),
                               extravars={"hunter_ops_required_checks": REQUIRED})
    assert run.report is not None, run.stdout[-3000:]
    items = by_host(run.report)["profile-b"]
    status = {i: items[i]["status"] for i in IDS}
    assert status == {"API-V1-LEADS": "pass", "API-V1-SCAN": "pass", "API-V1-SALES": "pass",
                      "API-LEGACY": "warn", "API-COMPAT": "pass"}, {i: items[i]["message"] for i in IDS}
    assert run.report["verdict"] == "GO" and run.rc == 0, run.report["blocking"]
    # what the pass observed: every configured request, the key's refusal without it, the 422
    scan = items["API-V1-SCAN"]["evidence"]["requests"]
    assert [r["status"] for r in scan] == [200, 404, 422]
    assert scan[2]["invalid_input"] is True and scan[1]["route_check"]["same_answer"] is False
    leads = items["API-V1-LEADS"]["evidence"]["requests"]
    assert [(r["status"], r["api_key"]) for r in leads] == [(200, "sent in X-API-Key (hidden)"), (401, "not sent")]
    legacy = items["API-LEGACY"]
    assert legacy["message"].startswith("decision checked: 'supported'")
    assert "announces no deprecation" in legacy["message"]
    assert [r["request"].split()[0] for r in legacy["evidence"]["requests"]] == ["GET", "POST"]
    assert_no_secret(run, api_key)

    # the runbook's defaults do not describe this service: without its configuration it is NO-GO
    defaults = ansible.run_playbook(PLAYBOOK, inventory("profile-b-runbook-defaults", {
        "hunter_app_url": service.url, "hunter_api_key": api_key, "hunter_api_legacy_decision": "supported"}),
        extravars={"hunter_ops_required_checks": REQUIRED})
    assert defaults.report["verdict"] == "NO-GO"
    plain = by_host(defaults.report)["profile-b-runbook-defaults"]
    assert plain["API-V1-SCAN"]["status"] == "fail", plain["API-V1-SCAN"]  # GET /api/v1/scan: 405
    assert plain["API-V1-LEADS"]["status"] == "fail", plain["API-V1-LEADS"]  # no `leads` array


def test_profile_b_broken_in_the_api_ways_fails_the_right_items(ansible, make_unlike_runbook_service, api_key):
    hosts = {"b-healthy": host_vars(make_unlike_runbook_service().url, api_key)}
    for host, (breaks, dummy) in BROKEN.items():
        hosts[host] = host_vars(make_unlike_runbook_service(breaks=breaks).url, api_key)
    with HtmlCatchAllServer() as html:
        hosts["b-html-in-front"] = host_vars(html.url, api_key)
        run = ansible.run_playbook(PLAYBOOK, {"all": {"children": {"app": {"hosts": hosts}}}},
                                   extravars={"hunter_ops_required_checks": REQUIRED})
    assert run.report is not None, run.stdout[-3000:]
    assert run.report["verdict"] == "NO-GO" and run.rc != 0
    items = by_host(run.report)
    blocking: dict[str, set] = {}
    for b in run.report["blocking"]:
        blocking.setdefault(b["host"], set()).add(b["id"])
    expected = dict((host, failing) for host, (dummy, failing) in BROKEN.items())
    expected["b-html-in-front"] = ALL
    expected["b-healthy"] = set()
    wrong = {}
    for host, failing in expected.items():
        observed = {i for i in IDS if items[host][i]["status"] not in ("pass", "warn")}
        if observed != failing or blocking.get(host, set()) != failing & set(REQUIRED):
            wrong[host] = {i: (items[host][i]["status"], items[host][i]["message"]) for i in IDS}
    assert not wrong, wrong
    # the messages say what was observed
    assert "although an API key was sent" in items["b-key-revoked"]["API-V1-LEADS"]["message"]
    assert "valid input" in items["b-scan-validation-broken"]["API-V1-SCAN"]["message"]
    assert "empty body" in items["b-scan-empty-body"]["API-V1-SCAN"]["message"]
    assert "GET" in items["b-sales-route-removed"]["API-V1-SALES"]["message"]
    assert "text/html, not JSON" in items["b-html-in-front"]["API-V1-LEADS"]["message"]
    assert "$.items: missing in legacy" in items["b-legacy-shape-changed"]["API-COMPAT"]["message"]


def test_profile_b_speaks_its_own_shape(make_unlike_runbook_service, api_key):
    """The service itself: what makes it unlike the runbook, so the tests above prove something."""
    service = make_unlike_runbook_service(settings={"SENTRY_DSN": "https://public@127.0.0.1:9/1"})
    key = {"X-API-Key": api_key}
    # settings from .env in its working directory, never from the process environment
    assert service.env_file_path.parent == service.cwd() and service.env_file_path.stat().st_mode & 0o077 == 0
    environ = Path(f"/proc/{service.pid}/environ").read_bytes().split(b"\0")
    assert not [e for e in environ if e.split(b"=", 1)[0] in (b"DATABASE_URL", b"API_KEYS", b"SENTRY_DSN")]
    ready = service.request("GET", "/healthz/ready")[2]
    assert ready == {"status": "ready", "checks": {"database": True, "redis": True}}
    assert "environment" not in json.dumps(ready)
    assert service.request("GET", "/api/v1/info")[2]["environment"] == "production"
    status, dummy, body = service.request("GET", "/api/v1/leads", headers=key)
    assert status == 200 and body["total"] == len(body["items"]) > 0
    assert service.request("GET", "/api/v1/leads")[0] == 401
    assert service.request("GET", "/api/v1/scan?domain=example.com", headers=key)[0] == 405
    assert service.request("POST", "/api/v1/scan", {"domain": "example.com"}, headers=key)[0] == 200
    status, dummy, body = service.request("POST", "/api/v1/scan", {"domain": "unknown-domain.example"}, headers=key)
    assert status == 404 and body["error"]["code"] == "domain_not_found"
    assert service.request("POST", "/api/v1/scan", {"domain": "not a domain"}, headers=key)[0] == 422
    assert service.request("POST", "/debug/test-error", headers=key)[0] == 404
    status, headers, dummy = service.request("POST", "/scan", {"domain": "example.com"}, headers=key)
    assert status == 200 and "Deprecation" not in headers and "Sunset" not in headers
    assert service.request("PUT", "/_sandbox/config", {"reset": True})[2]["sentry"] is True
    staging = make_unlike_runbook_service(settings={"ENVIRONMENT": "staging",
                                                    "SENTRY_DSN": "https://public@127.0.0.1:9/1"})
    assert staging.request("PUT", "/_sandbox/config", {"reset": True})[2]["sentry"] is False
    with pytest.raises(ServiceError):  # a typo in a fault switch never runs a "broken" case healthy
        make_unlike_runbook_service(breaks=("no-such-switch",))

"""CHECKLIST 6.4 (API versioning) against the sample service, switched at run time between legacy
removed / supported, same / different shape, with / without deprecation headers, and with an
injected 5xx; then the role with the report.

Module cases share one ansible-playbook run: `configure` tasks switch the service in between.
"""
from __future__ import annotations

import json
from pathlib import Path


PLAYBOOK = Path(__file__).parent / "playbooks" / "api_preflight.yml"
V1_IDS = ["API-V1-LEADS", "API-V1-SCAN", "API-V1-SALES"]
ALL_IDS = V1_IDS + ["API-LEGACY", "API-COMPAT"]


def statuses(checks: dict) -> dict:
    return {check_id: item["status"] for check_id, item in checks.items()}


def test_api_probe_cases(ansible, tmp_path, service_config, assert_no_secret):
    url = service_config.url

    def probe(**args):
        return {"hunter.ops.api_probe": dict(base_url=url, api_key="{{ api_key }}", **args)}

    def configure(**settings):
        return {"ansible.builtin.uri": {"url": url + "/_sandbox/config", "method": "PUT", "body_format": "json",
                                        "body": dict(settings, reset=True)}}

    tasks = [
        # 0-1: legacy removed (the service's default): decision removed / not documented
        probe(legacy_decision="removed"),
        probe(),
        # 2-3: legacy supported, same shape, no deprecation headers: decision supported / removed
        configure(legacy="supported"),
        probe(legacy_decision="supported"),
        probe(legacy_decision="removed"),
        # 5: supported, different shape, deprecation announced
        configure(legacy="supported", legacy_shape="different", legacy_deprecation=True),
        probe(legacy_decision="supported"),
        # 7: a 5xx from the sales summary; an invalid decision
        configure(faults="sales-summary:500"),
        probe(legacy_decision="maybe"),
        # 9: no API key: 401 is an allowed answer for leads; scan/sales refuse it (their sets have no 401)
        {"hunter.ops.api_probe": {"base_url": url, "legacy_decision": "removed"}},
        # 10: a deployment's own routes: scan by POST with a JSON body; a latency budget nobody meets;
        #     two requests under one ID; legacy scan paired with it
        probe(legacy_decision="removed", endpoints=[
            {"id": "API-V1-SCAN", "path": "/api/v1/scan", "method": "POST", "json_body": {"domain": "example.com"},
             "expected_status": [200, 400]},
            {"id": "API-V1-SCAN", "path": "/api/v1/scan", "query": {"domain": "not_a..domain"},
             "expected_status": "400"},
            {"id": "API-V1-LEADS", "path": "/api/v1/leads", "query": {"limit": 5}, "expected_status": "200|401",
             "latency_budget_ms": 0.001},
        ], legacy_endpoints=[{"path": "/scan", "query": {"domain": "example.com"}, "compare_with": "API-V1-SCAN"}]),
        # 11: check mode: the POST is not sent
        dict(probe(legacy_decision="removed", endpoints=[
            {"id": "API-V1-SCAN", "path": "/api/v1/scan", "method": "POST", "json_body": {"domain": "example.com"},
             "expected_status": "200"}]), check_mode=True),
        # 12-14: bad input names the parameter
        {"hunter.ops.api_probe": {"base_url": "http//nohost", "api_key": "{{ api_key }}"}},
        probe(endpoints=[{"id": "API-V1-LEADS", "path": "/api/v1/leads", "expected_status": "2OO"}]),
        probe(endpoints=[{"id": "API-V1-LEADS", "path": "api/v1/leads", "expected_status": 200}]),
    ]
    run, r = ansible.run_tasks(tasks, extravars={"api_key": service_config.env["HUNTER_API_KEYS"]})

    # 0: all pass; the decision is in the evidence; nothing to compare
    assert statuses(r[0]["checks"]) == dict(dict.fromkeys(ALL_IDS[:-1], "pass"), **{"API-COMPAT": "skip"})
    assert r[0]["changed"] is False
    legacy = r[0]["checks"]["API-LEGACY"]
    assert legacy["evidence"]["decision"] == "removed" and legacy["evidence"]["expected_status"] == [404]
    assert [req["status"] for req in legacy["evidence"]["requests"]] == [404, 404]
    leads = r[0]["checks"]["API-V1-LEADS"]["evidence"]
    assert leads["status"] == 200 and leads["expected_status"] == [200, 401] and leads["latency_budget_ms"] == 2000
    assert leads["api_key"] == "sent in X-API-Key (hidden)"
    assert r[0]["checks"]["API-V1-SCAN"]["evidence"]["request"] == f"GET {url}/api/v1/scan?domain=example.com"

    # 1: decision not documented
    assert r[1]["checks"]["API-LEGACY"]["status"] == "fail"
    assert r[1]["checks"]["API-LEGACY"]["message"].startswith("legacy endpoint decision not documented")
    assert r[1]["checks"]["API-LEGACY"]["evidence"]["decision"] == "not documented"
    assert r[1]["checks"]["API-COMPAT"]["status"] == "skip"

    # 3: supported, same shape, but no Deprecation/Sunset: warn; structures match
    assert r[3]["checks"]["API-LEGACY"]["status"] == "warn"
    assert "announces no deprecation" in r[3]["checks"]["API-LEGACY"]["message"]
    assert r[3]["checks"]["API-COMPAT"]["status"] == "pass"
    assert [p["differences_count"] for p in r[3]["checks"]["API-COMPAT"]["evidence"]["pairs"]] == [0, 0]
    # 4: the service supports legacy but the documented decision says removed
    assert r[4]["checks"]["API-LEGACY"]["status"] == "fail"
    assert "answered 200 (expected 404 for 'removed')" in r[4]["checks"]["API-LEGACY"]["message"]

    # 6: different legacy shape: differences shown; deprecation headers reported as evidence
    compat = r[6]["checks"]["API-COMPAT"]
    assert compat["status"] == "fail"
    scan_pair, leads_pair = compat["evidence"]["pairs"]
    assert scan_pair["differences"] == ["$.score: number in v1, string in legacy",
                                        "$.signals: array in v1, string in legacy"]
    assert "$.leads: missing in legacy (array in v1)" in leads_pair["differences"]
    assert "$.results: only in legacy (array)" in leads_pair["differences"]
    assert "$.count: number in v1, string in legacy" in compat["message"]
    legacy = r[6]["checks"]["API-LEGACY"]
    assert legacy["status"] == "pass"
    req = legacy["evidence"]["requests"][1]
    assert req["deprecation"].startswith("@") and "GMT" in req["sunset"]
    assert 'rel="successor-version"' in req["link"]

    # 8: 5xx fails its item only; an invalid decision names the parameter
    assert r[8]["checks"]["API-V1-SALES"]["status"] == "fail"
    assert "answered 500 (expected 200|404)" in r[8]["checks"]["API-V1-SALES"]["message"]
    assert r[8]["checks"]["API-V1-LEADS"]["status"] == "pass"
    assert r[8]["checks"]["API-LEGACY"]["message"] == "legacy_decision: must be 'removed' or 'supported', got 'maybe'"

    # 9: without a key
    assert r[9]["checks"]["API-V1-LEADS"]["status"] == "pass"
    assert r[9]["checks"]["API-V1-LEADS"]["evidence"]["status"] == 401
    assert r[9]["checks"]["API-V1-LEADS"]["evidence"]["api_key"] == "not sent"
    assert r[9]["checks"]["API-V1-SCAN"]["status"] == "fail"

    # 10: configured routes
    scan = r[10]["checks"]["API-V1-SCAN"]
    assert scan["status"] == "pass" and len(scan["evidence"]["requests"]) == 2
    assert scan["evidence"]["requests"][0]["request"] == f"POST {url}/api/v1/scan"
    assert scan["evidence"]["requests"][1]["status"] == 400
    assert r[10]["checks"]["API-V1-LEADS"]["status"] == "warn"
    assert "over its 0 ms budget" in r[10]["checks"]["API-V1-LEADS"]["message"]
    # an ID no endpoint is configured for is recorded as skipped with the reason (the action plugin)
    assert r[10]["checks"]["API-V1-SALES"]["status"] == "skip"
    assert "not configured" in r[10]["checks"]["API-V1-SALES"]["message"]

    # 11: check mode
    assert r[11]["checks"]["API-V1-SCAN"]["status"] == "skip"
    assert "check mode: POST not sent" in r[11]["checks"]["API-V1-SCAN"]["message"]

    # 12-14: bad input
    for result, text in zip(r[12:], ["base_url: URL scheme must be one of http, https",
                                     "endpoints[0].expected_status: HTTP status codes must be numbers",
                                     "endpoints[0].path: must start with /"]):
        assert result.get("check_task_failed") is True and result["msg"].startswith(text), result["msg"]
        assert "Traceback" not in json.dumps(result)

    assert_no_secret(run, service_config.env["HUNTER_API_KEYS"])


def test_role_with_report(ansible, sample_service, api_key, assert_no_secret):
    app = {"hunter_app_url": sample_service.url, "hunter_api_key": api_key}
    inventory = {"all": {"children": {"app": {"hosts": {
        "app-documented": dict(app, hunter_api_legacy_decision="removed"),
        "app-undocumented": dict(app),
        "app-bad-setting": dict(app, hunter_api_legacy_decision="removed", api_versioning_timeout="soon"),
    }}}}}
    run = ansible.run_playbook(PLAYBOOK, inventory, extravars={
        "hunter_ops_required_checks": ["API-V1-LEADS", "API-V1-SCAN", "API-LEGACY"]})
    assert run.report is not None, run.stdout[-3000:]
    items = {(i["host"], i["id"]): i for i in run.report["items"]}
    assert {i: items[("app-documented", i)]["status"] for i in ALL_IDS} == dict(
        dict.fromkeys(ALL_IDS[:-1], "pass"), **{"API-COMPAT": "skip"})
    undocumented = items[("app-undocumented", "API-LEGACY")]
    assert undocumented["status"] == "fail"
    assert undocumented["message"].startswith("legacy endpoint decision not documented")
    bad = items[("app-bad-setting", "API-V1-LEADS")]
    assert bad["status"] == "fail" and "api_versioning_timeout" in bad["message"]
    report_md = (run.report_path.parent / "report.md").read_text()
    assert '"decision": "removed"' in report_md and '"decision": "not documented"' in report_md
    # API-LEGACY is required and fails: NO-GO, exit code non-zero, after the report
    assert run.report["verdict"] == "NO-GO" and run.rc != 0
    assert_no_secret(run, api_key)

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
             "invalid_input": True, "expected_status": "400"},
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
    assert "answered 200: the route still answers (expected 404 for 'removed')" in r[4]["checks"]["API-LEGACY"]["message"]
    assert r[4]["checks"]["API-LEGACY"]["message"].startswith("decision checked: 'removed'")

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

    # 12-14: bad input fails the items that use it, named; the module itself does not fail
    for result, text in zip(r[12:], ["base_url: URL scheme must be one of http, https",
                                     "endpoints[0].expected_status: HTTP status codes must be numbers",
                                     "endpoints[0].path: must start with /"]):
        assert not result.get("check_task_failed"), result
        assert result["checks"]["API-V1-LEADS"]["status"] == "fail"
        assert text in result["checks"]["API-V1-LEADS"]["message"], result["checks"]["API-V1-LEADS"]["message"]
        assert "Traceback" not in json.dumps(result)
    assert all(item["status"] == "fail" for item in r[12]["checks"].values() if item["status"] != "skip")
    assert r[13]["checks"]["API-LEGACY"]["status"] == "fail"  # no decision documented
    assert "not documented" in r[13]["checks"]["API-LEGACY"]["message"]

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


# -- issue 9: false GO regressions (each failed against the code before the fix) --------------------

API_REQUIRED = ["API-V1-LEADS", "API-V1-SCAN", "API-LEGACY"]


def _configure(url, **settings):
    return {"ansible.builtin.uri": {"url": url + "/_sandbox/config", "method": "PUT", "body_format": "json",
                                    "body": dict(settings, reset=True)}}


def _probe(url, **args):
    args.setdefault("legacy_decision", "removed")
    return {"hunter.ops.api_probe": dict(base_url=url, api_key="{{ api_key }}", **args)}


def test_401_passes_only_when_no_key_was_sent(ansible, service_config, api_key, assert_no_secret):
    """9.4: a revoked key (the key sent is refused with 401) never passes API-V1-LEADS."""
    url = service_config.url
    run, r = ansible.run_tasks([
        _configure(url, breaks=["api-key-revoked"]),
        _probe(url),
        # a key the service never knew: refused the same way
        {"hunter.ops.api_probe": {"base_url": url, "api_key": "hk_not-a-key-of-this-service",
                                  "legacy_decision": "removed"}},
        # no key at all: 401 is the answer the runbook allows
        {"hunter.ops.api_probe": {"base_url": url, "legacy_decision": "removed"}},
    ], extravars={"api_key": api_key})
    for result in (r[1], r[2]):
        leads = result["checks"]["API-V1-LEADS"]
        assert leads["status"] == "fail", leads
        assert leads["evidence"]["status"] == 401
        assert "although an API key was sent" in leads["message"], leads["message"]
    no_key = r[3]["checks"]["API-V1-LEADS"]
    assert no_key["status"] == "pass" and no_key["evidence"]["status"] == 401, no_key
    assert "no API key sent" in no_key["message"]
    assert_no_secret(run, api_key)


def test_400_for_a_valid_domain_never_passes(ansible, service_config, api_key):
    """9.4: API-V1-SCAN with valid input refused as invalid (broken validation) fails; 400/422 pass only
    for a request marked as deliberately invalid, and such a request must not get 200."""
    url = service_config.url
    invalid = {"id": "API-V1-SCAN", "path": "/api/v1/scan", "query": {"domain": "not_a..domain"},
               "invalid_input": True, "expected_status": [400, 422]}
    run, r = ansible.run_tasks([
        _configure(url, breaks=["scan-validation-broken"]),
        _probe(url),
        _configure(url),
        _probe(url, endpoints=[invalid]),
        # a request with valid input marked invalid: the 200 it gets is not a refusal
        _probe(url, endpoints=[dict(invalid, query={"domain": "example.com"}, expected_status=[200, 400])]),
    ], extravars={"api_key": api_key})
    scan = r[1]["checks"]["API-V1-SCAN"]
    assert scan["status"] == "fail" and scan["evidence"]["status"] == 400, scan
    assert "valid input" in scan["message"], scan["message"]
    assert r[3]["checks"]["API-V1-SCAN"]["status"] == "pass", r[3]["checks"]["API-V1-SCAN"]
    assert r[4]["checks"]["API-V1-SCAN"]["status"] == "fail", r[4]["checks"]["API-V1-SCAN"]


def test_undefined_vaulted_key_is_not_a_request_without_key(ansible, sample_service):
    """9.4 (AWX): hunter_api_key templated from a vault variable that is missing is an error naming the
    variable, never "no key sent, 401 acceptable"."""
    inventory = {"all": {"children": {"app": {"hosts": {"app-vault-missing": {
        "hunter_app_url": sample_service.url, "hunter_api_legacy_decision": "removed",
        "hunter_api_key": "{{ vault_hunter_api_key }}"}}}}}}
    run = ansible.run_playbook(PLAYBOOK, inventory, extravars={"hunter_ops_required_checks": API_REQUIRED})
    assert run.report is not None, run.stdout[-3000:]
    items = {i["id"]: i for i in run.report["items"] if i["host"] == "app-vault-missing"}
    leads = items["API-V1-LEADS"]
    assert leads["status"] == "fail", leads
    assert "hunter_api_key" in leads["message"], leads["message"]
    assert run.report["verdict"] == "NO-GO" and run.rc != 0


def test_missing_route_is_not_an_unknown_resource(ansible, service_config, api_key):
    """9.5: a framework's 404 for a route that does not exist never passes as "unknown domain"."""
    url = service_config.url
    run, r = ansible.run_tasks([
        _configure(url, breaks=["sales-route-removed"]),
        _probe(url),
        _configure(url),
        # a route this service never had, configured with the runbook's allowed statuses
        _probe(url, endpoints=[{"id": "API-V1-SALES", "path": "/api/v1/companies/example.com/sales-summary",
                                "expected_status": "200|404"}]),
        # a real unknown domain on the real route: the 404 this item allows
        _probe(url, endpoints=[{"id": "API-V1-SALES", "path": "/api/v1/leads/unknown-domain.example/sales-summary",
                                "expected_status": "200|404"}]),
    ], extravars={"api_key": api_key})
    for result in (r[1], r[3]):
        sales = result["checks"]["API-V1-SALES"]
        assert sales["status"] == "fail" and sales["evidence"]["status"] == 404, sales
        assert "route" in sales["message"], sales["message"]
    unknown = r[4]["checks"]["API-V1-SALES"]
    assert unknown["status"] == "pass", unknown


def test_a_server_that_is_not_the_api_fails(ansible, api_key):
    """9.11: a web server answering every path with 200 and an HTML page is not the API."""
    from sandbox.services import HtmlCatchAllServer

    with HtmlCatchAllServer() as html:
        run, r = ansible.run_tasks([_probe(html.url), _probe(html.url, legacy_decision="supported")],
                                   extravars={"api_key": api_key})
    for check_id in ("API-V1-LEADS", "API-V1-SCAN", "API-V1-SALES"):
        item = r[0]["checks"][check_id]
        assert item["status"] == "fail", item
        assert "not JSON" in item["message"] or "text/html" in item["message"], item["message"]
    assert r[0]["checks"]["API-LEGACY"]["status"] == "fail"
    assert r[1]["checks"]["API-LEGACY"]["status"] == "fail", r[1]["checks"]["API-LEGACY"]


def test_legacy_is_judged_per_endpoint_and_messages_state_observations(ansible, service_config, api_key):
    """9.5 and 9.8: a legacy route that still answers is never hidden behind "removed"; a non-GET
    legacy endpoint is judged; the decision is printed as the decision checked, also when the probe
    could not run."""
    url = service_config.url
    legacy = [{"path": "/scan", "query": {"domain": "example.com"}, "compare_with": "API-V1-SCAN"},
              {"path": "/leads", "compare_with": "API-V1-LEADS"},
              {"path": "/scan", "method": "POST", "json_body": {"domain": "example.com"}}]
    run, r = ansible.run_tasks([
        _configure(url, legacy="supported", breaks=["legacy-scan-removed"]),
        _probe(url, legacy_endpoints=legacy),
        _probe(url, legacy_endpoints=legacy, legacy_decision="supported"),
        {"hunter.ops.api_probe": {"base_url": "http//nohost", "legacy_decision": "removed"}},
    ], extravars={"api_key": api_key})
    removed = r[1]["checks"]["API-LEGACY"]
    assert removed["status"] == "fail", removed
    assert "GET %s/leads answered 200" % url in removed["message"], removed["message"]
    assert [req["request"].split()[0] for req in removed["evidence"]["requests"]] == ["GET", "GET", "POST"]
    assert "decision checked" in removed["message"], removed["message"]
    compat = r[1]["checks"]["API-COMPAT"]
    assert compat["status"] == "skip"
    assert "are removed" not in compat["message"], compat["message"]
    assert "decision checked: 'removed'" in compat["message"] and "answered 200" in compat["message"]
    supported = r[2]["checks"]["API-LEGACY"]
    assert supported["status"] == "fail", supported
    assert "GET %s/scan?domain=example.com answered 404" % url in supported["message"]
    broken = r[3]["checks"]["API-LEGACY"]
    assert broken["status"] == "fail" and broken["evidence"]["decision"] == "removed", broken
    assert "decision checked" in broken["message"], broken["message"]


def test_no_key_reads_not_sent_in_the_report(ansible, sample_service):
    """9.8: without a key the report says "not sent", never a masked value."""
    inventory = {"all": {"children": {"app": {"hosts": {"app-no-key": {
        "hunter_app_url": sample_service.url, "hunter_api_legacy_decision": "removed"}}}}}}
    run = ansible.run_playbook(PLAYBOOK, inventory, extravars={"hunter_ops_required_checks": API_REQUIRED})
    assert run.report is not None, run.stdout[-3000:]
    leads = {i["id"]: i for i in run.report["items"]}["API-V1-LEADS"]
    assert leads["evidence"]["api_key"] == "not sent", leads["evidence"]
    assert "********" not in json.dumps(leads)


def test_a_bad_value_fails_only_the_items_that_use_it(ansible, sample_service, api_key):
    """9.12: a bad legacy status set fails API-LEGACY only; a bad endpoint entry fails its own item only;
    the messages name the operator's variable."""
    base = {"hunter_app_url": sample_service.url, "hunter_api_key": api_key, "hunter_api_legacy_decision": "removed"}
    endpoints = [{"id": "API-V1-LEADS", "path": "/api/v1/leads", "expected_status": [200, 401]},
                 {"id": "API-V1-SCAN", "path": "/api/v1/scan", "query": {"domain": "example.com"},
                  "expected_status": "2OO"},
                 {"id": "API-V1-SALES", "path": "/api/v1/leads/example.com/sales-summary", "expected_status": 200,
                  "latency_budget_ms": "fast"}]
    inventory = {"all": {"children": {"app": {"hosts": {
        "app-bad-legacy-status": dict(base, api_versioning_legacy_removed_status=["gone"]),
        "app-bad-endpoint": dict(base, api_versioning_endpoints=endpoints),
    }}}}}
    run = ansible.run_playbook(PLAYBOOK, inventory, extravars={"hunter_ops_required_checks": API_REQUIRED})
    assert run.report is not None, run.stdout[-3000:]
    items = {(i["host"], i["id"]): i for i in run.report["items"]}
    status = {key: item["status"] for key, item in items.items()}
    assert [status[("app-bad-legacy-status", i)] for i in ALL_IDS] == ["pass", "pass", "pass", "fail", "skip"]
    legacy = items[("app-bad-legacy-status", "API-LEGACY")]["message"]
    assert "api_versioning_legacy_removed_status" in legacy and "'gone'" in legacy, legacy
    assert [status[("app-bad-endpoint", i)] for i in V1_IDS] == ["pass", "fail", "fail"]
    scan = items[("app-bad-endpoint", "API-V1-SCAN")]["message"]
    assert "api_versioning_endpoints[1].expected_status" in scan, scan
    sales = items[("app-bad-endpoint", "API-V1-SALES")]["message"]
    assert "api_versioning_endpoints[2].latency_budget_ms" in sales, sales
    assert status[("app-bad-endpoint", "API-LEGACY")] == "pass"
    assert "_AnsibleTaggedStr" not in json.dumps(run.report)

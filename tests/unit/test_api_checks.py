"""api_checks: what one API answer may claim, given the request that was sent (CHECKLIST 6.4, issue 9.4/9.5/9.11).

The answers are HttpResponse objects as the collection's HTTP client returns them; the judging is what is tested.
"""
import json

from ansible_collections.hunter.ops.plugins.module_utils import api_checks
from ansible_collections.hunter.ops.plugins.module_utils.http import HttpResponse
from ansible_collections.hunter.ops.plugins.module_utils.validate import InputProblems

BASE = "http://127.0.0.1:8000"
JSON = {"Content-Type": "application/json"}


def answer(status, body=None, path="/api/v1/scan", headers=None, method="GET", raw=None):
    headers = JSON if headers is None else headers
    text = raw if raw is not None else (json.dumps(body) if body is not None else "")
    return HttpResponse(method, BASE + path, status=status, headers=headers, body=text, duration_ms=3.0)


def endpoint(**spec):
    problems = InputProblems({"endpoints": "api_versioning_endpoints"})
    spec.setdefault("id", "API-V1-SCAN")
    spec.setdefault("path", "/api/v1/scan")
    ep = api_checks.parse_endpoint(problems, "endpoints", 0, spec, legacy=False)
    assert not ep.problems, problems.message()
    return ep


def judge(resp, ep, key_sent=True, control=None):
    return api_checks.judge(resp, ep, ep.expected_status, key_sent, control=control)


def test_401_passes_only_without_a_key():
    ep = endpoint(id="API-V1-LEADS", path="/api/v1/leads", expected_status="200|401")
    refused = answer(401, {"detail": "invalid or missing API key"}, path="/api/v1/leads")
    status, message, dummy = judge(refused, ep, key_sent=True)
    assert status == "fail" and "although an API key was sent" in message
    status, message, dummy = judge(refused, ep, key_sent=False)
    assert status == "pass" and "no API key sent" in message
    # 403 with a key is a refusal too, even where a list allows it
    status, dummy, dummy2 = judge(answer(403, {"detail": "forbidden"}), endpoint(expected_status=[200, 403]))
    assert status == "fail"


def test_400_and_422_pass_only_for_deliberately_invalid_input():
    valid = endpoint(expected_status=[200, 400])
    status, message, dummy = judge(answer(400, {"detail": "invalid domain"}), valid)
    assert status == "fail" and "valid input" in message
    invalid = endpoint(query={"domain": "not a domain"}, invalid_input=True)
    assert invalid.expected_status == [400, 422]
    assert judge(answer(422, {"detail": [{"msg": "bad"}]}), invalid)[0] == "pass"
    status, message, dummy = judge(answer(200, {"domain": "not a domain"}), invalid)
    assert status == "fail" and "not validated" in message


def test_an_answer_must_be_of_the_apis_kind():
    ep = endpoint()
    html = answer(200, raw="<html>Welcome to nginx!</html>", headers={"Content-Type": "text/html; charset=utf-8"})
    status, message, dummy = judge(html, ep)
    assert status == "fail" and "text/html, not JSON" in message
    assert judge(answer(200, raw="", headers=JSON), ep)[1].endswith(
        "with an empty body, not JSON: not an answer of the API (a web server or proxy in front of it?)")
    assert "not JSON" in judge(answer(200, raw="{oops", headers=JSON), ep)[1]
    assert judge(answer(200, {"a": 1}, headers={"Content-Type": "application/problem+json"}), ep)[0] == "pass"
    # opted out, and HEAD / 204 carry no body
    assert judge(html, endpoint(require_json=False))[0] == "pass"
    assert judge(answer(200, raw="", headers={}, method="HEAD"), endpoint(method="HEAD"))[0] == "pass"


def test_body_conditions_per_status():
    ep = endpoint(expected_status=[200, 404], body_conditions={200: ["domain == 'example.com'"],
                                                               "404": "error.code == 'unknown_domain'"})
    assert judge(answer(200, {"domain": "example.com"}), ep)[0] == "pass"
    status, message, details = judge(answer(200, {"status": "queued"}), ep)
    assert status == "fail" and "`domain == 'example.com'` is not true (result false)" in message
    assert details["conditions"] == [{"expression": "domain == 'example.com'", "result": False}]
    # a list applies to every 2xx answer
    listed = endpoint(body_conditions=["type(signals) == 'array'"])
    assert judge(answer(201, {"signals": []}), endpoint(expected_status=[201], body_conditions=["type(signals) == 'array'"]))[0] == "pass"
    assert judge(answer(200, {"signals": "a,b"}), listed)[0] == "fail"


def test_a_404_must_differ_from_a_missing_route():
    ep = endpoint(id="API-V1-SALES", path="/api/v1/leads/example.com/sales-summary", expected_status=[200, 404])
    generic = {"detail": "Not Found"}
    resp = answer(404, generic, path=ep.path)
    control_path = ep.path + "/hunter-ops-no-such-route-1234"
    status, message, details = judge(resp, ep, control=lambda: answer(404, generic, path=control_path))
    assert status == "fail" and "the route is missing, not the resource" in message
    assert details["route_check"]["same_answer"] is True
    unknown = answer(404, {"detail": "unknown domain"}, path=ep.path)
    status, message, details = judge(unknown, ep, control=lambda: answer(404, generic, path=control_path))
    assert status == "pass" and "unknown resource" in message and details["route_check"]["same_answer"] is False
    refused = HttpResponse("GET", BASE + control_path, error="connection refused", duration_ms=1.0)
    assert judge(unknown, ep, control=lambda: refused)[0] == "fail"


def test_same_answer_ignores_echoed_paths_timestamps_and_request_ids():
    a = answer(404, {"timestamp": "2026-11-30T22:00:01Z", "status": 404, "error": "Not Found", "path": "/a/b",
                     "requestId": "r1", "message": "No route for /a/b"}, path="/a/b")
    b = answer(404, {"timestamp": "2026-11-30T22:00:02Z", "status": 404, "error": "Not Found", "path": "/a/b/x",
                     "requestId": "r2", "message": "No route for /a/b/x"}, path="/a/b/x")
    assert api_checks.same_answer(a, b, ("/a/b", "/a/b/x"))
    c = answer(404, {"status": 404, "error": "Unknown company"}, path="/a/b")
    assert not api_checks.same_answer(c, b, ("/a/b", "/a/b/x"))
    html = answer(404, raw="<h1>404</h1>", headers={"Content-Type": "text/html"}, path="/a/b")
    assert not api_checks.same_answer(a, html, ("/a/b",))


def test_every_bad_setting_is_named_and_kept_per_entry():
    problems = InputProblems({"endpoints": "api_versioning_endpoints"})
    good = api_checks.parse_endpoint(problems, "endpoints", 0, {"id": "API-V1-LEADS", "path": "/api/v1/leads"}, False)
    bad = api_checks.parse_endpoint(problems, "endpoints", 1, {
        "id": "API-V1-SCAN", "path": "api/v1/scan", "method": "FETCH", "expected_status": "2OO",
        "latency_budget_ms": "fast", "require_json": "maybe", "body_conditions": {"200": "domain ==", "abc": []},
        "bodyconditions": []}, False)
    assert good.problems == [] and good.expected_status == [200]
    assert set(bad.problems) == {"endpoints[1]", "endpoints[1].path", "endpoints[1].method",
                                 "endpoints[1].expected_status", "endpoints[1].latency_budget_ms",
                                 "endpoints[1].require_json", "endpoints[1].body_conditions"}
    message = problems.message(*bad.problems)
    assert "api_versioning_endpoints[1].expected_status: HTTP status codes must be numbers" in message
    assert "api_versioning_endpoints[1]: unknown key(s) bodyconditions" in message
    assert "invalid JMESPath expression" in message and "keys must be HTTP status codes" in message
    assert problems.bad(*good.problems) == []
    no_id = api_checks.parse_endpoint(problems, "endpoints", 2, {"path": "/x"}, False)
    assert no_id.problems == ["endpoints[2].id"]
    reserved = api_checks.parse_endpoint(problems, "endpoints", 3, {"id": "API-LEGACY", "path": "/x"}, False)
    assert reserved.problems == ["endpoints[3].id"] and reserved.id is None
    legacy = api_checks.parse_endpoint(problems, "legacy_endpoints", 0, {"path": "/scan", "id": "X"}, True)
    assert legacy.problems == ["legacy_endpoints[0]"] and legacy.expected_status is None

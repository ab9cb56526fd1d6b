#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: api_probe
short_description: API versioning checks (v1 endpoints, legacy decision, v1/legacy structure)
version_added: 0.1.0
description:
  - Sends each configured request once and returns the items of the production checklist's API versioning
    section (6.4) under RV(checks), keyed by checklist ID.
  - An endpoint item passes when its status is in its allowed set; over its latency budget it is V(warn).
    Several endpoints may share an ID; the item then carries every request and the worst status.
  - V(API-LEGACY) compares the legacy endpoints' statuses with the documented O(legacy_decision)
    (V(removed) expects 404, V(supported) expects 200) and fails when no decision is documented.
    Its evidence always holds the decision, and each legacy response's C(Deprecation), C(Sunset) and C(Link)
    headers.
  - V(API-COMPAT), where legacy is supported, compares each legacy response with its v1 counterpart
    structurally (keys and JSON value types, recursively; lists by their elements) and lists the differences.
  - The API key is sent as a header (O(api_key_header)) and never appears in the result.
  - All requests go through the collection's HTTP client (the one health_probe uses).
author:
  - hunter.ops contributors (@hunter-ops)
extends_documentation_fragment:
  - hunter.ops.http
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
    details: Requests with a method other than GET, HEAD or OPTIONS are not sent in check mode (their items are V(skip)).
options:
  base_url:
    description:
      - Base URL of the service as probed, for example V(http://127.0.0.1:8000). Endpoint paths are appended.
    type: str
    required: true
  api_key:
    description:
      - API key sent in O(api_key_header) with every request that has O(endpoints[].send_api_key). Never shown.
      - Without it, no key is sent (an endpoint requiring one should then allow 401).
    type: str
  api_key_header:
    description:
      - Header carrying O(api_key).
    type: str
    default: X-API-Key
  endpoints:
    description:
      - The versioned endpoints to check. When omitted, the runbook's three are used
        (V(API-V1-LEADS) C(GET /api/v1/leads) 200|401 within 2000 ms, V(API-V1-SCAN)
        C(GET /api/v1/scan?domain=example.com) 200|400, V(API-V1-SALES)
        C(GET /api/v1/leads/example.com/sales-summary) 200|404 within 1000 ms; budgets from the smoke-test runbook).
    type: list
    elements: dict
    suboptions:
      # The request options below are shared with legacy_endpoints (YAML merge, as in the argument spec).
      <<: &request_options
        path:
          description: Path below O(base_url), starting with C(/).
          type: str
          required: true
        method:
          description: HTTP method.
          type: str
          default: GET
          choices: [GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS]
        query:
          description: Query parameters.
          type: dict
          default: {}
        json_body:
          description: Request body, sent as JSON.
          type: raw
        headers:
          description: Extra headers for this request.
          type: dict
          default: {}
        latency_budget_ms:
          description: V(warn) when the answer takes longer than this many milliseconds.
          type: float
        send_api_key:
          description: Send O(api_key) with this request.
          type: bool
          default: true
      id:
        description: Checklist ID the request reports under, for example V(API-V1-SCAN).
        type: str
        required: true
      expected_status:
        description: Allowed status codes (V(200|401), V("200,401") or a list).
        type: raw
        required: true
  legacy_decision:
    description:
      - The documented decision about the unversioned legacy endpoints, V(removed) or V(supported).
      - Deliberately without a default. When it is not set, V(API-LEGACY) fails with
        "legacy endpoint decision not documented" (the legacy endpoints are still requested, for evidence).
    type: str
  legacy_endpoints:
    description:
      - The legacy endpoints. When omitted, C(GET /scan?domain=example.com) (paired with V(API-V1-SCAN)) and
        C(GET /leads) (paired with V(API-V1-LEADS)).
    type: list
    elements: dict
    suboptions:
      <<: *request_options
      compare_with:
        description:
          - ID of the endpoint in O(endpoints) whose response this one must match structurally (V(API-COMPAT)).
        type: str
  legacy_removed_status:
    description:
      - Status codes that mean "removed" (V(410) may be added).
    type: list
    elements: int
    default: [404]
  legacy_supported_status:
    description:
      - Status codes that mean "supported".
    type: list
    elements: int
    default: [200]
  legacy_require_deprecation:
    description:
      - When legacy is supported, V(API-LEGACY) is V(warn) if a legacy response announces no deprecation
        (neither a C(Deprecation) nor a C(Sunset) header).
    type: bool
    default: true
  compat_null_matches_any:
    description:
      - In V(API-COMPAT), accept C(null) on one side against any type on the other (nullable fields).
    type: bool
    default: false
  max_differences:
    description:
      - At most this many structural differences per pair in the evidence (the count is always complete).
    type: int
    default: 30
'''

EXAMPLES = r'''
- name: API versioning checks with a deployment's own scan route
  hunter.ops.api_probe:
    base_url: "{{ hunter_app_url }}"
    api_key: "{{ hunter_api_key }}"
    legacy_decision: "{{ hunter_api_legacy_decision | default(omit) }}"
    endpoints:
      - id: API-V1-LEADS
        path: /api/v1/leads
        expected_status: "200|401"
        latency_budget_ms: 2000
      - id: API-V1-SCAN
        path: /api/v1/scan/domain
        method: POST
        json_body: {domain: example.com}
        expected_status: [200, 400]
      - id: API-V1-SALES
        path: /api/v1/leads/example.com/sales-summary
        expected_status: "200|404"
        latency_budget_ms: 1000
'''

RETURN = r'''
checks:
  description: Check items keyed by checklist ID, each with C(status), C(message) and C(evidence).
  returned: always
  type: dict
  sample:
    API-LEGACY:
      status: pass
      message: "legacy decision 'removed': GET /scan answered 404, GET /leads answered 404 as expected"
      evidence:
        decision: removed
        expected_status: [404]
        requests:
          - {request: "GET http://127.0.0.1:8000/leads", status: 404, duration_ms: 3.1}
    API-COMPAT:
      status: skip
      message: "legacy endpoints are removed: nothing to compare"
      evidence: {decision: removed}
'''

import json

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.six.moves.urllib.parse import urlencode

from ansible_collections.hunter.ops.plugins.module_utils import secret
from ansible_collections.hunter.ops.plugins.module_utils.http import http_argument_spec, request, request_headers
from ansible_collections.hunter.ops.plugins.module_utils.results import FAIL, PASS, SKIP, WARN, check_item
from ansible_collections.hunter.ops.plugins.module_utils.structure import compare
from ansible_collections.hunter.ops.plugins.module_utils.validate import ParameterError, status_codes, url

# The runbook's endpoints and allowed statuses; budgets from the smoke-test runbook.
DEFAULT_ENDPOINTS = [
    dict(id="API-V1-LEADS", path="/api/v1/leads", expected_status="200|401", latency_budget_ms=2000),
    dict(id="API-V1-SCAN", path="/api/v1/scan", query={"domain": "example.com"}, expected_status="200|400"),
    dict(id="API-V1-SALES", path="/api/v1/leads/example.com/sales-summary", expected_status="200|404",
         latency_budget_ms=1000),
]
DEFAULT_LEGACY = [
    dict(path="/scan", query={"domain": "example.com"}, compare_with="API-V1-SCAN"),
    dict(path="/leads", compare_with="API-V1-LEADS"),
]
DECISIONS = ("removed", "supported")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
RESERVED_IDS = ("API-LEGACY", "API-COMPAT")
STATUS_RANK = {PASS: 0, SKIP: 1, WARN: 2, FAIL: 3}
NOT_DOCUMENTED = "legacy endpoint decision not documented"

ENDPOINT_DEFAULTS = dict(method="GET", query={}, json_body=None, headers={}, latency_budget_ms=None,
                         send_api_key=True)


def _normalise(param, index, spec, with_status):
    """An endpoint dict with defaults filled in and its values checked."""
    name = "%s[%d]" % (param, index)
    ep = dict(ENDPOINT_DEFAULTS)
    ep.update(dict((k, v) for k, v in spec.items() if v is not None))
    path = str(ep.get("path") or "")
    if not path.startswith("/"):
        raise ParameterError(name + ".path", "must start with /, got %r" % path)
    ep["method"] = str(ep["method"]).upper()
    if ep["latency_budget_ms"] is not None and float(ep["latency_budget_ms"]) <= 0:
        raise ParameterError(name + ".latency_budget_ms", "must be greater than 0")
    if with_status:
        if not ep.get("id"):
            raise ParameterError(name + ".id", "a checklist ID is required")
        if ep["id"] in RESERVED_IDS:
            raise ParameterError(name + ".id", "%s is reported from legacy_endpoints, not endpoints" % ep["id"])
        ep["expected_status"] = status_codes(name + ".expected_status", ep.get("expected_status"))
    return ep


class ApiProbe(object):
    def __init__(self, module):
        self.module = module
        self.params = params = module.params
        self.check_mode = module.check_mode
        self.base_url = url("base_url", params["base_url"]).rstrip("/")
        self.api_key = params.get("api_key") or None
        self.secrets = secret.protect(module)  # every credential header joins it in _headers()

    def _headers(self, ep):
        headers = request_headers(self.module, ep.get("headers"))
        if self.api_key and ep["send_api_key"]:
            headers[self.params["api_key_header"]] = self.api_key
        return headers

    def send(self, ep):
        """(HttpResponse or None when not sent in check mode, the request's evidence)."""
        target = self.base_url + ep["path"]
        if ep["query"]:
            target += ("&" if "?" in target else "?") + urlencode(sorted(ep["query"].items()))
        if self.check_mode and ep["method"] not in SAFE_METHODS:
            return None, {"request": "%s %s" % (ep["method"], target), "sent": False,
                          "note": "check mode: %s not sent" % ep["method"]}
        p = self.params
        resp = request(target, method=ep["method"], headers=self._headers(ep), json_body=ep.get("json_body"),
                       timeout=p["timeout"], validate_certs=p["validate_certs"], ca_path=p.get("ca_path"),
                       client_cert=p.get("client_cert"), client_key=p.get("client_key"))
        evidence = resp.evidence(secrets=self.secrets)
        evidence["api_key"] = ("sent in %s (hidden)" % p["api_key_header"]) if (
            self.api_key and ep["send_api_key"]) else "not sent"
        if ep["latency_budget_ms"] is not None:
            evidence["latency_budget_ms"] = ep["latency_budget_ms"]
        return resp, evidence

    # -- versioned endpoints ------------------------------------------------------------
    def endpoint_result(self, ep):
        """(status, one-line outcome, evidence, response) of one versioned endpoint."""
        resp, evidence = self.send(ep)
        evidence["expected_status"] = ep["expected_status"]
        if resp is None:
            return SKIP, evidence["note"], evidence, None
        status, outcome = judge(resp, ep, ep["expected_status"], "|".join(str(c) for c in ep["expected_status"]))
        if status == PASS:
            outcome += " in %.1f ms" % resp.duration_ms
        return status, outcome, evidence, resp

    # -- legacy -----------------------------------------------------------------------
    def legacy_results(self, endpoints):
        out = []
        for ep in endpoints:
            resp, evidence = self.send(ep)
            if resp is not None and resp.status is not None:
                for header in ("deprecation", "sunset", "link"):
                    evidence[header] = resp.headers.get(header)
            out.append((ep, resp, evidence))
        return out

    def legacy_item(self, decision_raw, results):
        decision = str(decision_raw or "").strip().lower()
        requests = [outcome[2] for outcome in results]
        p = self.params
        if not decision:
            return check_item(FAIL, "%s (legacy_decision is not set; document 'removed' or 'supported')" % NOT_DOCUMENTED,
                              {"decision": "not documented", "requests": requests})
        if decision not in DECISIONS:
            return check_item(FAIL, "legacy_decision: must be 'removed' or 'supported', got %r" % (decision_raw,),
                              {"decision": str(decision_raw), "requests": requests})
        expected = p["legacy_%s_status" % decision]
        evidence = {"decision": decision, "expected_status": expected, "requests": requests}
        allowed = "|".join(str(c) for c in expected)
        outcomes, status = [], PASS
        missing_deprecation = []
        for ep, resp, ev in results:
            if resp is None:
                outcomes.append("%s not sent (check mode)" % ev["request"])
                status = worst([status, SKIP])
                continue
            answered, outcome = judge(resp, ep, expected, "%s for '%s'" % (allowed, decision))
            outcomes.append(outcome)
            status = worst([status, answered])
            if answered != FAIL and decision == "supported" and not (ev.get("deprecation") or ev.get("sunset")):
                missing_deprecation.append(resp.describe_request())
        message = "legacy decision '%s': %s" % (decision, "; ".join(outcomes))
        if status == PASS:
            message += " as expected"
        if missing_deprecation and p["legacy_require_deprecation"]:
            evidence["deprecation_missing"] = missing_deprecation
            if status in (PASS, WARN):
                status = WARN
                message += "; legacy is supported but announces no deprecation (no Deprecation/Sunset header)"
        return check_item(status, message, evidence)

    def compat_item(self, decision_raw, legacy, v1_responses):
        decision = str(decision_raw or "").strip().lower()
        if decision != "supported":
            reason = "legacy endpoints are removed: nothing to compare" if decision == "removed" else (
                "%s: nothing to compare" % NOT_DOCUMENTED if not decision else
                "legacy_decision %r is not valid: nothing to compare" % (decision_raw,))
            return check_item(SKIP, reason, {"decision": decision or "not documented"})
        pairs, problems, unusable = [], [], []
        for ep, resp, dummy in legacy:
            other = ep.get("compare_with")
            if not other:
                continue
            v1 = v1_responses.get(other)
            pair = {"v1": v1.describe_request() if v1 is not None else other,
                    "legacy": resp.describe_request() if resp is not None else ep["path"]}
            pairs.append(pair)
            why = _not_comparable(v1, "v1") or _not_comparable(resp, "legacy")
            if why:
                pair["error"] = why
                unusable.append("%s vs %s: %s" % (pair["v1"], pair["legacy"], why))
                continue
            diffs, notes = compare(v1.json(), resp.json(), null_matches_any=self.params["compat_null_matches_any"])
            pair["differences_count"] = len(diffs)
            pair["differences"] = diffs[:self.params["max_differences"]]
            if notes:
                pair["notes"] = notes
            if diffs:
                problems.append("%s vs %s: %d difference(s): %s" % (
                    pair["v1"], pair["legacy"], len(diffs), "; ".join(diffs[:3]) + ("; ..." if len(diffs) > 3 else "")))
        evidence = {"decision": decision, "pairs": pairs}
        if not pairs:
            return check_item(SKIP, "no legacy endpoint is paired with a v1 endpoint (compare_with)", evidence)
        if problems:
            return check_item(FAIL, "v1 and legacy differ: " + " | ".join(problems + unusable), evidence)
        if unusable:
            return check_item(FAIL, "cannot compare v1 and legacy: " + " | ".join(unusable), evidence)
        return check_item(PASS, "v1 and legacy responses have the same structure (%d pair(s) compared)" % len(pairs),
                          evidence)


def judge(resp, ep, expected, expectation):
    """(status, one-line outcome) of one answered request: fail on an error or a status not in
    ``expected`` (``expectation`` says what was expected), warn over the endpoint's latency budget."""
    what = resp.describe_request()
    if resp.error:
        return FAIL, "%s failed: %s" % (what, resp.error)
    if resp.status not in expected:
        return FAIL, "%s answered %s (expected %s)" % (what, resp.status, expectation)
    budget = ep["latency_budget_ms"]
    if budget is not None and resp.duration_ms > budget:
        return WARN, "%s answered %s in %.0f ms, over its %.0f ms budget" % (what, resp.status, resp.duration_ms,
                                                                             budget)
    return PASS, "%s answered %s" % (what, resp.status)


def _not_comparable(resp, side):
    if resp is None:
        return "%s request not sent" % side
    if resp.error:
        return "%s request failed: %s" % (side, resp.error)
    if not 200 <= resp.status < 300:
        return "%s answered %s, no body to compare" % (side, resp.status)
    if resp.json() is None:
        return "%s answer is not JSON" % side
    return None


def worst(statuses):
    return max(statuses, key=STATUS_RANK.get)


def run(module):
    params = module.params
    probe = ApiProbe(module)
    endpoints = [_normalise("endpoints", i, ep, True)
                 for i, ep in enumerate(params.get("endpoints") or DEFAULT_ENDPOINTS)]
    known = set(ep["id"] for ep in endpoints)
    if params.get("legacy_endpoints"):
        legacy_eps = [_normalise("legacy_endpoints", i, ep, False) for i, ep in enumerate(params["legacy_endpoints"])]
    else:  # the default pairs only apply to the versioned endpoints that are configured
        legacy_eps = [_normalise("legacy_endpoints", i, dict(ep, compare_with=ep["compare_with"] if ep[
            "compare_with"] in known else None), False) for i, ep in enumerate(DEFAULT_LEGACY)]
    for i, ep in enumerate(legacy_eps):
        if ep.get("compare_with") and ep["compare_with"] not in known:
            raise ParameterError("legacy_endpoints[%d].compare_with" % i,
                                 "no endpoint with id %s in endpoints" % ep["compare_with"])
    for name in ("legacy_removed_status", "legacy_supported_status"):
        status_codes(name, params[name])
    if params["max_differences"] < 1:
        raise ParameterError("max_differences", "must be at least 1")

    checks, grouped, v1_responses = {}, {}, {}
    for ep in endpoints:
        grouped.setdefault(ep["id"], []).append(probe.endpoint_result(ep))
        v1_responses.setdefault(ep["id"], grouped[ep["id"]][-1][3])
    for check_id, results in grouped.items():
        if len(results) == 1:
            status, message, evidence = results[0][:3]
        else:
            status = worst([r[0] for r in results])
            message = "; ".join(r[1] for r in results)
            evidence = {"requests": [r[2] for r in results]}
        checks[check_id] = check_item(status, message, evidence)

    decision = params.get("legacy_decision")
    legacy = probe.legacy_results(legacy_eps)
    checks["API-LEGACY"] = probe.legacy_item(decision, legacy)
    checks["API-COMPAT"] = probe.compat_item(decision, legacy, v1_responses)
    return checks


def main():
    endpoint_options = dict(
        path=dict(type="str", required=True),
        method=dict(type="str", default="GET", choices=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
        query=dict(type="dict", default={}),
        json_body=dict(type="raw"),
        headers=dict(type="dict", default={}),
        latency_budget_ms=dict(type="float"),
        send_api_key=dict(type="bool", default=True),
    )
    versioned = dict(endpoint_options, id=dict(type="str", required=True),
                     expected_status=dict(type="raw", required=True))
    legacy = dict(endpoint_options, compare_with=dict(type="str"))
    argument_spec = http_argument_spec()
    argument_spec.update(
        base_url=dict(type="str", required=True),
        api_key=dict(type="str", no_log=True),
        api_key_header=dict(type="str", default="X-API-Key", no_log=False),
        endpoints=dict(type="list", elements="dict", options=versioned),
        legacy_decision=dict(type="str"),
        legacy_endpoints=dict(type="list", elements="dict", options=legacy),
        legacy_removed_status=dict(type="list", elements="int", default=[404]),
        legacy_supported_status=dict(type="list", elements="int", default=[200]),
        legacy_require_deprecation=dict(type="bool", default=True),
        compat_null_matches_any=dict(type="bool", default=False),
        max_differences=dict(type="int", default=30),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        checks = run(module)
    except ParameterError as err:
        module.fail_json(msg=str(err))
    module.exit_json(changed=False, checks=json.loads(json.dumps(checks, default=str)))


if __name__ == "__main__":
    main()

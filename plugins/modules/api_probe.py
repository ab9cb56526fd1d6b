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
  - "An endpoint item passes only on an answer that is right for the request that was sent:
    its status is in its allowed set; a 401/403 passes only when no API key was sent (with a key it means the
    key is refused); a 400/422 passes only for a request marked O(endpoints[].invalid_input), which must not be
    accepted either; the answer is JSON (content type and body) unless O(endpoints[].require_json=false);
    the O(endpoints[].body_conditions) for its status hold; and a 404 differs from the answer to the same
    request on a path with no route (a control request with a random last segment), so a framework's generic
    Not Found for a missing route never passes as an unknown resource."
  - Over its latency budget an endpoint is V(warn). Several endpoints may share an ID; the item then carries
    every request and the worst status.
  - V(API-LEGACY) judges every legacy endpoint, whatever its method, against the documented
    O(legacy_decision) (V(removed) expects O(legacy_removed_status), V(supported) the endpoint's allowed
    statuses, by default O(legacy_supported_status), with the same rules as a v1 endpoint), and fails when no
    decision is documented. Its message and evidence name the decision as the decision checked, also when
    the requests could not be sent; the evidence holds each legacy response's C(Deprecation), C(Sunset) and
    C(Link) headers.
  - V(API-COMPAT), where legacy is supported, compares each legacy response with its v1 counterpart
    structurally (keys and JSON value types, recursively; lists by their elements) and lists the differences.
  - A bad value fails only the items that use it, every bad value is reported, and the messages name the
    variable the operator set (O(param_labels)).
  - The API key is sent as a header (O(api_key_header)) and never appears in the result.
  - All requests go through the collection's HTTP client (the one health_probe uses).
author:
  - hunter.ops contributors (@hunter-ops)
extends_documentation_fragment:
  - hunter.ops.http
  - hunter.ops.param_labels
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
      - Without it, no key is sent (an endpoint requiring one may then allow 401).
    type: str
  api_key_header:
    description:
      - Header carrying O(api_key).
    type: str
    default: X-API-Key
  api_key_configured:
    description:
      - The caller configured an API key for this host (the role sets it when the inventory defines
        C(hunter_api_key) or C(api_versioning_api_key)). An empty O(api_key) is then a configuration error (for
        example an undefined vault variable) that fails the items of every request that would send the key; those
        requests are not sent, so an empty key never turns into "no key sent, 401 acceptable".
    type: bool
    default: false
  endpoints:
    description:
      - The versioned endpoints to check. When omitted, the runbook's three with the seed's shapes are used
        (V(API-V1-LEADS) C(GET /api/v1/leads) 200 with C(type(leads) == 'array'), or 401 when no key is sent,
        within 2000 ms; V(API-V1-SCAN) C(GET /api/v1/scan?domain=example.com) 200 with
        C(domain == 'example.com'); V(API-V1-SALES) C(GET /api/v1/leads/example.com/sales-summary) 200 with
        C(domain == 'example.com'), or a 404 told apart from a missing route, within 1000 ms; budgets from the
        smoke-test runbook).
      - Each entry is checked on its own; an entry with a bad setting is not sent and fails its own item only.
    type: list
    elements: dict
    suboptions:
      id:
        description: Checklist ID the request reports under, for example V(API-V1-SCAN).
        type: str
        required: true
      path:
        description: Path below O(base_url), starting with C(/).
        type: str
        required: true
      method:
        description: HTTP method, one of V(GET), V(HEAD), V(POST), V(PUT), V(PATCH), V(DELETE), V(OPTIONS).
        type: str
        default: GET
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
      send_api_key:
        description: Send O(api_key) with this request.
        type: bool
        default: true
      expected_status:
        description:
          - Statuses that may pass (V(200|401), V("200,401") or a list), subject to the rules above (a 401 with a
            key sent, or a 400/422 for valid input, never passes).
          - Default V([200]), or V([400, 422]) with O(endpoints[].invalid_input).
        type: raw
      body_conditions:
        description:
          - JMESPath expressions that must evaluate to exactly V(true) on the JSON body. A list (or one
            expression) applies to 2xx answers; a mapping of status code (or V(2xx)) to expressions applies per
            status (see EXAMPLES, where C(200) holds C(domain == 'example.com') and C(404) an error code).
        type: raw
      require_json:
        description:
          - The answer must be JSON (a JSON content type and a JSON body), as the API's answers are. HEAD requests
            and 204/205/304 answers carry no body and are exempt.
        type: bool
        default: true
      invalid_input:
        description:
          - This request sends deliberately invalid input. Only such a request may pass on 400/422, and it fails on
            a 2xx (the input was not validated).
        type: bool
        default: false
      latency_budget_ms:
        description: V(warn) when the answer takes longer than this many milliseconds.
        type: float
  legacy_decision:
    description:
      - The documented decision about the unversioned legacy endpoints, V(removed) or V(supported).
      - Deliberately without a default. When it is not set, V(API-LEGACY) fails with
        "legacy endpoint decision not documented" (the legacy endpoints are still requested, for evidence).
    type: str
  legacy_endpoints:
    description:
      - The legacy endpoints, each judged on its own (also non-GET ones). When omitted,
        C(GET /scan?domain=example.com) (paired with V(API-V1-SCAN), 200 with C(domain == 'example.com') when
        supported) and C(GET /leads) (paired with V(API-V1-LEADS)).
      - Same keys as O(endpoints) without C(id); C(expected_status) is what "supported" means for this endpoint
        (default O(legacy_supported_status)); C(require_json) and C(body_conditions) apply under V(supported).
    type: list
    elements: dict
    suboptions:
      path:
        description: Path below O(base_url), starting with C(/).
        type: str
        required: true
      method:
        description: HTTP method.
        type: str
        default: GET
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
      send_api_key:
        description: Send O(api_key) with this request.
        type: bool
        default: true
      expected_status:
        description: Statuses meaning "supported" for this endpoint; default O(legacy_supported_status).
        type: raw
      body_conditions:
        description: As O(endpoints[].body_conditions), checked under the decision V(supported).
        type: raw
      require_json:
        description: As O(endpoints[].require_json), under the decision V(supported).
        type: bool
        default: true
      invalid_input:
        description: As O(endpoints[].invalid_input).
        type: bool
        default: false
      latency_budget_ms:
        description: V(warn) when the answer takes longer than this many milliseconds.
        type: float
      compare_with:
        description:
          - ID of the endpoint in O(endpoints) whose response this one must match structurally (V(API-COMPAT)).
        type: str
  legacy_removed_status:
    description:
      - Status codes that mean "removed" (a list or V(404|410)).
    type: raw
    default: [404]
  legacy_supported_status:
    description:
      - Status codes that mean "supported", for the legacy endpoints without their own C(expected_status).
    type: raw
    default: [200]
  legacy_require_deprecation:
    description:
      - When legacy is supported, V(API-LEGACY) is V(warn) if a legacy response announces no deprecation
        (neither a C(Deprecation) nor a C(Sunset) header). A boolean.
    type: raw
    default: true
  compat_null_matches_any:
    description:
      - In V(API-COMPAT), accept C(null) on one side against any type on the other (nullable fields). A boolean.
    type: raw
    default: false
  max_differences:
    description:
      - At most this many structural differences per pair in the evidence (the count is always complete).
        A number of at least 1.
    type: raw
    default: 30
'''

EXAMPLES = r'''
- name: API versioning checks with a deployment's own routes and shapes
  hunter.ops.api_probe:
    base_url: "{{ hunter_app_url }}"
    api_key: "{{ hunter_api_key }}"
    api_key_configured: true
    legacy_decision: "{{ hunter_api_legacy_decision | default(omit) }}"
    endpoints:
      - id: API-V1-LEADS
        path: /api/v1/leads
        expected_status: [200]
        body_conditions: ["type(items) == 'array'"]
        latency_budget_ms: 2000
      - id: API-V1-SCAN
        path: /api/v1/scan
        method: POST
        json_body: {domain: example.com}
        body_conditions: ["domain == 'example.com'"]
      - id: API-V1-SCAN
        path: /api/v1/scan
        method: POST
        json_body: {domain: "not a domain"}
        invalid_input: true
        expected_status: [422]
      - id: API-V1-SALES
        path: /api/v1/leads/unknown-domain.example/sales-summary
        expected_status: [404]
        body_conditions: {404: ["error.code == 'unknown_domain'"]}
    legacy_endpoints:
      - {path: /leads, compare_with: API-V1-LEADS}
      - {path: /scan, method: POST, json_body: {domain: example.com}, compare_with: API-V1-SCAN}
'''

RETURN = r'''
checks:
  description: Check items keyed by checklist ID, each with C(status), C(message) and C(evidence).
  returned: always
  type: dict
  sample:
    API-V1-SALES:
      status: fail
      message: >-
        GET http://127.0.0.1:8000/api/v1/leads/example.com/sales-summary answered 404 exactly like
        GET http://127.0.0.1:8000/api/v1/leads/example.com/sales-summary/hunter-ops-no-such-route-1f2e3d4c,
        a path with no route: the route is missing, not the resource (...)
      evidence:
        request: "GET http://127.0.0.1:8000/api/v1/leads/example.com/sales-summary"
        status: 404
        response: '{"detail":"Not Found"}'
        api_key: sent in X-API-Key (hidden)
        expected_status: [200, 404]
        route_check: {status: 404, same_answer: true}
    API-LEGACY:
      status: pass
      message: "decision checked: 'removed': GET http://127.0.0.1:8000/scan answered 404; GET http://127.0.0.1:8000/leads answered 404"
      evidence:
        decision: removed
        expected_status: [404]
        requests:
          - {request: "GET http://127.0.0.1:8000/leads", status: 404, duration_ms: 3.1}
    API-COMPAT:
      status: skip
      message: "not compared: decision checked: 'removed' (API-LEGACY judges it); in this run: GET http://127.0.0.1:8000/scan answered 404"
      evidence: {decision: removed}
'''

import json
import uuid

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.six.moves.urllib.parse import urlencode

from ansible_collections.hunter.ops.plugins.module_utils import api_checks, secret, validate
from ansible_collections.hunter.ops.plugins.module_utils.api_checks import FAIL, PASS, SKIP, WARN, worst
from ansible_collections.hunter.ops.plugins.module_utils.http import http_argument_spec, request, request_headers
from ansible_collections.hunter.ops.plugins.module_utils.results import check_item
from ansible_collections.hunter.ops.plugins.module_utils.structure import compare

# The runbook's endpoints with the seed's shapes (sandbox/app.py); budgets from the smoke-test runbook.
DEFAULT_ENDPOINTS = [
    dict(id="API-V1-LEADS", path="/api/v1/leads", expected_status=[200, 401], latency_budget_ms=2000,
         body_conditions={200: ["type(leads) == 'array'"]}),
    dict(id="API-V1-SCAN", path="/api/v1/scan", query={"domain": "example.com"}, expected_status=[200],
         body_conditions={200: ["domain == 'example.com'"]}),
    dict(id="API-V1-SALES", path="/api/v1/leads/example.com/sales-summary", expected_status=[200, 404],
         latency_budget_ms=1000, body_conditions={200: ["domain == 'example.com'"]}),
]
DEFAULT_LEGACY = [
    dict(path="/scan", query={"domain": "example.com"}, compare_with="API-V1-SCAN",
         body_conditions={200: ["domain == 'example.com'"]}),
    dict(path="/leads", compare_with="API-V1-LEADS"),
]
DECISIONS = ("removed", "supported")
NOT_DOCUMENTED = "legacy endpoint decision not documented"
# Options every request uses: a bad one fails every item.
COMMON = ("base_url", "headers", "secret_headers")
LEGACY_OPTIONS = ("legacy_endpoints", "legacy_removed_status", "legacy_supported_status", "legacy_require_deprecation")
COMPAT_OPTIONS = ("compat_null_matches_any", "max_differences")


class ApiProbe(object):
    def __init__(self, module, problems):
        self.module = module
        self.params = params = module.params
        self.problems = problems
        self.secrets = secret.protect(module)  # every credential header joins it in headers()
        self.base_url = (problems.check("base_url", validate.url, params["base_url"]) or "").rstrip("/")
        self.api_key = params.get("api_key") or None
        self.key_header = str(params.get("api_key_header") or "").strip()
        if self.api_key and not self.key_header:
            problems.add("api_key_header", "a header name is required to send the API key")
        if not self.api_key and params["api_key_configured"]:
            problems.add("api_key", "empty, although the inventory sets it (an undefined vault variable?); the "
                                    "requests that send the key were not sent without one")
        try:
            request_headers(module)
        except validate.ParameterError as err:
            problems.add(err.param, err.problem)

    # -- which settings a request depends on ------------------------------------------------------
    def inputs(self, ep):
        """The InputProblems keys whose values this request uses."""
        used = list(COMMON) + list(ep.problems)
        if ep.send_api_key:
            used += ["api_key", "api_key_header"]
        return used

    def bad_inputs(self, ep):
        return self.problems.bad(*self.inputs(ep))

    def not_probed(self, ep):
        return "%s %s not sent: %s" % (ep.method, ep.path, self.problems.message(*self.inputs(ep)))

    def unsent(self, ep):
        return {"request": "%s %s" % (ep.method, ep.path), "sent": False,
                "input_problems": self.problems.message(*self.inputs(ep))}

    def key_sent(self, ep):
        return bool(self.api_key and ep.send_api_key)

    # -- sending ------------------------------------------------------------------------------------
    def target(self, ep, path=None):
        target = self.base_url + (path or ep.path)
        if ep.query:
            target += ("&" if "?" in target else "?") + urlencode(sorted(ep.query.items()), doseq=True)
        return target

    def send(self, ep, path=None):
        """(HttpResponse or None when not sent in check mode, the request's evidence)."""
        target = self.target(ep, path)
        if self.module.check_mode and ep.method not in api_checks.SAFE_METHODS:
            return None, {"request": "%s %s" % (ep.method, target), "sent": False,
                          "note": "check mode: %s not sent" % ep.method}
        headers = request_headers(self.module, ep.headers)
        if self.key_sent(ep):
            headers[self.key_header] = self.api_key
        p = self.params
        resp = request(target, method=ep.method, headers=headers, json_body=ep.json_body,
                       timeout=p["timeout"], validate_certs=p["validate_certs"], ca_path=p.get("ca_path"),
                       client_cert=p.get("client_cert"), client_key=p.get("client_key"))
        evidence = resp.evidence(secrets=self.secrets)
        evidence["api_key"] = ("sent in %s (hidden)" % self.key_header) if self.key_sent(ep) else "not sent"
        if resp.status is not None:
            evidence["content_type"] = resp.headers.get("content-type")
        if ep.latency_budget_ms is not None:
            evidence["latency_budget_ms"] = ep.latency_budget_ms
        if ep.invalid_input:
            evidence["invalid_input"] = True
        return resp, evidence

    def control(self, ep):
        """The same request on a path with no route, for telling a missing route from a missing resource."""
        path = ep.path.rstrip("/") + "/" + api_checks.NO_ROUTE_SEGMENT + uuid.uuid4().hex[:8]
        return lambda: self.send(ep, path)[0]

    def answer(self, ep, allowed, expectation=None):
        """(status, outcome, evidence, response) of one request judged against ``allowed``."""
        if self.bad_inputs(ep):
            return FAIL, self.not_probed(ep), self.unsent(ep), None
        resp, evidence = self.send(ep)
        evidence["expected_status"] = allowed
        if resp is None:
            return SKIP, evidence["note"], evidence, None
        status, outcome, details = api_checks.judge(
            resp, ep, allowed, self.key_sent(ep), expectation=expectation,
            control=self.control(ep) if 404 in allowed else None, secrets=self.secrets)
        evidence.update(details)
        if status == PASS and resp.duration_ms is not None:
            outcome += " in %.1f ms" % resp.duration_ms
        return status, outcome, evidence, resp

    # -- items ----------------------------------------------------------------------------------------
    def endpoint_items(self, endpoints):
        grouped, first_response = {}, {}
        for ep in endpoints:
            result = self.answer(ep, ep.expected_status or [200])
            grouped.setdefault(ep.id, []).append(result)
            first_response.setdefault(ep.id, result[3])
        checks = {}
        for check_id, results in grouped.items():
            if len(results) == 1:
                status, message, evidence = results[0][:3]
            else:
                status = worst([r[0] for r in results])
                message = "; ".join(r[1] for r in results)
                evidence = {"requests": [r[2] for r in results]}
            checks[check_id] = check_item(status, message, evidence)
        return checks, first_response

    def legacy_bad(self):
        """Bad settings API-LEGACY uses (compare_with only matters to API-COMPAT)."""
        return [key for key in self.problems.bad(*LEGACY_OPTIONS + COMMON) if not key.endswith(".compare_with")]

    def legacy_item(self, decision, decision_raw, legacy):
        """API-LEGACY: ``legacy`` is [(endpoint, status, outcome, evidence, response)]."""
        requests = [entry[3] for entry in legacy]
        observed = "; ".join(entry[2] for entry in legacy)
        if not decision_raw:
            return check_item(FAIL, "%s (legacy_decision is not set; document 'removed' or 'supported')%s" % (
                NOT_DOCUMENTED, "; observed: " + observed if observed else ""),
                {"decision": "not documented", "requests": requests})
        if decision not in DECISIONS:
            return check_item(FAIL, "%s: must be 'removed' or 'supported', got %r" % (
                self.problems.label("legacy_decision"), decision_raw), {"decision": decision_raw, "requests": requests})
        evidence = {"decision": decision, "requests": requests}
        bad = self.legacy_bad()
        if bad:
            message = self.problems.message(*bad)
            evidence["input_problems"] = message
            return check_item(FAIL, "decision checked: '%s'; not probed: %s" % (decision, message), evidence)
        if decision == "removed":
            evidence["expected_status"] = self.removed_status
        if not legacy:
            return check_item(SKIP, "decision checked: '%s'; no legacy endpoint configured" % decision, evidence)
        status = worst([entry[1] for entry in legacy])
        message = "decision checked: '%s': %s" % (decision, observed)
        missing = []
        if decision == "supported":
            missing = [entry[4].describe_request() for entry in legacy if entry[1] != FAIL and entry[4] is not None
                       and entry[4].status is not None and not (entry[3].get("deprecation") or entry[3].get("sunset"))]
        if missing and self.require_deprecation:
            evidence["deprecation_missing"] = missing
            if status in (PASS, WARN):
                status = WARN
                message += "; legacy is supported but announces no deprecation (no Deprecation/Sunset header)"
        return check_item(status, message, evidence)

    def legacy_results(self, decision, endpoints):
        """[(endpoint, status, outcome, evidence, response)] of every legacy endpoint, judged against the
        decision; without a valid decision the answers are only recorded (the item fails anyway)."""
        if decision in DECISIONS and self.legacy_bad():
            return []
        out = []
        for ep in endpoints:
            if decision == "supported":
                allowed = ep.allowed(self.supported_status)
                status, outcome, evidence, resp = self.answer(
                    ep, allowed, "%s for 'supported'" % "|".join(str(c) for c in allowed))
            elif self.bad_inputs(ep):
                status, outcome, evidence, resp = FAIL, self.not_probed(ep), self.unsent(ep), None
            else:
                resp, evidence = self.send(ep)
                status, outcome = self.removed_outcome(resp, evidence, decision == "removed")
            if resp is not None and resp.status is not None:
                for header in ("deprecation", "sunset", "link"):
                    evidence[header] = resp.headers.get(header)
            out.append((ep, status, outcome, evidence, resp))
        return out

    def removed_outcome(self, resp, evidence, judged):
        """(status, outcome) of a legacy answer under 'removed' (``judged``), or only what it answered."""
        allowed = self.removed_status
        if judged:
            evidence["expected_status"] = allowed
        if resp is None:
            return SKIP, evidence["note"]
        if resp.error:
            return FAIL, "%s failed: %s" % (resp.describe_request(), resp.error)
        answered = "%s answered %s" % (resp.describe_request(), resp.status)
        if not judged or resp.status in allowed:
            return PASS, answered
        return FAIL, "%s: the route still answers (expected %s for 'removed')" % (
            answered, "|".join(str(c) for c in allowed))

    def compat_item(self, decision, decision_raw, legacy, v1_responses):
        if decision != "supported":
            answered = ", ".join("%s answered %s" % (entry[4].describe_request(), entry[4].status) for entry in legacy
                                 if entry[4] is not None and entry[4].status is not None)
            if not decision_raw:
                reason = "not compared: %s" % NOT_DOCUMENTED
            elif decision not in DECISIONS:
                reason = "not compared: legacy_decision %r is not valid" % (decision_raw,)
            else:
                reason = "not compared: decision checked: '%s' (API-LEGACY judges it)" % decision
            if answered:
                reason += "; in this run: %s" % answered
            return check_item(SKIP, reason, {"decision": decision or "not documented"})
        evidence = {"decision": decision}
        bad = self.problems.bad(*COMPAT_OPTIONS + LEGACY_OPTIONS + COMMON)
        if bad:
            return check_item(FAIL, "not compared: %s" % self.problems.message(*bad), evidence)
        pairs, problems, unusable = [], [], []
        for ep, dummy, dummy2, dummy3, resp in legacy:
            other = ep.compare_with
            if not other:
                continue
            v1 = v1_responses.get(other)
            pair = {"v1": v1.describe_request() if v1 is not None else other,
                    "legacy": resp.describe_request() if resp is not None else ep.path}
            pairs.append(pair)
            why = _not_comparable(v1, "v1") or _not_comparable(resp, "legacy")
            if why:
                pair["error"] = why
                unusable.append("%s vs %s: %s" % (pair["v1"], pair["legacy"], why))
                continue
            diffs, notes = compare(v1.json(), resp.json(), null_matches_any=self.null_matches_any)
            pair["differences_count"] = len(diffs)
            pair["differences"] = diffs[:self.max_differences]
            if notes:
                pair["notes"] = notes
            if diffs:
                problems.append("%s vs %s: %d difference(s): %s" % (
                    pair["v1"], pair["legacy"], len(diffs), "; ".join(diffs[:3]) + ("; ..." if len(diffs) > 3 else "")))
        evidence["pairs"] = pairs
        if not pairs:
            return check_item(SKIP, "no legacy endpoint is paired with a v1 endpoint (compare_with)", evidence)
        if problems:
            return check_item(FAIL, "v1 and legacy differ: " + " | ".join(problems + unusable), evidence)
        if unusable:
            return check_item(FAIL, "cannot compare v1 and legacy: " + " | ".join(unusable), evidence)
        return check_item(PASS, "v1 and legacy responses have the same structure (%d pair(s) compared)" % len(pairs),
                          evidence)

    # -- settings of the legacy and compat items --------------------------------------------------------
    def legacy_settings(self):
        p, problems = self.params, self.problems
        self.removed_status = problems.check("legacy_removed_status", validate.status_codes,
                                             p["legacy_removed_status"]) or [404]
        self.supported_status = problems.check("legacy_supported_status", validate.status_codes,
                                               p["legacy_supported_status"]) or [200]
        self.require_deprecation = api_checks.boolean(
            problems, "legacy_require_deprecation", p["legacy_require_deprecation"], True)
        self.null_matches_any = api_checks.boolean(
            problems, "compat_null_matches_any", p["compat_null_matches_any"], False)
        self.max_differences = 30
        try:
            self.max_differences = int(str(p["max_differences"]).strip())
            if self.max_differences < 1:
                problems.add("max_differences", "must be at least 1, got %s" % self.max_differences)
        except ValueError:
            problems.add("max_differences", "must be a whole number, got %r" % (p["max_differences"],))


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


def _entries(problems, param, value, defaults, legacy):
    if not value:
        value = defaults
    return [api_checks.parse_endpoint(problems, param, i, spec, legacy) for i, spec in enumerate(value)]


def run(module):
    params = module.params
    problems = validate.InputProblems(params.get("param_labels"))
    probe = ApiProbe(module, problems)
    probe.legacy_settings()
    endpoints = _entries(problems, "endpoints", params.get("endpoints"), DEFAULT_ENDPOINTS, False)
    known = set(ep.id for ep in endpoints if ep.id)
    if params.get("legacy_endpoints"):
        legacy_eps = _entries(problems, "legacy_endpoints", params["legacy_endpoints"], None, True)
    else:  # the default pairs only apply to the versioned endpoints that are configured
        legacy_eps = _entries(problems, "legacy_endpoints", [
            dict(ep, compare_with=ep["compare_with"] if ep["compare_with"] in known else None)
            for ep in DEFAULT_LEGACY], None, True)
    for ep in legacy_eps:
        if ep.compare_with and ep.compare_with not in known:
            name = "%s.compare_with" % ep.param
            problems.add(name, "no endpoint with id %s in endpoints" % ep.compare_with)

    checks = {}
    unnamed = [ep for ep in endpoints if not ep.id]
    named = [ep for ep in endpoints if ep.id]
    v1_checks, v1_responses = probe.endpoint_items(named)
    checks.update(v1_checks)
    if unnamed:  # an entry without a usable ID cannot be attributed: every versioned item carries it
        message = problems.message(*[key for ep in unnamed for key in ep.problems])
        for check_id in set(ep["id"] for ep in DEFAULT_ENDPOINTS) | set(checks):
            checks[check_id] = check_item(FAIL, message, {"input_problems": message})

    decision_raw = str(params.get("legacy_decision") or "").strip()
    decision = decision_raw.lower()
    legacy = probe.legacy_results(decision, legacy_eps)
    checks["API-LEGACY"] = probe.legacy_item(decision, decision_raw, legacy)
    checks["API-COMPAT"] = probe.compat_item(decision, decision_raw, legacy, v1_responses)
    return checks


def main():
    argument_spec = http_argument_spec()
    argument_spec.update(
        base_url=dict(type="str", required=True),
        api_key=dict(type="str", no_log=True),
        api_key_header=dict(type="str", default="X-API-Key", no_log=False),
        api_key_configured=dict(type="bool", default=False),
        # Validated here, entry by entry: a bad entry fails its own item only (issue 9.12).
        endpoints=dict(type="list", elements="dict"),
        legacy_decision=dict(type="str"),
        legacy_endpoints=dict(type="list", elements="dict"),
        legacy_removed_status=dict(type="raw", default=[404]),
        legacy_supported_status=dict(type="raw", default=[200]),
        legacy_require_deprecation=dict(type="raw", default=True),
        compat_null_matches_any=dict(type="raw", default=False),
        max_differences=dict(type="raw", default=30),
        param_labels=dict(type="dict", default={}),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if not validate.HAS_JMESPATH:
        module.fail_json(msg=missing_required_lib("jmespath"))
    checks = run(module)
    module.exit_json(changed=False, checks=json.loads(json.dumps(checks, default=str)))


if __name__ == "__main__":
    main()

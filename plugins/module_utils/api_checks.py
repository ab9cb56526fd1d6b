# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure parts of the API versioning checks (CHECKLIST 6.4): endpoint settings and how one answer is judged.

No network here: plugins/modules/api_probe.py sends the requests and hands the answers to these
functions. What an answer may claim depends on what was sent (CHECKLIST, "What a pass may claim"):

- 401/403 pass only when no API key was sent: with a key they mean the key is refused;
- 400/422 pass only for a request marked ``invalid_input`` (deliberately invalid input), and such a
  request must not be accepted (2xx);
- by default an answer must be of the API's kind: a JSON content type and a JSON body (a default
  virtual host or a single-page app answering 200 with HTML is not the API);
- the body conditions configured for the answer's status (JMESPath, exactly ``true``) must hold;
- a 404 passes only when it differs from the answer to a path that has no route at all (the
  caller sends that control request): a framework's generic "Not Found" for a missing route is
  not "unknown resource".
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from ansible.module_utils.six import string_types

from ansible_collections.hunter.ops.plugins.module_utils import validate
from ansible_collections.hunter.ops.plugins.module_utils.redact import redact_data
from ansible_collections.hunter.ops.plugins.module_utils.results import FAIL, PASS, SKIP, WARN, trim

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
AUTH_REFUSED = (401, 403)
INPUT_REFUSED = (400, 422)
NO_BODY_STATUSES = (204, 205, 304)
STATUS_RANK = {PASS: 0, SKIP: 1, WARN: 2, FAIL: 3}
# The last path segment of the control request for a 404 (a route no service has).
NO_ROUTE_SEGMENT = "hunter-ops-no-such-route-"

REQUEST_KEYS = ("path", "method", "query", "json_body", "headers", "send_api_key", "expected_status",
                "body_conditions", "require_json", "invalid_input", "latency_budget_ms")
V1_KEYS = ("id",) + REQUEST_KEYS
LEGACY_KEYS = REQUEST_KEYS + ("compare_with",)


def worst(statuses):
    return max(statuses, key=STATUS_RANK.get)


class Endpoint(object):
    """One configured request, its defaults filled in, and the problems of its settings.

    ``problems`` holds the InputProblems keys of its bad settings (``endpoints[1].expected_status``):
    an endpoint with problems is not sent and fails its own item only.
    """

    def __init__(self, param, index):
        self.param = "%s[%d]" % (param, index)
        self.index = index
        self.id = None
        self.path = "/"
        self.method = "GET"
        self.query = {}
        self.json_body = None
        self.headers = {}
        self.send_api_key = True
        self.expected_status = None
        self.body_conditions = {}   # status code or "2xx" -> [(expression, compiled)]
        self.require_json = True
        self.invalid_input = False
        self.latency_budget_ms = None
        self.compare_with = None
        self.problems = []

    def allowed(self, default):
        return self.expected_status if self.expected_status is not None else list(default)

    def conditions_for(self, status):
        found = self.body_conditions.get(status)
        if found is None and status is not None and 200 <= status < 300:
            found = self.body_conditions.get("2xx")
        return found or []


def _add(problems, name, problem):
    """Record a problem under ``name``, keeping the ones already recorded there."""
    before = problems.errors.get(name)
    problems.add(name, "%s; %s" % (before, problem) if before else problem)


def boolean(problems, name, value, default):
    """A boolean setting (true/false, yes/no, on/off, 1/0); a problem under ``name`` otherwise."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    _add(problems, name, "must be true or false, got %r" % (value,))
    return default


def _status_key(problems, name, key):
    text = str(key).strip().lower()
    if text == "2xx":
        return "2xx"
    if text.isdigit() and 100 <= int(text) <= 599:
        return int(text)
    _add(problems, name, "keys must be HTTP status codes (or 2xx), got %r" % (key,))
    return None


def body_conditions(problems, name, value):
    """{status or "2xx": [(expression, compiled)]} from a list (checked on 2xx answers), one
    expression, or a mapping of status code to expressions. Bad parts are recorded under ``name``."""
    if value in (None, "", [], {}):
        return {}
    if isinstance(value, string_types) or isinstance(value, (list, tuple)):
        value = {"2xx": value}
    if not isinstance(value, dict):
        _add(problems, name, "must be a list of JMESPath expressions or a mapping of status code to "
                             "expressions, got %r" % (value,))
        return {}
    parsed = {}
    for key, expressions in value.items():
        status = _status_key(problems, name, key)
        if status is None:
            continue
        if isinstance(expressions, string_types):
            expressions = [expressions]
        if not isinstance(expressions, (list, tuple)):
            _add(problems, name, "%s: expected a list of JMESPath expressions, got %r" % (key, expressions))
            continue
        compiled = []
        for expression in expressions:
            try:
                compiled.append((expression, validate.jmespath_expression(name, expression)))
            except validate.ParameterError as err:
                _add(problems, name, "%s: %s" % (key, err.problem))
        parsed[status] = compiled
    return parsed


def parse_endpoint(problems, param, index, spec, legacy):
    """An Endpoint from one entry of ``endpoints`` (legacy=False) or ``legacy_endpoints``."""
    ep = Endpoint(param, index)
    before = set(problems.errors)

    def bad(key, problem):
        _add(problems, "%s.%s" % (ep.param, key) if key else ep.param, problem)

    if not isinstance(spec, dict):
        bad(None, "must be a mapping with at least a path, got %r" % (spec,))
        ep.problems = sorted(set(problems.errors) - before)
        return ep
    allowed_keys = LEGACY_KEYS if legacy else V1_KEYS
    unknown = sorted(str(k) for k in spec if k not in allowed_keys)
    if unknown:
        bad(None, "unknown key(s) %s; allowed: %s" % (", ".join(unknown), ", ".join(allowed_keys)))
    if not legacy:
        ep.id = str(spec.get("id") or "").strip() or None
        if not ep.id:
            bad("id", "a checklist ID is required (for example API-V1-SCAN)")
        elif ep.id in ("API-LEGACY", "API-COMPAT"):
            bad("id", "%s is reported from legacy_endpoints, not endpoints" % ep.id)
            ep.id = None  # not attributable: the module fails every versioned item with it
    else:
        ep.compare_with = str(spec.get("compare_with") or "").strip() or None
    path = spec.get("path")
    if not isinstance(path, string_types) or not path.startswith("/"):
        bad("path", "must start with /, got %r" % (path,))
    else:
        ep.path = path
    method = str(spec.get("method") or "GET").strip().upper()
    if method not in METHODS:
        bad("method", "must be one of %s, got %r" % (", ".join(METHODS), spec.get("method")))
    ep.method = method
    for key in ("query", "headers"):
        value = spec.get(key)
        if value in (None, ""):
            continue
        if not isinstance(value, dict):
            bad(key, "must be a mapping, got %r" % (value,))
        elif key == "headers" and any(v is None or isinstance(v, (dict, list)) for v in value.values()):
            bad(key, "header values must be strings")
        else:
            setattr(ep, key, dict((str(k), v if key == "query" else str(v)) for k, v in value.items()))
    ep.json_body = spec.get("json_body")
    ep.send_api_key = boolean(problems, ep.param + ".send_api_key", spec.get("send_api_key"), True)
    ep.require_json = boolean(problems, ep.param + ".require_json", spec.get("require_json"), True)
    ep.invalid_input = boolean(problems, ep.param + ".invalid_input", spec.get("invalid_input"), False)
    if spec.get("expected_status") not in (None, "", []):
        try:
            ep.expected_status = validate.status_codes(ep.param + ".expected_status", spec["expected_status"])
        except validate.ParameterError as err:
            _add(problems, err.param, err.problem)
    elif not legacy:
        ep.expected_status = [400, 422] if ep.invalid_input else [200]
    ep.body_conditions = body_conditions(problems, ep.param + ".body_conditions", spec.get("body_conditions"))
    budget = spec.get("latency_budget_ms")
    if budget not in (None, ""):
        try:
            ep.latency_budget_ms = validate.positive_number(ep.param + ".latency_budget_ms", budget)
        except validate.ParameterError as err:
            _add(problems, err.param, err.problem)
    ep.problems = sorted(set(problems.errors) - before)
    return ep


# -- judging one answer ------------------------------------------------------------------------------

def media_type(resp):
    return str(resp.headers.get("content-type") or "").split(";", 1)[0].strip().lower()


def is_json_type(mtype):
    return mtype == "application/json" or (mtype.startswith("application/") and mtype.endswith("+json"))


def not_the_apis_kind(resp):
    """Why an answer is not a JSON answer (None when it is): the content type, then the body."""
    if resp.method == "HEAD" or resp.status in NO_BODY_STATUSES:
        return None
    mtype = media_type(resp)
    if not is_json_type(mtype):
        return "with Content-Type %s, not JSON" % (mtype or "(none)")
    if not (resp.body or "").strip():
        return "with an empty body, not JSON"
    if resp.json() is None and (resp.body or "").strip() != "null":
        return "with a body that is not JSON"
    return None


def evaluate_conditions(conditions, body, secrets=()):
    """([{expression, result}], first failure text or None). Every expression must be exactly true."""
    results, failure = [], None
    for expression, compiled in conditions:
        try:
            value = compiled.search(body)
        except Exception as err:  # pylint: disable=broad-except
            value, error = None, str(err)
        else:
            error = None
        entry = {"expression": expression, "result": redact_data(value, secrets) if error is None else None}
        if error:
            entry["error"] = error
        results.append(entry)
        if failure is None and value is not True:
            failure = "`%s` is %s" % (expression, "not evaluable: %s" % error if error else (
                "not true (result %s)" % trim(json.dumps(entry["result"], default=str), 80)))
    return results, failure


_VOLATILE = frozenset(("timestamp", "time", "date", "datetime", "requestid", "traceid", "spanid", "correlationid",
                       "instance", "path", "url", "uri"))
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _masked(value, paths):
    """The parts of an answer that do not depend on which path was asked."""
    if isinstance(value, dict):
        return dict((k, "<volatile>" if re.sub(r"[^a-z]", "", str(k).lower()) in _VOLATILE else _masked(v, paths))
                    for k, v in value.items())
    if isinstance(value, list):
        return [_masked(v, paths) for v in value]
    if isinstance(value, string_types):
        for path in paths:
            value = value.replace(path, "<path>")
        return "<time>" if _TIMESTAMP.match(value) else value
    return value


def same_answer(resp, control, paths):
    """Whether ``resp`` is the answer ``control`` (a request to a path with no route) got too, apart
    from echoed paths, timestamps and request ids."""
    if control is None or control.error or resp.status != control.status or media_type(resp) != media_type(control):
        return False
    paths = sorted(set(p for p in paths if p), key=len, reverse=True)
    mine, theirs = resp.json(), control.json()
    if mine is not None or theirs is not None:
        return _masked(mine, paths) == _masked(theirs, paths)
    return _masked(resp.body or "", paths) == _masked(control.body or "", paths)


def judge(resp, ep, allowed, key_sent, expectation=None, control=None, secrets=()):
    """(status, one-line outcome, details) of one answered request.

    ``allowed``: the statuses that may pass; ``key_sent``: whether this request carried the API key;
    ``control``: callable sending the same request to a path with no route (asked only for an
    allowed 404). ``details`` goes into the request's evidence.
    """
    what = resp.describe_request()
    details = {}
    expectation = expectation or "|".join(str(c) for c in allowed)
    if resp.error:
        return FAIL, "%s failed: %s" % (what, resp.error), details
    status = resp.status
    answered = "%s answered %s" % (what, status)
    if status in AUTH_REFUSED and key_sent:
        return FAIL, "%s although an API key was sent: the key is refused (revoked, expired or wrong)" % answered, details
    if status in INPUT_REFUSED and not ep.invalid_input:
        return FAIL, ("%s to a request with valid input (a 400/422 passes only for a request marked invalid_input; "
                      "expected %s)" % (answered, expectation)), details
    if ep.invalid_input and 200 <= status < 300:
        return FAIL, "%s to deliberately invalid input: the input is not validated (expected %s)" % (
            answered, expectation), details
    if status not in allowed:
        return FAIL, "%s (expected %s)" % (answered, expectation), details
    if ep.require_json:
        why = not_the_apis_kind(resp)
        if why:
            return FAIL, "%s %s: not an answer of the API (a web server or proxy in front of it?)" % (
                answered, why), details
    conditions = ep.conditions_for(status)
    if conditions:
        details["conditions"], failure = evaluate_conditions(conditions, resp.json(), secrets)
        if failure:
            return FAIL, "%s but %s" % (answered, failure), details
    if status == 404 and control is not None:
        other = control()
        details["route_check"] = other.evidence(secrets=secrets)
        alike = same_answer(resp, other, (ep.path, other_path(other)))
        details["route_check"]["same_answer"] = alike
        if other.error:
            return FAIL, "%s; cannot tell an unknown resource from a missing route: %s failed: %s" % (
                answered, other.describe_request(), other.error), details
        if alike:
            return FAIL, ("%s exactly like %s, a path with no route: the route is missing, not the resource "
                          "(a known resource that must answer 200, or body_conditions for 404 that a missing route "
                          "does not meet, tell them apart)" % (answered, other.describe_request())), details
    note = ""
    if status in AUTH_REFUSED:
        note = " (no API key sent: the endpoint requires one; its data was not checked)"
    elif ep.invalid_input:
        note = " (deliberately invalid input refused)"
    elif status == 404 and control is not None:
        note = " (unknown resource: differs from the answer of a path with no route)"
    budget = ep.latency_budget_ms
    if budget is not None and resp.duration_ms is not None and resp.duration_ms > budget:
        return WARN, "%s in %.0f ms, over its %.0f ms budget%s" % (answered, resp.duration_ms, budget, note), details
    return PASS, "%s%s" % (answered, note), details


def other_path(resp):
    """The path part of a response's URL (without the query)."""
    url = resp.url.split("?", 1)[0]
    parts = url.split("/", 3)
    return "/" + parts[3] if len(parts) > 3 else "/"

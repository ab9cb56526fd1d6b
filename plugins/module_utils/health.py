# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure parts of the health probes (CHECKLIST 6.1): polling, status and body assertions.

No network here: the module (plugins/modules/health_probe.py) does the requests and hands
the outcomes to these functions, which unit tests drive with a fake clock and fixed bodies.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import time

from ansible_collections.hunter.ops.plugins.module_utils.redact import redact_data
from ansible_collections.hunter.ops.plugins.module_utils.results import FAIL, PASS, SKIP, check_item, trim

try:
    from jmespath.visitor import TreeInterpreter
except ImportError:  # reported by validate.jmespath_expression
    TreeInterpreter = None

PROBE_IDS = {"live": "HEALTH-LIVE", "ready": "HEALTH-READY", "startup": "HEALTH-STARTUP"}
# Why a body check is skipped when its expression is configured empty: what was (not) configured,
# never a claim about what the service shows (CHECKLIST "Messages state observations").
SKIP_REASONS = {
    "HEALTH-DB": "not checked: no expression for the database status is configured",
    "HEALTH-REDIS": "not checked: no expression for the Redis status is configured",
    "HEALTH-ENV": "not checked: no query for the environment is configured",
}


class PollResult(object):
    """The last outcome of a poll, how many attempts it took, how long, and whether time ran out."""

    def __init__(self, result, polls, elapsed_s, timed_out):
        self.result = result
        self.polls = polls
        self.elapsed_s = elapsed_s
        self.timed_out = timed_out


def poll_until(attempt, done, timeout_s, interval_s, clock=time.monotonic, sleep=time.sleep):
    """Call ``attempt()`` until ``done(result)`` or ``timeout_s`` has passed since the first call.

    Kubernetes startupProbe semantics: a failed attempt (any unexpected answer, including a
    connection error) means "try again after interval_s"; the last attempt happens at the
    deadline at the latest, so the whole poll lasts at most timeout_s plus one attempt.
    ``timeout_s`` 0 means a single attempt.
    """
    start = clock()
    polls = 0
    while True:
        result = attempt()
        polls += 1
        if done(result):
            return PollResult(result, polls, clock() - start, False)
        remaining = timeout_s - (clock() - start)
        if remaining <= 0:
            return PollResult(result, polls, clock() - start, True)
        sleep(min(interval_s, remaining))


def parse_json(text):
    """The parsed JSON body, or None when there is none / it is not JSON."""
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def probe_item(probe, response, expected, polls=1, waited_s=None, secrets=(), note=None, timeout=None):
    """HEALTH-LIVE/READY/STARTUP from one HttpResponse: pass when its status is expected."""
    evidence = response.evidence(secrets=secrets)
    evidence["expected_status"] = list(expected)
    evidence["polls"] = polls
    if timeout is not None:
        evidence["timeout_s"] = timeout
    if waited_s is not None and polls > 1:
        evidence["waited_s"] = round(waited_s, 2)
    if note:
        evidence["note"] = note
    what = response.describe_request()
    if response.error:
        status = FAIL
        message = "%s failed: %s" % (what, response.error)
        if timeout is not None and "timed out" not in response.error:
            message += " (request timeout %ss)" % timeout
    elif response.status in expected:
        status = PASS
        message = "%s answered %s in %.1f ms" % (what, response.status, response.duration_ms or 0)
    else:
        status = FAIL
        message = "%s answered %s (expected %s)" % (what, response.status, "|".join(str(c) for c in expected))
    if polls > 1 and waited_s is not None:
        message += "; %s %d polls in %.1fs" % ("passed after" if status == PASS else "still failing after",
                                               polls, waited_s)
    if note:
        message += "; %s" % note
    return check_item(status, message, evidence)


def _field_value(compiled, body):
    """For `a.b == 'x'`-style expressions, the value of the left side (to show what was found)."""
    parsed = getattr(compiled, "parsed", None)
    if TreeInterpreter is None or not isinstance(parsed, dict) or parsed.get("type") != "comparator":
        return None, False
    try:
        return TreeInterpreter().visit(parsed["children"][0], body), True
    except Exception:  # pylint: disable=broad-except
        return None, False


def _field_text(compiled):
    parsed = getattr(compiled, "parsed", {}) or {}
    left = parsed.get("children", [{}])[0] if parsed.get("type") == "comparator" else {}
    names = []

    def walk(node):
        if node.get("type") == "field":
            names.append(node.get("value"))
        for child in node.get("children", []):
            if isinstance(child, dict):
                walk(child)
    walk(left)
    return ".".join(str(n) for n in names) or "left side"


def assertion_item(check_id, expression, compiled, body, source, secrets=(), skip_reason=None):
    """A body check: pass when the JMESPath expression evaluates to exactly true on the body.

    ``body`` is the parsed JSON (or None), ``source`` names where it came from
    ("GET http://.../healthz/ready (503)"). An empty expression means "not configured": skip,
    with ``skip_reason`` (naming the option that is empty) or the default reason.
    """
    if not expression:
        return check_item(SKIP, skip_reason or SKIP_REASONS.get(check_id, "not checked: not configured"),
                          {"expression": None})
    evidence = {"expression": expression, "source": source}
    if body is None:
        return check_item(FAIL, "%s: no JSON body to check (%s)" % (check_id, source), evidence)
    evidence["body"] = trim(json.dumps(redact_data(body, secrets), sort_keys=True))
    try:
        result = compiled.search(body)
    except Exception as err:  # pylint: disable=broad-except
        return check_item(FAIL, "%s: `%s` could not be evaluated: %s" % (check_id, expression, err), evidence)
    evidence["result"] = result
    if result is True:
        return check_item(PASS, "`%s` is true" % expression, evidence)
    value, has_value = _field_value(compiled, body)
    if has_value:
        evidence["value"] = redact_data(value, secrets)
        detail = "%s is %s" % (_field_text(compiled), json.dumps(evidence["value"]))
    elif result is False or result is None:
        detail = "result %s" % json.dumps(result)
    else:
        detail = "result %s is not a boolean; write a comparison such as `db.status == 'ok'`" % trim(
            json.dumps(redact_data(result, secrets)), 80)
    return check_item(FAIL, "`%s` is not true (%s)" % (expression, detail), evidence)


def environment_item(query, compiled, expected, body, source, skip_reason=None):
    """HEALTH-ENV: the body's environment (JMESPath ``query``) equals the expected one, exactly."""
    if not query:
        return check_item(SKIP, skip_reason or SKIP_REASONS["HEALTH-ENV"], {"query": None, "expected": expected})
    evidence = {"query": query, "expected": expected, "source": source}
    if not expected:
        return check_item(SKIP, "no expected environment configured (expected_environment is empty)", evidence)
    if body is None:
        return check_item(FAIL, "HEALTH-ENV: no JSON body to read the environment from (%s)" % source, evidence)
    try:
        found = compiled.search(body)
    except Exception as err:  # pylint: disable=broad-except
        return check_item(FAIL, "HEALTH-ENV: `%s` could not be evaluated: %s" % (query, err), evidence)
    evidence["found"] = found
    if found is None:
        return check_item(FAIL, "the body has no environment at `%s` (expected %r)" % (query, expected), evidence)
    if str(found) == str(expected):
        return check_item(PASS, "environment is %r as expected" % (found,), evidence)
    return check_item(FAIL, "environment is %r, expected %r" % (found, expected), evidence)


def pick_body(responses, order):
    """The first parsed JSON body among the probes in ``order``: (probe, body) or (None, None)."""
    for probe in order:
        response = responses.get(probe)
        if response is None:
            continue
        body = parse_json(response.body)
        if body is not None:
            return probe, body
    return None, None

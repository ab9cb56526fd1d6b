#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: sentry_event
short_description: Send a test error and find it through the Sentry server's API (SENTRY-EVENT/ENV/DETAIL/ALERTS)
version_added: 0.1.0
description:
  - Generates a test error by one of the runbook's methods (O(method)), then polls the error tracker's API with
    backoff until the event appears or O(wait_timeout) passes, and reports how long it took to appear.
  - Returns under RV(checks) V(SENTRY-EVENT) (the event was found in time), V(SENTRY-ENV) (its environment is
    O(environment)), V(SENTRY-DETAIL) (exception frames and the probe's context are present) and
    V(SENTRY-ALERTS) (the project has at least one alert rule, else V(warn); V(skip) with the reason where the
    backend has no such API or O(alerts=false)).
  - O(method=sdk) (runbook option A) sends a real exception with a stack trace through sentry-sdk, with the
    application's DSN and the expected environment, tagged C(probe_id) and with a C(probe) context. The DSN is
    read on the host running the module, from the same sources as M(hunter.ops.sentry_dsn), so it never travels
    as a task argument unless O(source=value). When the SDK's transport reports the event dropped (HTTP 403 for a
    wrong key or project, network errors), the items fail at once with that reason instead of waiting.
  - O(method=endpoint) (option B) calls the application's test-error endpoint with C(X-API-Key) and C(X-Probe-Id);
    O(method=request) (option C) sends a configured request that makes the application fail. The event id is
    taken from the response (O(event_id_key)) when the application returns it, else the event is searched by
    tag (O(match_tags), default C(probe_id:<probe id>)) among events no older than the probe.
  - O(backend=sentry) reads Sentry's web API (sentry.io or self-hosted; C(/api/0/projects/<org>/<project>/events/<id>/),
    alert rules from C(/api/0/projects/<org>/<project>/rules/)). O(backend=bugsink) reads Bugsink's API
    (C(/api/canonical/0/events/lookup/)). A 404 means "not yet"; 401/403 fail at once as an authentication error.
  - The project is read once before polling, so a wrong project (or organization) fails at once instead of
    looking like an event that has not arrived yet.
author:
  - hunter.ops contributors (@hunter-ops)
extends_documentation_fragment:
  - hunter.ops.sentry_dsn_source
  - hunter.ops.http
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
    details: >-
      Nothing on the target changes. The test event is sent in check mode too: sending it and finding it is
      the check.
options:
  source:
    description:
      - Where the DSN is read from for O(method=sdk) (see M(hunter.ops.sentry_dsn)). Ignored by the other methods.
    type: str
    required: false
    choices: [process, envfile, container, value]
  allow_http:
    description:
      - Accept a plain V(http) DSN for O(method=sdk).
    type: bool
    default: false
  method:
    description:
      - How the test error is generated. V(sdk) is runbook option A, V(endpoint) option B, V(request) option C.
    type: str
    choices: [sdk, endpoint, request]
    default: sdk
  environment:
    description:
      - The environment the event must carry (V(production), V(staging)); also the environment method V(sdk)
        sends with.
    type: str
    required: true
  backend:
    description:
      - The error tracker's API. V(sentry) for sentry.io and self-hosted Sentry, V(bugsink) for Bugsink.
    type: str
    choices: [sentry, bugsink]
    default: sentry
  api_url:
    description:
      - Base URL of the error tracker (V(https://sentry.io), V(https://sentry.example.com),
        V(http://127.0.0.1:8001)), without the C(/api/...) part.
    type: str
    required: true
  api_token:
    description:
      - Bearer token for the API (Sentry auth token with C(project:read) and C(event:read); Bugsink API token).
        Never logged.
    type: str
    required: true
  organization:
    description:
      - Organization slug (O(backend=sentry)).
    type: str
  project:
    description:
      - The project the application reports to. Sentry - the project slug. Bugsink - the numeric project id.
    type: str
    required: true
  wait_timeout:
    description:
      - Seconds to wait for the event to appear, counted from when the error was generated.
    type: float
    default: 120
  poll_interval:
    description:
      - Seconds between the first and the second API lookup (the first is made at once); later intervals grow
        by half each time up to O(poll_max_interval).
    type: float
    default: 0.5
  poll_max_interval:
    description:
      - Longest wait between two API lookups.
    type: float
    default: 10
  api_error_limit:
    description:
      - After this many consecutive lookups that did not reach the API (connection refused, DNS, TLS), the item
        fails without waiting for O(wait_timeout).
    type: int
    default: 3
  probe_id:
    description:
      - Unique id of this probe, sent as tag C(probe_id), in the context and (methods V(endpoint) and V(request)) as
        header C(X-Probe-Id). Generated when omitted.
    type: str
  app_url:
    description:
      - Base URL of the application (methods V(endpoint) and V(request)).
    type: str
  api_key:
    description:
      - API key sent as C(X-API-Key) to the application (methods V(endpoint) and V(request)). Never logged.
    type: str
  endpoint_path:
    description:
      - The test-error endpoint (method V(endpoint)), called with POST.
    type: str
    default: /debug/test-error
  request_path:
    description:
      - Path of the request that makes the application fail (method V(request)).
    type: str
  request_method:
    description:
      - HTTP method of that request.
    type: str
    default: POST
  request_body:
    description:
      - Body of that request; a dict or list is sent as JSON.
    type: raw
  event_id_key:
    description:
      - Key of the application's JSON answer (or of its C(detail) object) holding the event id it reported.
        When present, the event is looked up by id instead of searched by tag.
    type: str
    default: event_id
  match_tags:
    description:
      - Tags that identify the application's event when its id is unknown (methods V(endpoint), V(request)).
        By default the tag C(probe_id) with this probe's id, which needs an application that copies C(X-Probe-Id)
        into a tag.
    type: dict
  detail_context:
    description:
      - Name of the event context that must hold C(probe_id) equal to this probe's id for V(SENTRY-DETAIL).
        Empty to require the exception frames only (an application that adds no context).
    type: str
    default: probe
  alerts:
    description:
      - Check the project's alert rules (V(SENTRY-ALERTS)). When false the item is V(skip).
    type: bool
    default: true
notes:
  - Method V(sdk) needs the Python library C(sentry-sdk) on the host running the module.
  - The latency reported is the time from generating the error to the first successful API lookup, so it is
    bounded below by the polling interval; the server's own receive time is in the evidence when it has one.
'''

EXAMPLES = r'''
- name: Test error through the SDK with the DSN of the running service, found through Sentry's API
  hunter.ops.sentry_event:
    method: sdk
    source: process
    process_match: "gunicorn .*hunter"
    environment: production
    backend: sentry
    api_url: https://sentry.io
    organization: acme
    project: hunter-api
    api_token: "{{ vault_sentry_api_token }}"
  become: true

- name: The application's own test-error endpoint, event found in Bugsink by its probe tag
  hunter.ops.sentry_event:
    method: endpoint
    app_url: http://127.0.0.1:8000
    api_key: "{{ vault_hunter_api_key }}"
    environment: staging
    backend: bugsink
    api_url: http://bugsink.internal:8000
    project: "1"
    api_token: "{{ vault_bugsink_token }}"
'''

RETURN = r'''
checks:
  description: Items V(SENTRY-EVENT), V(SENTRY-ENV), V(SENTRY-DETAIL) and V(SENTRY-ALERTS), each with C(status),
    C(message) and C(evidence).
  returned: always
  type: dict
  sample:
    SENTRY-EVENT:
      status: pass
      message: event 5f0c... visible through the Bugsink API 0.6 s after the error (limit 120 s)
      evidence: {method: sdk, probe_id: hunter-probe-1a2b3c4d5e6f, event_id: 5f0c..., latency_s: 0.6, lookups: 2}
    SENTRY-ENV:
      status: pass
      message: "event environment 'production' is the expected one"
      evidence: {expected: production, found: production}
latency_s:
  description: Seconds from generating the error to finding the event, when found.
  returned: always
  type: float
  sample: 0.61
event_id:
  description: Id of the event (when known).
  returned: always
  type: str
probe_id:
  description: Id of this probe (tag C(probe_id)).
  returned: always
  type: str
'''

import time
import uuid
from datetime import timedelta

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hunter.ops.plugins.module_utils import app_env
from ansible_collections.hunter.ops.plugins.module_utils import sentry_api
from ansible_collections.hunter.ops.plugins.module_utils import secret
from ansible_collections.hunter.ops.plugins.module_utils import sentry_emit
from ansible_collections.hunter.ops.plugins.module_utils.http import http_argument_spec, request_headers
from ansible_collections.hunter.ops.plugins.module_utils.redact import redact_data
from ansible_collections.hunter.ops.plugins.module_utils.results import FAIL, PASS, SKIP, check_item
from ansible_collections.hunter.ops.plugins.module_utils.sentry import DEFAULT_VARIABLE, assess
from ansible_collections.hunter.ops.plugins.module_utils.validate import ParameterError, positive_number, url

# A generous clock skew between this host and the server when matching events to the probe's time window.
WINDOW_SKEW = timedelta(seconds=120)


def argument_spec():
    spec = app_env.source_argument_spec(DEFAULT_VARIABLE)
    spec["source"] = dict(type="str", required=False, choices=list(app_env.SOURCES))
    spec.update(http_argument_spec())
    spec.update(
        allow_http=dict(type="bool", default=False),
        method=dict(type="str", default="sdk", choices=["sdk", "endpoint", "request"]),
        environment=dict(type="str", required=True),
        backend=dict(type="str", default="sentry", choices=list(sentry_api.BACKENDS)),
        api_url=dict(type="str", required=True),
        api_token=dict(type="str", required=True, no_log=True),
        organization=dict(type="str"),
        project=dict(type="str", required=True),
        wait_timeout=dict(type="float", default=120.0),
        poll_interval=dict(type="float", default=0.5),
        poll_max_interval=dict(type="float", default=10.0),
        api_error_limit=dict(type="int", default=3),
        probe_id=dict(type="str"),
        app_url=dict(type="str"),
        api_key=dict(type="str", no_log=True),
        endpoint_path=dict(type="str", default="/debug/test-error"),
        request_path=dict(type="str"),
        request_method=dict(type="str", default="POST"),
        request_body=dict(type="raw"),
        event_id_key=dict(type="str", default="event_id", no_log=False),
        match_tags=dict(type="dict"),
        detail_context=dict(type="str", default="probe"),
        alerts=dict(type="bool", default=True),
    )
    return spec


def validate(params):
    """Cross-parameter rules; a ParameterError names the parameter."""
    params["api_url"] = url("api_url", params["api_url"])
    if not str(params["api_token"]).strip():
        raise ParameterError("api_token", "an API token is required (it is empty)")
    if not str(params["project"]).strip():
        raise ParameterError("project", "the project is required (it is empty)")
    if not str(params["environment"]).strip():
        raise ParameterError("environment", "the expected environment is required (it is empty)")
    if params["backend"] == "sentry" and not params.get("organization"):
        raise ParameterError("organization", "required with backend=sentry (the organization slug)")
    if params["backend"] == "bugsink" and not str(params["project"]).strip().isdigit():
        raise ParameterError("project", "Bugsink projects are numeric ids, got %r" % params["project"])
    positive_number("wait_timeout", params["wait_timeout"])
    positive_number("poll_interval", params["poll_interval"])
    positive_number("poll_max_interval", params["poll_max_interval"])
    positive_number("timeout", params["timeout"])
    if params["api_error_limit"] < 1:
        raise ParameterError("api_error_limit", "must be at least 1")
    if params["method"] == "sdk":
        if not params.get("source"):
            raise ParameterError("source", "required with method=sdk (where the application's DSN is read from)")
        app_env.check_source_params(params)
    else:
        params["app_url"] = url("app_url", params.get("app_url"))
        if params["method"] == "request" and not params.get("request_path"):
            raise ParameterError("request_path", "required with method=request")
        path = params["endpoint_path"] if params["method"] == "endpoint" else params["request_path"]
        if not str(path).startswith("/"):
            raise ParameterError("endpoint_path" if params["method"] == "endpoint" else "request_path",
                                 "must start with '/', got %r" % path)
    for key, value in (params.get("match_tags") or {}).items():
        if not str(key).strip() or value is None or not str(value).strip():
            raise ParameterError("match_tags", "tag keys and values must be non-empty")


class SentryEventProbe(object):
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.probe_id = self.params.get("probe_id") or "hunter-probe-%s" % uuid.uuid4().hex[:16]
        self.secrets = secret.protect(module)  # what the run discovers (the DSN) joins it
        self.headers = request_headers(module)  # headers + secret_headers, checked before anything is sent
        http_options = dict(timeout=self.params["timeout"], validate_certs=self.params["validate_certs"],
                            ca_path=self.params["ca_path"], client_cert=self.params["client_cert"],
                            client_key=self.params["client_key"])
        self.http_options = http_options
        self.api = sentry_api.make_api(self.params["backend"], self.params["api_url"], self.params["api_token"],
                                       str(self.params["project"]).strip(), self.params.get("organization"),
                                       http_options)

    # -- generating -----------------------------------------------------------------------
    def emit(self):
        p = self.params
        if p["method"] == "sdk":
            return self._emit_sdk()
        headers = dict(self.headers)
        if p.get("api_key"):
            headers["X-API-Key"] = p["api_key"]
        if p["method"] == "endpoint":
            target, method, body = p["endpoint_path"], "POST", None
        else:
            target, method, body = p["request_path"], p["request_method"].upper(), p.get("request_body")
        emission = sentry_emit.send_request(method, p["app_url"].rstrip("/") + target, self.probe_id, headers, body,
                                            self.http_options, self.secrets, p["event_id_key"])
        emission.method = p["method"]
        return emission

    def _emit_sdk(self):
        p = self.params
        try:
            snapshot = app_env.load(p, self.secrets)
        except app_env.EnvSourceError as err:
            return sentry_emit.Emission("sdk", None, failure="cannot read the DSN: %s" % err)
        secret.register_environment(self.module, snapshot.variables, names=[p["variable"]])
        found = assess(snapshot.variables, p["variable"], snapshot.description, p["allow_http"])
        if found.dsn is None:
            return sentry_emit.Emission("sdk", None, failure="no usable DSN to send with: %s" % found.message,
                                        evidence={"read_from": snapshot.description})
        secret.register(self.module, found.dsn, found.parsed.public_key, found.parsed.secret_key)
        context = {"probe_id": self.probe_id, "runbook": "6.2 SENTRY-EVENT", "method": "sdk",
                   "sent_by": "hunter.ops.sentry_event"}
        emission = sentry_emit.send_with_sdk(found.dsn, p["environment"], self.probe_id, p["timeout"], context,
                                             ca_certs=p.get("ca_path"), secrets=self.secrets)
        emission.evidence["read_from"] = snapshot.description
        emission.evidence["dsn"] = found.parsed.describe()
        return emission

    # -- finding ------------------------------------------------------------------------------
    def wait_for_event(self, emission):
        """Poll with backoff until found, an error waiting cannot fix, or the deadline. (Lookup, lookups)"""
        p = self.params
        deadline = emission.sent_monotonic + p["wait_timeout"]
        interval = p["poll_interval"]
        tags = dict((str(k), str(v)) for k, v in (p.get("match_tags") or {"probe_id": self.probe_id}).items())
        since = emission.sent_at - WINDOW_SKEW
        lookups, unreachable, last = 0, 0, None
        problem = self.api.check_project()
        if problem is not None:
            return problem, lookups
        while True:
            if emission.event_id:
                last = self.api.get_event(emission.event_id)
            else:
                last = self.api.find_event(tags, since)
            lookups += 1
            if last.state in (sentry_api.FOUND, sentry_api.AUTH, sentry_api.ERROR):
                return last, lookups
            unreachable = unreachable + 1 if last.evidence.get("error") else 0
            if unreachable >= p["api_error_limit"]:
                last.state = sentry_api.ERROR
                last.message = "%s API unreachable after %d attempts: %s" % (self.api.name, unreachable, last.message)
                return last, lookups
            if time.monotonic() >= deadline:
                return last, lookups
            time.sleep(max(0.0, min(interval, deadline - time.monotonic())))
            interval = min(interval * 1.5, p["poll_max_interval"])

    # -- items -------------------------------------------------------------------------------------
    def run(self):
        p = self.params
        checks = {}
        emission = self.emit()
        base = {"method": p["method"], "probe_id": self.probe_id, "backend": p["backend"],
                "api": self.api.base_url}
        base.update(emission.evidence)
        latency = None
        event = None
        if emission.failure:
            checks["SENTRY-EVENT"] = check_item(
                FAIL, "test error not delivered (%s): %s" % (p["method"], emission.failure), base)
        else:
            lookup, lookups = self.wait_for_event(emission)
            elapsed = time.monotonic() - emission.sent_monotonic
            evidence = dict(base, lookups=lookups, api_requests=self.api.requests, last_lookup=lookup.evidence)
            if lookup.state == sentry_api.FOUND:
                event = lookup.event
                latency = round(elapsed, 2)
                evidence.update(event_id=event.event_id, latency_s=latency, wait_timeout_s=p["wait_timeout"],
                                server_received_at=event.received_at, event_timestamp=event.created_at)
                received, created = sentry_api.parse_time(event.received_at), sentry_api.parse_time(event.created_at)
                if received and created:
                    evidence["server_ingest_lag_s"] = round((received - created).total_seconds(), 3)
                checks["SENTRY-EVENT"] = check_item(
                    PASS, "event %s visible through the %s API %.1f s after the error (limit %g s)" % (
                        event.event_id, self.api.name, elapsed, p["wait_timeout"]), evidence)
            elif lookup.state == sentry_api.PENDING:
                evidence["waited_s"] = round(elapsed, 1)
                checks["SENTRY-EVENT"] = check_item(
                    FAIL, "event not visible through the %s API after %.0f s (limit %g s; last answer: %s)" % (
                        self.api.name, elapsed, p["wait_timeout"], lookup.message), evidence)
            else:
                checks["SENTRY-EVENT"] = check_item(FAIL, lookup.message, evidence)
        checks["SENTRY-ENV"] = self.env_item(event)
        checks["SENTRY-DETAIL"] = self.detail_item(event)
        checks["SENTRY-ALERTS"] = self.alerts_item()
        event_id = (event.event_id if event else None) or emission.event_id
        return redact_data(checks, self.secrets), latency, event_id

    def env_item(self, event):
        expected = self.params["environment"]
        if event is None:
            return check_item(FAIL, "not verified: no event found (see SENTRY-EVENT)", {"expected": expected})
        evidence = {"expected": expected, "found": event.environment, "event_id": event.event_id}
        if event.environment == expected:
            return check_item(PASS, "event environment %r is the expected one" % expected, evidence)
        if not event.environment:
            return check_item(FAIL, "event has no environment (expected %r)" % expected, evidence)
        return check_item(FAIL, "event environment is %r, expected %r" % (event.environment, expected), evidence)

    def detail_item(self, event):
        if event is None:
            return check_item(FAIL, "not verified: no event found (see SENTRY-EVENT)", {})
        name = self.params["detail_context"]
        context = event.contexts.get(name) if name else None
        evidence = {"event_id": event.event_id, "exceptions": event.exceptions, "frames": event.frame_count,
                    "contexts": sorted(event.contexts)[:30], "tags": event.tags}
        problems = []
        if not event.exceptions:
            problems.append("no exception in the event")
        elif not event.frame_count:
            problems.append("the exception has no stack frames")
        if name:
            evidence["context_checked"] = name
            if not isinstance(context, dict):
                problems.append("context %r missing" % name)
            elif str(context.get("probe_id")) != self.probe_id:
                problems.append("context %r does not hold this probe's id" % name)
        if problems:
            return check_item(FAIL, "event details incomplete: %s" % "; ".join(problems), evidence)
        what = "%d stack frame%s" % (event.frame_count, "" if event.frame_count == 1 else "s")
        if name:
            what += " and context %r with probe_id" % name
        return check_item(PASS, "event has %s" % what, evidence)

    def alerts_item(self):
        if not self.params["alerts"]:
            return check_item(SKIP, "alert rules not checked (alerts: false)", {})
        started = time.monotonic()
        answer = self.api.alert_rules()
        return check_item(answer.status, answer.message, answer.evidence,
                          duration_ms=(time.monotonic() - started) * 1000.0)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           mutually_exclusive=app_env.SOURCE_MUTUALLY_EXCLUSIVE,
                           required_if=list(app_env.SOURCE_REQUIRED_IF))
    try:
        validate(module.params)
    except ParameterError as err:
        module.fail_json(msg=str(err))
    try:
        probe = SentryEventProbe(module)
    except ParameterError as err:
        module.fail_json(msg=str(err))
    checks, latency, event_id = probe.run()
    module.exit_json(changed=False, checks=checks, latency_s=latency, event_id=event_id, probe_id=probe.probe_id)


if __name__ == "__main__":
    main()

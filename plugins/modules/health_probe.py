#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: health_probe
short_description: Probe a service's liveness, readiness and startup endpoints (CHECKLIST 6.1)
version_added: 0.1.0
description:
  - Sends the three health probes of one service concurrently and reports the checklist items
    C(HEALTH-LIVE), C(HEALTH-READY), C(HEALTH-STARTUP), C(HEALTH-ENV), C(HEALTH-DB) and C(HEALTH-REDIS)
    under RV(checks), each with evidence (request, status, trimmed redacted body, duration, polls).
  - The startup probe is polled like a Kubernetes startupProbe, every O(startup_interval) seconds until it
    answers an expected status or O(startup_timeout) has passed; any other answer, a connection error or a
    timeout means "still starting". As in Kubernetes, the liveness and readiness results only count once
    startup has finished, so while the service warms up they are asked again after the startup probe passes.
  - The body checks read the JSON body of the first probe in O(body_from) that has one (the readiness
    body by default, also when it answered 503) and evaluate JMESPath expressions on it, so a service
    with another body shape is configured, not coded.
  - Read-only; never changes the target. Network trouble (refused, timed out, TLS) is reported as a
    failed item naming the URL and the timeout, not as a module failure. Bad input fails the module with
    one message naming the parameter.
author:
  - hunter.ops contributors (@hunter-ops)
extends_documentation_fragment:
  - hunter.ops.http
options:
  base_url:
    description:
      - Base URL of the service as probed, for example V(http://127.0.0.1:8000). Probe paths are appended to it.
    type: str
    required: true
  live_path:
    description:
      - Path (or absolute URL) of the liveness probe. Empty to skip C(HEALTH-LIVE).
    type: str
    default: /healthz/live
  ready_path:
    description:
      - Path (or absolute URL) of the readiness probe. Empty to skip C(HEALTH-READY).
    type: str
    default: /healthz/ready
  startup_path:
    description:
      - Path (or absolute URL) of the startup probe. Empty to skip C(HEALTH-STARTUP) (and its polling).
    type: str
    default: /healthz/startup
  live_status:
    description:
      - Expected HTTP status codes of the liveness probe, as a list or a string like V(200|204).
    type: raw
    default: [200]
  ready_status:
    description:
      - Expected HTTP status codes of the readiness probe.
    type: raw
    default: [200]
  startup_status:
    description:
      - Expected HTTP status codes of the startup probe.
    type: raw
    default: [200]
  assertions:
    description:
      - JMESPath expressions keyed by checklist ID; an item passes when its expression evaluates to exactly V(true).
      - C(HEALTH-DB) and C(HEALTH-REDIS) are evaluated on the body chosen by O(body_from). Their defaults,
        C(db.status == 'ok') and C(redis.status == 'ok'), apply to IDs not given here. Set one to V(null) or an
        empty string to report it as skipped (a service that does not show Redis).
      - C(HEALTH-LIVE), C(HEALTH-READY) and C(HEALTH-STARTUP) may add a condition on that probe's own body,
        checked in addition to its status (for example C(status == 'ready')).
    type: dict
    default: {}
  environment_query:
    description:
      - JMESPath expression giving the environment name in the body (C(HEALTH-ENV)). Empty to skip C(HEALTH-ENV).
    type: str
    default: environment
  expected_environment:
    description:
      - The environment the inventory expects (for example V(production)); compared exactly.
      - When empty, C(HEALTH-ENV) is skipped.
    type: str
  body_from:
    description:
      - Probes whose JSON body the body checks read, in order of preference; the first with a JSON body wins.
    type: list
    elements: str
    choices: [live, ready, startup]
    default: [ready, startup]
  secret_headers:
    description:
      - Request headers carrying credentials (for example V(X-API-Key) or V(Authorization)), merged over
        O(headers). Their values are C(no_log) and redacted wherever they could appear; O(headers) values are
        shown in the task's invocation, so never put a credential there.
    type: dict
    default: {}
  startup_timeout:
    description:
      - Seconds to keep polling the startup probe (Kubernetes C(failureThreshold) x C(periodSeconds)).
        V(0) asks once. The poll may last one request O(timeout) longer.
    type: float
    default: 60
  startup_interval:
    description:
      - Seconds between two startup polls (Kubernetes C(periodSeconds)).
    type: float
    default: 2
notes:
  - Supports check mode; the probes are plain GET requests and run in check mode too.
  - O(timeout) applies to every single request (connect and each read).
seealso:
  - module: hunter.ops.dependency_diag
'''

EXAMPLES = r'''
- name: Probe the service (runbook body shape)
  hunter.ops.health_probe:
    base_url: http://127.0.0.1:8000
    expected_environment: production
    timeout: 5
    startup_timeout: 60
  register: probe

- name: A service answering {"status":"ready","checks":{"database":true,"redis":true}}
  hunter.ops.health_probe:
    base_url: https://api.example.com
    expected_environment: production
    environment_query: ""          # this body does not show its environment
    assertions:
      HEALTH-DB: checks.database == `true`
      HEALTH-REDIS: checks.redis == `true`
      HEALTH-READY: status == 'ready'
    ca_path: /etc/pki/internal-ca.pem
    headers:
      X-Request-Source: preflight
    secret_headers:
      Authorization: "Bearer {{ vault_probe_token }}"
'''

RETURN = r'''
checks:
  description: Check items keyed by checklist ID, each with C(status), C(message) and C(evidence).
  returned: always
  type: dict
  sample:
    HEALTH-READY:
      status: fail
      message: "GET http://127.0.0.1:8000/healthz/ready answered 503 (expected 200)"
      evidence:
        request: GET http://127.0.0.1:8000/healthz/ready
        status: 503
        response: '{"status":"degraded","environment":"production","db":{"status":"ok"},"redis":{"status":"error"}}'
        duration_ms: 12.3
        expected_status: [200]
        polls: 1
ready_body:
  description: The readiness probe's JSON body (secrets redacted), whatever its status; null when it had none.
    REDIS-HEALTH reads it instead of asking again.
  returned: always
  type: dict
  sample: {"status": "ok", "environment": "production", "db": {"status": "ok"}, "redis": {"status": "ok"}}
body_source:
  description: Which probe's body the body checks read (V(null) when no probe returned JSON).
  returned: always
  type: str
  sample: ready
needs_diagnosis:
  description: True when the readiness or startup probe failed (the role then runs M(hunter.ops.dependency_diag)).
  returned: always
  type: bool
  sample: false
elapsed_ms:
  description: Wall time of the whole probe run.
  returned: always
  type: float
  sample: 25.4
'''

import threading
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.hunter.ops.plugins.module_utils import health, http, secret, validate
from ansible_collections.hunter.ops.plugins.module_utils.redact import SECRET_HEADERS, redact_data
from ansible_collections.hunter.ops.plugins.module_utils.results import FAIL, PASS, SKIP, Stopwatch, check_item

PROBES = ("live", "ready", "startup")
DEFAULT_ASSERTIONS = {"HEALTH-DB": "db.status == 'ok'", "HEALTH-REDIS": "redis.status == 'ok'"}
BODY_IDS = ("HEALTH-DB", "HEALTH-REDIS")
ASSERTION_IDS = BODY_IDS + tuple(health.PROBE_IDS[p] for p in PROBES)


def _probe_url(param, base_url, path):
    """Join base URL and path; an absolute URL in the path option replaces the base."""
    text = str(path).strip()
    if "://" in text:
        return validate.url(param, text)
    if not text.startswith("/"):
        raise validate.ParameterError(param, "must start with '/' or be an absolute URL, got %r" % (path,))
    if any(c.isspace() for c in text):
        raise validate.ParameterError(param, "must not contain spaces")
    return base_url.rstrip("/") + text


def parse_options(params):
    """Validated settings from module params; raises ParameterError naming the option."""
    base_url = validate.url("base_url", params["base_url"])
    urls, expected = {}, {}
    for probe in PROBES:
        path = params["%s_path" % probe]
        urls[probe] = _probe_url("%s_path" % probe, base_url, path) if path not in (None, "") else None
        expected[probe] = validate.status_codes("%s_status" % probe, params["%s_status" % probe])

    given = params.get("assertions") or {}
    unknown = sorted(set(given) - set(ASSERTION_IDS))
    if unknown:
        raise validate.ParameterError("assertions", "unknown check ID(s) %s; allowed: %s"
                                      % (", ".join(unknown), ", ".join(ASSERTION_IDS)))
    assertions = dict(DEFAULT_ASSERTIONS)
    assertions.update(given)
    compiled = {}
    for check_id, expression in assertions.items():
        if expression in (None, ""):
            assertions[check_id] = None
            continue
        if not isinstance(expression, str):
            raise validate.ParameterError("assertions", "%s must be a JMESPath expression string, got %r"
                                          % (check_id, expression))
        compiled[check_id] = validate.jmespath_expression("assertions.%s" % check_id, expression)

    env_query = params.get("environment_query") or None
    env_compiled = validate.jmespath_expression("environment_query", env_query) if env_query else None

    timeout = validate.positive_number("timeout", params["timeout"])
    startup_timeout = validate.positive_number("startup_timeout", params["startup_timeout"], allow_zero=True)
    interval = validate.positive_number("startup_interval", params["startup_interval"])
    for name in ("ca_path", "client_cert", "client_key"):
        if params.get(name):
            validate.existing_path(name, params[name])
    headers, secrets = {}, []
    for param in ("headers", "secret_headers"):
        for name, value in (params.get(param) or {}).items():
            if value is None or isinstance(value, (dict, list)):
                raise validate.ParameterError(param, "value of header %r must be a string" % (name,))
            headers[str(name)] = str(value)
            if param == "secret_headers" or str(name).lower() in SECRET_HEADERS:
                secrets.append(str(value))
    return dict(urls=urls, expected=expected, assertions=assertions, compiled=compiled,
                env_query=env_query, env_compiled=env_compiled, timeout=timeout,
                startup_timeout=startup_timeout, interval=interval, headers=headers, secrets=secrets)


def run_probes(opts, params):
    """Send the probes concurrently; returns {probe: (HttpResponse, polls, waited_s, note)}."""
    def get(url):
        return http.request(url, headers=opts["headers"], timeout=opts["timeout"],
                            validate_certs=params["validate_certs"], ca_path=params.get("ca_path"),
                            client_cert=params.get("client_cert"), client_key=params.get("client_key"))

    urls, expected = opts["urls"], opts["expected"]
    startup_done = threading.Event()
    startup_passed = []

    def startup_job():
        try:
            poll = health.poll_until(lambda: get(urls["startup"]),
                                     lambda r: r.ok and r.status in expected["startup"],
                                     opts["startup_timeout"], opts["interval"])
            if not poll.timed_out:
                startup_passed.append(True)
                return poll.result, poll.polls, poll.elapsed_s, None
            return poll.result, poll.polls, poll.elapsed_s, "startup timeout %ss reached" % opts["startup_timeout"]
        finally:
            startup_done.set()

    def other_job(probe):
        first = get(urls[probe])
        if (first.ok and first.status in expected[probe]) or urls["startup"] is None or startup_done.is_set():
            return first, 1, None, None
        # Startup still polling: as in Kubernetes, this probe only counts once startup has passed.
        with Stopwatch() as waited:
            startup_done.wait(opts["startup_timeout"] + opts["timeout"] + 5)
        if not startup_passed:
            return first, 1, None, None
        second = get(urls[probe])
        note = "asked again after the startup probe passed (first answer: %s)" % (first.status or first.error)
        return second, 2, waited.ms / 1000.0, note

    jobs = {}
    with ThreadPoolExecutor(max_workers=3) as pool:
        for probe in PROBES:
            if urls[probe] is None:
                continue
            jobs[probe] = pool.submit(startup_job) if probe == "startup" else pool.submit(other_job, probe)
        return dict((probe, job.result()) for probe, job in jobs.items())


def build_checks(opts, outcomes):
    """All six items from the probe outcomes (pure; no network)."""
    checks = {}
    responses = dict((probe, outcome[0]) for probe, outcome in outcomes.items())
    for probe in PROBES:
        check_id = health.PROBE_IDS[probe]
        if probe not in outcomes:
            checks[check_id] = check_item(SKIP, "not configured: no %s probe path" % probe, {})
            continue
        response, polls, waited_s, note = outcomes[probe]
        item = health.probe_item(probe, response, opts["expected"][probe], polls=polls, waited_s=waited_s,
                                 secrets=opts["secrets"], note=note, timeout=opts["timeout"])
        expression = opts["assertions"].get(check_id)
        if expression and item["status"] == PASS:
            extra = health.assertion_item(check_id, expression, opts["compiled"][check_id],
                                          health.parse_json(response.body), response.describe_request(),
                                          opts["secrets"])
            item["evidence"]["assertion"] = extra["evidence"]
            if extra["status"] != PASS:
                message = "%s answered %s but %s" % (response.describe_request(), response.status, extra["message"])
                item = check_item(FAIL, message, item["evidence"])
        checks[check_id] = item

    source_probe, body = health.pick_body(responses, opts["body_from"])
    if source_probe:
        response = responses[source_probe]
        source = "%s (%s)" % (response.describe_request(), response.status)
    else:
        asked = ["%s: %s" % (p, responses[p].error or "status %s, no JSON body" % responses[p].status)
                 for p in opts["body_from"] if p in responses]
        source = "; ".join(asked) or "none of %s was probed" % ", ".join(opts["body_from"])
    for check_id in BODY_IDS:
        checks[check_id] = health.assertion_item(check_id, opts["assertions"].get(check_id),
                                                 opts["compiled"].get(check_id), body, source, opts["secrets"])
    checks["HEALTH-ENV"] = health.environment_item(opts["env_query"], opts["env_compiled"],
                                                   opts["expected_environment"], body, source)
    return checks, source_probe


def main():
    argument_spec = dict(
        base_url=dict(type="str", required=True),
        live_path=dict(type="str", default="/healthz/live"),
        ready_path=dict(type="str", default="/healthz/ready"),
        startup_path=dict(type="str", default="/healthz/startup"),
        live_status=dict(type="raw", default=[200]),
        ready_status=dict(type="raw", default=[200]),
        startup_status=dict(type="raw", default=[200]),
        assertions=dict(type="dict", default={}),
        environment_query=dict(type="str", default="environment"),
        expected_environment=dict(type="str"),
        body_from=dict(type="list", elements="str", choices=list(PROBES), default=["ready", "startup"]),
        secret_headers=dict(type="dict", default={}, no_log=True),
        startup_timeout=dict(type="float", default=60),
        startup_interval=dict(type="float", default=2),
    )
    argument_spec.update(http.http_argument_spec())
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)

    if not validate.HAS_JMESPATH:
        module.fail_json(msg=missing_required_lib("jmespath"))
    try:
        opts = parse_options(module.params)
    except validate.ParameterError as err:
        module.fail_json(msg=str(err))
    secret.protect(module)
    opts["secrets"] = secret.register(module, opts["secrets"])  # credential headers join the no_log values
    opts["body_from"] = module.params["body_from"]
    opts["expected_environment"] = (module.params.get("expected_environment") or "").strip() or None

    with Stopwatch() as total:
        outcomes = run_probes(opts, module.params)
    checks, source_probe = build_checks(opts, outcomes)

    ready = outcomes.get("ready")
    ready_body = health.parse_json(ready[0].body) if ready else None
    needs_diagnosis = any(checks[i]["status"] == FAIL for i in ("HEALTH-READY", "HEALTH-STARTUP"))
    module.exit_json(changed=False, checks=checks, ready_body=redact_data(ready_body, opts["secrets"]),
                     body_source=source_probe, needs_diagnosis=needs_diagnosis,
                     elapsed_ms=round(total.ms, 1))


if __name__ == "__main__":
    main()

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
  - C(HEALTH-READY) includes the dependency statuses (CHECKLIST 6.1 and 6.5) - an expected status passes only
    when C(HEALTH-DB) and C(HEALTH-REDIS) pass too, judged by the same expressions on the same body; a 200
    whose body reports a dependency down fails. An item whose expression is empty is not checked and does not
    count.
  - C(HEALTH-ENV) reads the environment where the service shows it (O(environment_from)) - the probe bodies,
    any endpoint (O(environment_path) and O(environment_query)), or the application's configuration, which
    M(hunter.ops.app_environment) reads on the application host (this module then reports C(HEALTH-ENV) as
    V(skip) for that task to record).
  - Read-only; never changes the target. Network trouble (refused, timed out, TLS) is reported as a
    failed item naming the URL and the timeout, not as a module failure.
  - A bad value fails exactly the items that use it, with one message per item naming every bad option it
    uses (under the name O(param_labels) gives); the other items are checked as usual.
author:
  - hunter.ops contributors (@hunter-ops)
extends_documentation_fragment:
  - hunter.ops.http
  - hunter.ops.param_labels
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
      - A mapping; validated here, so a bad expression fails only the items that use it (C(HEALTH-DB) and
        C(HEALTH-REDIS) expressions are used by C(HEALTH-READY) too).
    type: raw
    default: {}
  environment_from:
    description:
      - Where C(HEALTH-ENV) reads the environment the service runs with.
      - V(body) - the probe body O(body_from) picks, at O(environment_query).
      - V(endpoint) - the JSON answer of GET O(environment_path) (any endpoint, for example V(/api/v1/info)), at
        O(environment_query).
      - V(config) - the application's configuration, read on the application host by
        M(hunter.ops.app_environment); this module reports C(HEALTH-ENV) as V(skip) for that task to record.
      - One of V(body), V(endpoint), V(config); another value fails C(HEALTH-ENV) only.
    type: str
    default: body
  environment_path:
    description:
      - Path (or absolute URL) of the endpoint that shows the environment, for O(environment_from=endpoint).
        Sent with the same headers, TLS settings and timeout as the probes.
    type: str
    default: ""
  environment_query:
    description:
      - JMESPath expression giving the environment name in the body (C(HEALTH-ENV)). Empty to skip C(HEALTH-ENV)
        (reported as not checked, naming this option).
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
      - A list of V(live), V(ready), V(startup) (or a comma-separated string).
    type: raw
    default: [ready, startup]
  secret_headers:
    description:
      - Request headers carrying credentials (for example V(X-API-Key) or V(Authorization)), merged over
        O(headers). Their values are C(no_log) and redacted wherever they could appear; O(headers) values are
        shown in the task's invocation, so never put a credential there.
      - A mapping of header names to strings.
    type: raw
    default: {}
  headers:
    description:
      - A mapping of header names to strings; validated here, so a bad value fails the items that send requests.
    type: raw
    default: {}
  timeout:
    description:
      - A number of seconds greater than 0; validated here, so a bad value fails the items that send requests.
    type: raw
    default: 5.0
  validate_certs:
    description:
      - A boolean; validated here, so a bad value fails the items that send requests.
    type: raw
    default: true
  startup_timeout:
    description:
      - Seconds to keep polling the startup probe (Kubernetes C(failureThreshold) x C(periodSeconds)).
        V(0) asks once. The poll may last one request O(timeout) longer.
      - A number; a bad value fails C(HEALTH-STARTUP) only.
    type: raw
    default: 60
  startup_interval:
    description:
      - Seconds between two startup polls (Kubernetes C(periodSeconds)).
    type: raw
    default: 2
notes:
  - Supports check mode; the probes are plain GET requests and run in check mode too.
  - O(timeout) applies to every single request (connect and each read).
seealso:
  - module: hunter.ops.dependency_diag
  - module: hunter.ops.app_environment
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

- name: 'The environment is shown by another endpoint: {"env": {"name": "production"}}'
  hunter.ops.health_probe:
    base_url: http://127.0.0.1:8000
    expected_environment: production
    environment_from: endpoint
    environment_path: /api/v1/info
    environment_query: env.name
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
  description: True when the readiness or startup probe failed on what the service answered (not on a bad input);
    the role then runs M(hunter.ops.dependency_diag).
  returned: always
  type: bool
  sample: false
input_problems:
  description: Every bad value, named as O(param_labels) gives it (null when none); each also fails the items
    that use it.
  returned: always
  type: str
  sample: "health_check_assertions.HEALTH-DB: invalid JMESPath expression 'db.status ==' (...)"
elapsed_ms:
  description: Wall time of the whole probe run.
  returned: always
  type: float
  sample: 25.4
'''

import difflib
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
ENVIRONMENT_FROM = ("body", "endpoint", "config")
# Options every request uses: a bad one fails every item that sends a request.
REQUEST_OPTIONS = ("base_url", "timeout", "validate_certs", "ca_path", "client_cert", "client_key", "headers",
                   "secret_headers")


def _probe_url(param, base_url, path):
    """Join base URL and path; an absolute URL in the path option replaces the base."""
    text = str(path).strip()
    if "://" in text:
        return validate.url(param, text)
    if not text.startswith("/"):
        raise validate.ParameterError(param, "must start with '/' or be an absolute URL, got %r" % (text,))
    if any(c.isspace() for c in text):
        raise validate.ParameterError(param, "must not contain spaces")
    if base_url is None:  # base_url itself is bad: reported under its own name
        return None
    return base_url.rstrip("/") + text


def _assertions(problems, given):
    """(expressions by ID with defaults merged, compiled by ID, {ID: [option keys it depends on]})."""
    keys = dict((check_id, ["assertions.%s" % check_id]) for check_id in ASSERTION_IDS)
    given = problems.check("assertions", validate.mapping, given)
    if given is None:  # not a mapping: no item can tell which condition was meant
        for check_id in ASSERTION_IDS:
            keys[check_id].append("assertions")
        given = {}
    assertions = dict(DEFAULT_ASSERTIONS)
    compiled = {}
    for key, expression in given.items():
        key = str(key)
        if key not in ASSERTION_IDS:
            # A typo (HEALTH_DB) leaves the intended item on its default: that item must not pass.
            close = difflib.get_close_matches(key, ASSERTION_IDS, n=1, cutoff=0.6)
            problems.add("assertions.%s" % key, "unknown check ID%s; allowed: %s" % (
                " (did you mean %s?)" % close[0] if close else "", ", ".join(ASSERTION_IDS)))
            for check_id in (close or ASSERTION_IDS):
                keys[check_id].append("assertions.%s" % key)
            continue
        assertions[key] = expression
    for check_id in ASSERTION_IDS:
        expression = assertions.get(check_id)
        if expression in (None, ""):
            assertions[check_id] = None
            continue
        if not isinstance(expression, str):
            problems.add("assertions.%s" % check_id, "must be a JMESPath expression string, got %r" % (expression,))
            continue
        found = problems.check("assertions.%s" % check_id, validate.jmespath_expression, expression)
        if found is not None:
            compiled[check_id] = found
    return assertions, compiled, keys


def _headers(problems, params):
    headers, secrets = {}, []
    for param in ("headers", "secret_headers"):
        given = problems.check(param, validate.mapping, params.get(param))
        for name, value in (given or {}).items():
            if value is None or isinstance(value, (dict, list)):
                problems.add(param, "value of header %r must be a string" % (name,))
                continue
            headers[str(name)] = str(value)
            if param == "secret_headers" or str(name).lower() in SECRET_HEADERS:
                secrets.append(str(value))
    return headers, secrets


def parse_options(params):
    """Settings from module params. Every bad value is kept in ``opts["problems"]``
    (validate.InputProblems) under its option, and ``opts["uses"]`` says which options each item
    depends on, so a bad value fails exactly the items that use it."""
    problems = validate.InputProblems(params.get("param_labels"))
    base_url = problems.check("base_url", validate.url, params.get("base_url"))
    urls, expected = {}, {}
    for probe in PROBES:
        path = params.get("%s_path" % probe)
        urls[probe] = None
        if path not in (None, ""):
            urls[probe] = problems.check("%s_path" % probe, _probe_url, base_url, path)
        expected[probe] = problems.check("%s_status" % probe, validate.status_codes, params.get("%s_status" % probe))
    assertions, compiled, assertion_keys = _assertions(problems, params.get("assertions"))

    env_from = str(params.get("environment_from") or "body").strip()
    if env_from not in ENVIRONMENT_FROM:
        problems.add("environment_from", "must be one of %s, got %r" % (", ".join(ENVIRONMENT_FROM), env_from))
    env_query = params.get("environment_query") or None
    env_compiled = None
    if env_query:
        env_compiled = problems.check("environment_query", validate.jmespath_expression, env_query)
    env_url = None
    if env_from == "endpoint":
        env_path = params.get("environment_path")
        if env_path in (None, ""):
            problems.add("environment_path", "required when the environment is read from an endpoint")
        else:
            env_url = problems.check("environment_path", _probe_url, base_url, env_path)
        if not env_query:
            problems.add("environment_query", "required when the environment is read from an endpoint")

    timeout = problems.check("timeout", validate.positive_number, params.get("timeout"))
    startup_timeout = problems.check("startup_timeout", validate.positive_number, params.get("startup_timeout"),
                                     allow_zero=True)
    interval = problems.check("startup_interval", validate.positive_number, params.get("startup_interval"))
    validate_certs = problems.check("validate_certs", validate.boolean, params.get("validate_certs", True))
    for name in ("ca_path", "client_cert", "client_key"):
        if params.get(name):
            problems.check(name, validate.existing_path, params[name])
    headers, secrets = _headers(problems, params)
    body_from = problems.check("body_from", validate.string_list, params.get("body_from"), choices=PROBES)
    if body_from == []:
        problems.add("body_from", "name at least one of %s" % ", ".join(PROBES))

    # Which options each item depends on.
    body_uses = list(REQUEST_OPTIONS) + ["body_from"] + ["%s_path" % p for p in (body_from or PROBES)]
    uses = {}
    for probe in PROBES:
        check_id = health.PROBE_IDS[probe]
        uses[check_id] = list(REQUEST_OPTIONS) + ["%s_path" % probe, "%s_status" % probe] + assertion_keys[check_id]
        if probe == "startup":
            uses[check_id] += ["startup_timeout", "startup_interval"]
    for check_id in BODY_IDS:
        uses[check_id] = body_uses + assertion_keys[check_id]
        # HEALTH-READY includes the dependency statuses (CHECKLIST 6.1, 6.5): it uses their expressions.
        uses["HEALTH-READY"] += [u for u in uses[check_id] if u not in uses["HEALTH-READY"]]
    env_uses = ["environment_from", "environment_query"]
    if env_from == "endpoint":
        env_uses += list(REQUEST_OPTIONS) + ["environment_path"]
    elif env_from == "body":
        env_uses += body_uses
    uses["HEALTH-ENV"] = env_uses

    return dict(urls=urls, expected=expected, assertions=assertions, compiled=compiled, env_from=env_from,
                env_query=env_query, env_compiled=env_compiled, env_url=env_url, timeout=timeout,
                startup_timeout=startup_timeout, interval=interval, validate_certs=validate_certs,
                headers=headers, secrets=secrets, body_from=body_from or [], problems=problems, uses=uses,
                expected_environment=(params.get("expected_environment") or "").strip() or None)


def bad_inputs(opts, check_id):
    """The problem keys among the options ``check_id`` uses (a problem on a whole option counts for
    its sub-keys, and the reverse)."""
    uses = opts["uses"][check_id]
    return [key for key in opts["problems"].errors
            if any(key == u or u.startswith(key + ".") or key.startswith(u + ".") for u in uses)]


def usable_probes(opts):
    """The probes whose own options are valid, with their URLs (a bad one is not sent)."""
    usable = {}
    for probe in PROBES:
        check_id = health.PROBE_IDS[probe]
        own = [k for k in bad_inputs(opts, check_id) if not k.startswith("assertions")]
        if opts["urls"][probe] is not None and not own:
            usable[probe] = opts["urls"][probe]
    return usable


def run_probes(opts, params=None):
    """Send the probes concurrently; returns {probe: (HttpResponse, polls, waited_s, note)} and, when the
    environment is read from an endpoint, {"environment": (HttpResponse, 1, None, None)}."""
    def get(url):
        return http.request(url, headers=opts["headers"], timeout=opts["timeout"],
                            validate_certs=opts["validate_certs"], ca_path=(params or {}).get("ca_path"),
                            client_cert=(params or {}).get("client_cert"), client_key=(params or {}).get("client_key"))

    urls, expected = usable_probes(opts), opts["expected"]
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
        ok = first.ok and expected[probe] is not None and first.status in expected[probe]
        if ok or "startup" not in urls or startup_done.is_set():
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
    with ThreadPoolExecutor(max_workers=4) as pool:
        for probe in urls:
            jobs[probe] = pool.submit(startup_job) if probe == "startup" else pool.submit(other_job, probe)
        if opts["env_from"] == "endpoint" and opts["env_url"] and not bad_inputs(opts, "HEALTH-ENV"):
            jobs["environment"] = pool.submit(lambda: (get(opts["env_url"]), 1, None, None))
        return dict((name, job.result()) for name, job in jobs.items())


def _input_item(opts, check_id):
    """The item failed by its bad inputs: every one of them, named as the operator set it."""
    bad = bad_inputs(opts, check_id)
    return check_item(FAIL, opts["problems"].message(*bad), {"bad_options": bad})


def _skip_reason(opts, check_id):
    label = opts["problems"].label
    if check_id == "HEALTH-ENV":
        return "%s (%s is empty)" % (health.SKIP_REASONS[check_id], label("environment_query"))
    return "%s (%s.%s is empty)" % (health.SKIP_REASONS[check_id], label("assertions"), check_id)


def _environment(opts, outcomes, body, source):
    expected = opts["expected_environment"]
    if opts["env_from"] == "config":
        return check_item(SKIP, "not read from the service: the environment is read from the application's "
                                "configuration (hunter.ops.app_environment)", {"expected": expected})
    if opts["env_from"] == "endpoint":
        response = outcomes["environment"][0]
        evidence = response.evidence(secrets=opts["secrets"])
        source = "%s (%s)" % (response.describe_request(), response.status or response.error)
        if response.error:
            return check_item(FAIL, "%s failed: %s" % (response.describe_request(), response.error),
                              dict(evidence, query=opts["env_query"], expected=expected, source=source))
        if not 200 <= response.status < 300:
            what = "%s answered %s: no environment to read" % (response.describe_request(), response.status)
            return check_item(FAIL, what,
                              dict(evidence, query=opts["env_query"], expected=expected, source=source))
        body = health.parse_json(response.body)
    return health.environment_item(opts["env_query"], opts["env_compiled"], expected, body, source,
                                   skip_reason=_skip_reason(opts, "HEALTH-ENV"))


def _fold_dependencies(item, response, checks):
    """HEALTH-READY includes the dependency statuses: a ready answer whose body reports (or cannot
    show) a dependency down fails, with that dependency's own words."""
    dependencies = {}
    for check_id in BODY_IDS:
        dep = checks[check_id]
        dependencies[check_id] = {"status": dep["status"], "message": dep["message"]}
        if dep["status"] == PASS or dep["status"] == SKIP:
            continue
        what = "the database status" if check_id == "HEALTH-DB" else "the Redis status"
        # A body that shows the status, not ok; or no body the expression could read.
        verdict = "is not ok" if "body" in dep["evidence"] else "could not be read"
        return check_item(FAIL, "%s answered %s but %s %s: %s" % (
            response.describe_request(), response.status, what, verdict, dep["message"]),
            dict(item["evidence"], dependencies=dependencies))
    item["evidence"]["dependencies"] = dependencies
    unchecked = [c for c in BODY_IDS if checks[c]["status"] == SKIP]
    if unchecked:
        item["message"] += "; %s not checked (%s)" % (", ".join(unchecked), "; ".join(
            checks[c]["message"] for c in unchecked))
    else:
        item["message"] += "; database and Redis ok in the body"
    return item


def build_checks(opts, outcomes):
    """All six items from the probe outcomes (pure; no network)."""
    checks = {}
    responses = dict((probe, outcome[0]) for probe, outcome in outcomes.items() if probe in PROBES)
    body_from = list(opts["body_from"])
    source_probe, body = health.pick_body(responses, body_from)
    if source_probe:
        response = responses[source_probe]
        source = "%s (%s)" % (response.describe_request(), response.status)
    else:
        asked = ["%s: %s" % (p, responses[p].error or "status %s, no JSON body" % responses[p].status)
                 for p in body_from if p in responses]
        source = "; ".join(asked) or "none of %s was probed" % ", ".join(body_from)
    for check_id in BODY_IDS:
        if bad_inputs(opts, check_id):
            checks[check_id] = _input_item(opts, check_id)
            continue
        checks[check_id] = health.assertion_item(check_id, opts["assertions"].get(check_id),
                                                 opts["compiled"].get(check_id), body, source, opts["secrets"],
                                                 skip_reason=_skip_reason(opts, check_id))
    if bad_inputs(opts, "HEALTH-ENV"):
        checks["HEALTH-ENV"] = _input_item(opts, "HEALTH-ENV")
    else:
        checks["HEALTH-ENV"] = _environment(opts, outcomes, body, source)

    for probe in PROBES:
        check_id = health.PROBE_IDS[probe]
        if bad_inputs(opts, check_id):
            checks[check_id] = _input_item(opts, check_id)
            continue
        if probe not in outcomes:
            checks[check_id] = check_item(SKIP, "not checked: no %s probe path is configured" % probe, {})
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
        if probe == "ready" and item["status"] == PASS:
            item = _fold_dependencies(item, response, checks)
        checks[check_id] = item
    return checks, source_probe


def needs_diagnosis(opts, checks):
    """True when readiness or startup failed on what the service answered (never on a bad input:
    a diagnosis would then blame a healthy service)."""
    return any(checks[i]["status"] == FAIL and not bad_inputs(opts, i) for i in ("HEALTH-READY", "HEALTH-STARTUP"))


def main():
    argument_spec = http.http_argument_spec()
    argument_spec.update(
        base_url=dict(type="str", required=True),
        live_path=dict(type="str", default="/healthz/live"),
        ready_path=dict(type="str", default="/healthz/ready"),
        startup_path=dict(type="str", default="/healthz/startup"),
        live_status=dict(type="raw", default=[200]),
        ready_status=dict(type="raw", default=[200]),
        startup_status=dict(type="raw", default=[200]),
        assertions=dict(type="raw", default={}),
        environment_from=dict(type="str", default="body"),
        environment_path=dict(type="str", default=""),
        environment_query=dict(type="str", default="environment"),
        expected_environment=dict(type="str"),
        body_from=dict(type="raw", default=["ready", "startup"]),
        startup_timeout=dict(type="raw", default=60),
        startup_interval=dict(type="raw", default=2),
        param_labels=dict(type="dict", default={}),
        # Validated here, item by item, so a bad value fails only the items that use it.
        timeout=dict(type="raw", default=5.0),
        validate_certs=dict(type="raw", default=True),
        headers=dict(type="raw", default={}),
        secret_headers=dict(type="raw", default={}, no_log=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    secret.protect(module)
    if not validate.HAS_JMESPATH:
        module.fail_json(msg=missing_required_lib("jmespath"))
    opts = parse_options(module.params)
    opts["secrets"] = secret.register(module, opts["secrets"])  # credential headers join the no_log values

    with Stopwatch() as total:
        outcomes = run_probes(opts, module.params)
    checks, source_probe = build_checks(opts, outcomes)

    ready = outcomes.get("ready")
    ready_body = health.parse_json(ready[0].body) if ready else None
    module.exit_json(changed=False, checks=checks, ready_body=redact_data(ready_body, opts["secrets"]),
                     body_source=source_probe, needs_diagnosis=needs_diagnosis(opts, checks),
                     input_problems=opts["problems"].message() or None, elapsed_ms=round(total.ms, 1))


if __name__ == "__main__":
    main()

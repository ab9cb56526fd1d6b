#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: sentry_event
short_description: Make the application report a test error and find that event through the Sentry server's API (SENTRY-EVENT/ENV/DETAIL/ALERTS)
version_added: 0.1.0
description:
  - Generates a test error by one of the runbook's methods (O(method)), then polls the error tracker's API with
    backoff until the event this probe caused appears or O(wait_timeout) passes, and reports how long it took.
  - Returns under RV(checks) V(SENTRY-EVENT) (the event was found in time), V(SENTRY-ENV) (the environment the
    application sent is O(environment)), V(SENTRY-DETAIL) (exception frames, and the context the application
    attaches) and V(SENTRY-ALERTS) (the project has at least one alert rule, else V(warn); V(skip) with the reason
    where the backend has no such API or O(alerts=false)). What the configured method cannot observe is V(skip)
    with the reason, never V(pass).
  - O(method=sdk) (runbook option A) raises a real exception inside the application's own runtime - its
    interpreter and installed sentry-sdk, working directory, environment and user - by running a small script
    there (C(python -), the script on stdin, within O(command_timeout)). The runtime follows O(source) - V(process)
    the running process (its interpreter is argv[0] when that is the process's executable, else
    C($VIRTUAL_ENV/bin/python), else O(app_python); its C(/proc/<pid>/cwd) and C(/proc/<pid>/environ); its user
    when run as root); V(envfile) the process too when O(pid), O(pidfile) or O(process_match) names it, else
    O(app_python) in O(app_workdir) with the environment files' variables; V(container) C(docker exec -i) /
    C(docker compose exec -T) running O(app_python) (default C(python)) inside; V(value) the probe's own Python
    with the DSN given (it never passes - nothing of the application is observed).
  - With O(app_module) the script first imports the application's module that sets up Sentry (as the runbook's
    option A imports C(app.core.logging)) and reports through the client the application's own code
    initialised, so its DSN, environment, release and integrations are the application's. A runtime without
    sentry-sdk, a module that fails to import, a configuration in which the application initialises no client,
    a client sending to another project than O(project), and a dropped event (HTTP 403, network error,
    C(before_send)) fail V(SENTRY-EVENT) at once with that reason. Without O(app_module) the script sets up a
    client from O(variable) in the application's environment; that shows the runtime and the DSN work but not that
    the application reports, so V(SENTRY-EVENT) and V(SENTRY-DETAIL) are V(skip) when the event arrives, and
    V(SENTRY-ENV) compares the application's setting O(environment_variable) when one is named.
  - O(method=endpoint) (option B) calls the application's test-error endpoint with C(X-API-Key) and C(X-Probe-Id);
    O(method=request) (option C) sends a configured request that makes the application fail. The event id is
    taken from the response (O(event_id_key)) when the application returns it, else the event is searched by
    tag (O(match_tags), default C(probe_id:<probe id>)).
  - Only the event this probe caused counts. An event found by id is the one the SDK or the application returned
    for this probe's error; an event found by tags must have been received by the server at or after this probe's
    error, on the server's clock (measured from the C(Date) header of every API answer, accurate to a second), and
    carry the probe's id - a tag, the exception message, the request's URL or headers (C(X-Probe-Id)), a context -
    unless O(event_match=time) accepts the time bound alone.
  - O(backend=sentry) reads Sentry's web API (sentry.io or self-hosted; C(/api/0/projects/<org>/<project>/events/<id>/),
    alert rules from C(/api/0/projects/<org>/<project>/rules/)). O(backend=bugsink) reads Bugsink's API
    (C(/api/canonical/0/events/lookup/)). A 404 means "not yet"; 401/403 fail at once as an authentication error.
  - The project is read once before polling, so a wrong project (or organization) fails at once instead of
    looking like an event that has not arrived yet.
  - Bad input fails only the items that use it, every bad value named (as O(param_labels) says the operator set
    it) - a bad O(alerts) fails V(SENTRY-ALERTS) only, a bad O(environment) V(SENTRY-ENV) only.
author:
  - hunter.ops contributors (@hunter-ops)
extends_documentation_fragment:
  - hunter.ops.sentry_dsn_source
  - hunter.ops.http
  - hunter.ops.param_labels
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
    details: >-
      Nothing on the target changes. The test event is sent in check mode too: sending it and finding it is
      the check. Method V(sdk) runs the application's code with C(PYTHONDONTWRITEBYTECODE=1), as the
      application's user.
options:
  source:
    description:
      - Where the application's environment, and for O(method=sdk) its runtime, is found (see
        M(hunter.ops.sentry_dsn)). Required with O(method=sdk), ignored by the other methods.
    type: str
  allow_http:
    description:
      - Accept a plain V(http) DSN given with O(source=value) (a boolean).
    type: raw
    default: false
  method:
    description:
      - How the test error is generated. V(sdk) is runbook option A, V(endpoint) option B, V(request) option C.
      - One of V(sdk), V(endpoint), V(request).
    type: str
    default: sdk
  environment:
    description:
      - The environment the application's event must carry (V(production), V(staging)). Never sent by the probe.
    type: str
  app_module:
    description:
      - O(method=sdk) - the application's module that sets up Sentry, V(package.module) or
        V(package.module:function) (called without arguments), imported inside the application's runtime. It must
        be safe to import - the module the application's own start-up imports, not one that starts a server.
      - Without it the probe sets up the client itself, which cannot show that the application reports.
    type: str
  app_python:
    description:
      - O(method=sdk) - the application's interpreter (a path; in a container, the command there). Default - the
        interpreter of the application's process, or V(python) in a container. Required with O(source=envfile)
        when no process is named.
    type: str
  app_workdir:
    description:
      - O(method=sdk) - the application's working directory. Default - its process's, the first environment file's
        directory (O(source=envfile) without a process), the container's own.
    type: str
  environment_variable:
    description:
      - O(method=sdk) without O(app_module) - the application's setting holding its Sentry environment (for
        example V(HUNTER_ENVIRONMENT)); the client is set up with its value and V(SENTRY-ENV) compares it.
        Unset, V(SENTRY-ENV) is V(skip).
    type: str
  backend:
    description:
      - The error tracker's API. V(sentry) for sentry.io and self-hosted Sentry, V(bugsink) for Bugsink.
    type: str
    default: sentry
  api_url:
    description:
      - Base URL of the error tracker (V(https://sentry.io), V(https://sentry.example.com),
        V(http://127.0.0.1:8001)), without the C(/api/...) part. Required.
    type: str
  api_token:
    description:
      - Bearer token for the API (Sentry auth token with C(project:read) and C(event:read); Bugsink API token).
        Required. Never logged.
    type: str
  organization:
    description:
      - Organization slug (O(backend=sentry)).
    type: str
  project:
    description:
      - The project the application reports to. Sentry - the project slug. Bugsink - the numeric project id.
        Required.
    type: str
  wait_timeout:
    description:
      - Seconds to wait for the event to appear, counted from when the error was generated (a number).
    type: raw
    default: 120
  poll_interval:
    description:
      - Seconds between the first and the second API lookup (the first is made at once); later intervals grow
        by half each time up to O(poll_max_interval).
    type: raw
    default: 0.5
  poll_max_interval:
    description:
      - Longest wait between two API lookups.
    type: raw
    default: 10
  api_error_limit:
    description:
      - After this many consecutive lookups that did not reach the API (connection refused, DNS, TLS), the item
        fails without waiting for O(wait_timeout).
    type: raw
    default: 3
  probe_id:
    description:
      - Unique id of this probe, sent as tag C(probe_id) (method V(sdk)) or as header C(X-Probe-Id) (methods
        V(endpoint) and V(request)). Generated when omitted.
    type: str
  app_url:
    description:
      - Base URL of the application (methods V(endpoint) and V(request)).
    type: str
  api_key:
    description:
      - API key sent as C(X-API-Key) to the application (methods V(endpoint) and V(request)). Never logged; other
        credential headers go in O(secret_headers).
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
      - Tags that find the application's event when its id is unknown (methods V(endpoint), V(request)), a mapping.
        By default the tag C(probe_id) with this probe's id, which needs an application that copies C(X-Probe-Id)
        into a tag. Other tags only narrow the search - the event must still carry the probe's id
        (O(event_match)).
    type: raw
  event_match:
    description:
      - Which event found by O(match_tags) counts as this probe's. V(marker) - one the server received after this
        probe's error that carries the probe's id (a tag, the exception message, the request URL or headers, a
        context). V(time) - also one without the id, received after this probe's error (server clock, measured);
        for an application that records no request data, and weaker - a concurrent error with the same tags
        would count.
    type: str
    default: marker
  detail_context:
    description:
      - Name of an event context the application attaches, required by V(SENTRY-DETAIL). Methods V(endpoint) and
        V(request) - it must hold C(probe_id) equal to this probe's id (default V(probe)). Method V(sdk) - it must
        be present (default none). Empty - the exception frames only.
    type: str
  alerts:
    description:
      - Check the project's alert rules (V(SENTRY-ALERTS)), a boolean. When false the item is V(skip).
    type: raw
    default: true
  timeout:
    description:
      - Seconds to wait for the connection and for each read of every HTTP request (a number).
    type: raw
    default: 5.0
  validate_certs:
    description:
      - Verify the server's TLS certificate (a boolean). Turn off only for a test environment.
    type: raw
    default: true
  headers:
    description:
      - Extra request headers to the application (a mapping). Values of credential headers are redacted from the
        evidence, but the task's invocation shows them; put credentials in O(secret_headers).
    type: raw
    default: {}
  secret_headers:
    description:
      - Request headers carrying credentials to the application (a mapping), merged over O(headers) and
        O(api_key). Their values are C(no_log) and redacted wherever they could appear.
    type: raw
    default: {}
notes:
  - Method V(sdk) needs nothing on the host running the module but the application itself (its interpreter with
    sentry-sdk); reading another user's process needs root (C(become)), and the script then runs as that user.
  - The latency reported is the time from generating the error to the first successful API lookup, so it is
    bounded below by the polling interval; the server's own receive time is in the evidence when it has one.
  - How each backend lets the probe find an application's event - docs/SENTRY.md.
'''

EXAMPLES = r'''
- name: Test error inside the running service, through the client its own code sets up, found in Sentry
  hunter.ops.sentry_event:
    method: sdk
    source: process
    process_match: "gunicorn .*hunter"
    app_module: app.core.logging
    environment: production
    backend: sentry
    api_url: https://sentry.io
    organization: acme
    project: hunter-api
    api_token: "{{ vault_sentry_api_token }}"
  become: true

- name: The same inside a compose service
  hunter.ops.sentry_event:
    method: sdk
    source: container
    compose_service: api
    compose_project_dir: /srv/hunter
    app_module: app.main
    environment: production
    backend: sentry
    api_url: https://sentry.io
    organization: acme
    project: hunter-api
    api_token: "{{ vault_sentry_api_token }}"

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

- name: A request that makes the application fail; its event recognised by the X-Probe-Id header it recorded
  hunter.ops.sentry_event:
    method: request
    app_url: http://127.0.0.1:8000
    request_path: /api/v1/scan
    request_body: {domain: nonexistent-test-domain-12345.invalid}
    secret_headers: {X-API-Key: "{{ vault_hunter_api_key }}"}
    match_tags: {url: "http://127.0.0.1:8000/api/v1/scan"}
    environment: production
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
      message: >-
        event 5f0c... visible through the Bugsink API 1.2 s after the error (limit 120 s); raised in the
        application's runtime (/srv/hunter/.venv/bin/python, sentry-sdk 2.75.0) through the client app.main set up
      evidence:
        method: sdk
        probe_id: hunter-probe-1a2b3c4d5e6f
        runtime: {kind: process, pid: 4242, python: /srv/hunter/.venv/bin/python, cwd: /srv/hunter}
        client: {environment: production, release: hunter@1.0.0, dsn: {host: sentry.example.com, project_id: "42"}}
        event_id: 5f0c...
        latency_s: 1.2
        matched_by: the event id sentry-sdk returned for the probe's exception
    SENTRY-ENV:
      status: pass
      message: "the application's client sent environment 'production', the expected one"
      evidence: {expected: production, found: production, client_environment: production}
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
  description: Id of this probe (tag C(probe_id), header C(X-Probe-Id)).
  returned: always
  type: str
'''

import os
import time
import uuid

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hunter.ops.plugins.module_utils import app_env
from ansible_collections.hunter.ops.plugins.module_utils import app_runtime
from ansible_collections.hunter.ops.plugins.module_utils import secret
from ansible_collections.hunter.ops.plugins.module_utils import sentry_api
from ansible_collections.hunter.ops.plugins.module_utils import sentry_emit
from ansible_collections.hunter.ops.plugins.module_utils import sentry_inputs as inputs
from ansible_collections.hunter.ops.plugins.module_utils.http import http_argument_spec, request_headers
from ansible_collections.hunter.ops.plugins.module_utils.redact import redact_data
from ansible_collections.hunter.ops.plugins.module_utils.results import FAIL, PASS, SKIP, check_item
from ansible_collections.hunter.ops.plugins.module_utils.sentry import DEFAULT_VARIABLE, assess
from ansible_collections.hunter.ops.plugins.module_utils.validate import InputProblems, ParameterError, url

METHODS = ("sdk", "endpoint", "request")
EVENT_MATCH = ("marker", "time")
# Which options each item uses: a bad value fails exactly these items (issue 9.12).
API_PARAMS = ("backend", "api_url", "api_token", "organization", "project", "timeout", "validate_certs", "ca_path",
              "client_cert", "client_key")
EVENT_COMMON = API_PARAMS + ("method", "wait_timeout", "poll_interval", "poll_max_interval", "api_error_limit",
                             "probe_id", "match_tags", "event_match")
SDK_PARAMS = inputs.SOURCE_PARAMS + ("allow_http", "app_module", "app_python", "app_workdir", "environment_variable")
REQUEST_PARAMS = ("app_url", "api_key", "headers", "secret_headers", "endpoint_path", "request_path",
                  "request_method", "request_body", "event_id_key")
ALERTS_PARAMS = API_PARAMS + ("alerts",)


def argument_spec():
    spec = app_env.source_argument_spec(DEFAULT_VARIABLE)  # permissive types: check_inputs types them
    spec.update(http_argument_spec())
    spec.update(timeout=dict(type="raw", default=5.0), validate_certs=dict(type="raw", default=True),
                headers=dict(type="raw", default={}), secret_headers=dict(type="raw", default={}, no_log=True))
    spec.update(
        allow_http=dict(type="raw", default=False),
        method=dict(type="str", default="sdk"),
        environment=dict(type="str"),
        backend=dict(type="str", default="sentry"),
        api_url=dict(type="str"),
        api_token=dict(type="str", no_log=True),
        organization=dict(type="str"),
        project=dict(type="str"),
        wait_timeout=dict(type="raw", default=120.0),
        poll_interval=dict(type="raw", default=0.5),
        poll_max_interval=dict(type="raw", default=10.0),
        api_error_limit=dict(type="raw", default=3),
        probe_id=dict(type="str"),
        app_module=dict(type="str"),
        app_python=dict(type="str"),
        app_workdir=dict(type="str"),
        environment_variable=dict(type="str"),
        app_url=dict(type="str"),
        api_key=dict(type="str", no_log=True),
        endpoint_path=dict(type="str", default="/debug/test-error"),
        request_path=dict(type="str"),
        request_method=dict(type="str", default="POST"),
        request_body=dict(type="raw"),
        event_id_key=dict(type="str", default="event_id", no_log=False),
        match_tags=dict(type="raw"),
        event_match=dict(type="str", default="marker"),
        detail_context=dict(type="str"),
        alerts=dict(type="raw", default=True),
        param_labels=dict(type="dict", default={}),
    )
    return spec


def check_inputs(module, problems):
    """Every option checked into ``problems``; returns the checked values (None where bad)."""
    params = module.params
    p = dict(params)
    p["method"] = problems.check("method", inputs.choice, params.get("method"), METHODS)
    # -- the error tracker's API (every item) --
    p["backend"] = problems.check("backend", inputs.choice, params.get("backend"), sentry_api.BACKENDS)
    p["api_url"] = problems.check("api_url", url, params.get("api_url"))
    p["api_token"] = problems.check("api_token", inputs.required_text, params.get("api_token"), "an API token")
    p["project"] = problems.check("project", inputs.required_text, params.get("project"), "the project")
    if p["backend"] == "sentry" and not str(params.get("organization") or "").strip():
        problems.add("organization", "required with backend sentry (the organization slug)")
    if p["backend"] == "bugsink" and p["project"] and not p["project"].isdigit():
        problems.add("project", "Bugsink projects are numeric ids, got %r" % p["project"])
    p["timeout"] = problems.check("timeout", inputs.number, params.get("timeout"))
    p["validate_certs"] = problems.check("validate_certs", inputs.flag, params.get("validate_certs"))
    # -- finding the event (SENTRY-EVENT, hence ENV and DETAIL) --
    for name in ("wait_timeout", "poll_interval", "poll_max_interval"):
        p[name] = problems.check(name, inputs.number, params.get(name))
    p["api_error_limit"] = problems.check("api_error_limit", inputs.integer, params.get("api_error_limit"))
    p["match_tags"] = problems.check("match_tags", inputs.mapping, params.get("match_tags"))
    p["event_match"] = problems.check("event_match", inputs.choice, params.get("event_match"), EVENT_MATCH)
    if p["method"] == "sdk":
        p.update(inputs.source_settings(params, problems))
        p["allow_http"] = problems.check("allow_http", inputs.flag, params.get("allow_http"))
        if params.get("app_module"):
            p["app_module"] = problems.check("app_module", inputs.python_module, params["app_module"])
        if params.get("app_python"):
            p["app_python"] = problems.check("app_python", inputs.absolute_path, params["app_python"])
        if params.get("environment_variable"):
            p["environment_variable"] = problems.check("environment_variable", inputs.variable_name,
                                                       params["environment_variable"])
    elif p["method"] in ("endpoint", "request"):
        p["app_url"] = problems.check("app_url", url, params.get("app_url"))
        path_param = "endpoint_path" if p["method"] == "endpoint" else "request_path"
        path = params.get(path_param)
        if not path:
            problems.add(path_param, "required with method %s" % p["method"])
        elif not str(path).startswith("/"):
            problems.add(path_param, "must start with '/', got %r" % path)
        for name in ("headers", "secret_headers"):
            value = problems.check(name, inputs.mapping, params.get(name))
            if value is not None:
                module.params[name] = value  # http.request_headers reads them from there
        if params.get("api_key") and module.params.get("secret_headers") is not None:
            # The API key is one more secret header; an X-API-Key given in secret_headers wins.
            merged = {"X-API-Key": params["api_key"]}
            merged.update(module.params["secret_headers"])
            module.params["secret_headers"] = merged
        try:
            p["headers"] = request_headers(module) if not problems.bad("headers", "secret_headers") else None
        except ParameterError as err:
            problems.add(err.param, err.problem)
    # -- the other items --
    p["environment"] = problems.check("environment", inputs.required_text, params.get("environment"),
                                      "the expected environment")
    p["alerts"] = problems.check("alerts", inputs.flag, params.get("alerts"))
    if p["detail_context"] is None:
        p["detail_context"] = "" if p["method"] == "sdk" else sentry_emit.PROBE_CONTEXT
    return p


def event_params(method):
    return EVENT_COMMON + (SDK_PARAMS if method == "sdk" else REQUEST_PARAMS if method else ())


class SentryEventProbe(object):
    def __init__(self, module, settings, problems):
        self.module = module
        self.params = settings
        self.problems = problems
        self.probe_id = settings.get("probe_id") or "hunter-probe-%s" % uuid.uuid4().hex[:16]
        self.secrets = module.no_log_values
        self.api = None
        if not problems.bad(*API_PARAMS):
            self.http_options = dict(timeout=settings["timeout"], validate_certs=settings["validate_certs"],
                                     ca_path=settings["ca_path"], client_cert=settings["client_cert"],
                                     client_key=settings["client_key"])
            self.api = sentry_api.make_api(settings["backend"], settings["api_url"], settings["api_token"],
                                           str(settings["project"]).strip(), settings.get("organization"),
                                           self.http_options)

    # -- generating -----------------------------------------------------------------------
    def emit(self):
        p = self.params
        if p["method"] == "sdk":
            return self._emit_sdk()
        headers = dict(p["headers"])  # headers, then the API key and secret_headers (request_headers)
        if p["method"] == "endpoint":
            target, method, body = p["endpoint_path"], "POST", None
        else:
            target, method, body = p["request_path"], p["request_method"].upper(), p.get("request_body")
        emission = sentry_emit.send_request(method, p["app_url"].rstrip("/") + target, self.probe_id, headers, body,
                                            self.http_options, self.secrets, p["event_id_key"],
                                            credential_sent=bool(p.get("api_key") or p.get("secret_headers")))
        emission.method = p["method"]
        return emission

    def runtime(self):
        """The application's runtime for method A; raises RuntimeUnknown (skip) or EnvSourceError (fail)."""
        p = self.params
        source = p["source"]
        if source == "value":
            found = assess({p["variable"]: p.get("dsn") or ""}, p["variable"], "the value given directly (dsn)",
                           p["allow_http"])
            if found.dsn is None:
                raise app_env.EnvSourceError("no usable DSN to send with: %s" % found.message)
            secret.register(self.module, found.dsn, found.parsed.public_key, found.parsed.secret_key)
            return app_runtime.for_probe({p["variable"]: found.dsn})
        if source == "container":
            snapshot = app_env.load(p, self.secrets)  # the container's environment: its secrets are registered
            secret.register_environment(self.module, snapshot.variables, names=[p["variable"]])
            return app_runtime.for_container(p, p.get("app_python"), p.get("app_workdir"))
        if source == "process" or any(p.get(name) for name in inputs.PROCESS_SELECTORS):
            snapshot = app_env.load(dict(p, source="process"), self.secrets)
            secret.register_environment(self.module, snapshot.variables, names=[p["variable"]])
            return app_runtime.for_process(snapshot.evidence["pid"], snapshot.variables, p.get("app_python"),
                                           p.get("app_workdir"), snapshot.description)
        if not p.get("app_python"):
            raise app_runtime.RuntimeUnknown(
                "source envfile names no running process and no interpreter: set the application's process (%s) "
                "or its interpreter (%s)" % (self.problems.label("pidfile"), self.problems.label("app_python")))
        snapshot = app_env.load(p, self.secrets)
        secret.register_environment(self.module, snapshot.variables, names=[p["variable"]])
        workdir = p.get("app_workdir") or os.path.dirname(os.path.abspath(snapshot.evidence["files"][0]))
        return app_runtime.for_command(p["app_python"], snapshot.variables, workdir, snapshot.description)

    def _emit_sdk(self):
        p = self.params
        try:
            runtime = self.runtime()
        except app_runtime.RuntimeUnknown as err:
            return sentry_emit.Emission("sdk", None, unobservable="not run in the application's runtime: %s" % err)
        except app_env.EnvSourceError as err:
            return sentry_emit.Emission("sdk", None, failure="cannot reach the application's runtime: %s" % err)
        return sentry_emit.send_from_runtime(runtime, self.probe_id, p["variable"], p["command_timeout"],
                                             app_module=p.get("app_module"),
                                             environment_variable=p.get("environment_variable"),
                                             secrets=self.secrets, send_timeout=p["timeout"])

    # -- finding ------------------------------------------------------------------------------
    def time_bound(self, emission):
        """The earliest server time an event of this probe can carry (None while the clock is unknown)."""
        return self.api.server_time(emission.sent_at) if emission.sent_at else None

    def wait_for_event(self, emission):
        """Poll with backoff until found, an error waiting cannot fix, or the deadline. (Lookup, lookups)"""
        p = self.params
        deadline = emission.sent_monotonic + p["wait_timeout"]
        interval = p["poll_interval"]
        tags = dict((str(k), str(v)) for k, v in (p.get("match_tags") or {"probe_id": self.probe_id}).items())
        accept_time = p["event_match"] == "time"
        lookups, unreachable, last = 0, 0, None
        problem = self.api.check_project()
        if problem is not None:
            return problem, lookups
        problem = self.project_mismatch(emission)
        if problem is not None:
            return problem, lookups
        while True:
            bound = self.time_bound(emission)
            if emission.event_id:
                last = self.api.get_event(emission.event_id)
                if last.state == sentry_api.FOUND:
                    last.matched_by = ("the event id the application returned for this request" if emission.id_from_app
                                       else "the event id sentry-sdk returned for the probe's exception")
            else:
                last = self.api.find_event(tags, bound, self.probe_id, accept_time)
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

    def project_mismatch(self, emission):
        """Method A knows the project the client sends to: another project than the one searched fails at once."""
        sent_to = str((emission.client.get("dsn") or {}).get("project_id") or "")
        if not sent_to or not self.api.project_id or sent_to == self.api.project_id:
            return None
        return sentry_api.Lookup(sentry_api.ERROR, message=(
            "the application's Sentry client sends to project %s (DSN host %s), but the event is looked for in "
            "project %s (%s, id %s): its events land in another project" % (
                sent_to, emission.client["dsn"].get("host"), self.params["project"], self.problems.label("project"),
                self.api.project_id)), evidence={"dsn_project_id": sent_to, "api_project_id": self.api.project_id})

    # -- items -------------------------------------------------------------------------------------
    def run(self):
        p = self.params
        checks = {}
        bad_event = self.problems.bad(*event_params(p["method"]))
        if bad_event:
            message = "not checked, bad input: %s" % self.problems.message(*event_params(p["method"]))
            checks["SENTRY-EVENT"] = check_item(FAIL, message, {"bad_input": sorted(bad_event)})
            why = "not verified: no test error was generated (bad input, see SENTRY-EVENT)"
            checks["SENTRY-ENV"] = self.input_failure("environment") or check_item(FAIL, why, {})
            checks["SENTRY-DETAIL"] = self.input_failure("detail_context") or check_item(FAIL, why, {})
            checks["SENTRY-ALERTS"] = self.alerts_item()
            return redact_data(checks, self.secrets), None, None
        emission = self.emit()
        base = {"method": p["method"], "probe_id": self.probe_id, "backend": p["backend"],
                "api": self.api.base_url}
        base.update(emission.evidence)
        latency = None
        event = None
        if emission.unobservable:
            checks["SENTRY-EVENT"] = check_item(SKIP, emission.unobservable, base)
        elif emission.failure:
            checks["SENTRY-EVENT"] = check_item(
                FAIL, "test error not delivered (%s): %s" % (p["method"], emission.failure), base)
        else:
            lookup, lookups = self.wait_for_event(emission)
            elapsed = time.monotonic() - emission.sent_monotonic
            evidence = dict(base, lookups=lookups, api_requests=self.api.requests, last_lookup=lookup.evidence)
            bound = self.time_bound(emission)
            evidence["time_bound"] = {"sent_at": emission.sent_at.isoformat(),
                                      "server_clock_offset_s": None if self.api.clock_offset is None
                                      else round(self.api.clock_offset, 2),
                                      "earliest_server_time": bound.isoformat() if bound else None}
            if lookup.state == sentry_api.FOUND:
                event = lookup.event
                latency = round(elapsed, 2)
                evidence.update(event_id=event.event_id, latency_s=latency, wait_timeout_s=p["wait_timeout"],
                                server_received_at=event.received_at, event_timestamp=event.created_at,
                                matched_by=lookup.matched_by)
                received, created = sentry_api.parse_time(event.received_at), sentry_api.parse_time(event.created_at)
                if received and created:
                    evidence["server_ingest_lag_s"] = round((received - created).total_seconds(), 3)
                found = "event %s visible through the %s API %.1f s after the error (limit %g s)" % (
                    event.event_id, self.api.name, elapsed, p["wait_timeout"])
                checks["SENTRY-EVENT"] = self.found_item(emission, found, evidence)
            elif lookup.state == sentry_api.PENDING:
                evidence["waited_s"] = round(elapsed, 1)
                checks["SENTRY-EVENT"] = check_item(
                    FAIL, "event not visible through the %s API after %.0f s (limit %g s; last answer: %s)" % (
                        self.api.name, elapsed, p["wait_timeout"], lookup.message), evidence)
            else:
                checks["SENTRY-EVENT"] = check_item(FAIL, lookup.message, evidence)
        checks["SENTRY-ENV"] = self.env_item(emission, event, checks["SENTRY-EVENT"])
        checks["SENTRY-DETAIL"] = self.detail_item(emission, event, checks["SENTRY-EVENT"])
        checks["SENTRY-ALERTS"] = self.alerts_item()
        event_id = (event.event_id if event else None) or emission.event_id
        return redact_data(checks, self.secrets), latency, event_id

    def input_failure(self, *params):
        if self.problems.bad(*params):
            return check_item(FAIL, "not checked, bad input: %s" % self.problems.message(*params),
                              {"bad_input": sorted(self.problems.bad(*params))})
        return None

    def found_item(self, emission, found, evidence):
        """SENTRY-EVENT once this probe's event is there: a pass only when the application sent it."""
        if emission.method != "sdk" or emission.initialised_by == "application":
            if emission.method == "sdk":
                found = "%s; raised in the application's runtime (%s, sentry-sdk %s) through the client %s set up" % (
                    found, evidence["runtime"].get("python"), evidence["runtime"].get("sdk_version"),
                    self.params["app_module"])
            return check_item(PASS, found, evidence)
        if evidence.get("runtime", {}).get("kind") == "probe":
            return check_item(SKIP, "%s, but sent from the probe's own Python with the DSN given directly (source "
                                    "value): it shows the DSN and the server work, not that the application reports"
                              % found, evidence)
        return check_item(SKIP, "%s, from the application's runtime (%s, sentry-sdk %s, %s from its environment), but "
                                "through a client the probe set up: whether the application itself initialises "
                                "Sentry was not observed (set %s, the module that sets it up)" % (
                                    found, evidence["runtime"].get("python"), evidence["runtime"].get("sdk_version"),
                                    self.params["variable"], self.problems.label("app_module")), evidence)

    def _not_verified(self, event_item):
        """ENV/DETAIL without an event: skip when SENTRY-EVENT could not observe, else fail."""
        status = SKIP if event_item["status"] == SKIP else FAIL
        return check_item(status, "not verified: no event from this probe was found (see SENTRY-EVENT)", {})

    def env_item(self, emission, event, event_item):
        bad = self.input_failure("environment")
        if bad:
            return bad
        expected = self.params["environment"]
        if event is None:
            item = self._not_verified(event_item)
            item["evidence"]["expected"] = expected
            return item
        evidence = {"expected": expected, "found": event.environment, "event_id": event.event_id}
        if emission.method == "sdk":
            evidence["client_environment"] = emission.client.get("environment")
            if emission.initialised_by != "application":
                return self._env_from_setting(emission, event, evidence)
            sender = "the application's client sent"
        else:
            sender = "the application sent"
        if event.environment == expected:
            return check_item(PASS, "%s environment %r, the expected one" % (sender, expected), evidence)
        if not event.environment:
            return check_item(FAIL, "%s no environment (expected %r)" % (sender, expected), evidence)
        return check_item(FAIL, "%s environment %r, expected %r" % (sender, event.environment, expected), evidence)

    def _env_from_setting(self, emission, event, evidence):
        """Method A without app_module: the environment is the application's setting, if one is named."""
        name = self.params.get("environment_variable")
        expected = self.params["environment"]
        if emission.evidence.get("runtime", {}).get("kind") == "probe":
            return check_item(SKIP, "not observable: the event was sent from the probe's own Python (source value), "
                                    "not the application's", evidence)
        if not name:
            return check_item(SKIP, "not observable: the probe set up the client, so the event's environment %r is "
                                    "sentry-sdk's default, not the application's (set %s, or %s: the application's "
                                    "setting holding it)" % (event.environment, self.problems.label("app_module"),
                                                             self.problems.label("environment_variable")), evidence)
        setting = emission.client.get("environment_setting")
        evidence["setting"] = name
        if setting is None:
            return check_item(SKIP, "not observable: %s is not set in the application's environment, so the "
                                    "environment it sends is its code's default" % name, evidence)
        if setting == expected and event.environment == expected:
            return check_item(PASS, "the application's setting %s is %r, the expected environment (sent on the event)"
                              % (name, expected), evidence)
        return check_item(FAIL, "the application's setting %s is %r, expected %r" % (name, setting, expected),
                          evidence)

    def detail_item(self, emission, event, event_item):
        bad = self.input_failure("detail_context")
        if bad:
            return bad
        if event is None:
            return self._not_verified(event_item)
        name = self.params["detail_context"]
        evidence = {"event_id": event.event_id, "exceptions": event.exceptions, "frames": event.frame_count,
                    "contexts": sorted(event.contexts)[:30], "tags": event.tags}
        if emission.method == "sdk" and emission.initialised_by != "application":
            return check_item(SKIP, "not observable: the event was sent by a client the probe set up, so its stack "
                                    "trace and contexts show nothing about the application's (set %s)" %
                              self.problems.label("app_module"), evidence)
        problems = []
        if not event.exceptions:
            problems.append("no exception in the event")
        elif not event.frame_count:
            problems.append("the exception has no stack frames")
        context = event.contexts.get(name) if name else None
        if name:
            evidence["context_checked"] = name
            if not isinstance(context, dict):
                problems.append("context %r missing" % name)
            elif emission.method != "sdk" and str(context.get("probe_id")) != self.probe_id:
                problems.append("context %r does not hold this probe's id" % name)
        if problems:
            return check_item(FAIL, "event details incomplete: %s" % "; ".join(problems), evidence)
        what = "%d stack frame%s" % (event.frame_count, "" if event.frame_count == 1 else "s")
        if name and emission.method == "sdk":
            what += " and the application's context %r" % name
        elif name:
            what += " and context %r with this probe's id, set by the application" % name
        if emission.method == "sdk":
            what += " as the application's client sent it (contexts: %s)" % (", ".join(sorted(event.contexts)) or "none")
        return check_item(PASS, "event has %s" % what, evidence)

    def alerts_item(self):
        bad = self.input_failure(*ALERTS_PARAMS)
        if bad:
            return bad
        if not self.params["alerts"]:
            return check_item(SKIP, "alert rules not checked (%s is false)" % self.problems.label("alerts"), {})
        started = time.monotonic()
        answer = self.api.alert_rules()
        return check_item(answer.status, answer.message, answer.evidence,
                          duration_ms=(time.monotonic() - started) * 1000.0)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    secret.protect(module)
    problems = InputProblems(module.params.get("param_labels"))
    settings = check_inputs(module, problems)
    probe = SentryEventProbe(module, settings, problems)
    checks, latency, event_id = probe.run()
    module.exit_json(changed=False, checks=checks, latency_s=latency, event_id=event_id, probe_id=probe.probe_id)


if __name__ == "__main__":
    main()

# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Generate the test error of runbook 6.2, by one of its three methods.

  - ``sdk`` (A): a small script runs inside the application's own runtime
    (module_utils/app_runtime.py: its interpreter and virtualenv, working directory, environment
    and user) and raises a real exception there. With ``app_module`` it first imports the
    application's module that sets up Sentry and reports through the client the application's own
    code initialised (its DSN, environment, release, integrations); without it, it initialises
    sentry-sdk itself from the application's DSN variable, which shows the runtime and the DSN but
    not that the application reports. The script watches the transport (drops such as 403 for a
    wrong key or project, network errors) and prints one JSON result line; it never prints the DSN.
  - ``endpoint`` (B): the application's test-error endpoint (``POST /debug/test-error``
    with ``X-API-Key``); the application reports the error itself.
  - ``request`` (C): a configured request that makes the application fail.

Each returns an ``Emission``: when the error was generated, the event id when known, and a
failure reason when the event cannot arrive (or, for method A, why the runtime was not reached).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import time
from datetime import datetime, timezone

from ansible_collections.hunter.ops.plugins.module_utils import http
from ansible_collections.hunter.ops.plugins.module_utils.app_runtime import RESULT_MARK
from ansible_collections.hunter.ops.plugins.module_utils.redact import redact_text
from ansible_collections.hunter.ops.plugins.module_utils.results import trim

PROBE_TAG = "probe_id"
PROBE_HEADER = "X-Probe-Id"
# The context an application is expected to fill from X-Probe-Id (methods B and C; SENTRY-DETAIL).
PROBE_CONTEXT = "probe"

# The SDK's loss reasons, in words an operator can act on.
DROP_REASONS = {
    "status_401": "the server rejected the event (HTTP 401): the DSN's public key is not accepted",
    "status_403": "the server rejected the event (HTTP 403): wrong public key or project id in the DSN, "
                  "or the project is disabled",
    "status_404": "the server has no ingestion endpoint for this DSN (HTTP 404): wrong host, path or project id",
    "status_413": "the server refused the event as too large (HTTP 413)",
    "status_429": "the server rate-limited the event (HTTP 429)",
    "network": "the event could not be delivered (network error)",
    "network_error": "the event could not be delivered (network error)",
    "full_queue": "the SDK's send queue was full",
    "self_rate_limits": "the SDK is rate-limited by an earlier 429",
    "before_send": "the application's before_send hook dropped it",
    "sample_rate": "the application's sample_rate left it out",
    "event_processor": "an event processor of the application dropped it",
}


class Emission(object):
    def __init__(self, method, sent_at, event_id=None, failure=None, evidence=None, sent_monotonic=None,
                 unobservable=None):
        self.method = method
        self.sent_at = sent_at            # aware datetime (UTC, this host's clock): the time bound starts here
        self.sent_monotonic = sent_monotonic if sent_monotonic is not None else time.monotonic()
        self.event_id = event_id
        self.failure = failure            # a reason: the event cannot arrive
        self.unobservable = unobservable  # a reason: the configured runtime cannot be reached (skip)
        self.evidence = evidence or {}
        self.initialised_by = None        # method A: "application" (app_module), "probe", or None
        self.client = {}                  # method A: what the script saw of the Sentry client (no DSN)
        self.id_from_app = False          # methods B/C: the application returned this event id for this request


# The script method A runs in the application's runtime (python -, the script on stdin). Python 3.5+
# syntax, sentry-sdk 1.x and 2.x. It prints RESULT_MARK + JSON as its last line and leaves with
# os._exit, so the application's exit hooks and threads never run or hold it.
PROBE_SCRIPT = r"""
import json, os, sys, time
CONFIG = json.loads(%(config)s)
OUT = {"python": sys.executable, "python_version": "%%d.%%d.%%d" %% tuple(sys.version_info[:3]), "cwd": os.getcwd()}


def finish():
    sys.stdout.write("\n" + %(mark)s + json.dumps(OUT, default=str) + "\n")
    sys.stdout.flush()
    os._exit(0)


def text(err):
    return ("%%s: %%s" %% (type(err).__name__, err))[:400]


try:
    import sentry_sdk
except Exception as err:
    OUT["sdk_missing"] = text(err)
    finish()
OUT["sdk_version"] = getattr(sentry_sdk, "VERSION", None) or getattr(getattr(sentry_sdk, "consts", None), "VERSION", None)


def current_client():
    if hasattr(sentry_sdk, "get_client"):
        return sentry_sdk.get_client()
    return sentry_sdk.Hub.current.client


def is_active(client):
    if client is None:
        return False
    if hasattr(client, "is_active"):
        return bool(client.is_active())
    return getattr(client, "transport", None) is not None


def describe_dsn(dsn):
    try:
        from urllib.parse import urlsplit
        parts = urlsplit(dsn)
        return {"scheme": parts.scheme, "host": parts.hostname, "port": parts.port,
                "project_id": parts.path.rstrip("/").rsplit("/", 1)[-1]}
    except Exception:
        return {"parsed": False}


variable = CONFIG["variable"]
if CONFIG["app_module"]:
    OUT["initialised_by"] = "application"
    name, _, attribute = CONFIG["app_module"].partition(":")
    try:
        import importlib
        target = importlib.import_module(name)
        if attribute:
            for part in attribute.split("."):
                target = getattr(target, part)
            target()
    except BaseException as err:
        OUT["app_error"] = text(err)
        finish()
else:
    OUT["initialised_by"] = "probe"
    dsn = os.environ.get(variable, "")
    if not dsn.strip():
        OUT["dsn_missing"] = True
        finish()
    options = {"dsn": dsn, "default_integrations": False, "send_default_pii": False, "max_breadcrumbs": 0}
    if CONFIG["environment_variable"]:
        value = os.environ.get(CONFIG["environment_variable"])
        OUT["environment_setting"] = value
        if value is not None:
            options["environment"] = value
    try:
        sentry_sdk.init(**options)
    except Exception as err:
        OUT["init_error"] = type(err).__name__
        finish()

client = current_client()
OUT["client_active"] = is_active(client)
if not OUT["client_active"]:
    finish()
options = getattr(client, "options", None) or {}
client_dsn = options.get("dsn") or ""
OUT["client"] = {"environment": options.get("environment"), "release": options.get("release"),
                 "sample_rate": options.get("sample_rate"), "dsn": describe_dsn(client_dsn),
                 "dsn_from_variable": bool(client_dsn) and client_dsn == os.environ.get(variable),
                 "before_send": options.get("before_send") is not None}
transport = getattr(client, "transport", None)
drops, answers, errors, lost = [], [], [], []


def network_reason(err):
    reason = str(getattr(err, "reason", None) or err)
    for marker in ("Connection refused", "timed out", "Name or service not known",
                   "Temporary failure in name resolution", "CERTIFICATE_VERIFY_FAILED", "No route to host"):
        if marker in reason:
            return marker
    return text(err)[:160]


def wrap(name, before=None, after=None):
    original = getattr(transport, name, None)
    if original is None:
        return

    def wrapper(*args, **kwargs):
        if before:
            before(*args, **kwargs)
        try:
            result = original(*args, **kwargs)
        except Exception as err:
            errors.append(network_reason(err))
            raise
        if after:
            after(result)
        return result
    setattr(transport, name, wrapper)


def answered(response):
    data = getattr(response, "data", None)
    answers.append([getattr(response, "status", None),
                    data.decode("utf-8", "replace")[:300] if isinstance(data, bytes) else ""])


if transport is not None:
    wrap("on_dropped_event", before=lambda reason, *a, **k: drops.append(str(reason)))
    wrap("record_lost_event", before=lambda reason, *a, **k: lost.append(str(getattr(reason, "value", reason))))
    wrap("_request", after=answered)


class SentryProbeError(Exception):
    pass


def divide(numerator, denominator):
    return numerator / denominator


def raise_probe_error():
    try:
        divide(1, 0)
    except ZeroDivisionError as cause:
        raise SentryProbeError("hunter.ops sentry probe %%s (test error, safe to ignore)" %% CONFIG["probe_id"]) from cause


scope_of = getattr(sentry_sdk, "new_scope", None) or sentry_sdk.push_scope
event_id = None
with scope_of() as scope:
    scope.set_tag(%(tag)s, CONFIG["probe_id"])
    scope.set_tag("hunter_probe", "sentry_probe")
    captured_at = time.time()
    try:
        raise_probe_error()
    except SentryProbeError as err:
        event_id = sentry_sdk.capture_exception(err)
OUT["event_id"] = event_id
client.flush(timeout=CONFIG["flush_timeout"])
OUT.update(drops=drops, answers=answers, errors=errors, lost=lost, captured_at=captured_at,
           capture_to_exit_s=time.time() - captured_at)
finish()
"""


def probe_script(probe_id, variable, app_module=None, environment_variable=None, flush_timeout=5.0):
    config = {"probe_id": probe_id, "variable": variable, "app_module": app_module or "",
              "environment_variable": environment_variable or "", "flush_timeout": float(flush_timeout)}
    return PROBE_SCRIPT % {"config": repr(json.dumps(config)), "mark": repr(RESULT_MARK), "tag": repr(PROBE_TAG)}


def _drop_words(reason, errors, answers, secrets):
    words = DROP_REASONS.get(reason, "the SDK dropped the event (%s)" % reason)
    if reason.startswith("network") and errors:
        words = "%s: %s" % (words, errors[-1].lower())
    elif answers and (answers[-1][1] or "").strip():
        said = redact_text(answers[-1][1].strip().splitlines()[0], secrets)
        words = "%s; the server said: %s" % (words, trim(said, 160))
    return words


def send_from_runtime(runtime, probe_id, variable, timeout, app_module=None, environment_variable=None,
                      secrets=(), send_timeout=5.0):
    """Method A: raise a real exception inside the application's runtime; never raises.

    ``timeout`` bounds the whole script (interpreter start, the application's import, the send);
    the SDK gets ``send_timeout`` + 2 s to deliver, within it."""
    sent_at = datetime.now(timezone.utc)
    flush = max(1.0, min(send_timeout + 2, timeout / 2.0))
    script = probe_script(probe_id, variable, app_module, environment_variable, flush_timeout=flush)
    outcome = runtime.run(script, timeout, secrets)
    evidence = {"runtime": dict(runtime.evidence)}
    if outcome.duration_s is not None:
        evidence["runtime"]["script_s"] = outcome.duration_s
    where = "in the application's runtime (%s)" % runtime.evidence.get("python")
    if runtime.kind == "probe":
        where = "in the probe's own Python (%s)" % runtime.evidence.get("python")
    emission = Emission("sdk", sent_at, evidence=evidence)
    if outcome.failure:
        emission.failure = "%s %s" % (outcome.failure, where) if "does not exist" not in outcome.failure else (
            "the interpreter %s" % outcome.failure)
        return emission
    out = outcome.result
    for key in ("python_version", "sdk_version", "cwd"):
        if out.get(key):
            evidence["runtime"][key] = out[key]
    if outcome.stderr:
        evidence["runtime"]["stderr"] = outcome.stderr
    emission.initialised_by = out.get("initialised_by")
    emission.client = dict(out.get("client") or {})
    if "environment_setting" in out:
        emission.client["environment_setting"] = out["environment_setting"]
    if out.get("sdk_missing"):
        emission.failure = "sentry-sdk is not installed %s: %s" % (
            where if runtime.kind == "probe" else "in the application's runtime (%s)" % runtime.evidence.get("python"),
            redact_text(out["sdk_missing"], secrets))
        return emission
    if out.get("app_error"):
        emission.failure = "importing the application's module %s %s failed: %s" % (
            app_module, where, trim(redact_text(out["app_error"], secrets), 240))
        return emission
    if out.get("dsn_missing"):
        emission.failure = "%s is not set (or empty) in %s: the application sends nothing" % (
            variable, runtime.evidence.get("environment") or "the application's environment")
        return emission
    if out.get("init_error"):
        emission.failure = "sentry-sdk %s refused the DSN (%s)" % (where, out["init_error"])
        return emission
    if not out.get("client_active"):
        emission.failure = ("the application did not initialise sentry-sdk: after importing %s %s no Sentry client "
                            "is active (error reporting is off in this configuration, or set up elsewhere)" % (
                                app_module, where))
        return emission
    evidence["client"] = emission.client
    captured = out.get("captured_at")
    if captured is not None:
        emission.sent_at = datetime.fromtimestamp(float(captured), timezone.utc)  # this host's clock
        emission.sent_monotonic = time.monotonic() - float(out.get("capture_to_exit_s") or 0)
    emission.event_id = (out.get("event_id") or "").replace("-", "") or None
    evidence["event_id"] = emission.event_id
    drops, answers, errors = out.get("drops") or [], out.get("answers") or [], out.get("errors") or []
    if answers:
        evidence["ingest_status"] = answers[-1][0]
        evidence["ingest_response"] = trim(redact_text(answers[-1][1] or "", secrets), 200)
    lost = [reason for reason in (out.get("lost") or []) if reason in ("before_send", "sample_rate", "event_processor")]
    if emission.event_id is None:
        reason = lost[-1] if lost else None
        emission.failure = "the %s client did not send the event%s" % (
            "application's" if emission.initialised_by == "application" else "probe's",
            ": %s" % DROP_REASONS[reason] if reason else " (capture_exception returned no event id)")
        return emission
    if drops:
        evidence["drop_reason"] = drops[-1]
        emission.failure = _drop_words(drops[-1], errors, answers, secrets)
        return emission
    if not answers:
        evidence["note"] = "no answer from the server within %gs; polling the API anyway" % flush
    return emission


def send_request(method, url, probe_id, headers, body, http_options, secrets, event_id_key="event_id",
                 credential_sent=True):
    """Methods B and C: a request to the application that makes it report an error.

    The request carries this probe's id in the header X-Probe-Id: an application that copies it
    into a tag, or whose SDK records request headers, marks its event as this probe's."""
    headers = dict(headers)
    headers[PROBE_HEADER] = probe_id
    sent_at, sent_mono = datetime.now(timezone.utc), time.monotonic()
    kwargs = dict(http_options)
    if isinstance(body, (dict, list)):
        kwargs["json_body"] = body
    elif body is not None:
        kwargs["body"] = body
    resp = http.request(url, method=method, headers=headers, **kwargs)
    evidence = {"app_request": resp.evidence(secrets=secrets, request_headers=headers, max_chars=300)}
    if resp.error:
        return Emission("request", sent_at, failure="the application did not answer %s: %s" % (
            resp.describe_request(), resp.error), evidence=evidence, sent_monotonic=sent_mono)
    if resp.status in (401, 403):
        words = ("the API key sent was refused" if credential_sent else
                 "no API key was sent (none configured)")
        return Emission("request", sent_at, failure="the application refused the request (HTTP %d): %s" % (
            resp.status, words), evidence=evidence, sent_monotonic=sent_mono)
    if resp.status == 404:
        return Emission("request", sent_at, failure="%s answered 404: no such route, or an answer the application "
                                                    "does not report as an error" % resp.describe_request(),
                        evidence=evidence, sent_monotonic=sent_mono)
    event_id = None
    body_json = resp.json()
    if isinstance(body_json, dict) and event_id_key:
        found = body_json.get(event_id_key)
        if isinstance(body_json.get("detail"), dict) and not found:
            found = body_json["detail"].get(event_id_key)
        if isinstance(found, str) and found:
            event_id = found.replace("-", "")
    evidence["app_status"] = resp.status
    if event_id:
        evidence["event_id"] = event_id
    emission = Emission("request", sent_at, event_id, evidence=evidence, sent_monotonic=sent_mono)
    emission.id_from_app = bool(event_id)
    return emission

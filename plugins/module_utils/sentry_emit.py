# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Generate the test error of runbook 6.2, by one of its three methods.

  - ``sdk`` (A): sentry-sdk with the application's DSN and expected environment sends
    a real exception with a stack trace, the probe's tag and context. A transport
    subclass hears the SDK's own drop reports (403 wrong key/project, network
    errors...), so a rejected event fails at once instead of after the timeout.
  - ``endpoint`` (B): the application's test-error endpoint (``POST /debug/test-error``
    with ``X-API-Key``); the application reports the error itself.
  - ``request`` (C): a configured request that makes the application fail.

Each returns an ``Emission``: when the error was generated, the event id when
known, and a failure reason when the event cannot arrive.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket
import time
from datetime import datetime, timezone

from ansible_collections.hunter.ops.plugins.module_utils import http
from ansible_collections.hunter.ops.plugins.module_utils.redact import redact_text
from ansible_collections.hunter.ops.plugins.module_utils.results import trim

try:
    import sentry_sdk
    from sentry_sdk.transport import HttpTransport
    HAS_SENTRY_SDK = True
    SENTRY_SDK_VERSION = getattr(sentry_sdk, "VERSION", None) or getattr(sentry_sdk.consts, "VERSION", None)
except ImportError:  # pragma: no cover - reported as the check's failure
    HAS_SENTRY_SDK = False
    SENTRY_SDK_VERSION = None
    HttpTransport = object

PROBE_CONTEXT = "probe"
PROBE_TAG = "probe_id"

# The SDK's loss reasons, in words an operator can act on.
DROP_REASONS = {
    "status_401": "the server rejected the event (HTTP 401): the DSN's public key is not accepted",
    "status_403": "the server rejected the event (HTTP 403): wrong public key or project id in the DSN, "
                  "or the project is disabled",
    "status_404": "the server has no ingestion endpoint for this DSN (HTTP 404): wrong host, path or project id",
    "status_413": "the server refused the event as too large (HTTP 413)",
    "status_429": "the server rate-limited the event (HTTP 429)",
    "network": "the event could not be delivered (network error)",
    "full_queue": "the SDK's send queue was full",
    "self_rate_limits": "the SDK is rate-limited by an earlier 429",
}


class Emission(object):
    def __init__(self, method, sent_at, event_id=None, failure=None, evidence=None, sent_monotonic=None):
        self.method = method
        self.sent_at = sent_at            # aware datetime (UTC), for the search window
        self.sent_monotonic = sent_monotonic if sent_monotonic is not None else time.monotonic()
        self.event_id = event_id
        self.failure = failure            # a reason: the event cannot arrive
        self.evidence = evidence or {}


class SentryProbeError(RuntimeError):
    """The exception the probe raises on purpose (its type names it in the issue list)."""


class ProbeTransport(HttpTransport):
    """The SDK's HTTP transport, remembering drops, answers and errors instead of staying silent."""

    TIMEOUT = 10

    def __init__(self, options):
        super(ProbeTransport, self).__init__(options)
        self.drops = []
        self.answers = []
        self.errors = []

    def on_dropped_event(self, reason):
        self.drops.append(reason)

    def _request(self, method, endpoint_type, body, headers):
        try:
            response = super(ProbeTransport, self)._request(method, endpoint_type, body, headers)
        except Exception as err:
            self.errors.append(_network_reason(err))
            raise
        data = getattr(response, "data", None)
        self.answers.append((response.status, data.decode("utf-8", "replace") if isinstance(data, bytes) else ""))
        return response


def _network_reason(err):
    """The innermost cause of a urllib3 error, without the request line."""
    reason = getattr(err, "reason", None) or err
    text = str(reason)
    for marker in ("Connection refused", "timed out", "Name or service not known",
                   "Temporary failure in name resolution", "CERTIFICATE_VERIFY_FAILED", "No route to host"):
        if marker in text:
            return marker.lower() if marker != "CERTIFICATE_VERIFY_FAILED" else "TLS certificate verification failed"
    return "%s: %s" % (type(reason).__name__, trim(text, 160))


def _raise_probe_error(probe_id):
    """Two real frames deep, so the event carries a genuine stack trace."""
    def divide(numerator, denominator):
        return numerator / denominator

    try:
        divide(1, 0)
    except ZeroDivisionError as cause:
        raise SentryProbeError("hunter.ops sentry probe %s (test error, safe to ignore)" % probe_id) from cause


def send_with_sdk(dsn, environment, probe_id, timeout, context, ca_certs=None, secrets=()):
    """Method A: one real exception through sentry-sdk; never raises for delivery trouble.

    `secrets` (the DSN's keys) are hidden from the server's answer, which may echo the DSN.
    """
    sent_at = datetime.now(timezone.utc)
    if not HAS_SENTRY_SDK:
        return Emission("sdk", sent_at, failure="the Python library sentry-sdk is not installed on the host running "
                                                "the probe (pip install sentry-sdk)")
    ProbeTransport.TIMEOUT = max(1, int(timeout))
    options = dict(
        dsn=dsn, environment=environment, release="hunter.ops-sentry-probe",
        transport=ProbeTransport, default_integrations=False, auto_enabling_integrations=False,
        include_local_variables=False, send_default_pii=False, send_client_reports=False,
        max_breadcrumbs=0, traces_sample_rate=None, server_name=socket.gethostname(),
    )
    if ca_certs:
        options["ca_certs"] = ca_certs
    try:
        sentry_sdk.init(**options)
    except Exception as err:  # BadDsn and friends: the message never holds the DSN itself
        return Emission("sdk", sent_at, failure="sentry-sdk refused the DSN (%s)" % type(err).__name__)
    client = sentry_sdk.get_client()
    transport = client.transport
    event_id, sent_mono = None, time.monotonic()
    try:
        with sentry_sdk.new_scope() as scope:
            scope.set_tag(PROBE_TAG, probe_id)
            scope.set_tag("hunter_probe", "sentry_probe")
            scope.set_context(PROBE_CONTEXT, context)
            scope.set_extra("probe_id", probe_id)
            sent_at, sent_mono = datetime.now(timezone.utc), time.monotonic()
            try:
                _raise_probe_error(probe_id)
            except SentryProbeError as err:
                event_id = sentry_sdk.capture_exception(err)
        client.flush(timeout=timeout + 2)
    finally:
        client.close(timeout=1)
    evidence = {"sdk_version": SENTRY_SDK_VERSION, "event_id": event_id}
    if transport is not None and transport.answers:
        evidence["ingest_status"] = transport.answers[-1][0]
        evidence["ingest_response"] = trim(redact_text(transport.answers[-1][1], [dsn] + list(secrets)), 200)
    if transport is None:
        return Emission("sdk", sent_at, event_id, failure="sentry-sdk created no transport (empty DSN?)",
                        evidence=evidence, sent_monotonic=sent_mono)
    if transport.drops or event_id is None:
        reason = transport.drops[-1] if transport.drops else "not_sent"
        words = DROP_REASONS.get(reason, "the SDK dropped the event (%s)" % reason)
        if reason == "network" and transport.errors:
            words = "%s: %s" % (words, transport.errors[-1])
        elif transport.answers and transport.answers[-1][1].strip():
            words = "%s; the server said: %s" % (words, evidence["ingest_response"].strip().splitlines()[0])
        evidence["drop_reason"] = reason
        return Emission("sdk", sent_at, event_id, failure=words, evidence=evidence, sent_monotonic=sent_mono)
    if not transport.answers:
        return Emission("sdk", sent_at, event_id, evidence=dict(
            evidence, note="no answer from the server within %ss; polling the API anyway" % (timeout + 2)),
            sent_monotonic=sent_mono)
    return Emission("sdk", sent_at, event_id, evidence=evidence, sent_monotonic=sent_mono)


def send_request(method, url, probe_id, headers, body, http_options, secrets, event_id_key="event_id"):
    """Methods B and C: a request to the application that makes it report an error."""
    headers = dict(headers)
    headers["X-Probe-Id"] = probe_id
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
        return Emission("request", sent_at, failure="the application refused the request (HTTP %d): check the "
                                                    "API key" % resp.status, evidence=evidence, sent_monotonic=sent_mono)
    if resp.status == 404:
        return Emission("request", sent_at, failure="the application has no such endpoint (%s answered 404)" %
                        resp.describe_request(), evidence=evidence, sent_monotonic=sent_mono)
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
    return Emission("request", sent_at, event_id, evidence=evidence, sent_monotonic=sent_mono)

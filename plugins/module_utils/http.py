# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's one HTTP client: a request that never raises for network trouble.

Every failure (refused, timed out, TLS, DNS) comes back as ``HttpResponse.error``
with a message an operator understands, so a check turns it into a ``fail`` item.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import socket
import ssl
import threading
import time

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.urls import Request, SSLValidationError, make_context

from ansible_collections.hunter.ops.plugins.module_utils import secret
from ansible_collections.hunter.ops.plugins.module_utils.redact import (
    is_secret_key, redact_headers, redact_text, redact_url,
)
from ansible_collections.hunter.ops.plugins.module_utils.results import trim
from ansible_collections.hunter.ops.plugins.module_utils.validate import ParameterError

DEFAULT_MAX_BODY = 256 * 1024


class HttpResponse(object):
    """Outcome of one request: status/headers/body, or error (never both missing)."""

    def __init__(self, method, url, status=None, reason=None, headers=None, body=None,
                 error=None, duration_ms=None):
        self.method = method
        self.url = url
        self.status = status
        self.reason = reason
        self.headers = dict((k.lower(), v) for k, v in (headers or {}).items())
        self.body = body
        self.error = error
        self.duration_ms = duration_ms

    @property
    def ok(self):
        return self.error is None and self.status is not None

    def json(self):
        """The body parsed as JSON, or None when it is not JSON."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def describe_request(self):
        return "%s %s" % (self.method, redact_url(self.url))

    def evidence(self, secrets=(), request_headers=None, max_chars=None):
        """Evidence dict: request, status, trimmed redacted body or the error, duration."""
        ev = {"request": self.describe_request()}
        if request_headers:
            ev["request_headers"] = redact_headers(request_headers, secrets)
        if self.status is not None:
            ev["status"] = self.status
        if self.error:
            ev["error"] = redact_text(self.error, secrets)
        if self.body is not None:
            body = redact_text(self.body, secrets)
            ev["response"] = trim(body, max_chars) if max_chars else trim(body)
        if self.duration_ms is not None:
            ev["duration_ms"] = round(self.duration_ms, 1)
        return ev


def _reason_text(reason, timeout):
    if isinstance(reason, (socket.timeout, TimeoutError)) or "timed out" in str(reason):
        return "timed out after %ss" % timeout
    if isinstance(reason, ConnectionRefusedError) or "Connection refused" in str(reason):
        return "connection refused"
    if isinstance(reason, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(reason):
        return "TLS error: %s" % reason
    if isinstance(reason, socket.gaierror):
        return "name resolution failed: %s" % reason
    return str(reason)


_CONTEXTS = {}
_CONTEXTS_LOCK = threading.Lock()


def _tls_context(validate_certs, ca_path, client_cert, client_key):
    """One SSL context per TLS setting, per process.

    Request.open() otherwise builds a new context for every request, http:// included, and
    loading the system CA store costs ~35 ms each time (measured on the project machines),
    serialised across threads: most of a loopback probe's latency.
    """
    key = (bool(validate_certs), ca_path, client_cert, client_key)
    with _CONTEXTS_LOCK:
        if key not in _CONTEXTS:
            _CONTEXTS[key] = make_context(cafile=ca_path, validate_certs=validate_certs,
                                          client_cert=client_cert, client_key=client_key)
        return _CONTEXTS[key]


def request(url, method="GET", headers=None, body=None, json_body=None, timeout=5.0,
            validate_certs=True, ca_path=None, client_cert=None, client_key=None,
            follow_redirects=False, max_body=DEFAULT_MAX_BODY):
    """Send one HTTP request; ``timeout`` bounds the connect and every read."""
    headers = dict(headers or {})
    data = body
    if json_body is not None:
        data = json.dumps(json_body)
        headers.setdefault("Content-Type", "application/json")
    if isinstance(data, str):
        data = data.encode("utf-8")
    try:  # built before the clock starts: it is setup, not the service's latency
        context = _tls_context(validate_certs, ca_path, client_cert, client_key)
    except (ssl.SSLError, OSError, ValueError) as err:  # unreadable CA file, key not matching the cert...
        return HttpResponse(method, url, error="TLS setup failed: %s" % err, duration_ms=0.0)
    req = Request(
        headers=headers, timeout=timeout, validate_certs=validate_certs, ca_path=ca_path,
        client_cert=client_cert, client_key=client_key,
        follow_redirects="safe" if follow_redirects else "none", use_proxy=True, context=context,
    )
    started = time.monotonic()

    def elapsed():
        return (time.monotonic() - started) * 1000.0

    try:
        resp = req.open(method, url, data=data)
        raw = resp.read(max_body + 1)
        return HttpResponse(method, url, status=resp.getcode(), reason=getattr(resp, "reason", None),
                            headers=dict(resp.headers.items()), body=_decode(raw, max_body),
                            duration_ms=elapsed())
    except HTTPError as err:  # 4xx/5xx (and 3xx when not following): still an answer
        try:
            raw = err.read(max_body + 1)
        except Exception:  # pylint: disable=broad-except
            raw = b""
        return HttpResponse(method, url, status=err.code, reason=err.reason,
                            headers=dict(err.headers.items()) if err.headers else {},
                            body=_decode(raw, max_body), duration_ms=elapsed())
    except SSLValidationError as err:
        return HttpResponse(method, url, error="TLS verification failed: %s" % str(err).splitlines()[0],
                            duration_ms=elapsed())
    except URLError as err:
        return HttpResponse(method, url, error=_reason_text(err.reason, timeout), duration_ms=elapsed())
    except (socket.timeout, TimeoutError) as err:
        return HttpResponse(method, url, error=_reason_text(err, timeout), duration_ms=elapsed())
    except (OSError, ValueError) as err:  # reset by peer, bad status line, malformed URL...
        return HttpResponse(method, url, error="%s: %s" % (type(err).__name__, err), duration_ms=elapsed())
    except Exception as err:  # pylint: disable=broad-except
        # http.client raises non-OSError exceptions (RemoteDisconnected, BadStatusLine...).
        return HttpResponse(method, url, error="%s: %s" % (type(err).__name__, err), duration_ms=elapsed())


def _decode(raw, max_body):
    if raw is None:
        return None
    truncated = len(raw) > max_body
    text = raw[:max_body].decode("utf-8", errors="replace")
    return text + ("\n[truncated]" if truncated else "")


def http_argument_spec():
    """Options shared by every module that talks HTTP (documented in doc fragment hunter.ops.http)."""
    return dict(
        timeout=dict(type="float", default=5.0),
        validate_certs=dict(type="bool", default=True),
        ca_path=dict(type="path"),
        client_cert=dict(type="path"),
        client_key=dict(type="path", no_log=False),
        headers=dict(type="dict", default={}),
        secret_headers=dict(type="dict", default={}, no_log=True),
    )


def request_headers(module, *extra):
    """``headers`` merged with ``extra`` mappings and then ``secret_headers`` (which win).

    The values of ``secret_headers`` and of credential headers put in plain ``headers`` (which the
    task's invocation shows: the module warns) are registered as secrets. Raises
    ParameterError naming the option when a value is not a string.
    """
    merged = {}
    sources = [("headers", module.params.get("headers"))] + [("headers", more) for more in extra]
    sources.append(("secret_headers", module.params.get("secret_headers")))
    for param, headers in sources:
        for name, value in (headers or {}).items():
            if value is None or isinstance(value, (dict, list)):
                raise ParameterError(param, "value of header %r must be a string" % (name,))
            merged[str(name)] = str(value)
            if param == "secret_headers":
                secret.register(module, str(value))
            elif is_secret_key(name):
                secret.register(module, str(value))
                warned = getattr(module, "_hunter_ops_warned_headers", set())
                if name not in warned:  # once per module run, however many requests carry it
                    module.warn("header %s carries a credential: pass it in secret_headers, not headers (hidden "
                                "from the task's invocation only there)" % name)
                    warned.add(name)
                    setattr(module, "_hunter_ops_warned_headers", warned)
    return merged

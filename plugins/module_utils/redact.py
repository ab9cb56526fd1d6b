# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Remove secrets from anything that may end up in evidence, logs or reports."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

REDACTED = "********"

# Header names whose values are credentials.
SECRET_HEADERS = frozenset((
    "authorization", "proxy-authorization", "x-api-key", "api-key", "x-auth-token",
    "cookie", "set-cookie", "x-sentry-auth",
))

# Keys (in JSON bodies, env files, query strings) whose values are credentials.
_SECRET_KEY = r"(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|dsn|access[_-]?key|private[_-]?key|sentry_key)"

_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s'\"]+)@")
_KEY_VALUE = re.compile(
    r"(?P<key>[\"']?[A-Za-z0-9_.-]*" + _SECRET_KEY + r"[A-Za-z0-9_.-]*[\"']?\s*[:=]\s*)"
    r"(?P<quote>[\"']?)(?P<value>[^\"'\s,&;}]+)",
    re.IGNORECASE,
)


def redact_url(url):
    """Hide the userinfo part of a URL (`redis://:pw@h`, `https://key@sentry/1`)."""
    if not url:
        return url
    return _URL_USERINFO.sub(lambda m: m.group("scheme") + REDACTED + "@", str(url))


def redact_text(text, secrets=()):
    """Hide known secret values, URL credentials and `password=...`-style pairs in free text."""
    if text is None:
        return None
    text = str(text)
    for secret in secrets:
        if secret and len(str(secret)) >= 3:
            text = text.replace(str(secret), REDACTED)
    text = redact_url(text)
    return _KEY_VALUE.sub(lambda m: m.group("key") + m.group("quote") + REDACTED, text)


def redact_headers(headers, secrets=()):
    """A copy of a header mapping with credential headers hidden."""
    out = {}
    for name, value in (headers or {}).items():
        if str(name).lower() in SECRET_HEADERS:
            out[name] = REDACTED
        else:
            out[name] = redact_text(value, secrets)
    return out


def redact_data(data, secrets=()):
    """Recursively redact a JSON-like structure (keys that name secrets lose their values)."""
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            if re.search(_SECRET_KEY, str(key), re.IGNORECASE) and isinstance(value, (str, bytes)):
                out[key] = REDACTED
            else:
                out[key] = redact_data(value, secrets)
        return out
    if isinstance(data, list):
        return [redact_data(v, secrets) for v in data]
    if isinstance(data, str):
        return redact_text(data, secrets)
    return data

# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Remove secrets from anything that may end up in evidence, logs or reports.

Two layers, applied by every function here:

1. Known values. Every secret a module knows (its ``no_log`` parameters) or discovers at run
   time (a DSN read from a process, a password inside a URL in an env file) is registered once
   with ``module_utils/secret.py`` (``secret.register``) in the module's ``no_log_values``, in
   every shape it takes in text (percent-encoded, decoded, JSON-escaped). That set is the
   ``secrets`` argument of the functions below: a registered value disappears wherever it
   appears, and Ansible removes it from the module's result as well.
2. Shapes, the backstop for what nobody registered: URL userinfo (passwords holding ``@``,
   ``/`` or ``:`` included), values under secret-named keys in data (strings, numbers, lists,
   nested objects) and in text (JSON, Python reprs, YAML and header lines, env lines,
   ``key=value`` pairs, command-line options), and ``Bearer <token>``-style credentials.
   Key names are read word by word (``ssl-keyfile-password``, ``apiKey``, ``X-Sentry-Auth``),
   so prose that merely mentions a secret ("cannot read the DSN: /etc/app.env") keeps its text.

tests/unit/test_redaction_corpus.py holds the shapes and their look-alikes, both directions.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from ansible_collections.hunter.ops.plugins.module_utils.checklist import CHECK_IDS

REDACTED = "********"
# Known values shorter than this are not replaced in text: they would mask ordinary words.
MIN_SECRET_LENGTH = 3

# Header names whose values are credentials.
SECRET_HEADERS = frozenset((
    "authorization", "proxy-authorization", "x-api-key", "api-key", "x-auth-token", "x-access-token",
    "cookie", "set-cookie", "x-sentry-auth", "x-vault-token", "private-token", "x-amz-security-token",
))

# Words of a key name that make its value a secret ("db_password", "X-Sentry-Auth", "apiKey").
_SECRET_WORDS = frozenset((
    "password", "passwd", "passphrase", "pwd", "secret", "secrets", "token", "tokens", "apikey", "apikeys",
    "dsn", "auth", "authorization", "credential", "credentials", "creds", "cookie", "cookies",
    "privatekey", "secretkey", "accesskey", "sessionid",
))
_SECRET_ENDINGS = ("password", "passwd", "token", "secret", "apikey", "dsn")  # "pgpassword", "authtoken"
# "<qualifier> key" is a secret ("api_key", "sentry_key", "AWS_ACCESS_KEY"); "key" alone is not.
_KEY_QUALIFIERS = frozenset(("api", "access", "private", "secret", "sentry", "session", "master", "encryption",
                             "signing", "license", "auth", "client"))
# A last word that makes the key describe a secret rather than hold it ("password_file", "api_key_header").
_DESCRIBING_WORDS = frozenset((
    "url", "uri", "endpoint", "host", "hostname", "port", "path", "file", "dir", "directory", "type", "method",
    "mode", "name", "names", "header", "enabled", "set", "required", "source", "variable", "ttl", "expires",
    "expiry", "length", "count", "prefix", "format", "policy", "vars", "variables",
))
# The shell's working directories, and checklist IDs: {"SENTRY-DSN": {item}} holds an item, not a DSN.
_NOT_SECRET_KEYS = frozenset(("PWD", "OLDPWD") + tuple(CHECK_IDS))
# Inside a secret-named object, these keys still describe rather than hold the secret
# ({"dsn": {"scheme": "https", "host": ..., "project_id": "42"}}).
_DESCRIPTIVE_KEYS = frozenset((
    "scheme", "host", "hostname", "port", "project", "project_id", "path", "user", "username", "database", "db",
    "source", "variable", "type", "kind", "status", "method", "header", "name", "scope", "expires_at",
    "created_at",
))
# Values that say a secret is absent or hidden: the project's own evidence vocabulary ("SET (hidden)").
_DESCRIPTOR = re.compile(r"^(?:|none|null|missing|empty|unset|set|hidden|redacted|not set|not sent|set but empty"
                         r"|\*+|.*\(hidden\))$", re.IGNORECASE)
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def key_words(key):
    """The words of a key name: 'sslKeyfile-PASSWORD' -> ['ssl', 'keyfile', 'password']."""
    return [word.lower() for word in _WORD.findall(str(key))]


def is_secret_key(key):
    """Whether a key (JSON key, header, variable, option) names a value that is a secret."""
    text = str(key).strip().lstrip("-")
    if text in _NOT_SECRET_KEYS:
        return False
    if text.lower() in SECRET_HEADERS:
        return True
    words = key_words(text)
    if not words or words[-1] in _DESCRIBING_WORDS:
        return False
    for index, word in enumerate(words):
        if word in _SECRET_WORDS or word.endswith(_SECRET_ENDINGS):
            return True
        if word in ("key", "keys") and index and words[index - 1] in _KEY_QUALIFIERS:
            return True
    return False


def _is_descriptor(value):
    return isinstance(value, str) and bool(_DESCRIPTOR.match(value.strip()))


def known_values(secrets):
    """The registered values worth replacing, longest first (a shorter one may sit inside a longer one)."""
    values = set()
    for secret in secrets or ():
        if secret is None or isinstance(secret, bool):
            continue
        if isinstance(secret, bytes):
            secret = secret.decode("utf-8", "replace")
        text = str(secret)
        if len(text) >= MIN_SECRET_LENGTH:
            values.add(text)
    return sorted(values, key=lambda v: (-len(v), v))


# -- URLs ---------------------------------------------------------------------------------------

_URL = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<rest>[^\s'\"<>`]+)")
_HOST_AFTER_AT = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~-]+)(?::[0-9]*)?(?:[/?#]|$)")
_HOST_PORT_PATH = re.compile(r"^[A-Za-z0-9.-]+:[0-9]+(?:[/?#]|$)")


def userinfo_end(rest):
    """Where the userinfo of a URL ends (the index of its '@'), given what follows 'scheme://'; None when
    the URL has none.

    A password may hold '@', '/', ':', '?' or '#' when it was not percent-encoded: the userinfo runs to
    the last '@' that is followed by a host. 'https://h/p?email=a@b.example' has no userinfo.
    """
    ats = [i for i, c in enumerate(rest) if c == "@"]
    if not ats:
        return None
    seps = [i for i in (rest.find(c) for c in "/?#") if i >= 0]
    first_sep = min(seps) if seps else len(rest)
    chosen = None
    for at in reversed(ats):
        if _HOST_AFTER_AT.match(rest, at + 1):
            chosen = at
            break
    if chosen is None:
        before = [at for at in ats if at < first_sep]
        if not before:
            return None
        chosen = before[-1]
    userinfo = rest[:chosen]
    if ats[0] < first_sep or (":" in userinfo and not _HOST_PORT_PATH.match(userinfo)):
        return chosen
    return None  # an '@' in the path or query (an e-mail address), not credentials


def split_url(url):
    """(scheme://, userinfo or None, rest after the '@') of a URL; None when ``url`` is not one."""
    match = re.match(r"^\s*([A-Za-z][A-Za-z0-9+.-]*://)(.*)$", str(url or ""), re.DOTALL)
    if not match:
        return None
    rest = match.group(2)
    end = userinfo_end(rest)
    if end is None:
        return match.group(1), None, rest
    return match.group(1), rest[:end], rest[end + 1:]


def _url_sub(match):
    rest = match.group("rest")
    end = userinfo_end(rest)
    if end is None:
        return match.group(0)
    return match.group("scheme") + REDACTED + rest[end:]


def redact_url(url):
    """Hide the userinfo part of a URL (`redis://:pw@h`, `https://key@sentry/1`, `redis://:a/b@c@h`)."""
    if not url:
        return url
    return _URL.sub(_url_sub, str(url))


# -- text ---------------------------------------------------------------------------------------

_QUOTED_VALUE = r"\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'"
# "key": value / 'key': value / "key"=value (JSON, Python reprs)
_QUOTED_PAIR = re.compile(
    r"(?P<q>[\"'])(?P<key>[^\"'\\\n]{1,100})(?P=q)(?P<sep>\s*[:=]\s*)"
    r"(?P<value>" + _QUOTED_VALUE + r"|\[[^\]\n]*\]|(?![{\[])[^\s,;}\]]+)")
# Authorization: ... (a credential header anywhere in the text: the rest of its line)
_HEADER = re.compile(
    r"(?P<key>(?<![A-Za-z0-9-])(?:" + "|".join(re.escape(h) for h in sorted(SECRET_HEADERS, key=len, reverse=True))
    + r"))(?P<sep>[ \t]*:[ \t]*)(?P<value>[^\s\"'][^\n\"']*)", re.IGNORECASE)
# key: value at the start of a line (YAML, headers): the rest of the line
_LINE_PAIR = re.compile(r"(?m)^(?P<lead>[ \t]*(?:-[ \t]+)?)(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)"
                        r"(?P<sep>[ \t]*:[ \t]+)(?P<value>[^\n]+)")
# KEY=value lines of environment files: the rest of the line, or the quoted value
_ENV_LINE = re.compile(r"(?m)^(?P<lead>[ \t]*(?:export[ \t]+)?)(?P<key>[A-Z_][A-Z0-9_]*)(?P<sep>=)"
                       r"(?P<value>" + _QUOTED_VALUE + r"|[^\n]*?)(?=[ \t]+#|[ \t]*$)")
# key=value anywhere (query strings, logfmt, --option=value)
_PAIR = re.compile(r"(?P<key>(?<![A-Za-z0-9_])[A-Za-z_][A-Za-z0-9_.-]*)(?P<sep>=)"
                   r"(?P<value>" + _QUOTED_VALUE + r"|[^\s&;,)}\]\"']+)")
# --option value (command lines)
_CLI_OPTION = re.compile(r"(?P<key>(?<![A-Za-z0-9_-])--?[A-Za-z][A-Za-z0-9_.-]*)(?P<sep>[ \t]+)"
                         r"(?P<value>" + _QUOTED_VALUE + r"|[^\s\"'-][^\s\"']*)")
# Bearer <token> anywhere
_AUTH_SCHEME = re.compile(r"(?P<key>\b(?:Bearer|Basic|Token|Bot)\b)(?P<sep>[ \t]+)(?P<value>[A-Za-z0-9._~+/=-]{8,})",
                          re.IGNORECASE)


def _masked(value):
    """REDACTED in place of a value, keeping its quotes or brackets."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[0] + REDACTED + value[0]
    if value.startswith("[") and value.endswith("]"):
        return "[" + REDACTED + "]"
    return REDACTED


def _unquoted(value):
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _pair_sub(match):
    value = match.group("value")
    inner = _unquoted(value).strip()
    if not is_secret_key(match.group("key")) or _is_descriptor(inner) or inner in ("true", "false", "True", "False"):
        return match.group(0)
    return match.group(0)[:match.start("value") - match.start()] + _masked(value)


def _line_sub(match):
    value = match.group("value").rstrip()
    if not is_secret_key(match.group("key")) or _is_descriptor(_unquoted(value)):
        return match.group(0)
    return match.group("lead") + match.group("key") + match.group("sep") + _masked(value)


def _header_sub(match):
    if _is_descriptor(match.group("value")):
        return match.group(0)
    return match.group("key") + match.group("sep") + REDACTED


def _scheme_sub(match):
    token = match.group("value")
    if re.search(r"[0-9._~+/=-]", token) or len(token) >= 24:
        return match.group("key") + match.group("sep") + REDACTED
    return match.group(0)  # "Bearer authentication" is prose, not a token


def _json_text(text, known):
    """Redact a JSON document structurally; None when ``text`` is not one."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "{[":
        return None
    try:
        parsed = json.loads(stripped)
    except ValueError:
        return None
    if not isinstance(parsed, (dict, list)):
        return None
    cleaned = _data(parsed, known, False)
    if cleaned == parsed:
        return text
    return json.dumps(cleaned, ensure_ascii=False)


def _text(text, known):
    for value in known:
        if value in text:
            text = text.replace(value, REDACTED)
    structured = _json_text(text, known)
    if structured is not None:
        return structured
    text = _URL.sub(_url_sub, text)
    text = _QUOTED_PAIR.sub(_pair_sub, text)
    text = _HEADER.sub(_header_sub, text)
    text = _LINE_PAIR.sub(_line_sub, text)
    text = _ENV_LINE.sub(_line_sub, text)
    text = _PAIR.sub(_pair_sub, text)
    text = _CLI_OPTION.sub(_pair_sub, text)
    return _AUTH_SCHEME.sub(_scheme_sub, text)


def redact_text(text, secrets=()):
    """Hide known secret values, URL credentials and secret-named pairs in free text."""
    if text is None:
        return None
    return _text(str(text), known_values(secrets))


def redact_headers(headers, secrets=()):
    """A copy of a header mapping with credential headers hidden."""
    known = known_values(secrets)
    out = {}
    for name, value in (headers or {}).items():
        if is_secret_key(name):
            out[name] = REDACTED
        else:
            out[name] = _text(str(value), known) if value is not None else None
    return out


# -- data -----------------------------------------------------------------------------------------

def _scalar(value, known, secret):
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if secret and not _is_descriptor(value):
        return REDACTED
    if isinstance(value, str):
        return _text(value, known)
    if isinstance(value, (int, float)) and str(value) in known:
        return REDACTED
    return value


def _data(data, known, secret):
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            if is_secret_key(key):
                inner = True
            else:
                inner = secret and str(key).lower() not in _DESCRIPTIVE_KEYS
            out[key] = _data(value, known, inner)
        return out
    if isinstance(data, (list, tuple)):
        return [_data(value, known, secret) for value in data]
    return _scalar(data, known, secret)


def redact_data(data, secrets=()):
    """Recursively redact a JSON-like structure.

    Under a secret-named key every value is hidden: strings, numbers, each element of a list,
    and every value of a nested object except the keys that describe it (scheme, host, port,
    user...). Booleans, null and the project's own markers ("SET (hidden)") stay.
    """
    return _data(data, known_values(secrets), False)

# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sentry DSNs: parse and validate without ever repeating the value, and spot near-miss variable names.

A DSN is ``<scheme>://<public_key>[:<secret_key>]@<host>[:<port>]/[<path>/]<project_id>``.
Every problem is reported by what is wrong (scheme, public key, host, port,
project id), never by quoting the DSN: the DSN is a credential.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib
import re

from ansible.module_utils.six.moves.urllib.parse import urlsplit

DEFAULT_VARIABLE = "HUNTER_SENTRY_DSN"

_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_KEY_CHARS = re.compile(r"^[A-Za-z0-9_-]+$")


class ParsedDsn(object):
    """The non-secret parts of a DSN (the keys are kept for the SDK, never shown)."""

    def __init__(self, scheme, public_key, secret_key, host, port, path_prefix, project_id):
        self.scheme = scheme
        self.public_key = public_key
        self.secret_key = secret_key
        self.host = host
        self.port = port
        self.path_prefix = path_prefix
        self.project_id = project_id

    def describe(self):
        """Evidence without secrets: scheme, host, port, project id."""
        return {
            "scheme": self.scheme,
            "host": self.host,
            "port": self.port,
            "project_id": self.project_id,
            "public_key": "SET (hidden)" if self.public_key else "missing",
        }

    @property
    def netloc(self):
        return self.host + (":%d" % self.port if self.port else "")


class DsnCheck(object):
    """Outcome of validating one DSN: problems (fail) and notes (worth saying, not failing)."""

    def __init__(self, parsed=None, problems=None, notes=None):
        self.parsed = parsed
        self.problems = list(problems or [])
        self.notes = list(notes or [])

    @property
    def ok(self):
        return not self.problems


def validate_dsn(dsn, allow_http=False):
    """Validate a DSN's format; problems name the part that is wrong, never its value."""
    text = "" if dsn is None else str(dsn)
    stripped = text.strip()
    if not stripped:
        return DsnCheck(problems=["the DSN is empty (sentry-sdk silently disables itself)"])
    problems, notes = [], []
    if stripped != text:
        problems.append("the DSN has leading or trailing whitespace (sentry-sdk rejects it)")
    if any(c.isspace() for c in stripped):
        problems.append("the DSN contains whitespace")
        return DsnCheck(problems=problems)
    if "://" not in stripped:
        problems.append("not a URL: expected https://<public_key>@<host>/<project_id>")
        return DsnCheck(problems=problems)
    try:
        parts = urlsplit(stripped)
        port = parts.port
    except ValueError as err:
        # ValueError texts name the port, not the DSN ("Port could not be cast to integer value as '...'")
        problems.append("invalid port (%s)" % ("not a number" if "cast" in str(err) else "out of range"))
        return DsnCheck(problems=problems)

    scheme = (parts.scheme or "").lower()
    if scheme == "http":
        if allow_http:
            notes.append("plain http DSN (allowed by configuration)")
        else:
            problems.append("scheme is http, expected https (plain http is only accepted where allowed)")
    elif scheme != "https":
        problems.append("scheme %r is not https" % scheme if scheme else "the scheme is missing")

    public_key, secret_key = parts.username, parts.password
    if "@" not in parts.netloc:
        problems.append("no public key: expected <scheme>://<public_key>@<host>/<project_id>")
    elif not public_key:
        problems.append("the public key is empty")
    elif not _KEY_CHARS.match(public_key):
        problems.append("the public key contains characters other than letters, digits, '-' and '_'")
    elif not _HEX32.match(public_key):
        notes.append("the public key is not the usual 32 hex characters (length %d)" % len(public_key))
    if secret_key:
        notes.append("the DSN carries a secret key (deprecated DSN form; not needed by current SDKs)")

    host = parts.hostname or ""
    if not host:
        problems.append("the host is missing")
    elif not re.match(r"^[A-Za-z0-9.\-\[\]:]+$", host):
        problems.append("the host contains invalid characters")
    if port == 0:
        problems.append("invalid port (0)")

    if parts.query or parts.fragment:
        problems.append("the DSN has a query string or fragment after the project id")
    path = parts.path or ""
    segments = path.split("/")
    project_id = segments[-1] if segments else ""
    if not path or path == "/":
        problems.append("the project id is missing (the path must end with /<project_id>)")
    elif not project_id:
        problems.append("the project id is missing (the path ends with '/')")
    elif not project_id.isdigit():
        problems.append("the project id %r is not numeric" % project_id)
    prefix = "/".join(segments[:-1]).strip("/")

    parsed = None
    if not problems:
        parsed = ParsedDsn(scheme, public_key, secret_key, host, port, prefix, project_id)
    return DsnCheck(parsed=parsed, problems=problems, notes=notes)


def _normalised(name):
    return re.sub(r"[^A-Z0-9]", "", name.upper())


def near_misses(expected, names):
    """Names set in the environment that look like `expected` but are not it.

    Catches the mistakes real deployments make: another prefix (SENTRY_DSN for
    HUNTER_SENTRY_DSN), case or separators (hunter_sentry_dsn, HUNTER-SENTRY-DSN),
    typos (HUNTER_SENTRY_DNS) and suffixes (HUNTER_SENTRY_DSN_PROD).
    """
    expected_norm = _normalised(expected)
    # The distinctive words of the expected name: SENTRY and DSN for HUNTER_SENTRY_DSN.
    words = [w for w in re.split(r"[^A-Z0-9]+", expected.upper()) if len(w) >= 3]
    key_words = [w for w in words if w in ("SENTRY", "DSN")] or words[-1:]
    found = []
    for name in names:
        if name == expected:
            continue
        norm = _normalised(name)
        similar = (
            norm == expected_norm
            or (len(norm) >= 4 and (expected_norm.endswith(norm) or norm.startswith(expected_norm)
                                    or norm.endswith(expected_norm)))
            or difflib.SequenceMatcher(None, norm, expected_norm).ratio() >= 0.85
            or (key_words and all(w in name.upper() for w in key_words))
        )
        if similar:
            found.append(name)
    return sorted(found)


class DsnAssessment(object):
    """SENTRY-DSN for one environment: status, one-line message, evidence, and the usable DSN (never shown)."""

    def __init__(self, status, message, evidence, dsn=None, parsed=None):
        self.status = status
        self.message = message
        self.evidence = evidence
        self.dsn = dsn
        self.parsed = parsed


def assess(variables, variable, source_description, allow_http=False):
    """Is `variable` set in `variables` to a well-formed DSN? Near misses are named, values never."""
    similar = near_misses(variable, [k for k, v in variables.items() if v])
    evidence = {"variable": variable, "source": source_description}
    if similar:
        evidence["similar_variables"] = similar
    if variable not in variables:
        evidence["value"] = "NOT SET"
        if similar:
            return DsnAssessment(
                "warn", "%s is not set in %s, but %s %s: the application reads %s (near miss: rename it)" % (
                    variable, source_description, ", ".join(similar), "is" if len(similar) == 1 else "are", variable),
                evidence)
        return DsnAssessment("fail", "%s is not set in %s" % (variable, source_description), evidence)
    value = variables[variable]
    evidence["value"] = "SET (hidden)" if value.strip() else "SET but empty"
    if not value.strip():
        return DsnAssessment("fail", "%s is set but empty in %s: sentry-sdk silently disables itself" % (
            variable, source_description), evidence)
    check = validate_dsn(value, allow_http=allow_http)
    if check.parsed is not None:
        evidence["dsn"] = check.parsed.describe()
    if check.notes:
        evidence["notes"] = check.notes
    if not check.ok:
        # "<VAR> is ...", never "<VAR>: ...": redaction treats "<...DSN>: word" as a secret pair.
        return DsnAssessment("fail", "%s is %s but invalid: %s" % (variable, evidence["value"], "; ".join(check.problems)),
                             dict(evidence, problems=check.problems))
    parsed = check.parsed
    message = "%s is SET (hidden) and valid (%s, host %s, project %s)" % (
        variable, parsed.scheme, parsed.netloc, parsed.project_id)
    if check.notes:
        message += "; " + "; ".join(check.notes)
    if similar:
        message += "; also set: %s" % ", ".join(similar)
    return DsnAssessment("pass", message, evidence, dsn=value, parsed=parsed)

# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Documentation: url_credential.yml and secret_values.yml beside this file.

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six.moves.urllib.parse import quote

from ansible_collections.hunter.ops.plugins.module_utils.redact import is_secret_key


def url_credential(value):
    """A user name or password percent-encoded for the userinfo of a URL.

    Every character outside RFC 3986's unreserved set is encoded, '/' included (Jinja's
    `urlencode` leaves it as is, so a base64 password broke the URL it was put in).
    """
    if value is None or isinstance(value, (bool, Mapping, list, tuple)):
        raise AnsibleFilterError("url_credential expects a string (a user name or password), got %s"
                                 % type(value).__name__)
    return quote(str(value), safe="")


def _leaves(value):
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _leaves(item)
    elif value is not None and not isinstance(value, bool) and str(value) != "":
        yield str(value)


# Keys of a registered task result: a variable holding one is not a secret, whatever its name
# (`register: _sentry_probe_dsn` holds "pass", "changed"... which must not be scrubbed everywhere).
_RESULT_KEYS = frozenset(("changed", "failed", "skipped", "unreachable", "invocation", "checks", "msg", "rc"))
# A value found by its variable's name alone is taken only from this length: a short one ("120",
# "none") is not a credential, and scrubbing it would garble the report.
MIN_GUESSED_LENGTH = 6


def _guessed(value):
    """The values of a variable found by its name: strings, lists of strings, or a dict of them
    (secret headers); never a registered task result."""
    if isinstance(value, Mapping):
        if _RESULT_KEYS & set(value):
            return []
        items = list(value.values())
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    return [str(v) for v in items if isinstance(v, str) and len(v) >= MIN_GUESSED_LENGTH]


def secret_values(hostvars, hosts, names=(), prefixes=("vault_",)):
    """The values of the inventory's secret variables on the given hosts, for the report to scrub.

    A variable counts when it is named in `names` (every value in it), or starts with one of
    `prefixes` or has a name that says it holds a secret (`*_password`, `*_token`, `*_api_key`,
    `*_secret_key`, `*_dsn`, ...): then its strings of 6 characters or more, never a registered
    task result, and never a variable whose name starts with `_` (a role's private variables and
    registered results). A variable that cannot be templated on a host (it refers to something
    undefined there) is skipped: the report must be written whatever the inventory holds.
    """
    if not isinstance(hosts, (list, tuple)):
        raise AnsibleFilterError("secret_values: hosts must be a list of inventory host names")
    wanted = set(str(n) for n in (names or ()))
    prefixes = tuple(str(p) for p in (prefixes or ()))
    found = set()
    for host in hosts:
        try:
            host_vars = hostvars[host]
            candidates = [str(k) for k in host_vars.keys()]
        except Exception:  # pylint: disable=broad-except
            continue
        for name in candidates:
            guessed = not name.startswith("_") and (bool(prefixes and name.startswith(prefixes))
                                                    or is_secret_key(name))
            if name not in wanted and not guessed:
                continue
            try:
                value = host_vars[name]
                found.update(_leaves(value) if name in wanted else _guessed(value))
            except Exception:  # pylint: disable=broad-except
                continue
    return sorted(found)


class FilterModule(object):
    def filters(self):
        return {"url_credential": url_credential, "secret_values": secret_values}

# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which inventory variables hold secrets, and their values (controller side).

Used by the filter hunter.ops.secret_values (the report scrubs what every host holds) and by the
recording (plugins/plugin_utils/recording.py: items are scrubbed of the host's secrets before they
become facts, which ansible-runner and AWX keep in a fact cache).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections.abc import Mapping

from ansible_collections.hunter.ops.plugins.module_utils.redact import is_secret_key

# Keys of a registered task result: a variable holding one is not a secret, whatever its name
# (`register: _sentry_probe_dsn` holds "pass", "changed"... which must not be scrubbed everywhere).
_RESULT_KEYS = frozenset(("changed", "failed", "skipped", "unreachable", "invocation", "checks", "msg", "rc"))
# A value found by its variable's name alone is taken only from this length: a short one ("120",
# "none") is not a credential, and scrubbing it would garble the report.
MIN_GUESSED_LENGTH = 6
VAULT_PREFIXES = ("vault_",)


def leaves(value):
    if isinstance(value, Mapping):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from leaves(item)
    elif value is not None and not isinstance(value, bool) and str(value) != "":
        yield str(value)


def guessed(value):
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


def is_secret_var(name, prefixes=VAULT_PREFIXES):
    """A variable whose name says it holds a secret; never a private one (`_role_...`, registered)."""
    name = str(name)
    return not name.startswith("_") and (bool(prefixes and name.startswith(tuple(prefixes))) or is_secret_key(name))


def secret_values_of(names, lookup, wanted=(), prefixes=VAULT_PREFIXES):
    """Values of the secret variables among ``names``; ``lookup(name)`` gives a variable's value
    (templated) and may raise for one that cannot be templated, which is then skipped."""
    wanted = set(str(n) for n in (wanted or ()))
    found = set()
    for name in names:
        name = str(name)
        if name not in wanted and not is_secret_var(name, prefixes):
            continue
        try:
            value = lookup(name)
            # str() of each leaf inside the try: an undefined value may only fail when rendered.
            found.update([str(v) for v in (leaves(value) if name in wanted else guessed(value))])
        except Exception:  # pylint: disable=broad-except
            continue
    return found

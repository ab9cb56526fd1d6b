# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One place where a module declares its secrets: Ansible's ``no_log_values`` and the redactor at once.

Use it like this::

    from ansible_collections.hunter.ops.plugins.module_utils import secret

    module = AnsibleModule(argument_spec, ...)
    secrets = secret.protect(module)            # the no_log parameters, in every shape
    ...
    secret.register(module, dsn_read_from_the_process)
    secret.register_environment(module, variables, names=["HUNTER_SENTRY_DSN"])
    evidence = redact_data(evidence, secrets)   # the same set: later registrations count too

The registry is ``module.no_log_values`` itself (a set): Ansible replaces every value in it
wherever it appears in the module's result (``exit_json``/``fail_json``), and the redactor
(module_utils/redact.py) takes the same set as its ``secrets``. A value is registered with the
shapes it takes in text: as given, percent-encoded (``%2F``/``%2f``, ``+`` for spaces),
percent-decoded and JSON-escaped; a URL's userinfo and password separately.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from ansible.module_utils.six.moves.urllib.parse import quote, quote_plus, unquote, unquote_plus

from ansible_collections.hunter.ops.plugins.module_utils.redact import MIN_SECRET_LENGTH, is_secret_key, split_url

_PERCENT = re.compile(r"%[0-9A-F]{2}")
_AUTH_SCHEME = re.compile(r"^\s*(?:Bearer|Basic|Token|Bot)\s+(\S+)\s*$", re.IGNORECASE)
# Items of a secret list ("HUNTER_API_KEYS=key1,key2") shorter than this are not registered alone.
_MIN_LIST_ITEM = 8


def forms(value):
    """The shapes a secret value takes in text, ``value`` included (a set of strings)."""
    if value is None or isinstance(value, bool):
        return set()
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value)
    found = {text, quote(text, safe=""), quote_plus(text, safe=""), unquote(text), unquote_plus(text),
             json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1]}
    for encoded in (quote(text, safe=""), quote_plus(text, safe="")):
        found.add(_PERCENT.sub(lambda m: m.group(0).lower(), encoded))
    return set(f for f in found if len(f) >= MIN_SECRET_LENGTH)


def url_secrets(value):
    """The credentials inside a value: a URL's userinfo and password, the token of ``Bearer <token>``."""
    if not isinstance(value, str):
        return []
    scheme = _AUTH_SCHEME.match(value)
    if scheme:
        return [scheme.group(1)]
    parts = split_url(value)
    if not parts or not parts[1]:
        return []
    userinfo = parts[1]
    user, colon, password = userinfo.partition(":")
    # A DSN (https://<key>@host/1) has no password: its user part is the credential.
    return [userinfo, password if colon else user]


def _leaves(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from _leaves(item)
    elif value is not None and not isinstance(value, bool):
        yield value


def register(module, *values):
    """Declare secret values (strings, numbers, or lists/dicts of them): each one, in every shape,
    and the credentials of any URL among them. Returns the registry (``module.no_log_values``)."""
    registry = module.no_log_values
    for value in values:
        for leaf in _leaves(value):
            for item in [leaf] + url_secrets(leaf):
                registry.update(forms(item))
    return registry


def register_environment(module, variables, names=()):
    """Declare the secrets of an application's environment: the variables in ``names``, every
    variable whose name says it holds a secret (``*_PASSWORD``, ``*_TOKEN``, ``*_API_KEYS``,
    ``*_DSN``...; a list of keys item by item) and the credentials inside any URL value."""
    for name, value in (variables or {}).items():
        if not value:
            continue
        if name in names or is_secret_key(name):
            register(module, value)
            register(module, *[part.strip() for part in str(value).split(",") if len(part.strip()) >= _MIN_LIST_ITEM])
        else:
            register(module, *url_secrets(str(value)))
    return module.no_log_values


def protect(module):
    """Register every shape of the module's ``no_log`` parameter values (Ansible registered them
    as given). Call it right after creating the AnsibleModule; returns the registry."""
    return register(module, *list(module.no_log_values))

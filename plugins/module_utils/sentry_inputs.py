# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Input checks of the Sentry modules (sentry_dsn, sentry_event), collected with
validate.InputProblems: every bad value is reported, named as the operator set it, and fails only
the items that use it (a bad alert setting fails SENTRY-ALERTS, never SENTRY-EVENT).

The modules' argument specs are permissive (``raw``/``str`` without choices) for every option a
role fills from an operator's variable, so AnsibleModule never rejects the whole task for a value
only one item uses; the checks below do the typing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible.module_utils.common.validation import check_type_dict, check_type_list
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.hunter.ops.plugins.module_utils.validate import ParameterError, positive_number

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*(:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*)?$")
SOURCES = ("process", "envfile", "container", "value")
PROCESS_SELECTORS = ("pid", "pidfile", "process_match")


def flag(param, value):
    if isinstance(value, bool):
        return value
    try:
        return boolean(value, strict=True)
    except TypeError:
        raise ParameterError(param, "must be true or false, got %r" % (value,))


def number(param, value, allow_zero=False):
    return positive_number(param, value, allow_zero=allow_zero)


def integer(param, value, minimum=1):
    text = str(value).strip()
    if isinstance(value, bool) or not re.match(r"^-?\d+$", text):
        raise ParameterError(param, "must be a whole number, got %r" % (value,))
    if int(text) < minimum:
        raise ParameterError(param, "must be at least %d, got %s" % (minimum, text))
    return int(text)


def choice(param, value, choices):
    text = str(value if value is not None else "").strip()
    if text not in choices:
        raise ParameterError(param, "must be one of %s, got %r" % (", ".join(choices), value))
    return text


def required_text(param, value, what):
    text = "" if value is None else str(value).strip()
    if not text:
        raise ParameterError(param, "%s is required (it is empty)" % what)
    return text


def mapping(param, value, strings=True):
    """A dict (or a ``k=v`` / JSON string); values must be non-empty strings when ``strings``."""
    if value is None or value == "":
        return {}
    try:
        data = check_type_dict(value)
    except TypeError:
        raise ParameterError(param, "must be a mapping of names to values, got %r" % (value,))
    if strings:
        for key, item in data.items():
            if not str(key).strip() or item is None or isinstance(item, (dict, list)) or not str(item).strip():
                raise ParameterError(param, "names and values must be non-empty strings (%r: %r)" % (key, item))
    return data


def string_list(param, value):
    if value is None or value == "":
        return []
    if isinstance(value, dict):
        raise ParameterError(param, "must be a list of strings, got a mapping")
    try:
        items = check_type_list(value)
    except TypeError:
        raise ParameterError(param, "must be a list of strings, got %r" % (value,))
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ParameterError(param, "must be a list of non-empty strings, got %r" % (item,))
    return items


def variable_name(param, value):
    if not _NAME.match(str(value or "")):
        raise ParameterError(param, "%r is not an environment variable name" % (value,))
    return str(value)


def python_module(param, value):
    """``package.module`` or ``package.module:callable``."""
    if not _MODULE.match(str(value or "")):
        raise ParameterError(param, "%r is not a module path (package.module or package.module:function)" % (value,))
    return str(value)


def absolute_path(param, value):
    text = str(value or "").strip()
    if not os.path.isabs(text) and "/" in text:
        raise ParameterError(param, "must be an absolute path or a command name, got %r" % (value,))
    if not text:
        raise ParameterError(param, "must not be empty")
    return text


def regex(param, value):
    try:
        re.compile(value)
    except (re.error, TypeError) as err:
        raise ParameterError(param, "invalid regular expression (%s)" % err)
    return value


def source_settings(params, problems, source_required=True):
    """The DSN source and its details (doc fragment hunter.ops.sentry_dsn_source), checked into
    ``problems``; returns the checked values (None where bad)."""
    out = {}
    source = params.get("source")
    if source in (None, "") and not source_required:
        out["source"] = None
    else:
        out["source"] = problems.check("source", choice, source, SOURCES)
    out["variable"] = problems.check("variable", variable_name, params.get("variable"))
    pid = params.get("pid")
    out["pid"] = problems.check("pid", integer, pid) if pid not in (None, "", 0, "0") else None
    out["pidfile"] = params.get("pidfile") or None
    out["process_match"] = None
    if params.get("process_match"):
        out["process_match"] = problems.check("process_match", regex, params["process_match"])
    out["env_files"] = problems.check("env_files", string_list, params.get("env_files"))
    out["container"] = params.get("container") or None
    out["compose_service"] = params.get("compose_service") or None
    out["compose_project_dir"] = params.get("compose_project_dir") or None
    out["compose_files"] = problems.check("compose_files", string_list, params.get("compose_files"))
    for name in ("docker_command", "compose_command"):
        value = problems.check(name, string_list, params.get(name))
        if value == []:
            problems.add(name, "must name the CLI as an argument list, e.g. [docker]")
        out[name] = value
    out["command_timeout"] = problems.check("command_timeout", number, params.get("command_timeout"))
    out["dsn"] = params.get("dsn")
    given = [name for name in PROCESS_SELECTORS if params.get(name) not in (None, "", 0, "0")]
    if len(given) > 1 and not problems.bad(given[1]):
        problems.add(given[1], "give only one of %s (also set: %s)" % (", ".join(PROCESS_SELECTORS), given[0]))
    if out["source"] == "process" and not given:
        problems.add("source", "process needs one of %s" % ", ".join(PROCESS_SELECTORS))
    if out["source"] == "envfile" and not out["env_files"]:
        problems.add("env_files", "required with source envfile (the files the application reads)")
    if out["source"] == "container":
        if out["container"] and out["compose_service"]:
            problems.add("compose_service", "give a container or a compose service, not both")
        elif not (out["container"] or out["compose_service"]):
            problems.add("source", "container needs a container or a compose service")
    if out["source"] == "value" and not str(out["dsn"] or "").strip():
        problems.add("dsn", "required with source value (the DSN, from a vault)")
    return out


SOURCE_PARAMS = ("source", "variable", "pid", "pidfile", "process_match", "env_files", "container",
                 "compose_service", "compose_project_dir", "compose_files", "docker_command", "compose_command",
                 "command_timeout", "dsn")

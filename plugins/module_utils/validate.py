# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Input validation that names the offending parameter (one clear message, never a traceback).

Each function raises ParameterError; modules turn it into
``module.fail_json(msg=str(err))``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible.module_utils.six.moves.urllib.parse import urlsplit

try:
    import jmespath
    from jmespath.exceptions import JMESPathError
    HAS_JMESPATH = True
except ImportError:  # pragma: no cover - reported by the module through missing_required_lib
    HAS_JMESPATH = False
    JMESPathError = Exception


class ParameterError(ValueError):
    """Bad input for one parameter; str() is the message shown to the operator."""

    def __init__(self, param, problem):
        self.param = param
        self.problem = problem
        super(ParameterError, self).__init__("%s: %s" % (param, problem))


def port(param, value):
    """A TCP port number 1..65535 (accepts numeric strings)."""
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise ParameterError(param, "port must be a number between 1 and 65535, got %r" % (value,))
    if not 1 <= number <= 65535:
        raise ParameterError(param, "port must be between 1 and 65535, got %d" % number)
    return number


def url(param, value, schemes=("http", "https")):
    """An absolute URL with an allowed scheme, a host and a valid port. Returns the URL stripped."""
    text = str(value or "").strip()
    if not text:
        raise ParameterError(param, "a URL is required")
    if any(c.isspace() for c in text):
        raise ParameterError(param, "URL must not contain spaces")
    try:
        parts = urlsplit(text)
        parsed_port = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError as err:
        raise ParameterError(param, "malformed URL (%s)" % err)
    if parts.scheme.lower() not in schemes:
        raise ParameterError(
            param, "URL scheme must be one of %s, got %r" % (", ".join(schemes), parts.scheme or "(none)"))
    if not parts.hostname:
        raise ParameterError(param, "URL has no host")
    if parsed_port == 0:
        raise ParameterError(param, "URL port must be between 1 and 65535")
    return text


def status_codes(param, value):
    """Expected HTTP status codes from 200, "200", "200|401", "200,401" or a list. Returns a list of ints."""
    if value is None or value == "" or value == []:
        raise ParameterError(param, "at least one HTTP status code is required")
    if isinstance(value, (list, tuple)):
        raw = list(value)
    else:
        raw = str(value).replace(",", "|").split("|")
    codes = []
    for item in raw:
        text = str(item).strip()
        if not text.isdigit() or not 100 <= int(text) <= 599:
            raise ParameterError(param, "HTTP status codes must be numbers between 100 and 599, got %r" % (item,))
        codes.append(int(text))
    return codes


def jmespath_expression(param, expression):
    """A compiled JMESPath expression."""
    if not HAS_JMESPATH:
        raise ParameterError(param, "the Python library jmespath is required on the host running this module")
    if not isinstance(expression, str) or not expression.strip():
        raise ParameterError(param, "a JMESPath expression is required")
    try:
        return jmespath.compile(expression)
    except JMESPathError as err:
        raise ParameterError(param, "invalid JMESPath expression %r (%s)" % (expression, str(err).splitlines()[0]))


def positive_number(param, value, allow_zero=False):
    """A number > 0 (or >= 0)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ParameterError(param, "must be a number, got %r" % (value,))
    if number < 0 or (number == 0 and not allow_zero):
        raise ParameterError(param, "must be greater than %s0, got %s" % ("or equal to " if allow_zero else "", value))
    return number


def existing_path(param, value, kind="file"):
    """A path that exists and is a file (kind='file') or a directory (kind='dir')."""
    path = os.path.expanduser(str(value or ""))
    if not path:
        raise ParameterError(param, "a path is required")
    if kind == "dir" and not os.path.isdir(path):
        raise ParameterError(param, "directory %s does not exist" % path)
    if kind == "file" and not os.path.isfile(path):
        raise ParameterError(param, "file %s does not exist" % path)
    return path


_TRUE = ("true", "yes", "on", "1", "y", "t")
_FALSE = ("false", "no", "off", "0", "n", "f")


def boolean(param, value):
    """True/False from a boolean or the strings Ansible accepts (yes/no, on/off, 1/0, true/false)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if value is not None else ""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ParameterError(param, "must be true or false, got %r" % (_plain(value),))


def integer(param, value, minimum=None, maximum=None):
    """An integer (accepts numeric strings), optionally within [minimum, maximum]."""
    if isinstance(value, bool):
        raise ParameterError(param, "must be a whole number, got %r" % (value,))
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise ParameterError(param, "must be a whole number, got %r" % (_plain(value),))
    if minimum is not None and number < minimum:
        raise ParameterError(param, "must be at least %d, got %d" % (minimum, number))
    if maximum is not None and number > maximum:
        raise ParameterError(param, "must be at most %d, got %d" % (maximum, number))
    return number


def mapping(param, value):
    """A dict (None counts as empty)."""
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise ParameterError(param, "must be a mapping (key: value), got %r" % (_plain(value),))
    return value


def string_list(param, value, choices=None):
    """A list of strings (a comma-separated string is accepted), each one of ``choices`` when given."""
    if value is None or value == "":
        return []
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise ParameterError(param, "must be a list, got %r" % (_plain(value),))
    result = []
    for item in items:
        if isinstance(item, (dict, list)) or item is None:
            raise ParameterError(param, "every element must be a string, got %r" % (_plain(item),))
        result.append(str(item).strip())
    if choices is not None:
        unknown = [item for item in result if item not in choices]
        if unknown:
            raise ParameterError(param, "unknown value(s) %s; allowed: %s" % (", ".join(unknown), ", ".join(choices)))
    return result


def _plain(value):
    """``value`` as a plain Python type, so a message never shows a wrapper class (Ansible's tagged strings)."""
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


class InputProblems(object):
    """Every bad parameter of one module run, each named as the operator set it (issue 9.12).

    A bad value fails exactly the items that use it, and every bad value is reported, not only the
    first. Roles pass ``param_labels`` (doc fragment hunter.ops.param_labels): ``{option: name}`` with
    the variable the operator sets, e.g. ``{"db_port": "hunter_app_db_port (health_check_db_port)"}``;
    messages use that name instead of the module's option.

        problems = InputProblems(module.params.get("param_labels"))
        port = problems.check("db_port", validate.port, module.params["db_port"])
        ...
        if problems.bad("db_port", "db_host"):
            items["HEALTH-DIAG"] = check_item(FAIL, problems.message("db_port", "db_host"), ...)
    """

    def __init__(self, labels=None):
        self.labels = dict(labels or {})
        self.errors = {}  # option -> problem text (without the name)

    def label(self, param):
        return self.labels.get(param) or param

    def check(self, param, validator, *args, **kwargs):
        """validator(param, *args) with ParameterError recorded under ``param``; None when bad."""
        try:
            return validator(param, *args, **kwargs)
        except ParameterError as err:
            self.add(err.param if err.param.split(".")[0].split("[")[0] == param else param, err.problem)
            return None

    def add(self, param, problem):
        self.errors[param] = problem

    def bad(self, *params):
        """The bad ones among ``params`` (options, or an option's sub-keys such as 'assertions.HEALTH-DB')."""
        return [p for p in self.errors if p in params or p.split(".")[0].split("[")[0] in params]

    def message(self, *params):
        """'<name>: <problem>; <name>: <problem>' for the bad ones among ``params`` (all when none given)."""
        chosen = self.bad(*params) if params else list(self.errors)
        return "; ".join("%s: %s" % (self._name(p), self.errors[p]) for p in chosen)

    def _name(self, param):
        base = param.split(".")[0].split("[")[0]
        return self.label(base) + param[len(base):] if base in self.labels else param

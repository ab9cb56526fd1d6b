# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read an application's environment file (systemd EnvironmentFile / docker --env-file / .env).

Values are secrets as often as not: callers never echo them, and errors name the
file and the variable, never a value.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible_collections.hunter.ops.plugins.module_utils.validate import ParameterError

_LINE = re.compile(r"^\s*(?:export\s+)?(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?P<value>.*?)\s*$")


def _unquote(value):
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        inner = value[1:-1]
        if value[0] == '"':
            inner = inner.replace('\\"', '"').replace("\\\\", "\\")
        return inner
    # An unquoted value ends at an inline comment (" #...").
    return re.split(r"\s+#", value, 1)[0]


def parse(text):
    """{KEY: value} from KEY=value lines; comments, blank lines and `export ` are understood."""
    values = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if match:
            values[match.group("key")] = _unquote(match.group("value"))
    return values


class EnvFileError(Exception):
    """An environment file that cannot be read; str() names the file (never a value)."""


def read_bytes(path, missing=None):
    """The bytes of a file of the application's (env file, /proc/<pid>/environ).

    EnvFileError names the file and says what to do; ``missing`` replaces the message when
    the file does not exist.
    """
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise EnvFileError(missing or "environment file %s does not exist" % path)
    except PermissionError:
        raise EnvFileError("permission denied reading %s: run the task as root (become: true) "
                           "or as the application's user" % path)
    except OSError as err:
        raise EnvFileError("cannot read %s: %s" % (path, err.strerror or err))


def load(path):
    """{KEY: value} of the environment file at ``path``; EnvFileError when it cannot be read.

    Bytes that are not UTF-8 are replaced rather than refused: one odd value must not hide the
    variable the check is looking for.
    """
    raw = read_bytes(path)
    return parse(raw.decode("utf-8", "replace"))


def read(param, path):
    """Parse the file at ``path``; ParameterError naming ``param`` when it cannot be read."""
    path = os.path.expanduser(str(path or ""))
    if not path:
        raise ParameterError(param, "a path is required")
    if not os.path.isfile(path):
        raise ParameterError(param, "file %s does not exist" % path)
    try:
        return load(path)
    except EnvFileError as err:
        raise ParameterError(param, str(err))


def first_of(param, path, names):
    """(name, value) of the first variable of ``names`` set (non-empty) in the file."""
    values = read(param, path)
    for name in names:
        if values.get(name):
            return name, values[name]
    raise ParameterError(param, "none of %s is set in %s" % (", ".join(names), path))

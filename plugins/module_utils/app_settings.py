# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The application's own settings, read where the application reads them.

REDIS-APP-PING, HEALTH-DIAG and HEALTH-ENV (source ``config``) judge the application with what it
really uses, not with the inventory's copy of it. One lookup for all three, so they can never
disagree about which Redis, which database or which environment the application has:

1. the environment of the running process (``pidfile``: ``/proc/<pid>/environ``), what the
   application was started with;
2. the environment files (``env_files``: a compose ``.env``, a systemd ``EnvironmentFile``, a
   ``.env`` the application loads itself), later files winning; a process variable wins over a
   file, as in pydantic-settings and systemd;
3. only when neither source is configured: the value the inventory gives (``fallback``), named as such.

When a source is configured and none of the variables is set there, the setting is unknown
(``SettingUnknown``): a check reports "not checked", never a guess from the inventory.
Values are returned to the caller only; origins name the variable and the source, never a value.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.hunter.ops.plugins.module_utils import app_env


class SettingUnknown(Exception):
    """The application's setting could not be read; str() says where it was looked for and why."""


class Setting(object):
    """A value and where it came from (``origin``: one line for messages, ``evidence``: a dict)."""

    def __init__(self, value, origin, evidence):
        self.value = value
        self.origin = origin
        self.evidence = evidence


class AppSettings(object):
    """The sources of one application's settings on the host running the module."""

    def __init__(self, pidfile=None, env_files=None):
        self.pidfile = pidfile or None
        self.env_files = [f for f in (env_files or []) if f]
        self._snapshots = None

    @property
    def configured(self):
        return bool(self.pidfile or self.env_files)

    def _sources(self):
        """[(snapshot or None, error or None)] in lookup order, read once."""
        if self._snapshots is None:
            self._snapshots = []
            if self.pidfile:
                self._snapshots.append(self._read({"source": "process", "pidfile": self.pidfile},
                                                  "the process of pidfile %s" % self.pidfile))
            if self.env_files:
                self._snapshots.append(self._read({"source": "envfile", "env_files": self.env_files},
                                                  "environment file(s) %s" % ", ".join(self.env_files)))
        return self._snapshots

    @staticmethod
    def _read(params, what):
        try:
            return app_env.load(params), None
        except app_env.EnvSourceError as err:
            return None, "%s: %s" % (what, err)

    def lookup(self, names, fallback=None, fallback_name=None):
        """The first of ``names`` set in the application's sources: a Setting, or SettingUnknown.

        ``fallback`` (the inventory's value, described by ``fallback_name``) is used only when no
        source is configured.
        """
        names = list(names)
        if not self.configured:
            if fallback:
                return Setting(fallback, "the inventory (%s)" % fallback_name,
                               {"settings_from": "inventory", "variable": fallback_name})
            raise SettingUnknown("no source of the application's settings is configured (pidfile, "
                                 "environment file) and the inventory gives no value")
        looked, errors = [], []
        for snapshot, error in self._sources():
            if error:
                errors.append(error)
                continue
            looked.append(snapshot.description)
            for name in names:
                if snapshot.variables.get(name):
                    evidence = dict(snapshot.evidence, settings_from=snapshot.description, variable=name)
                    if errors:
                        evidence["unreadable_sources"] = errors
                    return Setting(snapshot.variables[name], "%s in %s" % (name, snapshot.description), evidence)
        parts = []
        if looked:
            parts.append("none of %s is set in %s" % (", ".join(names), " or ".join(looked)))
        parts.extend(errors)
        raise SettingUnknown("; ".join(parts))

# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs hunter.ops.redis_probe and records the items its ``checks`` select (plugins/plugin_utils/recording.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.hunter.ops.plugins.plugin_utils.recording import CheckModuleAction

# The module's defaults (plugins/modules/redis_probe.py); "info" adds to the ping item.
DEFAULT_CHECKS = ("ping", "info", "ops", "pool")
IDS = {"ops": "REDIS-OPS", "pool": "REDIS-POOL", "health": "REDIS-HEALTH"}
# What a control-side run (ping_id REDIS-PING) owns: a check left out of ``checks`` is a skip.
CONTROL_SIDE = (("ping", "REDIS-PING"), ("ops", "REDIS-OPS"), ("pool", "REDIS-POOL"))


def selected(args):
    checks = DEFAULT_CHECKS if args.get("checks") is None else args["checks"]
    return [c.strip() for c in checks.split(",")] if isinstance(checks, str) else list(checks)


class ActionModule(CheckModuleAction):

    def checklist_ids(self, args):
        checks = selected(args)
        ids = [args.get("ping_id") or "REDIS-PING"] if "ping" in checks else []
        return ids + [IDS[c] for c in checks if c in IDS]

    def unselected_ids(self, args):
        checks = selected(args)
        # REDIS-APP-PING and REDIS-HEALTH calls run on app hosts, which own no control-side ID.
        if (args.get("ping_id") or "REDIS-PING") != "REDIS-PING" or "health" in checks:
            return {}
        return dict((check_id, "not selected (checks: %s)" % ", ".join(checks))
                    for name, check_id in CONTROL_SIDE if name not in checks)

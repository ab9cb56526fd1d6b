# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs hunter.ops.api_probe and records the items of its endpoints (plugins/plugin_utils/recording.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.common.text.converters import to_text

from ansible_collections.hunter.ops.plugins.module_utils.checklist import MODULE_IDS
from ansible_collections.hunter.ops.plugins.plugin_utils.recording import CheckModuleAction

# Without O(endpoints) the module checks the runbook's three versioned endpoints.
DEFAULT_IDS = ("API-V1-LEADS", "API-V1-SCAN", "API-V1-SALES")
VERSIONED_IDS = [i for i in MODULE_IDS["api_probe"] if i.startswith("API-V1-")]


def endpoint_ids(args):
    endpoints = args.get("endpoints") or []
    if not isinstance(endpoints, list):
        return list(DEFAULT_IDS)
    return [ep["id"] for ep in endpoints if isinstance(ep, dict) and ep.get("id")] or list(DEFAULT_IDS)


class ActionModule(CheckModuleAction):

    def checklist_ids(self, args):
        return list(dict.fromkeys(endpoint_ids(args))) + ["API-LEGACY", "API-COMPAT"]

    def unselected_ids(self, args):
        configured = endpoint_ids(args)
        return dict((check_id, "not configured: no endpoint with this ID in endpoints")
                    for check_id in VERSIONED_IDS if check_id not in configured)

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        # When the probe could not run at all (host unreachable, the module crashed), API-LEGACY still
        # names the decision it was to check. The item is the recorded one (same object), so the host
        # fact changes with it.
        item = (result.get("checks") or {}).get("API-LEGACY")
        if isinstance(item, dict) and isinstance(item.get("evidence"), dict) and "decision" not in item["evidence"]:
            decision = to_text(self._task.args.get("legacy_decision") or "").strip()
            item["evidence"]["decision"] = decision.lower() or "not documented"
            if decision:
                item["message"] = "decision checked: '%s'; not probed: %s" % (decision.lower(), item.get("message"))
        return result

# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Gathers this run's items of every inventory host, then runs hunter.ops.preflight_report.

Without O(results), the items are the hosts' C(hunter_ops_checks) facts recorded by this run
(plugins/plugin_utils/recording.py); a host's facts from an earlier run (a fact cache, AWX's fact
storage) are ignored, so the host counts as silent and its items fail in the report.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.plugins.action import ActionBase

from ansible_collections.hunter.ops.plugins.plugin_utils.recording import CHECKS_FACT, RUN_FACT, run_id


def this_run_results(hostvars, hosts, run):
    """({host: items}, {host: note}) of this run; hosts whose facts belong to another run get a note."""
    results, stale = {}, {}
    for host in hosts:
        facts = hostvars[host].get("ansible_facts") or {}
        checks = facts.get(CHECKS_FACT) or {}
        if facts.get(RUN_FACT) == run:
            results[host] = dict(checks)
        else:
            results[host] = {}
            if checks:
                stale[host] = "results recorded by another run (%s) were ignored" % (facts.get(RUN_FACT) or "unknown")
    return results, stale


class ActionModule(ActionBase):

    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        if args.get("results") is None:
            hosts = list((task_vars.get("groups") or {}).get("all") or [])
            hostvars = task_vars["hostvars"]
            args["results"], args["stale_hosts"] = this_run_results(hostvars, hosts, run_id(self._task))
            if not args.get("host_groups"):
                args["host_groups"] = dict((h, list(hostvars[h].get("group_names") or [])) for h in hosts)
        result.update(self._execute_module(module_name=self._task.resolved_action or self._task.action,
                                           module_args=args, task_vars=task_vars))
        return result

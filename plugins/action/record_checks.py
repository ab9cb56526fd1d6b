# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Records items a role or play decides itself (docs: plugins/modules/record_checks.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleActionFail
from ansible.module_utils.six import string_types
from ansible.plugins.action import ActionBase

from ansible_collections.hunter.ops.plugins.module_utils.checklist import BY_ID
from ansible_collections.hunter.ops.plugins.module_utils.results import STATUSES, check_item
from ansible_collections.hunter.ops.plugins.plugin_utils.recording import host_secrets, record


class ActionModule(ActionBase):

    _supports_check_mode = True
    _requires_connection = False
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("checks", "ids", "status", "message", "evidence", "keep_existing"))

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = self._task.args
        checks = args.get("checks")
        ids = args.get("ids")
        if (checks is None) == (ids is None):
            raise AnsibleActionFail("record_checks: give either checks or ids (with status and message)")
        if checks is None:
            if isinstance(ids, string_types):
                ids = [ids]
            status = args.get("status")
            if status not in STATUSES:
                raise AnsibleActionFail("record_checks: status must be one of %s, got %r" % (", ".join(STATUSES), status))
            evidence = args.get("evidence") or {}
            checks = dict((i, check_item(status, args.get("message") or "", evidence)) for i in ids)
        if not isinstance(checks, dict):
            raise AnsibleActionFail("record_checks: checks must be a mapping {ID: {status, message, evidence}}")
        items = {}
        for check_id, item in checks.items():
            if check_id not in BY_ID:
                raise AnsibleActionFail("record_checks: %r is not a checklist ID" % (check_id,))
            if not isinstance(item, dict) or item.get("status") not in STATUSES:
                raise AnsibleActionFail("record_checks: %s needs a status among %s" % (check_id, ", ".join(STATUSES)))
            items[check_id] = check_item(item["status"], item.get("message") or "", item.get("evidence") or {})
        keep = self._task.args.get("keep_existing", False)
        return record(result, self._task, task_vars, items, keep_existing=bool(keep) and keep not in ("false", "no"),
                      secrets=host_secrets(self._templar, task_vars))

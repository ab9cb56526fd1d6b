# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Documentation: failed_checks.yml, checks_from.yml and role_check_ids.yml beside this file.

from ansible.errors import AnsibleFilterError

from ansible_collections.hunter.ops.plugins.module_utils.checklist import ids_of_role
from ansible_collections.hunter.ops.plugins.module_utils.results import NOTICE_PREFIX


def checks_from(result, ids):
    """The `checks` of a registered module result, or every ID failed with the result's message.

    Covers the three ways a role's check task can end: it ran (its own items), it failed
    (rescue passes ansible_failed_result) or the host was unreachable (the play ignores it).
    """
    result = result if isinstance(result, dict) else {}
    checks = result.get("checks")
    if isinstance(checks, dict) and checks:
        return checks
    message = result.get("msg") or "the check task returned no result"
    if result.get("unreachable"):
        message = "host unreachable: %s" % message
    elif result.get("skipped"):
        message = "the check task was skipped: %s" % (result.get("skip_reason") or "condition false")
    notices = module_notices(result)
    if notices:
        message = "%s; %s" % (message, " ".join(notices))
    return failed_checks(ids, message)


def module_notices(result):
    """The `hunter.ops notice:` lines a module printed on stderr before it died (e.g. the restore
    drill names the scratch database it was creating): all that survives a module killed outright."""
    stderr = result.get("module_stderr") if isinstance(result, dict) else None
    if not isinstance(stderr, str):
        return []
    return [line.strip() for line in stderr.splitlines() if line.startswith(NOTICE_PREFIX)][-3:]


def failed_checks(ids, message):
    if not isinstance(ids, (list, tuple)):
        raise AnsibleFilterError("failed_checks expects a list of checklist IDs")
    text = " ".join(str(message or "task failed").split())
    return dict((str(i), {"status": "fail", "message": text, "evidence": {"error": text}}) for i in ids)


def role_check_ids(role, groups=None):
    """The checklist IDs a role owns, from the catalogue (module_utils/checklist.py), so playbooks
    and roles never keep their own copy of the list."""
    if groups is not None and not isinstance(groups, (list, tuple)):
        raise AnsibleFilterError("role_check_ids: groups must be a list of group names, e.g. group_names")
    ids = ids_of_role(str(role))
    if not ids:
        raise AnsibleFilterError("role_check_ids: no checklist ID belongs to role %r" % (role,))
    return ids_of_role(str(role), groups)


class FilterModule(object):
    def filters(self):
        return {"failed_checks": failed_checks, "checks_from": checks_from, "role_check_ids": role_check_ids}

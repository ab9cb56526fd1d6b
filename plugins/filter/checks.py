# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Documentation: failed_checks.yml and checks_from.yml beside this file.

from ansible.errors import AnsibleFilterError


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
    return failed_checks(ids, message)


def failed_checks(ids, message):
    if not isinstance(ids, (list, tuple)):
        raise AnsibleFilterError("failed_checks expects a list of checklist IDs")
    text = " ".join(str(message or "task failed").split())
    return dict((str(i), {"status": "fail", "message": text, "evidence": {"error": text}}) for i in ids)


class FilterModule(object):
    def filters(self):
        return {"failed_checks": failed_checks, "checks_from": checks_from}

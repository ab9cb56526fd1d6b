# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: failed_checks
short_description: Check items that failed because their task failed
version_added: 0.1.0
description:
  - Builds a dict of check items keyed by checklist ID, all with status V(fail) and the given
    message, for a role's C(rescue) block, so a failing module still yields an item for every ID
    the role owns.
positional: _input, message
options:
  _input:
    description: Checklist IDs.
    type: list
    elements: str
    required: true
  message:
    description: Why they failed (usually C(ansible_failed_result.msg)).
    type: str
    required: true
'''

EXAMPLES = r'''
- name: Record every health_check item as failed
  ansible.builtin.set_fact:
    hunter_ops_checks: "{{ hunter_ops_checks | default({}) | combine(['HEALTH-LIVE'] | hunter.ops.failed_checks('bad url')) }}"
'''

RETURN = r'''
_value:
  description: Check items keyed by ID, each C({status, message, evidence}).
  type: dict
'''

from ansible.errors import AnsibleFilterError


def failed_checks(ids, message):
    if not isinstance(ids, (list, tuple)):
        raise AnsibleFilterError("failed_checks expects a list of checklist IDs")
    text = " ".join(str(message or "task failed").split())
    return dict((str(i), {"status": "fail", "message": text, "evidence": {"error": text}}) for i in ids)


class FilterModule(object):
    def filters(self):
        return {"failed_checks": failed_checks}

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: record_checks
short_description: Record checklist items a role or play decides itself
description:
  - Merges items into the host fact C(hunter_ops_checks), the results the report reads, stamped with
    this run's id (C(hunter_ops_run)) so that items of an earlier run are never read as this run's.
  - The check modules record their own items through their action plugins; this one is for what a role
    or a play decides without a check module, e.g. a play that failed before its role recorded anything.
  - Runs on the controller; changes nothing anywhere.
  - With O(checks) empty it records nothing and returns RV(recorded), this run's items of the host (a
    playbook that reads the results, such as C(playbooks/backup.yml), never reads another run's).
version_added: "1.0.0"
author:
  - hunter.ops contributors (@hunter-ops)
options:
  checks:
    description:
      - Items keyed by checklist ID, each with C(status) (V(pass), V(fail), V(warn), V(skip)), C(message) and
        optional C(evidence). Mutually exclusive with O(ids).
    type: dict
  ids:
    description:
      - Checklist IDs that all get the same O(status), O(message) and O(evidence).
    type: list
    elements: str
  status:
    description: Status of every item of O(ids).
    type: str
    choices: [pass, fail, warn, skip]
  message:
    description: One-line message of every item of O(ids).
    type: str
  evidence:
    description: Evidence of every item of O(ids).
    type: dict
  keep_existing:
    description:
      - Keep items this run already recorded for the host; only IDs without an item are recorded.
    type: bool
    default: false
attributes:
  check_mode:
    description: Records in check mode too (it changes nothing anywhere).
    support: full
  action:
    description: Runs as an action plugin on the controller.
    support: full
notes:
  - Action plugin only (plugins/action/record_checks.py); this file holds its documentation.
'''

EXAMPLES = r'''
- name: Record every item the role owns and did not record as failed, with the reason
  hunter.ops.record_checks:
    ids: "{{ 'health_check' | hunter.ops.role_check_ids(group_names) }}"
    status: fail
    message: "health_check: {{ ansible_failed_result.msg | default('failed') }}"
    keep_existing: true

- name: This run's items of the host, to summarise them
  hunter.ops.record_checks:
    checks: {}
  register: this_run

- name: Record the drill as disabled by configuration
  hunter.ops.record_checks:
    ids: [RESTORE-DRYRUN, RESTORE-RTO]
    status: skip
    message: "disabled by configuration (pg_restore_dryrun_enabled: false)"
'''

RETURN = r'''
checks:
  description: The items recorded by this task.
  returned: always
  type: dict
recorded:
  description: Every item this run recorded for the host, this task's included.
  returned: always
  type: dict
ansible_facts:
  description: C(hunter_ops_checks) (every item of this run for the host) and C(hunter_ops_run).
  returned: always
  type: dict
'''

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: backup_location
short_description: Decide BACKUP-LOCATION from the local backup and its verified off-host copies
version_added: 0.1.0
description:
  - Verifies the backup in the configured local directory against its manifest (size and sha256), and collects the
    results of the off-host copies (M(hunter.ops.backup_s3_copy), M(hunter.ops.backup_verify) on a backup host).
  - V(pass) when the local backup is valid and every configured copy was verified by checksum; V(fail) when the local
    backup or any configured copy is missing or does not match; V(warn) when no off-host copy is configured (the
    runbook recommends local disk plus cloud storage), or V(fail) then with O(require_offsite).
  - A check - never changes anything (C(changed=false)); runs in check mode.
author:
  - hunter.ops contributors (@hunter-ops)
options:
  backup:
    description:
      - The local backup (file or C(.dir) directory). Empty when this run wrote no backup.
    type: path
  backup_dir:
    description:
      - The configured local backup directory; the backup must lie in it.
    type: path
    required: true
  copies:
    description:
      - One element per configured off-host copy - the registered result of the copy task (with its C(location), or
        C(failed) and C(msg)) or a C(location) dict itself. Skipped results (copy not configured) are ignored.
    type: list
    elements: dict
    default: []
  require_offsite:
    description:
      - Fail instead of warn when no off-host copy is configured.
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: BACKUP-LOCATION
  hunter.ops.backup_location:
    backup: "{{ _backup.backup }}"
    backup_dir: /var/backups/hunter
    copies:
      - "{{ _s3_copy }}"
      - "{{ _host_copy }}"
'''

RETURN = r'''
checks:
  description: The item BACKUP-LOCATION.
  returned: always
  type: dict
'''

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hunter.ops.plugins.module_utils import backup as bk
from ansible_collections.hunter.ops.plugins.module_utils.results import FAIL, PASS, WARN, check_item


def normalise(item):
    """A location record from a registered task result or a record; None for a skipped copy."""
    if not isinstance(item, dict) or item.get("skipped"):
        return None
    record = item.get("location") if isinstance(item.get("location"), dict) else None
    if record is None and "verified" in item:
        record = item
    record = dict(record or dict(kind=item.get("kind", "copy"), location=item.get("location_name", "(unknown)"),
                                 verified=False, message=""))
    if item.get("failed") or item.get("unreachable"):
        record["verified"] = False
    if not record.get("verified"):
        record["message"] = record.get("message") or item.get("msg") or "copy task failed"
    record.setdefault("message", "")
    record.setdefault("evidence", {})
    return record


def main():
    module = AnsibleModule(argument_spec=dict(
        backup=dict(type="path"),
        backup_dir=dict(type="path", required=True),
        copies=dict(type="list", elements="dict", default=[]),
        require_offsite=dict(type="bool", default=False),
    ), supports_check_mode=True)
    p = module.params
    began = time.monotonic()
    directory = os.path.abspath(p["backup_dir"])
    local = dict(kind="local", location=directory, verified=False)
    problems = []
    if not p["backup"]:
        problems.append("no local backup from this run")
    else:
        path = os.path.abspath(bk.backup_path_of(p["backup"]))
        local["location"] = path
        if os.path.dirname(path) != directory:
            problems.append("%s is not in the configured directory %s" % (path, directory))
        found = bk.verify_backup(path)
        if found:
            problems.append("local backup: %s" % "; ".join(found))
        else:
            manifest = bk.load_manifest(path)
            local.update(verified=True, size_bytes=manifest["size_bytes"], sha256=manifest["sha256"])
    copies = [c for c in (normalise(i) for i in p["copies"]) if c is not None]
    for copy in copies:
        if not copy.get("verified"):
            problems.append("%s copy %s: %s" % (copy.get("kind"), copy.get("location"),
                                                copy.get("message") or "not verified"))
    evidence = dict(local=local, copies=[dict(kind=c.get("kind"), location=c.get("location"),
                                              verified=bool(c.get("verified")), message=c.get("message"),
                                              **dict((k, v) for k, v in c.get("evidence", {}).items()
                                                     if k in ("sha256", "size_bytes", "seconds", "verified_by",
                                                              "objects", "multipart_objects", "error")))
                                         for c in copies])
    duration = (time.monotonic() - began) * 1000
    where = ", ".join([local["location"]] + [c.get("location") for c in copies])
    if problems:
        item = check_item(FAIL, "; ".join(problems), evidence, duration_ms=duration)
    elif not copies:
        status = FAIL if p["require_offsite"] else WARN
        item = check_item(status, "only the local copy %s is verified; no off-host copy (backup host or object "
                                  "storage) is configured" % local["location"], evidence, duration_ms=duration)
    else:
        item = check_item(PASS, "verified by checksum in %d places: %s" % (1 + len(copies), where), evidence,
                          duration_ms=duration)
    module.exit_json(changed=False, checks={"BACKUP-LOCATION": item}, msg=item["message"])


if __name__ == "__main__":
    main()

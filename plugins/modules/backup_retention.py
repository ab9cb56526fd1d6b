#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: backup_retention
short_description: Prune old backups by age and/or count, locally and in an S3 prefix (BACKUP-RETENTION)
version_added: 0.1.0
description:
  - Considers the backups (C(backup_<label>_<timestamp>.<ext>) with their manifests) in O(backup_dir) and, with
    O(s3_bucket), under O(s3_prefix).
  - A backup is kept when any rule keeps it - younger than O(keep_days), or among the O(keep_count) newest. The newest
    valid backup (its manifest present, size and sha256 matching) is never deleted, whatever the rules say.
  - Deletes a backup together with its manifest. Backups of other databases (by manifest) are left alone.
  - Check mode lists what would be deleted and deletes nothing.
author:
  - hunter.ops contributors (@hunter-ops)
extends_documentation_fragment:
  - hunter.ops.s3
options:
  backup_dir:
    description:
      - The local backup directory.
    type: path
    required: true
  database:
    description:
      - Only backups of this database (the manifest's C(database)).
    type: str
  label:
    description:
      - Only backups with this label. Default every label.
    type: str
  keep_days:
    description:
      - Keep backups younger than this many days; V(0) turns the age rule off.
    type: float
    default: 7
  keep_count:
    description:
      - Keep the newest this many backups; V(0) turns the count rule off.
    type: int
    default: 0
'''

EXAMPLES = r'''
- name: Keep a week locally and in the bucket, and never fewer than 3
  hunter.ops.backup_retention:
    backup_dir: /var/backups/hunter
    database: hunter
    keep_days: 7
    keep_count: 3
    s3_bucket: hunter-backups
    s3_prefix: prod/
'''

RETURN = r'''
deleted:
  description: Deleted (in check mode - would be deleted) backups, as C(local:<name>) and C(s3://bucket/prefix/name).
  returned: always
  type: list
  elements: str
kept:
  description: Kept backups with the rule that kept each.
  returned: always
  type: list
  elements: dict
checks:
  description: The item BACKUP-RETENTION.
  returned: always
  type: dict
'''

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hunter.ops.plugins.module_utils import backup as bk
from ansible_collections.hunter.ops.plugins.module_utils import secret
from ansible_collections.hunter.ops.plugins.module_utils.redact import redact_text
from ansible_collections.hunter.ops.plugins.module_utils.results import FAIL, PASS, WARN, check_item
from ansible_collections.hunter.ops.plugins.module_utils.validate import ParameterError


def local_side(params, now, check_mode):
    items = bk.list_backups(params["backup_dir"], database=params["database"], label=params["label"])
    newest = None
    for item in items:
        if item["manifest"] is not None and not bk.verify_backup(item["path"], item["manifest"]):
            newest = item["name"]
            break
    keep, delete = bk.retention_plan(items, now, params["keep_days"], params["keep_count"],
                                     protect=[newest] if newest else [])
    deleted = []
    for item in delete:
        if not check_mode:
            bk.remove_path(bk.manifest_path(item["path"]))  # manifest first: a half-deleted backup is invalid
            bk.remove_path(item["path"])
        deleted.append(item)
    return dict(newest_valid=newest, keep=keep, delete=deleted, total=len(items))


def s3_side(params, now, check_mode):
    from ansible_collections.hunter.ops.plugins.module_utils.backup_s3 import (
        delete_stored_backup, s3_client_from_params, stored_backup_problems, stored_backups)
    s3, bucket, prefix = s3_client_from_params(params)
    items = stored_backups(s3, bucket, prefix, database=params["database"])
    if params["label"]:
        items = [i for i in items if bk.parse_backup_name(i["name"])["label"] == params["label"]]
    newest = None
    for item in items:
        if not stored_backup_problems(s3, bucket, item):
            newest = item["name"]
            break
    keep, delete = bk.retention_plan(items, now, params["keep_days"], params["keep_count"],
                                     protect=[newest] if newest else [])
    for item in delete:
        if not check_mode:
            delete_stored_backup(s3, bucket, item)
    return dict(newest_valid=newest, keep=keep, delete=delete, total=len(items), where="s3://%s/%s" % (bucket, prefix))


def main():
    from ansible_collections.hunter.ops.plugins.module_utils.backup_s3 import s3_argument_spec
    spec = s3_argument_spec()
    spec.update(
        backup_dir=dict(type="path", required=True),
        database=dict(type="str"),
        label=dict(type="str"),
        keep_days=dict(type="float", default=7),
        keep_count=dict(type="int", default=0),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    secrets = secret.protect(module)
    began = time.monotonic()
    try:
        if p["keep_days"] is None or p["keep_days"] < 0:
            raise ParameterError("keep_days", "must be 0 (off) or more days, got %r" % (p["keep_days"],))
        if p["keep_count"] is None or p["keep_count"] < 0:
            raise ParameterError("keep_count", "must be 0 (off) or more, got %r" % (p["keep_count"],))
        if not os.path.isdir(p["backup_dir"]):
            raise ParameterError("backup_dir", "directory %s does not exist" % p["backup_dir"])
    except ParameterError as err:
        module.fail_json(msg=str(err), checks={"BACKUP-RETENTION": check_item(FAIL, str(err))})
    now = time.time()
    policy = dict(keep_days=p["keep_days"], keep_count=p["keep_count"], database=p["database"], label=p["label"])
    problems, deleted, kept, sides = [], [], [], {}

    def summary(side, prefix):
        for item in side["delete"]:
            deleted.append(prefix + item["name"])
        for item in side["keep"]:
            kept.append(dict(backup=prefix + item["name"], reason=item["reason"]))
        return dict(total=side["total"], newest_valid=side["newest_valid"],
                    deleted=["%s (%s)" % (i["name"], i["reason"]) for i in side["delete"]],
                    kept=len(side["keep"]))

    try:
        sides["local"] = summary(local_side(p, now, module.check_mode), "local:")
    except OSError as err:
        problems.append("local: %s (%s)" % (err.strerror, err.filename))
    if p["s3_bucket"]:
        try:
            side = s3_side(p, now, module.check_mode)
            sides["s3"] = summary(side, side["where"])
        except Exception as err:  # pylint: disable=broad-except
            # ParameterError and S3Error both carry a one-line message
            problems.append("s3: %s" % redact_text(" ".join(str(err).split()), secrets))
    evidence = dict(policy=policy, **sides)
    verb = "would delete" if module.check_mode else "deleted"
    duration = (time.monotonic() - began) * 1000
    if problems:
        item = check_item(FAIL, "; ".join(problems), evidence, duration_ms=duration)
    elif not p["keep_days"] and not p["keep_count"]:
        item = check_item(WARN, "no retention rule set (keep_days and keep_count are 0): nothing is ever pruned",
                          evidence, duration_ms=duration)
    elif not any(s["newest_valid"] for s in sides.values()):
        item = check_item(WARN, "no valid backup found to protect; %s %d" % (verb, len(deleted)), evidence,
                          duration_ms=duration)
    else:
        rules = " or ".join(r for r in ("younger than %s days" % p["keep_days"] if p["keep_days"] else "",
                                        "the %d newest" % p["keep_count"] if p["keep_count"] else "") if r)
        item = check_item(PASS, "%s%s %d backup(s), kept %d (%s; the newest valid never deleted)"
                          % ("check mode: " if module.check_mode else "", verb, len(deleted), len(kept), rules),
                          evidence, duration_ms=duration)
    result = dict(changed=bool(deleted), deleted=deleted, kept=kept, checks={"BACKUP-RETENTION": item},
                  msg=item["message"])
    if problems:
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

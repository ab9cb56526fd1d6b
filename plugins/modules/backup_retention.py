#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: backup_retention
short_description: Prune old backups by age and by count per label, locally, on a backup host and in S3 (BACKUP-RETENTION)
version_added: 0.1.0
description:
  - Considers the backups (C(backup_<label>_<timestamp>.<ext>) with their manifests) in O(backup_dir) and, with
    O(s3_bucket), under O(s3_prefix). Run it on the backup host too (with O(location_name)) and pass that result in
    O(other_locations) of the run on the db host, so that one item covers every place.
  - Two limits, each applied per place - older than O(keep_days), or beyond the newest N of its label (N from
    O(keep_count_by_label), else O(keep_count)). Both are limits, so repeated runs with one label (a preflight
    before each deploy) keep a bounded number of backups whatever their age.
  - The newest valid backup of each place (its manifest present, size and sha256 matching) is never deleted,
    whatever the limits say; when a place holds no valid backup, nothing is deleted there.
  - Holds the backup lock of the database (the one M(hunter.ops.pg_backup) takes, in O(backup_dir)) while it
    prunes, so it never races a backup being written; after O(lock_timeout) seconds it gives up with a warning.
  - Deletes a backup together with its manifest (the manifest first). Backups of other databases (by manifest)
    are left alone.
  - A bucket that cannot be reached (or a backup host that is unreachable) makes the item V(warn) for that
    place, not a failure; the local directory is pruned all the same.
  - Check mode lists what would be deleted and deletes nothing (and takes no lock).
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
      - Only backups of this database (the manifest's C(database)). Without it, every database's backups, each
        under its own lock.
    type: str
  label:
    description:
      - Only backups with this label. Default every label.
    type: str
  keep_days:
    description:
      - Delete backups older than this many days; V(0) turns the age limit off.
    type: float
    default: 7
  keep_count:
    description:
      - Keep at most the newest this many backups of each label that O(keep_count_by_label) does not name;
        V(0) turns the count limit off for them.
    type: int
    default: 0
  keep_count_by_label:
    description:
      - Count limits by label pattern (C(fnmatch), e.g. C(pre_*)), checked in order; the first that matches a
        label applies to it, V(0) meaning no count limit.
    type: dict
    default: {}
  lock_timeout:
    description:
      - Seconds to wait for the backup lock of the database.
    type: float
    default: 60
  location_name:
    description:
      - How this directory is named in the result, e.g. C(backup01:/srv/backups) on a backup host. Default C(local).
    type: str
  other_locations:
    description:
      - Registered results of this module run on other hosts (the backup host), included in this run's item.
    type: list
    elements: dict
    default: []
'''

EXAMPLES = r'''
- name: Prune on the backup host
  hunter.ops.backup_retention:
    backup_dir: /srv/backups/hunter
    database: hunter
    location_name: "backup01:/srv/backups/hunter"
    keep_count_by_label: {"pre_*": 3}
  delegate_to: backup01
  register: _remote_retention

- name: Prune locally and in the bucket; one item for the three places
  hunter.ops.backup_retention:
    backup_dir: /var/backups/hunter
    database: hunter
    keep_days: 7
    keep_count_by_label: {"pre_*": 3, "manual": 3}
    s3_bucket: hunter-backups
    s3_prefix: prod/
    other_locations: ["{{ _remote_retention }}"]
'''

RETURN = r'''
deleted:
  description:
    - Deleted (in check mode - would be deleted) backups, as C(local:<name>), C(<location_name>/<name>) and
      C(s3://bucket/prefix/name), those of O(other_locations) included.
  returned: always
  type: list
  elements: str
kept:
  description: Kept backups of this run's places with the rule that kept each.
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
from contextlib import contextmanager

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hunter.ops.plugins.module_utils import backup as bk
from ansible_collections.hunter.ops.plugins.module_utils import secret
from ansible_collections.hunter.ops.plugins.module_utils.redact import redact_text
from ansible_collections.hunter.ops.plugins.module_utils.results import FAIL, PASS, SKIP, WARN, check_item
from ansible_collections.hunter.ops.plugins.module_utils.validate import ParameterError

RETENTION = "BACKUP-RETENTION"
NO_VALID = "no valid backup here: nothing is deleted"


def plan(items, now, params, problems_of):
    """dict(newest_valid, keep, delete, total) for one place; nothing is deleted without a valid backup."""
    newest = None
    for item in items:
        if not problems_of(item):
            newest = item["name"]
            break
    if newest is None:
        return dict(newest_valid=None, keep=[dict(i, reason=NO_VALID) for i in items], delete=[], total=len(items))
    keep, delete = bk.retention_plan(items, now, params["keep_days"], params["keep_count"], protect=[newest],
                                     count_by_label=params["keep_count_by_label"])
    return dict(newest_valid=newest, keep=keep, delete=delete, total=len(items))


def local_problems(item):
    if item["manifest"] is None:
        return [item["manifest_error"] or "no manifest"]
    return bk.verify_backup(item["path"], item["manifest"])


def local_side(params, now, check_mode):
    items = bk.list_backups(params["backup_dir"], database=params["database"], label=params["label"])
    side = plan(items, now, params, local_problems)
    for item in side["delete"]:
        if not check_mode:
            bk.remove_path(bk.manifest_path(item["path"]))  # manifest first: a half-deleted backup is invalid
            bk.remove_path(item["path"])
    return side


def s3_side(params, now, check_mode):
    from ansible_collections.hunter.ops.plugins.module_utils.backup_s3 import (
        delete_stored_backup, s3_client_from_params, stored_backup_problems, stored_backups)
    s3, bucket, prefix = s3_client_from_params(params)
    items = stored_backups(s3, bucket, prefix, database=params["database"])
    for item in items:
        item["label"] = bk.parse_backup_name(item["name"])["label"]
    if params["label"]:
        items = [i for i in items if i["label"] == params["label"]]
    side = plan(items, now, params, lambda item: stored_backup_problems(s3, bucket, item))
    for item in side["delete"]:
        if not check_mode:
            delete_stored_backup(s3, bucket, item)
    side["where"] = "s3://%s/%s" % (bucket, prefix)
    return side


@contextmanager
def backup_locks(params, check_mode):
    """The backup lock of each database pruned here, taken in name order (two runs never wait crosswise)."""
    if check_mode:
        yield []
        return
    if params["database"]:
        databases = [params["database"]]
    else:
        databases = sorted(set(i["manifest"].get("database") for i in bk.list_backups(params["backup_dir"])
                               if i["manifest"] is not None and i["manifest"].get("database")))
    held = []
    try:
        for database in databases:
            held.append(bk.BackupLock(bk.lock_path(params["backup_dir"], database), params["lock_timeout"]).acquire())
        yield held
    finally:
        for lock in reversed(held):
            lock.release()


def other_location(result):
    """A registered result of this module on another host, as one place's summary (None when skipped)."""
    result = result if isinstance(result, dict) else {}
    if result.get("skipped"):
        return None
    checks = result.get("checks") if isinstance(result.get("checks"), dict) else {}
    item = checks.get(RETENTION) if isinstance(checks.get(RETENTION), dict) else {}
    place = (item.get("evidence") or {}).get("local") or {}
    summary = dict(location=place.get("location") or "(another host)", status=item.get("status") or FAIL,
                   message=item.get("message") or " ".join(str(result.get("msg") or "no result").split()),
                   total=place.get("total"), newest_valid=place.get("newest_valid"),
                   deleted=[d for d in result.get("deleted") or [] if isinstance(d, str)], kept=place.get("kept"))
    if result.get("unreachable"):
        summary["status"] = WARN   # the copies there are not lost; the next run prunes them
    return summary


def validate(p):
    """Checks the arguments (ParameterError names the first bad one); keep_count_by_label becomes [(pattern, N)]."""
    if p["keep_days"] is None or p["keep_days"] < 0:
        raise ParameterError("keep_days", "must be 0 (off) or more days, got %r" % (p["keep_days"],))
    if p["keep_count"] is None or p["keep_count"] < 0:
        raise ParameterError("keep_count", "must be 0 (off) or more, got %r" % (p["keep_count"],))
    limits = []
    for pattern, limit in (p["keep_count_by_label"] or {}).items():
        try:
            number = int(limit)
        except (TypeError, ValueError):
            number = -1
        if number < 0 or str(number) != str(limit).strip():
            raise ParameterError("keep_count_by_label", "%s: expected 0 (no limit) or a positive number, got %r"
                                 % (pattern, limit))
        limits.append((str(pattern), number))
    p["keep_count_by_label"] = limits
    if p["lock_timeout"] is None or p["lock_timeout"] < 0:
        raise ParameterError("lock_timeout", "must be 0 or more seconds, got %r" % (p["lock_timeout"],))
    if not os.path.isabs(p["backup_dir"]):
        raise ParameterError("backup_dir", "%s must be an absolute path" % p["backup_dir"])
    if not os.path.isdir(p["backup_dir"]):
        raise ParameterError("backup_dir", "directory %s does not exist" % p["backup_dir"])


def main():
    from ansible_collections.hunter.ops.plugins.module_utils.backup_s3 import s3_argument_spec
    spec = s3_argument_spec()
    spec.update(
        backup_dir=dict(type="path", required=True),
        database=dict(type="str"),
        label=dict(type="str"),
        keep_days=dict(type="float", default=7),
        keep_count=dict(type="int", default=0),
        keep_count_by_label=dict(type="dict", default={}),
        lock_timeout=dict(type="float", default=60),
        location_name=dict(type="str"),
        other_locations=dict(type="list", elements="dict", default=[]),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    secrets = secret.protect(module)
    began = time.monotonic()
    try:
        validate(p)
    except ParameterError as err:
        module.fail_json(msg=str(err), checks={RETENTION: check_item(FAIL, str(err))})
    now = time.time()
    location = p["location_name"] or "local %s" % p["backup_dir"]
    prefix = "local:" if not p["location_name"] else p["location_name"].rstrip("/") + "/"
    policy = dict(keep_days=p["keep_days"], keep_count=p["keep_count"],
                  keep_count_by_label=dict(p["keep_count_by_label"]), database=p["database"], label=p["label"])
    failures, warnings, deleted, kept, sides = [], [], [], [], {}

    def summary(side, prefix, where):
        for item in side["delete"]:
            deleted.append(prefix + item["name"])
        for item in side["keep"]:
            kept.append(dict(backup=prefix + item["name"], reason=item["reason"]))
        return dict(location=where, total=side["total"], newest_valid=side["newest_valid"],
                    deleted=["%s (%s)" % (i["name"], i["reason"]) for i in side["delete"]], kept=len(side["keep"]))

    try:
        with backup_locks(p, module.check_mode):
            try:
                sides["local"] = summary(local_side(p, now, module.check_mode), prefix, location)
            except OSError as err:
                failures.append("%s: %s (%s)" % (location, err.strerror, err.filename))
            if p["s3_bucket"]:
                try:
                    side = s3_side(p, now, module.check_mode)
                    sides["s3"] = summary(side, side["where"], side["where"])
                except Exception as err:  # pylint: disable=broad-except
                    # ParameterError and S3Error carry a one-line message. An unreachable bucket loses no
                    # backup and the next run prunes it: a warning, not a failed retention.
                    warnings.append("bucket not pruned: %s" % redact_text(" ".join(str(err).split()), secrets))
    except bk.LockTimeout as err:
        warnings.append("not applied in %s: %s" % (location, err))
    others = [o for o in (other_location(r) for r in p["other_locations"]) if o is not None]
    for other in others:
        deleted.extend(other["deleted"])
        if other["status"] == FAIL:
            failures.append("%s: %s" % (other["location"], other["message"]))
        elif other["status"] in (WARN, SKIP):
            warnings.append("%s: %s" % (other["location"], other["message"]))
    evidence = dict(policy=policy, **sides)
    if others:
        evidence["other_locations"] = others
    places = list(sides.values()) + [o for o in others if o["total"] is not None]
    no_valid = [s["location"] for s in places if s.get("total") and not s.get("newest_valid")]
    limits = [r for r in ("older than %s days" % p["keep_days"] if p["keep_days"] else "",
                          "beyond the %d newest of a label" % p["keep_count"] if p["keep_count"] else "",
                          " or ".join("beyond the %d newest of %s" % (n, pattern)
                                      for pattern, n in p["keep_count_by_label"] if n)) if r]
    done = "%s%s %d backup(s) in %d place(s), kept %d (deleted when %s; the newest valid backup of each place " \
           "is never deleted)" % ("check mode: " if module.check_mode else "",
                                  "would delete" if module.check_mode else "deleted", len(deleted), len(places),
                                  len(kept) + sum(o["kept"] or 0 for o in others), " or ".join(limits))
    duration = (time.monotonic() - began) * 1000
    if failures:
        item = check_item(FAIL, "; ".join(failures + warnings), evidence, duration_ms=duration)
    elif not limits:
        item = check_item(WARN, "no retention limit set (keep_days, keep_count and keep_count_by_label are 0): "
                                "nothing is ever pruned", evidence, duration_ms=duration)
    elif warnings or no_valid:
        notes = warnings + (["no valid backup in %s: nothing deleted there" % ", ".join(no_valid)] if no_valid else [])
        item = check_item(WARN, "%s; %s" % (done, "; ".join(notes)), evidence, duration_ms=duration)
    else:
        item = check_item(PASS, done, evidence, duration_ms=duration)
    result = dict(changed=bool(deleted), deleted=deleted, kept=kept,
                  checks={RETENTION: item}, msg=item["message"])
    if failures:
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

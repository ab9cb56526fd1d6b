#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: backup_verify
short_description: Verify a backup copy against its manifest (for BACKUP-LOCATION)
version_added: 0.1.0
description:
  - Checks that a backup on this host exists, is not empty, and that its size and sha256 match the manifest
    beside it (and, when given, the sha256 of the original).
  - Run it on a backup host after a copy; its result C(location) feeds M(hunter.ops.backup_location).
  - Never changes anything (C(changed=false)); runs in check mode.
author:
  - hunter.ops contributors (@hunter-ops)
options:
  backup:
    description:
      - Path of the backup copy (file or C(.dir) directory) or of its manifest.
    type: path
    required: true
  expected_sha256:
    description:
      - The sha256 of the original backup; the copy's manifest and content must both match it.
    type: str
  location_name:
    description:
      - How the copy is named in the report, e.g. C(backup01:/srv/backups). Default the path.
    type: str
'''

EXAMPLES = r'''
- name: Verify the copy on the backup host
  hunter.ops.backup_verify:
    backup: /srv/backups/hunter/backup_pre_v1.0_20261128_020000.dir
    expected_sha256: "{{ _backup.manifest.sha256 }}"
    location_name: "backup01:/srv/backups/hunter"
  delegate_to: backup01
'''

RETURN = r'''
location:
  description: C(kind) (host), C(location), C(verified), C(message) and C(evidence) (path, size_bytes, sha256, seconds).
  returned: always
  type: dict
'''

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hunter.ops.plugins.module_utils import backup as bk


def main():
    module = AnsibleModule(argument_spec=dict(
        backup=dict(type="path", required=True),
        expected_sha256=dict(type="str"),
        location_name=dict(type="str"),
    ), supports_check_mode=True)
    p = module.params
    path = bk.backup_path_of(p["backup"])
    began = time.monotonic()
    location = dict(kind="host", location=p["location_name"] or path, verified=False, message="",
                    evidence=dict(path=path))
    problems = []
    manifest = None
    try:
        manifest = bk.load_manifest(path)
    except bk.ManifestError as err:
        problems.append(str(err))
    if manifest is not None:
        problems += bk.verify_backup(path, manifest)
        if p["expected_sha256"] and manifest.get("sha256") != p["expected_sha256"]:
            problems.append("manifest sha256 %s differs from the original's %s"
                            % (manifest.get("sha256"), p["expected_sha256"]))
        if os.path.exists(path):
            location["evidence"].update(size_bytes=bk.backup_size(path), sha256=manifest.get("sha256"))
    location["evidence"]["seconds"] = round(time.monotonic() - began, 3)
    if problems:
        location["message"] = "%s: %s" % (location["location"], "; ".join(problems))
        location["evidence"]["problems"] = problems
    else:
        location.update(verified=True, message="%s matches its manifest (sha256 %s...)"
                        % (location["location"], manifest["sha256"][:12]))
    module.exit_json(changed=False, location=location, msg=location["message"])


if __name__ == "__main__":
    main()

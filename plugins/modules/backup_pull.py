#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: backup_pull
short_description: Pull a backup from the db host onto this backup host with rsync, verified by checksum before it is kept
version_added: 0.2.0
description:
  - Runs on the backup host and copies a backup written by M(hunter.ops.pg_backup) (a file, or a C(.dir) directory)
    and its manifest from O(source_host) straight into O(dest_dir) with C(rsync) over SSH. The controller is not
    in the path - no byte of the backup passes through it.
  - The copy lands in a hidden C(.incoming-<database>-*) directory inside O(dest_dir), is checked there against
    its manifest and the original's sha256 (O(expected_sha256)) - size and sha256 of every byte, as
    M(hunter.ops.backup_verify) does - and only then renamed into place, the backup first and its manifest last.
    A copy that does not match is deleted; a transfer that fails or times out leaves nothing under a backup name.
  - Holds the backup lock of O(database) in O(dest_dir) (the one M(hunter.ops.backup_retention) takes there), and
    removes incoming directories of that database left by a killed earlier run.
  - The SSH trust this needs (the backup host's key on the db host, ideally restricted to read-only rsync of the
    backup directory) is described in roles/pg_backup/README.md.
  - Its result C(location) feeds M(hunter.ops.backup_location) (BACKUP-LOCATION). C(changed=true) when it copied;
    check mode copies nothing.
author:
  - hunter.ops contributors (@hunter-ops)
options:
  source:
    description:
      - Absolute path of the backup (or of its manifest) on the source host.
    type: str
    required: true
  source_host:
    description:
      - SSH destination of the db host as this host reaches it, C([user@]host). Empty - the source is on this
        machine (rsync copies locally).
    type: str
    default: ''
  database:
    description:
      - The backup's database (whose backup lock is held while copying).
    type: str
    required: true
  dest_dir:
    description:
      - Backup directory on this host (created C(0700) when missing; files C(0600)).
    type: path
    required: true
  expected_sha256:
    description:
      - The sha256 of the original (its manifest's); the copy's manifest and content must both match it.
    type: str
    required: true
  ssh_command:
    description:
      - The SSH client and its options, one list element per argument, given to rsync's C(-e). The default never
        prompts (C(BatchMode)) and gives up connecting after 10 s.
    type: list
    elements: str
    default: [ssh, -o, BatchMode=yes, -o, ConnectTimeout=10]
  ssh_port:
    description:
      - SSH port of the source host; default the SSH client's.
    type: int
  rsync_path:
    description:
      - The rsync to run on the source host (C(--rsync-path)), e.g. C(sudo rsync) or C(rrsync -ro /var/backups); default
        C(rsync).
    type: str
  io_timeout:
    description:
      - Seconds rsync waits for data before it gives up (C(--timeout)).
    type: int
    default: 120
  timeout:
    description:
      - Seconds the whole copy may take.
    type: int
    default: 3600
  lock_timeout:
    description:
      - Seconds to wait for the backup lock of O(database) in O(dest_dir).
    type: float
    default: 60
  location_name:
    description:
      - How the copy is named in the report, e.g. C(backup01:/srv/backups). Default O(dest_dir).
    type: str
requirements:
  - rsync on both hosts; an SSH client on this host unless O(source_host) is empty
'''

EXAMPLES = r'''
- name: The backup host pulls the new backup from the db host
  hunter.ops.backup_pull:
    source: "{{ _backup.backup }}"
    source_host: postgres@db01.internal
    database: hunter
    dest_dir: /srv/backups/hunter
    expected_sha256: "{{ _backup.manifest.sha256 }}"
    location_name: "backup01:/srv/backups/hunter"
  delegate_to: backup01
'''

RETURN = r'''
location:
  description:
    - The copy, for M(hunter.ops.backup_location) - C(kind) (host), C(location), C(verified), C(message) and
      C(evidence) (path, size_bytes, sha256, transport, seconds, source).
  returned: always
  type: dict
path:
  description: The verified copy on this host.
  returned: when verified
  type: str
'''

import glob
import os
import shlex
import subprocess
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hunter.ops.plugins.module_utils import backup as bk
from ansible_collections.hunter.ops.plugins.module_utils.results import trim

INCOMING = ".incoming-"


def copy_problems(path, expected_sha256):
    """What is wrong with a copy against its manifest and the original's sha256 ([] = intact)."""
    try:
        manifest = bk.load_manifest(path)
    except bk.ManifestError as err:
        return [str(err)], None
    problems = bk.verify_backup(path, manifest)
    if manifest.get("sha256") != expected_sha256:
        problems.append("manifest sha256 %s differs from the original's %s" % (manifest.get("sha256"), expected_sha256))
    return problems, manifest


def rsync_argv(rsync, p, source, incoming):
    argv = [rsync, "--recursive", "--times", "--chmod=D0700,F0600", "--protect-args", "--timeout=%d" % p["io_timeout"]]
    spec = source
    if p["source_host"]:
        ssh = list(p["ssh_command"]) + (["-p", str(p["ssh_port"])] if p["ssh_port"] else [])
        argv += ["-e", " ".join(shlex.quote(a) for a in ssh)]
        if p["rsync_path"]:
            argv += ["--rsync-path", p["rsync_path"]]
        spec = "%s:%s" % (p["source_host"], source)
    manifest = bk.manifest_path(source)
    second = (":" + manifest) if p["source_host"] else manifest
    return argv + ["--", spec, second, incoming + "/"]


def publish(incoming_path, dest_path):
    """Move a verified copy into place: whatever stands under its name goes first, the manifest comes last."""
    bk.remove_path(bk.manifest_path(dest_path))
    bk.remove_path(dest_path)
    os.rename(incoming_path, dest_path)
    os.rename(bk.manifest_path(incoming_path), bk.manifest_path(dest_path))
    bk.fsync_dir(os.path.dirname(dest_path))


def main():
    module = AnsibleModule(argument_spec=dict(
        source=dict(type="str", required=True),
        source_host=dict(type="str", default=""),
        database=dict(type="str", required=True),
        dest_dir=dict(type="path", required=True),
        expected_sha256=dict(type="str", required=True),
        ssh_command=dict(type="list", elements="str", default=["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]),
        ssh_port=dict(type="int"),
        rsync_path=dict(type="str"),
        io_timeout=dict(type="int", default=120),
        timeout=dict(type="int", default=3600),
        lock_timeout=dict(type="float", default=60),
        location_name=dict(type="str"),
    ), supports_check_mode=True)
    p = module.params
    source = bk.backup_path_of(p["source"])
    name = os.path.basename(source)
    dest_dir = p["dest_dir"]
    where = p["location_name"] or dest_dir
    origin = "%s:%s" % (p["source_host"], source) if p["source_host"] else source
    location = dict(kind="host", location=where, verified=False, message="",
                    evidence=dict(source=origin, path=os.path.join(dest_dir, name),
                                  transport="rsync over ssh" if p["source_host"] else "rsync (same machine)"))

    def fail(msg, **extra):
        location.update(message="%s: %s" % (where, msg))
        location["evidence"].update(extra, error=msg)
        module.fail_json(msg=location["message"], location=location, changed=False)

    if not os.path.isabs(source) or bk.parse_backup_name(name) is None:
        fail("source: %r is not the absolute path of a backup (backup_<label>_<YYYYmmdd_HHMMSS>.<ext>)" % p["source"])
    if not os.path.isabs(dest_dir):
        fail("dest_dir: %s must be an absolute path" % dest_dir)
    for option in ("io_timeout", "timeout"):
        if p[option] < 1:
            fail("%s: must be at least 1 second, got %d" % (option, p[option]))
    rsync = module.get_bin_path("rsync")
    if not rsync:
        fail("rsync is not installed on this host")
    if module.check_mode:
        location.update(message="check mode: would pull %s into %s" % (origin, where))
        module.exit_json(changed=True, location=location, msg=location["message"])
    try:
        if not os.path.isdir(dest_dir):
            os.makedirs(dest_dir, 0o700)
        lock = bk.BackupLock(bk.lock_path(dest_dir, p["database"]), p["lock_timeout"]).acquire()
    except (OSError, bk.LockTimeout) as err:
        fail(str(err) if isinstance(err, bk.LockTimeout) else "%s (%s)" % (err.strerror, err.filename))
    began = time.monotonic()
    incoming = None
    try:
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in p["database"])
        for stale in glob.glob(os.path.join(dest_dir, INCOMING + safe + "-*")):
            bk.remove_path(stale)  # a killed earlier pull of this database (we hold its lock)
        dest_path = os.path.join(dest_dir, name)
        if not copy_problems(dest_path, p["expected_sha256"])[0]:
            location.update(verified=True, message="%s already holds %s, sha256 verified on this host" % (where, name))
            location["evidence"].update(size_bytes=bk.backup_size(dest_path), sha256=p["expected_sha256"],
                                        seconds=round(time.monotonic() - began, 3), copied=False)
            module.exit_json(changed=False, path=dest_path, location=location, msg=location["message"])
        incoming = tempfile.mkdtemp(prefix=INCOMING + safe + "-", dir=dest_dir)
        argv = rsync_argv(rsync, p, source, incoming)
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=p["timeout"], check=False)
        except subprocess.TimeoutExpired:
            fail("the copy from %s did not finish within %d s (timeout)" % (origin, p["timeout"]))
        output = trim(" ".join(proc.stdout.decode("utf-8", "replace").split()), 600)
        if proc.returncode != 0:
            fail("rsync from %s failed (exit %d): %s" % (origin, proc.returncode, output), rsync_exit=proc.returncode)
        copied = os.path.join(incoming, name)
        problems, manifest = copy_problems(copied, p["expected_sha256"])
        if problems:
            fail("the copy does not match the original, not kept: %s" % "; ".join(problems), problems=problems)
        publish(copied, dest_path)
        seconds = round(time.monotonic() - began, 3)
        location.update(verified=True, message="%s pulled from %s by rsync in %.1f s; size and sha256 %s... verified "
                                               "on this host before it was kept" % (name, origin, seconds,
                                                                                    manifest["sha256"][:12]))
        location["evidence"].update(size_bytes=manifest["size_bytes"], sha256=manifest["sha256"], seconds=seconds,
                                    copied=True)
        module.exit_json(changed=True, path=dest_path, location=location, msg=location["message"])
    except OSError as err:
        fail("%s (%s)" % (err.strerror, err.filename))
    finally:
        if incoming and os.path.lexists(incoming):
            bk.remove_path(incoming)
        lock.release()


if __name__ == "__main__":
    main()

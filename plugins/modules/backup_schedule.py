#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: backup_schedule
short_description: Check that the scheduled backup job exists and its command is runnable (BACKUP-SCHEDULE)
version_added: 0.1.0
description:
  - Finds the cron entry named O(name) (the C(#Ansible - <name>) marker that M(ansible.builtin.cron) writes) in the
    crontab of O(user) or in O(cron_file), and checks its command - the executable exists and is executable, and
    when it is the wrapper the role installs, C(<wrapper> --check) succeeds (it checks the runner, the project, the
    playbook, the inventory and the log directory without running a backup).
  - V(pass) when the entry exists and is runnable; V(fail) when O(expected) and it is missing or not runnable;
    V(warn) when no schedule is configured, or when no cron daemon runs on this host.
  - A check - never changes anything (C(changed=false)); runs in check mode.
author:
  - hunter.ops contributors (@hunter-ops)
options:
  name:
    description:
      - Name of the cron entry.
    type: str
    required: true
  user:
    description:
      - Whose crontab (C(crontab -l -u <user>)); default the current user. Ignored with O(cron_file).
    type: str
  cron_file:
    description:
      - A crontab file in system format (with a user field), e.g. C(/etc/cron.d/hunter-backup), instead of a user's crontab.
    type: path
  expected:
    description:
      - Whether a schedule is configured. V(false) turns a missing entry into V(warn).
    type: bool
    default: true
  timeout:
    description:
      - Seconds the C(--check) run of the wrapper may take.
    type: int
    default: 60
'''

EXAMPLES = r'''
- name: BACKUP-SCHEDULE
  hunter.ops.backup_schedule:
    name: hunter.ops pg_backup hunter-prod-db-1
'''

RETURN = r'''
entry:
  description: The cron entry found - C(schedule), C(command), C(user) - or null.
  returned: always
  type: dict
checks:
  description: The item BACKUP-SCHEDULE.
  returned: always
  type: dict
'''

import os
import shlex
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hunter.ops.plugins.module_utils.results import FAIL, PASS, WARN, check_item, trim

MARKER = "#Ansible: "
SPECIALS = ("@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def read_crontab(module, user, cron_file):
    """(text, source) of the crontab; text None when there is none."""
    if cron_file:
        try:
            with open(cron_file) as handle:
                return handle.read(), cron_file
        except (IOError, OSError):
            return None, cron_file
    crontab = module.get_bin_path("crontab")
    if not crontab:
        return None, "crontab (not installed)"
    argv = [crontab, "-l"] + (["-u", user] if user else [])
    rc, out, err = module.run_command(argv)
    source = "crontab of %s" % (user or "the current user")
    return (out if rc == 0 else None), source


def find_entry(text, name, system_format):
    """dict(schedule, user, command) of the entry after the marker line, or None."""
    lines = (text or "").splitlines()
    for index, line in enumerate(lines):
        if line.strip() != MARKER + name:
            continue
        for entry in lines[index + 1:]:
            if not entry.strip():
                continue
            disabled = entry.lstrip().startswith("#")
            body = entry.lstrip().lstrip("#").strip()
            parts = body.split(None, 1)
            fields = 1 if parts and parts[0] in SPECIALS else 5
            parts = body.split(None, fields + (1 if system_format else 0))
            if len(parts) < fields + 1 + (1 if system_format else 0):
                return dict(schedule=None, user=None, command=body, disabled=disabled, raw=entry)
            schedule = " ".join(parts[:fields])
            user = parts[fields] if system_format else None
            return dict(schedule=schedule, user=user, command=parts[-1], disabled=disabled, raw=entry)
    return None


def cron_daemon_running():
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % pid) as handle:
                if handle.read().strip() in ("cron", "crond", "cronie", "busybox-crond"):
                    return True
        except (IOError, OSError):
            continue
    return False


def main():
    module = AnsibleModule(argument_spec=dict(
        name=dict(type="str", required=True),
        user=dict(type="str"),
        cron_file=dict(type="path"),
        expected=dict(type="bool", default=True),
        timeout=dict(type="int", default=60),
    ), supports_check_mode=True)
    p = module.params
    began = time.monotonic()
    text, source = read_crontab(module, p["user"], p["cron_file"])
    entry = find_entry(text, p["name"], system_format=bool(p["cron_file"]))
    evidence = dict(source=source, entry_name=p["name"])

    def done(status, message, **extra):
        evidence.update(extra)
        item = check_item(status, message, evidence, duration_ms=(time.monotonic() - began) * 1000)
        module.exit_json(changed=False, entry=entry, checks={"BACKUP-SCHEDULE": item}, msg=message)

    if entry is None:
        if p["expected"]:
            done(FAIL, "no cron entry %r in the %s" % (p["name"], source))
        done(WARN, "no backup schedule configured (the runbook recommends a daily job)")
    evidence.update(schedule=entry["schedule"], command=entry["command"])
    if entry["disabled"]:
        done(FAIL if p["expected"] else WARN, "the cron entry %r is commented out" % p["name"])
    if entry["schedule"] is None:
        done(FAIL, "the cron entry %r is malformed: %s" % (p["name"], entry["raw"]))
    try:
        argv = shlex.split(entry["command"])
    except ValueError as err:
        done(FAIL, "cannot parse the cron command (%s)" % err)
    executable = argv[0] if argv else ""
    if not os.path.isabs(executable):
        found = module.get_bin_path(executable) if executable else None
        if not found:
            done(FAIL, "the cron command %r is not an absolute path and is not on PATH" % executable)
        executable = found
    if not (os.path.isfile(executable) and os.access(executable, os.X_OK)):
        done(FAIL, "the cron command %s does not exist or is not executable" % executable)
    check_out = None
    wrapper = False
    try:
        with open(executable, "rb") as handle:
            wrapper = b"hunter.ops pg_backup schedule wrapper" in handle.read(4096)
    except (IOError, OSError):
        pass
    if wrapper:
        try:
            proc = subprocess.run([executable, "--check"], check=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=p["timeout"])
        except subprocess.TimeoutExpired:
            done(FAIL, "%s --check did not finish within %d s" % (executable, p["timeout"]))
        check_out = trim(proc.stdout.decode("utf-8", "replace").strip(), 800)
        if proc.returncode != 0:
            done(FAIL, "%s --check failed (exit %d): %s" % (executable, proc.returncode,
                                                            " ".join(check_out.split())[:300]), check=check_out)
    daemon = cron_daemon_running()
    evidence.update(cron_daemon_running=daemon, check=check_out)
    if not daemon:
        done(WARN, "entry %r (%s) is installed and runnable, but no cron daemon runs on this host"
             % (p["name"], entry["schedule"]))
    done(PASS, "entry %r runs %s at %s and is runnable" % (p["name"], executable, entry["schedule"]))


if __name__ == "__main__":
    main()

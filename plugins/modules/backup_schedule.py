#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: backup_schedule
short_description: Check the scheduled backup job as it really is - installed, runnable, its last run, its newest backup (BACKUP-SCHEDULE)
version_added: 0.1.0
description:
  - Run on the host that runs the job (the one C(playbooks/install_backup_schedule.yml) installed it on). Reads what
    is there and changes nothing (C(changed=false)); runs in check mode.
  - The cron entry named O(name) (the C(#Ansible - <name>) marker M(ansible.builtin.cron) writes) in the crontab of
    O(user) or in O(cron_file) - it must be enabled and its command an existing executable (and its interpreter);
    when it is the hunter.ops wrapper, C(<wrapper> --check) must succeed (runner, project, playbook, inventory,
    writable log and status directories, C(ansible-playbook --syntax-check)).
  - The status file the wrapper writes after each run (O(status_file)) - the last run must have succeeded (exit 0,
    a verified backup) and ended less than O(max_age) hours ago.
  - The job's newest backup (label O(label), database O(database)) in O(backup_dir) - it must match its manifest
    (size and sha256) and be younger than O(max_age) hours.
  - V(pass) when all of this holds; V(fail) with the evidence (last run time, exit status, age) when the job is
    broken, never ran, failed or is stale; V(warn) when no job is configured (V(fail) with O(required)), or when
    all is well but no cron daemon process runs on this host (O(check_daemon)).
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
      - A crontab file in system format (with a user field), e.g. C(/etc/cron.d/hunter-backup), instead of a user's
        crontab. A relative name is looked up in C(/etc/cron.d), as M(ansible.builtin.cron) writes it.
    type: str
  status_file:
    description:
      - The status file the job's wrapper writes after each run.
    type: path
    required: true
  backup_dir:
    description:
      - Where the job's backups are (on this host).
    type: path
    required: true
  database:
    description:
      - The job's database (the manifest's C(database)).
    type: str
  label:
    description:
      - The label of the job's backups.
    type: str
    default: daily
  max_age:
    description:
      - Hours the newest backup (and the last run) may be old.
    type: float
    default: 26
  required:
    description:
      - V(fail) instead of V(warn) when no job is installed.
    type: bool
    default: false
  check_daemon:
    description:
      - V(warn) when no cron daemon process (C(cron), C(crond), C(cronie), C(busybox-crond)) is seen. Turn it off
        where C(/proc) hides other users' processes (C(hidepid)).
    type: bool
    default: true
  verify_checksum:
    description:
      - Verify the newest backup's sha256 (reads it whole); V(false) checks its manifest and size only.
    type: bool
    default: true
  timeout:
    description:
      - Seconds the C(--check) run of the wrapper may take.
    type: int
    default: 300
'''

EXAMPLES = r'''
- name: BACKUP-SCHEDULE
  hunter.ops.backup_schedule:
    name: hunter.ops pg_backup hunter-prod-db-1 /srv/hunter-ops
    status_file: /var/backups/hunter/schedule_hunter-prod-db-1_3f9a0c12.status.json
    backup_dir: /var/backups/hunter
    database: hunter
  delegate_to: hunter-prod-db-1
'''

RETURN = r'''
entry:
  description: The cron entry found - C(schedule), C(command), C(user) - or null.
  returned: always
  type: dict
last_run:
  description: The last run as the status file records it (started_at, finished_at, exit_status, outcome, backup, verified), or null.
  returned: always
  type: dict
checks:
  description: The item BACKUP-SCHEDULE.
  returned: always
  type: dict
'''

import json
import os
import shlex
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hunter.ops.plugins.module_utils import backup as bk
from ansible_collections.hunter.ops.plugins.module_utils.results import FAIL, PASS, WARN, check_item, trim

MARKER = "#Ansible: "
SPECIALS = ("@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
WRAPPER_MARKER = b"hunter.ops pg_backup schedule wrapper"
DAEMONS = ("cron", "crond", "cronie", "busybox-crond")


def read_crontab(module, user, cron_file):
    """(text, source) of the crontab; text None when there is none."""
    if cron_file:
        path = cron_file if os.path.isabs(cron_file) else os.path.join("/etc/cron.d", cron_file)
        try:
            with open(path) as handle:
                return handle.read(), path
        except (IOError, OSError):
            return None, path
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
                if handle.read().strip() in DAEMONS:
                    return True
        except (IOError, OSError):
            continue
    return False


def interpreter_of(path):
    """The interpreter of a script's #! line (None for a binary or no #! line)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except (IOError, OSError):
        return None, False
    wrapper = WRAPPER_MARKER in head
    if not head.startswith(b"#!"):
        return None, wrapper
    line = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    return (line.split()[0] if line else None), wrapper


def read_status(path):
    """(status dict or None, problem or None)."""
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (IOError, OSError) as err:
        if getattr(err, "errno", None) == 2:
            return None, None
        return None, "cannot read the status file %s (%s)" % (path, err.strerror or err)
    except ValueError as err:
        return None, "the status file %s is not valid JSON (%s)" % (path, err)
    if not isinstance(data, dict):
        return None, "the status file %s is not a JSON object" % path
    return data, None


def hours(seconds):
    return round(seconds / 3600.0, 2)


def newest_backup(params, now):
    """(evidence dict, problems) of the job's newest backup."""
    items = bk.list_backups(params["backup_dir"], database=params["database"], label=params["label"])
    if not items:
        return dict(newest_backup=None), ["no backup with label %r in %s" % (params["label"], params["backup_dir"])]
    item = items[0]
    evidence = dict(newest_backup=item["name"])
    if item["manifest"] is None:
        return evidence, ["newest backup %s is not valid: %s" % (item["name"], item["manifest_error"])]
    problems = bk.verify_backup(item["path"], item["manifest"], checksum=params["verify_checksum"])
    if problems:
        return evidence, ["newest backup %s is not valid: %s" % (item["name"], "; ".join(problems))]
    taken = bk.parse_iso_utc(item["manifest"].get("finished_at")) or item["created"]
    age = now - taken
    evidence.update(newest_backup_finished_at=bk.iso_utc(taken), newest_backup_age_hours=hours(age),
                    newest_backup_age_s=int(age), newest_backup_sha256_checked=params["verify_checksum"])
    if age > params["max_age"] * 3600:
        return evidence, ["newest backup %s is %.1f h old (max_age %s h): stale"
                          % (item["name"], age / 3600.0, params["max_age"])]
    return evidence, []


def main():
    module = AnsibleModule(argument_spec=dict(
        name=dict(type="str", required=True),
        user=dict(type="str"),
        cron_file=dict(type="str"),
        status_file=dict(type="path", required=True),
        backup_dir=dict(type="path", required=True),
        database=dict(type="str"),
        label=dict(type="str", default="daily"),
        max_age=dict(type="float", default=26),
        required=dict(type="bool", default=False),
        check_daemon=dict(type="bool", default=True),
        verify_checksum=dict(type="bool", default=True),
        timeout=dict(type="int", default=300),
    ), supports_check_mode=True)
    p = module.params
    began = time.monotonic()
    now = time.time()
    text, source = read_crontab(module, p["user"], p["cron_file"])
    entry = find_entry(text, p["name"], system_format=bool(p["cron_file"]))
    evidence = dict(source=source, entry_name=p["name"], status_file=p["status_file"], max_age_hours=p["max_age"])
    status, status_problem = read_status(p["status_file"])
    last_run = (status or {}).get("last_run") if isinstance((status or {}).get("last_run"), dict) else None

    def done(state, message, **extra):
        evidence.update(extra)
        item = check_item(state, message, evidence, duration_ms=(time.monotonic() - began) * 1000)
        module.exit_json(changed=False, entry=entry, last_run=last_run, checks={"BACKUP-SCHEDULE": item}, msg=message)

    if p["max_age"] is None or p["max_age"] <= 0:
        message = "max_age: must be more than 0 hours, got %r" % (p["max_age"],)
        module.fail_json(msg=message, checks={"BACKUP-SCHEDULE": check_item(FAIL, message)})
    if entry is None:
        if p["required"]:
            done(FAIL, "no scheduled backup job %r in the %s (install it with playbooks/install_backup_schedule.yml)"
                 % (p["name"], source), last_run=last_run)
        done(WARN, "no scheduled backup job installed in the %s (the runbook recommends a daily job: "
                   "playbooks/install_backup_schedule.yml)" % source, last_run=last_run)
    evidence.update(schedule=entry["schedule"], command=entry["command"])
    if entry["disabled"]:
        done(FAIL, "the cron entry %r is commented out" % p["name"])
    if entry["schedule"] is None:
        done(FAIL, "the cron entry %r is malformed: %s" % (p["name"], entry["raw"]))

    # The command: an existing executable, its interpreter, and the wrapper's own --check.
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
    interpreter, wrapper = interpreter_of(executable)
    if interpreter and not (os.path.isfile(interpreter) and os.access(interpreter, os.X_OK)):
        done(FAIL, "the cron command %s needs the interpreter %s, which does not exist" % (executable, interpreter))
    if wrapper:
        try:
            proc = subprocess.run([executable, "--check"], check=False, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=p["timeout"])
        except subprocess.TimeoutExpired:
            done(FAIL, "%s --check did not finish within %d s" % (executable, p["timeout"]))
        except OSError as err:
            done(FAIL, "%s --check could not run: %s" % (executable, err))
        check_out = trim(proc.stdout.decode("utf-8", "replace").strip(), 800)
        evidence["check"] = check_out
        if proc.returncode != 0:
            done(FAIL, "the job is installed but cannot run: %s --check failed (exit %d): %s"
                 % (executable, proc.returncode, " ".join(check_out.split())[:300]))

    # The last run, as the wrapper recorded it.
    if status_problem:
        done(FAIL, status_problem)
    evidence["last_run"] = last_run
    if status and status.get("state") == "running":
        evidence["running_since"] = (status.get("current") or {}).get("started_at")
    if last_run is None:
        done(FAIL, "the job %r is installed but never ran (no status in %s)" % (p["name"], p["status_file"]))
    finished = bk.parse_iso_utc(last_run.get("finished_at"))
    when = last_run.get("finished_at") or "an unknown time"
    problems = []
    if last_run.get("exit_status") != 0:
        problems.append("its last run (ended %s) failed with exit status %s: %s"
                        % (when, last_run.get("exit_status"), last_run.get("outcome") or "no outcome recorded"))
    if finished is None or now - finished > p["max_age"] * 3600:
        age = "%.1f h ago" % ((now - finished) / 3600.0) if finished is not None else "at an unknown time"
        problems.append("its last run ended %s (max_age %s h): stale" % (age, p["max_age"]))
    if finished is not None:
        evidence.update(last_run_age_hours=hours(now - finished), last_run_age_s=int(now - finished))
    backup_evidence, backup_problems = newest_backup(p, now)
    evidence.update(backup_evidence)
    problems += backup_problems
    if problems:
        done(FAIL, "scheduled job %r: %s" % (p["name"], "; ".join(problems)))
    daemon = cron_daemon_running() if p["check_daemon"] else None
    evidence["cron_daemon_running"] = daemon
    summary = ("job %r (%s) is installed and runnable; its last run ended %s with exit 0; newest backup %s is "
               "%.1f h old and matches its manifest" % (p["name"], entry["schedule"], when,
                                                        backup_evidence["newest_backup"],
                                                        backup_evidence["newest_backup_age_hours"]))
    if daemon is False:
        done(WARN, summary + ", but no cron daemon process runs on this host: the next run will not happen")
    done(PASS, summary)


if __name__ == "__main__":
    main()

"""bench/scale.py's harness on 2 hosts, the preflight only, once: real sshd servers on their own
loopback addresses, an unprivileged login, key authentication. Not timed (speed is the bench's
job): it asserts what a scale run must deliver on every host: each item of the health, Redis and
API checks in the report (bench/scale.py check_report raises otherwise), a GO, one SSH connection
per host and one session per check module.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/sbin/sshd").exists(),
                       reason="needs root and openssh-server (sshd switches to the login user)"),
]


def test_two_hosts_over_ssh_report_every_item_with_one_connection_each():
    command = [sys.executable, str(ROOT / "bench" / "scale.py"), "--hosts", "2", "--repeat", "1",
               "--only", "preflight", "--no-warmup"]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    line = re.search(r"preflight\s+n=2 .*", run.stdout)
    assert line, run.stdout
    # one connection per host for the whole run (ControlPersist), one session per check module that
    # runs on the host: health_probe, redis_probe (REDIS-APP-PING + REDIS-HEALTH), api_probe; a
    # healthy service needs no diagnosis, which the controller decides (plugins/action/dependency_diag.py)
    assert re.search(r"\sGO\s", line.group(0)), line.group(0)  # every required item passed on both
    assert "conn/host 1.0 (max 1)" in line.group(0), line.group(0)
    assert re.search(r"ssh/host\s+3\.0\b", line.group(0)), line.group(0)
    assert re.search(r"tasks/host\s+11\.0\b", line.group(0)), line.group(0)
    assert "kept" not in run.stdout  # its temporary directory (keys, logs, reports) is gone

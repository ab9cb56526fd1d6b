"""The nightly backup job (issue 10): installed on purpose by playbooks/install_backup_schedule.yml, checked for
real by BACKUP-SCHEDULE, never touched by the preflight.

Cron cannot be awaited in a test: the tests run the installed command itself (what cron runs, with cron's
bare environment) and check its status file and BACKUP-SCHEDULE. Every entry goes to a cron file under the
test's directory, except in the preflight test, which uses the defaults (the current user's crontab) and
proves that nothing changed there or anywhere else.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import REPO_ROOT, AnsibleHarness

sys.path.insert(0, str(REPO_ROOT / ".ansible" / "collections"))
from ansible_collections.hunter.ops.plugins.module_utils import backup as bk  # noqa: E402

CRON_ENV = {"HOME": os.environ.get("HOME", "/root"), "LOGNAME": "root", "PATH": "/usr/bin:/bin", "SHELL": "/bin/sh"}


def write_inventory(path: Path, pg, tmp_path: Path, password: str | None = None, **extra) -> str:
    """A stable inventory file, as an operator's is (the installed job names it and reads it on every run)."""
    variables = dict(
        ansible_connection="local", ansible_python_interpreter=sys.executable,
        hunter_db_host=pg.host, hunter_db_port=pg.port, hunter_db_name=pg.database, hunter_db_user=pg.user,
        hunter_db_password=password or pg.password, hunter_backup_dir=str(tmp_path / "backups"),
        hunter_ops_metrics_dir=str(tmp_path / "metrics"), pg_backup_format="custom",
        pg_backup_schedule_cron_file=str(tmp_path / "cron.d" / "hunter-backup"),
        pg_backup_schedule_dir=str(tmp_path / "schedule"),
    )
    variables.update(extra)
    path.write_text(json.dumps({"all": {"vars": variables, "children": {"db": {"hosts": {"db1": {}}}}}}))
    path.chmod(0o600)
    return str(path)


def status_file(tmp_path: Path, project: Path = REPO_ROOT) -> Path:
    digest = hashlib.sha1(str(project).encode()).hexdigest()[:8]
    return tmp_path / "backups" / f"schedule_db1_{digest}.status.json"


def entry_name(project: Path = REPO_ROOT) -> str:
    return f"hunter.ops pg_backup db1 {project}"


def check(ansible, tmp_path, project: Path = REPO_ROOT, **over) -> dict:
    """BACKUP-SCHEDULE as the role runs it (on the scheduling host; here this machine)."""
    args = dict(name=entry_name(project), cron_file=str(tmp_path / "cron.d" / "hunter-backup"),
                status_file=str(status_file(tmp_path, project)), backup_dir=str(tmp_path / "backups"),
                database="hunter", label="daily")
    args.update(over)
    result = ansible.run_module("hunter.ops.backup_schedule", args)
    assert not result.get("check_task_failed"), result.get("msg")
    return result["checks"]["BACKUP-SCHEDULE"]


def run_job(script: Path) -> subprocess.CompletedProcess:
    """What cron runs, with cron's environment."""
    return subprocess.run([str(script)], env=CRON_ENV, cwd="/", capture_output=True, text=True, timeout=900,
                          check=False)


def wrapper(tmp_path: Path) -> Path:
    return tmp_path / "schedule" / "pg_backup_db1.py"


@pytest.mark.slow
def test_schedule_absent_installed_failed_fresh_stale_and_removed(pg, ansible, tmp_path, assert_no_secret):
    (tmp_path / "cron.d").mkdir()
    inventory = tmp_path / "inventory.json"
    cron_file = tmp_path / "cron.d" / "hunter-backup"

    # absent: not configured is a warning, never a pass
    item = check(ansible, tmp_path)
    assert item["status"] == "warn" and "no scheduled backup job installed" in item["message"]
    assert check(ansible, tmp_path, required=True)["status"] == "fail"

    # installed on purpose, with the drill after each backup; never ran yet
    write_inventory(inventory, pg, tmp_path, password="wrong-" + pg.password)
    install = ansible.run_playbook("playbooks/install_backup_schedule.yml", str(inventory),
                                   extravars={"pg_backup_schedule_drill": True})
    assert install.rc == 0, install.stdout[-3000:]
    entry = cron_file.read_text()
    assert entry.count("#Ansible: %s\n" % entry_name()) == 1
    assert f"0 2 * * * root {wrapper(tmp_path)}" in entry
    assert stat.S_IMODE(wrapper(tmp_path).stat().st_mode) == 0o700
    assert wrapper(tmp_path).read_text().startswith(f"#!{Path(sys.executable).parent}/python\n")
    item = check(ansible, tmp_path)
    assert item["status"] == "fail" and "installed but never ran" in item["message"], item
    assert item["evidence"]["schedule"] == "0 2 * * *" and item["evidence"]["check"].startswith("ok: ansible-runner")

    # the job runs and fails (the inventory's password is wrong): the status says so, and so does the check
    failed = run_job(wrapper(tmp_path))
    assert failed.returncode != 0
    status = json.loads(status_file(tmp_path).read_text())
    last = status["last_run"]
    assert status["state"] == "finished" and last["exit_status"] == failed.returncode
    assert last["verified"] is False and last["backup"] is None and "the playbook failed" in last["outcome"]
    assert last["items"]["BACKUP-CMD"] == "fail" and status["last_success"] is None
    item = check(ansible, tmp_path)
    assert item["status"] == "fail", item
    assert f"failed with exit status {failed.returncode}" in item["message"] and last["finished_at"] in item["message"]
    assert item["evidence"]["last_run"]["exit_status"] == failed.returncode

    # the password is fixed: the next run succeeds, backs up, drills, and the job is fresh
    write_inventory(inventory, pg, tmp_path)
    began = time.time()
    fresh = run_job(wrapper(tmp_path))
    log = (tmp_path / "schedule" / "pg_backup_db1.log").read_text()
    assert fresh.returncode == 0, log[-4000:]
    status = json.loads(status_file(tmp_path).read_text())
    last = status["last_run"]
    assert last["exit_status"] == 0 and last["outcome"] == "success" and last["verified"] is True
    assert bk.parse_iso_utc(last["started_at"]) >= int(began) and last["finished_at"] >= last["started_at"]
    assert last["backup"].startswith(str(tmp_path / "backups" / "backup_daily_"))
    assert bk.verify_backup(last["backup"]) == []
    assert last["items"] == {"BACKUP-CMD": "pass", "BACKUP-VALID": "pass", "BACKUP-LOCATION": "warn",
                             "BACKUP-RETENTION": "pass", "BACKUP-SCHEDULE": "skip"}, log[-4000:]
    assert last["drill"]["passed"] is True and last["drill"]["items"]["RESTORE-DRYRUN"] == "pass"
    assert status["last_success"]["backup"] == last["backup"]
    assert stat.S_IMODE(status_file(tmp_path).stat().st_mode) == 0o600
    assert not [n for n in os.listdir(tmp_path / "backups") if n.startswith(".schedule-status-")]
    item = check(ansible, tmp_path)
    assert item["status"] == "warn" and "no cron daemon process runs on this host" in item["message"], item
    item = check(ansible, tmp_path, check_daemon=False)
    assert item["status"] == "pass", item
    assert os.path.basename(last["backup"]) in item["message"] and "exit 0" in item["message"]
    assert item["evidence"]["newest_backup_age_hours"] < 1 and item["evidence"]["last_run_age_hours"] < 1

    # what a monitoring system sees of that night: the backup's and the drill's metrics
    backup_metrics = text_string_to_metric_families((tmp_path / "metrics" / "hunter_ops_backup_db1_hunter.prom")
                                                    .read_text())
    samples = {(s.name, s.labels.get("label")): s.value for f in backup_metrics for s in f.samples}
    assert samples[("hunter_ops_backup_last_run_success", "daily")] == 1
    assert samples[("hunter_ops_backup_last_success_size_bytes", "daily")] == bk.load_manifest(last["backup"])[
        "size_bytes"]
    drill_metrics = text_string_to_metric_families((tmp_path / "metrics" / "hunter_ops_restore_drill_db1_hunter.prom")
                                                   .read_text())
    samples = {s.name: s.value for f in drill_metrics for s in f.samples if "check" not in s.labels}
    assert samples["hunter_ops_restore_drill_last_run_success"] == 1
    assert samples["hunter_ops_restore_drill_rto_projected_seconds"] > 0
    assert samples["hunter_ops_restore_drill_rto_target_seconds"] == 900

    # stale: the same job judged with a maximum age shorter than its age
    time.sleep(2)
    item = check(ansible, tmp_path, max_age=0.0003, check_daemon=False)
    assert item["status"] == "fail" and "stale" in item["message"] and "max_age 0.0003 h" in item["message"], item
    assert item["evidence"]["newest_backup_age_s"] >= 2 and item["evidence"]["last_run_age_s"] >= 2

    # a job whose wrapper lost its project cannot run: the check says what is missing
    broken = tmp_path / "broken-inventory"
    item = check(ansible, tmp_path, check_daemon=False)
    assert item["status"] == "pass"
    inventory.rename(broken)
    item = check(ansible, tmp_path, check_daemon=False)
    assert item["status"] == "fail" and "cannot run" in item["message"] and "missing inventory" in item["message"]
    broken.rename(inventory)

    # removed on purpose: not configured again
    removed = ansible.run_playbook("playbooks/install_backup_schedule.yml", str(inventory),
                                   extravars={"pg_backup_schedule_state": "absent"})
    assert removed.rc == 0, removed.stdout[-3000:]
    assert entry_name() not in (cron_file.read_text() if cron_file.exists() else "")
    assert not wrapper(tmp_path).exists()
    assert check(ansible, tmp_path)["status"] == "warn"
    leak_scan = log + "\n".join(p.read_text(errors="replace") for p in (tmp_path / "schedule").rglob("*")
                                if p.is_file()) + status_file(tmp_path).read_text()
    assert_no_secret(leak_scan, pg.password)


def test_install_refuses_a_job_that_cannot_run(pg, ansible, tmp_path):
    (tmp_path / "cron.d").mkdir()
    inventory = write_inventory(tmp_path / "inventory.json", pg, tmp_path,
                                pg_backup_schedule_bin_dir=str(tmp_path / "no-venv" / "bin"))
    run = ansible.run_playbook("playbooks/install_backup_schedule.yml", inventory)
    assert run.rc != 0
    failures = [r.get("msg", "") for r in run.failed_tasks()]
    assert any("cannot run on db1, not installed" in m for m in failures), failures
    cron_file = tmp_path / "cron.d" / "hunter-backup"
    assert not cron_file.exists() or entry_name() not in cron_file.read_text()


def second_checkout(tmp_path: Path) -> Path:
    """Another project directory on the same machine (its own ansible.cfg; the same collection and venv)."""
    other = tmp_path / "checkout-2"
    other.mkdir()
    shutil.copy(REPO_ROOT / "ansible.cfg", other / "ansible.cfg")
    for name in (".ansible", "playbooks", "roles"):
        (other / name).symlink_to(REPO_ROOT / name)
    return other


def test_two_checkouts_on_one_machine_keep_two_entries(pg, ansible, tmp_path, venv_python):
    (tmp_path / "cron.d").mkdir()
    # each project's wrapper in its own directory (by default <project>/.schedule; here under tmp_path)
    inventory = write_inventory(tmp_path / "inventory.json", pg, tmp_path, pg_backup_schedule_dir=str(tmp_path)
                                + "/schedule-{{ (pg_backup_schedule_project_dir | hash('sha1'))[:8] }}")
    other = second_checkout(tmp_path)
    first = ansible.run_playbook("playbooks/install_backup_schedule.yml", inventory)
    assert first.rc == 0, first.stdout[-3000:]
    second_harness = AnsibleHarness(base_dir=tmp_path / "ansible-2", repo_root=other, python=venv_python)
    second = second_harness.run_playbook("playbooks/install_backup_schedule.yml", inventory)
    assert second.rc == 0, second.stdout[-3000:]
    again = ansible.run_playbook("playbooks/install_backup_schedule.yml", inventory)
    assert again.rc == 0 and not any(r.get("changed") for r in again.task_results(task="Cron entry of the scheduled job"))
    text = (tmp_path / "cron.d" / "hunter-backup").read_text()
    assert text.count("#Ansible: hunter.ops pg_backup db1 ") == 2, text
    for project in (REPO_ROOT, other):
        assert text.count("#Ansible: %s\n" % entry_name(project)) == 1
        script = tmp_path / ("schedule-" + hashlib.sha1(str(project).encode()).hexdigest()[:8]) / "pg_backup_db1.py"
        assert str(script) in text
        checked = subprocess.run([str(script), "--check"], env=CRON_ENV, capture_output=True, text=True,
                                 timeout=300, check=False)
        assert checked.returncode == 0 and f"status {status_file(tmp_path, project)}" in checked.stdout, \
            checked.stdout + checked.stderr
        assert f"from {project}" in script.read_text()
        item = check(ansible, tmp_path, project=project)
        assert item["status"] == "fail" and "installed but never ran" in item["message"], item
        assert item["evidence"]["command"] == str(script)


def crontabs() -> dict[str, str]:
    """Every crontab of this machine: the users' (spool), /etc/crontab and /etc/cron.d, and `crontab -l`."""
    found = {}
    for root in (Path("/var/spool/cron/crontabs"), Path("/var/spool/cron"), Path("/etc/cron.d")):
        if root.is_dir():
            for path in sorted(root.iterdir()):
                if path.is_file():
                    found[str(path)] = path.read_text(errors="replace")
    for path in (Path("/etc/crontab"),):
        if path.exists():
            found[str(path)] = path.read_text(errors="replace")
    listed = subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=False)
    found["crontab -l"] = f"rc={listed.returncode}\n{listed.stdout}"
    return found


@pytest.mark.slow
def test_the_preflight_changes_no_crontab(pg, ansible, tmp_path):
    """preflight.yml with the default schedule settings (the user's crontab, the project's .schedule):
    BACKUP-SCHEDULE reads, and nothing is installed, changed or removed anywhere."""
    inventory = {"all": {"vars": dict(
        hunter_db_host=pg.host, hunter_db_port=pg.port, hunter_db_name=pg.database, hunter_db_user=pg.user,
        hunter_db_password=pg.password, hunter_backup_dir=str(tmp_path / "backups"), hunter_release_label="pre_v9",
        hunter_ops_metrics_dir=str(tmp_path / "metrics"), hunter_expected_environment="staging"),
        "children": {"db": {"hosts": {"db1": {}}}}}}
    schedule_dir = REPO_ROOT / ".schedule"
    before_files = sorted(str(p) for p in schedule_dir.rglob("*")) if schedule_dir.exists() else None
    before = crontabs()
    run = ansible.run_playbook("preflight.yml", inventory)
    after = crontabs()
    assert after == before, {k: (before.get(k), after.get(k)) for k in set(before) | set(after)
                             if before.get(k) != after.get(k)}
    assert (sorted(str(p) for p in schedule_dir.rglob("*")) if schedule_dir.exists() else None) == before_files
    assert run.report is not None, run.stdout[-3000:]
    rows = {(r["id"], r["host"]): r for r in run.report["items"]}
    schedule = rows[("BACKUP-SCHEDULE", "db1")]
    assert schedule["status"] == "warn" and "no scheduled backup job installed" in schedule["message"]
    assert rows[("BACKUP-CMD", "db1")]["status"] == "pass"
    # the preflight's own metrics, beside the backup's and the drill's
    preflight = tmp_path / "metrics" / "hunter_ops_preflight_staging.prom"
    families = {f.name: f for f in text_string_to_metric_families(preflight.read_text())}
    assert families["hunter_ops_preflight_go"].samples[0].value == (1 if run.report["verdict"] == "GO" else 0)
    statuses = {(s.labels["check"], s.labels["host"]): s.labels["status"]
                for s in families["hunter_ops_preflight_check_status"].samples if s.value == 1}
    assert statuses[("BACKUP-SCHEDULE", "db1")] == "warn" and statuses[("BACKUP-CMD", "db1")] == "pass"
    assert (tmp_path / "metrics" / "hunter_ops_backup_db1_hunter.prom").exists()
    assert (tmp_path / "metrics" / "hunter_ops_restore_drill_db1_hunter.prom").exists()

"""Backups as operators run them (issue 10): the copy to the backup host without the controller in the path,
retention by count per label everywhere (and what repeated preflights leave), S3 waits bounded by the configured
timeout, and the metrics each job leaves for node_exporter - against real PostgreSQL, rsync, moto S3 and a
listener that never answers.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / ".ansible" / "collections"))
from ansible_collections.hunter.ops.plugins.module_utils import backup as bk  # noqa: E402
from ansible_collections.hunter.ops.plugins.module_utils import backup_s3, s3  # noqa: E402


def backups_in(directory) -> list[str]:
    if not os.path.isdir(directory):
        return []
    return sorted(n for n in os.listdir(directory) if bk.parse_backup_name(n) and not n.endswith(".manifest.json"))


def conn_args(pg) -> dict:
    return dict(db_host=pg.host, db_port=pg.port, db_name=pg.database, db_user=pg.user, db_password=pg.password)


def take_backups(ansible, pg, backup_dir, label, count, fmt="custom") -> list[str]:
    """`count` real backups of label (a second apart, as their names need) through hunter.ops.pg_backup."""
    tasks = []
    for index in range(count):
        if index:
            tasks.append({"ansible.builtin.pause": {"seconds": 1}})
        tasks.append({"hunter.ops.pg_backup": dict(conn_args(pg), db_password="{{ db_password }}",
                                                   backup_dir=str(backup_dir), label=label, format=fmt,
                                                   count_rows=False)})
    run, results = ansible.run_tasks(tasks, extravars={"db_password": pg.password})
    made = [r["backup"] for r in results if r.get("backup")]
    assert len(made) == count, run.stdout[-3000:]
    return made


def items(run, host="db1") -> dict:
    found = {}
    for res in run.task_results(host=host):
        facts = res.get("ansible_facts") or {}
        if "hunter_ops_checks" in facts:
            found = facts["hunter_ops_checks"]
    return found


def parse_metrics(path: Path) -> dict:
    """{(name, frozenset(labels)): value} of a metrics file, parsed by prometheus_client."""
    found = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def role_inventory(pg, tmp_path, **extra) -> dict:
    variables = dict(
        hunter_db_host=pg.host, hunter_db_port=pg.port, hunter_db_name=pg.database, hunter_db_user=pg.user,
        hunter_db_password=pg.password, hunter_release_label="pre_v1.0", hunter_backup_dir=str(tmp_path / "backups"),
        pg_backup_remote_dir=str(tmp_path / "backup-host"), hunter_ops_metrics_dir=str(tmp_path / "metrics"),
        pg_backup_schedule_cron_file=str(tmp_path / "cron.d" / "hunter-backup"),
    )
    variables.update(extra)
    return {"all": {"vars": variables, "children": {"db": {"hosts": {"db1": {}}}, "backup": {"hosts": {"bk1": {}}}}}}


def s3_vars(s3_server, bucket, prefix="ops/") -> dict:
    return dict(hunter_backup_s3_endpoint_url=s3_server.endpoint_url, hunter_backup_s3_bucket=bucket,
                hunter_backup_s3_prefix=prefix, hunter_backup_s3_region="us-east-1",
                hunter_backup_s3_access_key=s3_server.access_key, hunter_backup_s3_secret_key=s3_server.secret_key)


@pytest.fixture
def bucket(s3_server):
    return s3_server.create_bucket("ops-" + secrets.token_hex(6))


def controller_temp_files(*roots) -> set[str]:
    found = set()
    for root in roots:
        for path in Path(root).rglob("*"):
            if path.is_file():
                found.add(str(path))
    return found


# -- the copy to the backup host ----------------------------------------------------------------------------

@pytest.mark.slow
def test_backup_host_pulls_the_dump_without_the_controller_and_everything_is_pruned_and_measured(
        pg, s3_server, bucket, ansible, tmp_path, assert_no_secret):
    """One role run on db1 with a backup host bk1 and a bucket: the backup host pulls the dump itself (the
    copy task runs on bk1, rsync reads db1's directory), BACKUP-LOCATION verifies three places, retention
    runs in all three, and the backup's metrics parse."""
    controller_tmp = Path(tempfile.gettempdir())
    before = {p.name for p in controller_tmp.iterdir() if p.name.startswith("hunter-backup-copy-")}
    run = ansible.run_playbook("playbooks/pg_backup.yml", role_inventory(pg, tmp_path, **s3_vars(s3_server, bucket)))
    assert run.rc == 0, run.stdout[-3000:]
    checks = items(run)
    assert {k: checks[k]["status"] for k in ("BACKUP-CMD", "BACKUP-VALID", "BACKUP-LOCATION", "BACKUP-RETENTION")} \
        == dict.fromkeys(("BACKUP-CMD", "BACKUP-VALID", "BACKUP-LOCATION", "BACKUP-RETENTION"), "pass"), \
        {k: v["message"] for k, v in checks.items()}
    assert "in 3 places" in checks["BACKUP-LOCATION"]["message"]
    name = os.path.basename(checks["BACKUP-VALID"]["evidence"]["path"])

    pulls = run.task_results(task="Pull the backup onto the backup host and verify it there")
    assert len(pulls) == 1
    pull = pulls[0]
    assert pull["location"]["verified"] and pull["changed"]
    assert pull["location"]["evidence"]["source"] == str(tmp_path / "backups" / name)
    assert pull["location"]["evidence"]["transport"] == "rsync (same machine)"
    delegated = [e["event_data"] for e in run.events if e.get("event") == "runner_on_ok"
                 and e["event_data"].get("task") == "Pull the backup onto the backup host and verify it there"]
    assert delegated[0]["res"]["_ansible_delegated_vars"]["ansible_host"] == "bk1"
    # no task moved a backup file through the controller, and no byte of it landed in its temp dirs
    actions = {e["event_data"].get("task_action") for e in run.events if e.get("event") == "runner_on_ok"}
    assert not actions & {"ansible.builtin.fetch", "fetch", "ansible.builtin.copy", "copy"}, actions
    after = {p.name for p in controller_tmp.iterdir() if p.name.startswith("hunter-backup-copy-")}
    assert after == before
    local_temp = controller_temp_files(run.private_data_dir / "tmp")
    assert not any(name in p or "toc.dat" in p for p in local_temp), local_temp
    assert bk.verify_backup(str(tmp_path / "backup-host" / name)) == []
    assert not [n for n in os.listdir(tmp_path / "backup-host") if n.startswith(".incoming-")]

    evidence = checks["BACKUP-RETENTION"]["evidence"]
    assert evidence["local"]["newest_valid"] == name and evidence["s3"]["newest_valid"] == name
    assert evidence["other_locations"][0]["location"] == "bk1:%s" % (tmp_path / "backup-host")
    assert evidence["other_locations"][0]["newest_valid"] == name
    assert evidence["policy"]["keep_count_by_label"] == {"pre_*": 3, "manual": 3}

    metrics_file = tmp_path / "metrics" / "hunter_ops_backup_db1_hunter.prom"
    parsed = parse_metrics(metrics_file)
    labels = frozenset({"host": "db1", "database": "hunter", "label": "pre_v1.0"}.items())
    manifest = bk.load_manifest(str(tmp_path / "backups" / name))
    assert parsed[("hunter_ops_backup_last_run_success", labels)] == 1
    assert parsed[("hunter_ops_backup_last_run_offsite_verified", labels)] == 1
    assert parsed[("hunter_ops_backup_last_success_size_bytes", labels)] == manifest["size_bytes"]
    assert parsed[("hunter_ops_backup_last_success_rows", labels)] == sum(manifest["tables"].values())
    assert parsed[("hunter_ops_backup_last_success_timestamp_seconds", labels)] == bk.parse_iso_utc(
        manifest["finished_at"])
    assert oct(metrics_file.stat().st_mode & 0o777) == "0o644"
    assert_no_secret(run, pg.password, s3_server.secret_key)


FAKE_SSH = r'''#!/bin/sh
# Stand-in for ssh on a machine without sshd: records the destination and runs the remote command
# (rsync's server side) locally, as sshd would after authenticating.
user=""; port=""
while [ $# -gt 0 ]; do
  case "$1" in
    -l) user="$2@"; shift 2 ;;
    -p) port=":$2"; shift 2 ;;
    -o|-i) shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
echo "$user$1$port" >> "{log}"
shift
exec /bin/sh -c "$*"
'''


def test_pull_over_ssh_verifies_before_keeping_and_keeps_nothing_damaged(pg, ansible, tmp_path):
    """rsync's remote-shell path (rsync --server on the 'db host' through an ssh stand-in): the copy is
    verified on the backup host and renamed into place; a damaged source is never kept under a backup name."""
    db_dir, host_dir, log = tmp_path / "db", tmp_path / "host", tmp_path / "ssh.log"
    fake = tmp_path / "fake-ssh"
    fake.write_text(FAKE_SSH.replace("{log}", str(log)))
    fake.chmod(0o755)
    made = take_backups(ansible, pg, db_dir, "nightly", 1, fmt="directory")[0]
    manifest = bk.load_manifest(made)
    args = dict(source=made, source_host="postgres@db-host.internal", database="hunter", dest_dir=str(host_dir),
                expected_sha256=manifest["sha256"], ssh_command=[str(fake), "-o", "BatchMode=yes"], ssh_port=2222,
                location_name="bk1:%s" % host_dir)
    result = ansible.run_module("hunter.ops.backup_pull", args)
    assert not result.get("failed"), result.get("msg")
    location = result["location"]
    assert location["verified"] and location["evidence"]["transport"] == "rsync over ssh"
    assert location["evidence"]["source"] == "postgres@db-host.internal:%s" % made
    assert log.read_text().split() == ["postgres@db-host.internal:2222"], "one ssh connection to the db host"
    assert bk.verify_backup(str(host_dir / os.path.basename(made))) == []
    assert oct((host_dir / os.path.basename(made)).stat().st_mode & 0o777) == "0o700"

    again = ansible.run_module("hunter.ops.backup_pull", args)
    assert not again.get("failed") and not again["changed"] and "already holds" in again["location"]["message"]

    # damaged on the db host after its manifest was written: the copy is checked, refused and removed
    second = take_backups(ansible, pg, db_dir, "nightly", 1, fmt="custom")[0]
    with open(second, "r+b") as handle:
        handle.seek(100)
        handle.write(b"\x00damage\x00")
    refused = ansible.run_module("hunter.ops.backup_pull",
                                 dict(args, source=second, expected_sha256=bk.load_manifest(second)["sha256"]))
    assert refused.get("failed") and not refused["location"]["verified"]
    assert "does not match the original, not kept" in refused["msg"] and "sha256" in refused["msg"]
    assert os.path.basename(second) not in os.listdir(host_dir)
    assert not [n for n in os.listdir(host_dir) if n.startswith(".incoming-")]

    unreachable = ansible.run_module("hunter.ops.backup_pull", dict(
        args, ssh_command=["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=3", "-o", "StrictHostKeyChecking=yes",
                           "-o", "UserKnownHostsFile=/dev/null"], source_host="nobody@127.0.0.1", ssh_port=1,
        dest_dir=str(tmp_path / "host2"), timeout=60))
    assert unreachable.get("failed") and "rsync from nobody@127.0.0.1:" in unreachable["msg"], unreachable["msg"]
    assert "Connection refused" in unreachable["msg"] and backups_in(tmp_path / "host2") == []


# -- retention ------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_retention_by_count_with_a_damaged_newest_backup(pg, ansible, tmp_path):
    backup_dir = tmp_path / "b"
    made = take_backups(ansible, pg, backup_dir, "pre_v2.0", 4)
    with open(made[-1], "ab") as handle:          # the newest is damaged
        handle.write(b"damage")
    policy = dict(backup_dir=str(backup_dir), database="hunter", keep_days=7, keep_count_by_label={"pre_*": 1})
    result = ansible.run_module("hunter.ops.backup_retention", policy)
    assert not result.get("check_task_failed"), result.get("msg")
    names = [os.path.basename(p) for p in made]
    # the damaged newest is the one the count keeps; the newest valid one is kept whatever the count says
    assert backups_in(backup_dir) == sorted(names[2:])
    assert sorted(result["deleted"]) == sorted("local:" + n for n in names[:2])
    reasons = {k["backup"]: k["reason"] for k in result["kept"]}
    assert reasons["local:" + names[2]] == "newest valid backup (never deleted)"
    assert "among the 1 newest of label pre_v2.0" in reasons["local:" + names[3]]
    item = result["checks"]["BACKUP-RETENTION"]
    assert item["status"] == "pass" and item["evidence"]["local"]["newest_valid"] == names[2]

    # every backup damaged: nothing is deleted, and the item says why
    with open(made[2], "ab") as handle:
        handle.write(b"damage")
    result = ansible.run_module("hunter.ops.backup_retention",
                                dict(policy, keep_count_by_label={"pre_*": 0}, keep_days=0, keep_count=0))
    assert result["checks"]["BACKUP-RETENTION"]["status"] == "warn"   # no limit set
    result = ansible.run_module("hunter.ops.backup_retention", dict(policy, keep_days=0.0000001))
    assert result["deleted"] == [] and backups_in(backup_dir) == sorted(names[2:])
    item = result["checks"]["BACKUP-RETENTION"]
    assert item["status"] == "warn" and "no valid backup in local" in item["message"]


def test_retention_waits_for_the_backup_lock_and_gives_up_with_a_warning(pg, ansible, tmp_path):
    backup_dir = tmp_path / "b"
    made = take_backups(ansible, pg, backup_dir, "x", 2)
    holder = bk.BackupLock(bk.lock_path(str(backup_dir), "hunter"), timeout=1).acquire()
    try:
        began = time.monotonic()
        result = ansible.run_module("hunter.ops.backup_retention", dict(
            backup_dir=str(backup_dir), database="hunter", keep_days=0, keep_count=1, lock_timeout=2))
        waited = time.monotonic() - began
    finally:
        holder.release()
    item = result["checks"]["BACKUP-RETENTION"]
    assert item["status"] == "warn" and "another backup of this database is running" in item["message"], item
    assert waited >= 2 and backups_in(backup_dir) == sorted(os.path.basename(p) for p in made)
    result = ansible.run_module("hunter.ops.backup_retention", dict(
        backup_dir=str(backup_dir), database="hunter", keep_days=0, keep_count=1, lock_timeout=2))
    assert result["checks"]["BACKUP-RETENTION"]["status"] == "pass"
    assert backups_in(backup_dir) == [os.path.basename(made[-1])]


# The role's default count for pre-release labels (a preflight's pre_v1.0 backups keep their 3 newest).
PRE_RELEASE_KEEP = yaml.safe_load((REPO_ROOT / "roles" / "pg_backup" / "defaults" / "main.yml").read_text())[
    "pg_backup_keep_count_by_label"]["pre_*"]
# Twice the kept count: every backup the first runs kept is pruned by the later ones (the whole kept set
# turns over, on each of the three sides), which is what 20 runs showed at four times the cost.
PREFLIGHT_RUNS = 2 * PRE_RELEASE_KEEP
REPEATED_PREFLIGHTS = [{
    "name": "Repeated preflight-style runs of the backup role with the default retention",
    "hosts": "db",
    "gather_facts": False,
    "tasks": [{"name": "One preflight's backup (pg_backup role, defaults)",
               "ansible.builtin.include_role": {"name": "hunter.ops.pg_backup"},
               "loop": "{{ range(%d) | list }}" % PREFLIGHT_RUNS, "loop_control": {"pause": 1}}],
}]


@pytest.mark.slow
def test_repeated_preflights_with_the_defaults_leave_a_bounded_number_of_backups(pg, s3_server, bucket, ansible,
                                                                                 tmp_path):
    """Runs of the role as the preflight runs it (label pre_v1.0, default retention), twice as many as the
    default keeps, leave the 3 newest pre-release backups locally, on the backup host and in the bucket: a
    bounded number, not one per run, and none of the backups the first runs kept."""
    assert PRE_RELEASE_KEEP >= 1 and PREFLIGHT_RUNS > PRE_RELEASE_KEEP
    playbook = tmp_path / "preflights.yml"
    playbook.write_text(json.dumps(REPEATED_PREFLIGHTS))
    inventory = role_inventory(pg, tmp_path, **s3_vars(s3_server, bucket), pg_backup_format="custom",
                               hunter_ops_metrics_dir="")
    run = ansible.run_playbook(playbook, inventory)
    assert run.rc == 0, run.stdout[-3000:]
    taken = [r for r in run.task_results(task="Dump, verify and write the manifest (BACKUP-CMD, BACKUP-VALID)")
             if r.get("backup")]
    assert len(taken) == PREFLIGHT_RUNS
    local, remote = backups_in(tmp_path / "backups"), backups_in(tmp_path / "backup-host")
    stored = {k.split("/")[1].replace(".manifest.json", "") for k in s3_server.objects(bucket, "ops/")}
    names = sorted(os.path.basename(r["backup"]) for r in taken)
    assert len(set(names)) == PREFLIGHT_RUNS, names
    newest = names[-PRE_RELEASE_KEEP:]
    assert local == remote == sorted(stored) == newest, (local, remote, stored)
    print(f"\n{PREFLIGHT_RUNS} preflight-style runs with the default retention leave {len(local)} backups "
          f"locally, {len(remote)} on the backup host, {len(stored)} in the bucket")


# -- S3 waits bounded by the configured timeout ------------------------------------------------------------------

def test_a_hung_s3_endpoint_costs_one_timeout_per_operation(pg, ansible, tmp_path, silent_server):
    """A listener that accepts and never answers: the copy, the listing (retention) and the drill's download
    each give up after about s3_timeout (botocore and s3transfer used to retry on top: 3-4x the timeout)."""
    timeout = 4
    made = take_backups(ansible, pg, tmp_path / "b", "x", 1)[0]
    params = dict(s3_bucket="hb", s3_prefix="p/", s3_endpoint_url=silent_server.url, s3_region="us-east-1",
                  s3_access_key="AKIATEST", s3_secret_key="not-a-secret", s3_timeout=timeout)
    client, bucket_name, prefix = backup_s3.s3_client_from_params(params)
    elapsed = {}
    for name, call in (("copy", lambda: backup_s3.upload_backup(client, bucket_name, prefix, made)),
                       ("listing", lambda: backup_s3.stored_backups(client, bucket_name, prefix)),
                       ("download", lambda: s3.download(client, bucket_name, dict(
                           name=os.path.basename(made), key=prefix + os.path.basename(made), files={}),
                           str(tmp_path)))):
        began = time.monotonic()
        with pytest.raises(s3.S3Error) as err:
            call()
        elapsed[name] = time.monotonic() - began
        assert "timeout" in str(err.value).lower(), str(err.value)
    # one timeout each (+1 s: a PUT waits up to 1 s for "100 Continue" before it sends), never a retry on top
    assert all(timeout - 0.5 <= seconds <= timeout + 2.5 for seconds in elapsed.values()), elapsed

    # the same through the modules' own processes (Ansible's start-up left out: it is not what is bounded),
    # with a longer timeout so that "one timeout plus start-up" and "a retry on top" cannot be confused
    # on a loaded machine
    timeout = 10
    params["s3_timeout"] = timeout
    took = {}
    began = time.monotonic()
    result = module_process(tmp_path, "backup_retention",
                            dict(params, backup_dir=str(tmp_path / "b"), database="hunter", keep_days=7))
    took["retention"] = time.monotonic() - began
    item = result["checks"]["BACKUP-RETENTION"]
    assert item["status"] == "warn" and "bucket not pruned" in item["message"] and "timeout" in item["message"].lower()
    assert item["evidence"]["local"]["newest_valid"] == os.path.basename(made), "the local side is pruned all the same"
    began = time.monotonic()
    copy = module_process(tmp_path, "backup_s3_copy", dict(params, backup=made))
    took["copy"] = time.monotonic() - began
    assert copy.get("failed") and not copy["location"]["verified"] and "timeout" in copy["msg"].lower()
    began = time.monotonic()
    drill = module_process(tmp_path, "pg_restore_dryrun", dict(
        params, db_host=pg.host, db_port=pg.port, db_user="postgres", db_password=pg.superuser_password,
        download_dir=str(tmp_path / "drill-download")))
    took["drill"] = time.monotonic() - began
    assert drill["checks"]["RESTORE-DRYRUN"]["status"] == "fail", drill["checks"]["RESTORE-DRYRUN"]
    assert "timeout" in drill["checks"]["RESTORE-DRYRUN"]["message"].lower()
    assert all(timeout <= seconds < 2 * timeout for seconds in took.values()), took
    print("\nhung S3 endpoint: copy %.1f s, listing %.1f s, download %.1f s with s3_timeout 4 s; module processes "
          "with s3_timeout %d s: %s" % (elapsed["copy"], elapsed["listing"], elapsed["download"], timeout,
                                        ", ".join("%s %.1f s" % kv for kv in took.items())))


def module_process(tmp_path, name, args) -> dict:
    """Run a module as Ansible does on a host (its own python process, arguments in a file); its JSON result."""
    path = tmp_path / f"{name}-args.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    path.chmod(0o600)
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "plugins" / "modules" / f"{name}.py"), str(path)],
                          capture_output=True, text=True, timeout=300, check=False,
                          env=dict(os.environ, PYTHONPATH=str(REPO_ROOT / ".ansible" / "collections")))
    return json.loads(proc.stdout)


def test_metrics_directory_that_cannot_be_written_is_a_warning_not_a_failure(ansible, tmp_path):
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("x")
    data = {"checks": {"BACKUP-CMD": {"status": "pass"}, "BACKUP-VALID": {"status": "pass"}}, "backup": None}
    labels = dict(host="db1", database="h", label="x")
    result = ansible.run_module("hunter.ops.job_metrics",
                                dict(job="backup", directory=str(blocked / "metrics"), labels=labels, data=data))
    assert not result.get("failed") and result["written"] is False and "metrics not written" in result["msg"]
    assert any("metrics not written" in w for w in result.get("warnings", []))
    bad = ansible.run_module("hunter.ops.job_metrics",
                             dict(job="backup", directory=str(tmp_path), labels=dict(host="db1"), data=data))
    assert bad.get("failed") and bad["msg"] == "labels: backup needs database, label"
    off = ansible.run_module("hunter.ops.job_metrics",
                             dict(job="preflight", directory="", labels=dict(environment="s"), data={}))
    assert not off.get("failed") and off["path"] is None and "off" in off["msg"]
    check = ansible.run_module("hunter.ops.job_metrics",
                               dict(job="preflight", directory=str(tmp_path / "m"), labels=dict(environment="s"),
                                    data={}), check=True)
    assert check["path"].endswith("hunter_ops_preflight_s.prom") and not (tmp_path / "m").exists()

"""CHECKLIST 6.3 restore drill (RESTORE-DRYRUN, RESTORE-RTO) on a real PostgreSQL.

The backups are taken by the real hunter.ops.pg_backup module (every format), so the drill reads
manifests exactly as the producer writes them. Cases are grouped: one ansible-playbook run per
group of module calls. Interruptions run the module directly (python <module> <args.json>), the
only way to hold its PID and signal it mid-restore.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.harness import AnsibleHarness

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / ".ansible" / "collections"))
from ansible_collections.hunter.ops.plugins.module_utils import backup, backup_s3, s3  # noqa: E402

IDS = ("RESTORE-DRYRUN", "RESTORE-RTO")
SEED_COUNTS = {"public.companies": {"expected": 50, "restored": 50},
               "public.domain_signals": {"expected": 400, "restored": 400}}
# (case, pg_backup format, compression): every format the drill restores.
FORMATS = [
    ("plain", "plain", "none"),
    ("plain_gzip", "plain-gzip", "gzip"),
    ("plain_zstd", "plain", "zstd"),
    ("plain_lz4", "plain", "lz4"),
    ("custom", "custom", "gzip"),
    ("custom_zstd", "custom", "zstd"),       # pg_dump 15: an external zstd around the archive
    ("directory", "directory", "gzip"),
]


def scratch_databases(pg) -> list[str]:
    out = pg.psql("SELECT datname FROM pg_database WHERE datname LIKE 'restore\\_drill%' ORDER BY 1",
                  superuser=True)
    return [line for line in out.splitlines() if line]


def drill(pg, **args) -> dict:
    """A pg_restore_dryrun task against the session server, as the app role (CREATEDB)."""
    base = dict(db_host=pg.host, db_port=pg.port, db_user=pg.user, db_password="{{ db_password }}")
    base.update(args)
    return {"hunter.ops.pg_restore_dryrun": base}


def the_backup(directory: Path) -> Path:
    """The one backup in a directory."""
    found = [p for p in directory.iterdir() if backup.parse_backup_name(p.name)]
    assert len(found) == 1, found
    return found[0]


def rewrite_manifest(path: Path, **changes) -> dict:
    """Change manifest keys (a forged manifest); size and sha256 are recomputed unless given."""
    manifest = backup.load_manifest(str(path))
    manifest.update(size_bytes=backup.backup_size(str(path)), sha256=backup.backup_sha256(str(path)))
    manifest.update(changes)
    backup.write_manifest(str(path), manifest)
    return manifest


def copy_backup(src: Path, dest_dir: Path, name: str | None = None) -> Path:
    """A copy of a backup and its manifest (optionally under another valid name)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / (name or src.name)
    (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest)
    shutil.copy2(backup.manifest_path(str(src)), backup.manifest_path(str(dest)))
    if name:
        rewrite_manifest(dest, backup=name)
    return dest


@pytest.fixture(scope="module")
def harness(tmp_path_factory) -> AnsibleHarness:
    return AnsibleHarness(base_dir=tmp_path_factory.mktemp("drill-ansible"))


@pytest.fixture(scope="module")
def backups(pg, harness, tmp_path_factory) -> dict[str, Path]:
    """{case: directory holding one backup of the seeded database} taken by hunter.ops.pg_backup."""
    root = tmp_path_factory.mktemp("drill-backups")
    tasks = [{"hunter.ops.pg_backup": dict(
        db_host=pg.host, db_port=pg.port, db_name=pg.database, db_user=pg.user, db_password="{{ db_password }}",
        backup_dir=str(root / case), label="drill", format=fmt, compression=method)}
        for case, fmt, method in FORMATS]
    run, results = harness.run_tasks(tasks, extravars={"db_password": pg.password})
    for (case, fmt, method), result in zip(FORMATS, results):
        assert not result.get("check_task_failed"), (case, fmt, method, result.get("msg"))
    return {case: root / case for case, fmt, method in FORMATS}


@pytest.fixture(scope="module")
def slow_backup(backups, tmp_path_factory) -> Path:
    """A valid plain backup whose restore sleeps 30 s half-way (time to interrupt it)."""
    src = the_backup(backups["plain"])
    dest = copy_backup(src, tmp_path_factory.mktemp("drill-slow"))
    sql = dest.read_text()
    at = sql.index("COPY public.domain_signals")
    dest.write_text(sql[:at] + "SELECT pg_sleep(30);\n" + sql[at:])
    rewrite_manifest(dest)
    return dest


def test_every_format_restores_verifies_and_leaves_nothing(pg, harness, backups, assert_no_secret):
    cases = [drill(pg, backup_dir=str(backups[case]), production_size="40GB") for case, fmt, method in FORMATS]
    cases += [
        drill(pg, backup_dir=str(backups["directory"]), tables=["companies"]),
        drill(pg, backup_path=str(the_backup(backups["custom"])), jobs=1, scratch_prefix="restore_drill_path"),
        dict(drill(pg, backup_dir=str(backups["directory"])), check_mode=True),
    ]
    run, results = harness.run_tasks(cases, extravars={"db_password": pg.password})

    for (case, fmt, method), result in zip(FORMATS, results):
        dry, rto = result["checks"]["RESTORE-DRYRUN"], result["checks"]["RESTORE-RTO"]
        assert dry["status"] == "pass", (case, dry["message"])
        ev = dry["evidence"]
        assert ev["counts"] == SEED_COUNTS, case
        assert ev["tables"] == {"expected": 2, "restored": 2, "missing": [], "unexpected": []}
        assert ev["scratch_database"].startswith("restore_drill_2") and ev["scratch_dropped"] is True
        assert ev["backup"]["format"] == fmt and ev["backup"]["sha256_verified"] is True
        assert result["changed"] is False and result["scratch_dropped"] is True
        assert "scratch dropped" in dry["message"]
        # RTO: measured, compared with 15 min, projected for 40 GB from the measured throughput
        assert rto["status"] in ("pass", "warn"), rto["message"]
        figures = rto["evidence"]
        assert figures["target_s"] == 900 and 0 < figures["restore_s"] < 60
        assert figures["production_size_bytes"] == 40 * 1024 ** 3
        assert figures["projected_s"] == pytest.approx(
            figures["production_size_bytes"] / figures["throughput_bytes_per_s"], rel=0.01)
        assert figures["restored_database_bytes"] > 0 and figures["backup_size_bytes"] > 0

    commands = {case: r["checks"]["RESTORE-DRYRUN"]["evidence"]["restore_command"]
                for (case, fmt, method), r in zip(FORMATS, results)}
    assert "-v ON_ERROR_STOP=1 --single-transaction" in commands["plain"]
    assert commands["plain_gzip"].startswith("gzip -dc") and " | " in commands["plain_gzip"]
    assert commands["plain_zstd"].startswith("zstd -dcq") and commands["plain_lz4"].startswith("lz4 -dcq")
    assert commands["custom_zstd"].startswith("zstd -dcq") and "pg_restore" in commands["custom_zstd"]
    assert "--no-owner --no-acl --exit-on-error" in commands["directory"] and " -j " in commands["directory"]

    only_companies, by_path, checked = results[len(FORMATS):]
    assert only_companies["checks"]["RESTORE-DRYRUN"]["evidence"]["counts"] == {
        "public.companies": {"expected": 50, "restored": 50}}
    assert by_path["checks"]["RESTORE-DRYRUN"]["status"] == "pass"
    assert by_path["scratch_database"].startswith("restore_drill_path_")
    assert " -j " not in by_path["checks"]["RESTORE-DRYRUN"]["evidence"]["restore_command"]
    # check mode: says what it would do, creates nothing
    assert {i: checked["checks"][i]["status"] for i in IDS} == {"RESTORE-DRYRUN": "skip", "RESTORE-RTO": "skip"}
    assert "would restore" in checked["checks"]["RESTORE-DRYRUN"]["message"]

    assert scratch_databases(pg) == []
    assert_no_secret(run, pg.password, pg.superuser_password)


def test_bad_backups_and_refusals_fail_clearly_and_drop_the_scratch(pg, harness, backups, tmp_path):
    # a dump cut off mid-way whose manifest matches it (checksummed after the damage)
    cut_plain = copy_backup(the_backup(backups["plain"]), tmp_path / "cut_plain")
    cut_plain.write_bytes(cut_plain.read_bytes()[:int(cut_plain.stat().st_size * 0.7)])
    rewrite_manifest(cut_plain)
    cut_custom = copy_backup(the_backup(backups["custom"]), tmp_path / "cut_custom")
    cut_custom.write_bytes(cut_custom.read_bytes()[:int(cut_custom.stat().st_size * 0.6)])
    rewrite_manifest(cut_custom)
    # a damaged file whose manifest still describes the original
    damaged = copy_backup(the_backup(backups["plain_gzip"]), tmp_path / "damaged")
    damaged.write_bytes(damaged.read_bytes()[:-100])
    # a manifest whose snapshot count was tampered with
    tampered = copy_backup(the_backup(backups["directory"]), tmp_path / "tampered")
    manifest = backup.load_manifest(str(tampered))
    rewrite_manifest(tampered, tables=dict(manifest["tables"], **{"public.companies": 51}))
    ok_dir = str(backups["custom"])

    cases = [
        drill(pg, backup_path=str(cut_plain)),                                        # 0
        drill(pg, backup_path=str(cut_custom)),                                       # 1
        drill(pg, backup_dir=str(damaged.parent)),                                    # 2
        drill(pg, backup_dir=str(tampered.parent)),                                   # 3
        drill(pg, backup_dir=ok_dir, scratch_name=pg.database),                       # 4
        drill(pg, backup_dir=ok_dir, scratch_name="keep_me", protected_names=["keep_me"]),  # 5
        drill(pg, backup_dir=ok_dir, production_hosts=["hunter-prod-db-1", pg.host]),  # 6
        drill(pg, backup_dir=ok_dir, host_in_production=True),                        # 7
        drill(pg, backup_dir=ok_dir, host_in_production=True, allow_production=True),  # 8
        drill(pg, backup_dir=ok_dir, scratch_prefix="Bad-Prefix"),                    # 9
        drill(pg, backup_dir=ok_dir, db_password="not-the-password"),                 # 10
    ]
    run, r = harness.run_tasks(cases, extravars={"db_password": pg.password})

    def dry(i):
        return r[i]["checks"]["RESTORE-DRYRUN"]

    for i in (0, 1):  # the restore itself fails with PostgreSQL's message; scratch dropped
        assert dry(i)["status"] == "fail" and r[i]["checks"]["RESTORE-RTO"]["status"] == "fail"
        assert "failed" in dry(i)["message"] and dry(i)["message"].endswith("scratch dropped")
        assert dry(i)["evidence"]["scratch_dropped"] is True and dry(i)["evidence"]["scratch_database"]
    assert "psql" in dry(0)["message"] and "ERROR" in dry(0)["message"]
    assert "pg_restore" in dry(1)["message"]
    assert dry(2)["status"] == "fail" and "none matching its manifest" in dry(2)["message"]
    assert "scratch_database" not in dry(2)["evidence"]          # refused before creating anything
    assert dry(3)["status"] == "fail" and dry(3)["evidence"]["mismatches"] == {
        "public.companies": {"expected": 51, "restored": 50}}
    assert "public.companies: 50 rows restored, manifest has 51" in dry(3)["message"]
    assert r[4].get("check_task_failed") and "source database" in r[4]["msg"]
    assert r[5].get("check_task_failed") and "protected" in r[5]["msg"]
    assert r[6].get("check_task_failed") and "production group" in r[6]["msg"]
    assert r[7].get("check_task_failed") and "local to a host of the production group" in r[7]["msg"]
    assert dry(8)["status"] == "pass"
    assert r[9].get("check_task_failed") and r[9]["msg"].startswith("scratch_prefix: ")
    assert dry(10)["status"] == "fail" and "password authentication failed" in dry(10)["message"]
    assert scratch_databases(pg) == []
    assert pg.psql("SELECT count(*) FROM pg_database WHERE datname IN ('keep_me')", superuser=True) == "0"


def test_s3_source_downloads_checks_sha256_and_refuses_a_mismatch(pg, harness, backups, s3_server,
                                                                  assert_no_secret, tmp_path):
    client = s3.client(s3_server.endpoint_url, s3_server.region, s3_server.access_key, s3_server.secret_key)
    bucket = "drill-%d" % os.getpid()
    client.create_bucket(Bucket=bucket)
    good = the_backup(backups["custom"])
    backup_s3.upload_backup(client, bucket, "good/", str(good))
    backup_s3.upload_backup(client, bucket, "bad/", str(good))
    backup_s3.upload_backup(client, bucket, "mixed/", str(good))
    # a newer directory backup in "mixed/" whose stored file differs from what its manifest says
    src = the_backup(backups["directory"])
    stamp = time.strftime("%Y%m%d_%H%M%S", time.localtime(time.time() + 3600))
    newer = copy_backup(src, tmp_path / "newer", name="backup_drill_%s.dir" % stamp)
    rewrite_manifest(newer, started_at=backup.iso_utc(time.time() + 3600))
    backup_s3.upload_backup(client, bucket, "mixed/", str(newer))

    def flip_last_byte(key):
        body = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        body[-1] ^= 0xFF
        client.put_object(Bucket=bucket, Key=key, Body=bytes(body))
    flip_last_byte("bad/" + good.name)
    flip_last_byte("mixed/%s/toc.dat" % newer.name)

    s3_args = dict(s3_bucket=bucket, s3_endpoint_url=s3_server.endpoint_url, s3_region=s3_server.region,
                   s3_access_key=s3_server.access_key, s3_secret_key="{{ s3_secret }}")
    missing_bucket = {**s3_args, "s3_bucket": "no-such-bucket"}
    download = tmp_path / "downloads"
    run, r = harness.run_tasks(
        [drill(pg, s3_prefix="good", download_dir=str(download), **s3_args),
         drill(pg, s3_prefix="bad", **s3_args),
         drill(pg, s3_prefix="mixed", **s3_args),
         drill(pg, **missing_bucket)],
        extravars={"db_password": pg.password, "s3_secret": s3_server.secret_key})

    good_item = r[0]["checks"]["RESTORE-DRYRUN"]
    assert good_item["status"] == "pass", good_item["message"]
    assert good_item["evidence"]["backup"]["source"] == "s3"
    assert good_item["evidence"]["backup"]["s3"] == "s3://%s/good/%s" % (bucket, good.name)
    assert list(download.iterdir()) == []                        # the download is removed afterwards
    bad_item = r[1]["checks"]["RESTORE-DRYRUN"]
    assert bad_item["status"] == "fail"
    assert "sha256 is" in bad_item["message"] and "manifest says" in bad_item["message"]
    assert "scratch_database" not in bad_item["evidence"]        # refused before anything was created
    mixed = r[2]["checks"]["RESTORE-DRYRUN"]
    assert mixed["status"] == "warn" and r[2]["backup"]["name"] == good.name
    assert "1 newer backup(s) skipped as invalid (%s)" % newer.name in mixed["message"]
    missing = r[3]["checks"]["RESTORE-DRYRUN"]
    assert missing["status"] == "fail" and "NoSuchBucket" in missing["message"]
    assert scratch_databases(pg) == []
    assert_no_secret(run, pg.password, s3_server.secret_key)


# -- interruptions ----------------------------------------------------------------------------

def start_module(pg, tmp_path, **args) -> subprocess.Popen:
    """The module run directly (AnsibleModule reads its args file), so its PID can be signalled."""
    params = dict(db_host=pg.host, db_port=pg.port, db_user=pg.user, db_password=pg.password)
    params.update(args)
    path = tmp_path / ("args-%d.json" % time.monotonic_ns())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": params}, handle)
    env = dict(os.environ, PYTHONPATH=str(REPO / ".ansible" / "collections"))
    return subprocess.Popen([sys.executable, str(REPO / "plugins" / "modules" / "pg_restore_dryrun.py"), str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def wait_for_restore(pg, proc) -> tuple[str, int]:
    """(scratch name, restore child PID) once the restore is under way."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        names, kids = scratch_databases(pg), children(proc.pid)
        if names and kids:
            return names[0], kids[0]
        time.sleep(0.1)
    raise AssertionError("the restore did not start")


def finish(proc) -> dict:
    out, err = proc.communicate(timeout=60)
    assert out, err
    return json.loads(out)


def test_interrupted_drills_leave_no_scratch_database(pg, slow_backup, tmp_path):
    # SIGTERM to the module: it stops the restore, drops the scratch database, then fails
    proc = start_module(pg, tmp_path, backup_path=str(slow_backup))
    name, restore_pid = wait_for_restore(pg, proc)
    proc.send_signal(signal.SIGTERM)
    result = finish(proc)
    assert result["failed"] and "interrupted by signal 15" in result["msg"] and "scratch dropped" in result["msg"]
    assert result["checks"]["RESTORE-DRYRUN"]["status"] == "fail"
    assert result["scratch_database"] == name and scratch_databases(pg) == []

    # the restore process killed: the item fails with what happened, the scratch database is dropped
    proc = start_module(pg, tmp_path, backup_path=str(slow_backup))
    name, restore_pid = wait_for_restore(pg, proc)
    os.kill(restore_pid, signal.SIGKILL)
    result = finish(proc)
    item = result["checks"]["RESTORE-DRYRUN"]
    assert item["status"] == "fail" and "psql" in item["message"] and "signal 9" in item["message"]
    assert result["scratch_dropped"] is True and scratch_databases(pg) == []

    # the module killed outright: its restore dies with it, the next run drops the leftover
    proc = start_module(pg, tmp_path, backup_path=str(slow_backup))
    name, restore_pid = wait_for_restore(pg, proc)
    proc.kill()
    proc.communicate(timeout=10)
    deadline = time.monotonic() + 5
    while Path(f"/proc/{restore_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{restore_pid}").exists(), "the restore outlived the module"
    assert scratch_databases(pg) == [name]
    young = finish(start_module(pg, tmp_path, backup_path=str(slow_backup), leftover_max_age=3600,
                                _ansible_check_mode=True))
    assert young["leftovers_dropped"] == []                      # younger than the limit: maybe running
    result = finish(start_module(pg, tmp_path, backup_dir=str(slow_backup.parent), leftover_max_age=0,
                                 restore_timeout=2))
    assert [e["name"] for e in result["leftovers_dropped"]] == [name]
    assert result["leftovers_dropped"][0]["dropped"] is True and result["changed"] is True
    assert "dropped 1 leftover(s) of earlier runs: %s" % name in result["checks"]["RESTORE-DRYRUN"]["message"]
    assert scratch_databases(pg) == []


# -- the role, through its playbook -------------------------------------------------------------

def test_restore_drill_playbook_refuses_production_and_records_both_items(pg, harness, backups, assert_no_secret):
    common = {"hunter_db_host": pg.host, "hunter_db_port": pg.port, "hunter_db_name": pg.database,
              "hunter_db_user": pg.user, "hunter_db_password": pg.password,
              "hunter_backup_dir": str(backups["directory"]),
              "pg_restore_dryrun_tables": ["companies", "domain_signals"]}
    inventory = {"all": {"vars": common, "children": {
        "db": {"hosts": {"db-staging": {}, "db-prod": {}, "db-badvars": {"pg_restore_dryrun_jobs": "many"}}},
        "production": {"hosts": {"db-prod": {}, "app-prod": {"ansible_host": "10.10.0.11"}}}}}}
    run = harness.run_playbook("playbooks/restore_drill.yml", inventory)
    assert run.rc != 0                                           # the drill of db-prod failed: non-zero exit
    drills = run.artifact_data["hunter_restore_drill"]
    staging, prod = drills["db-staging"], drills["db-prod"]
    assert staging["checks"]["RESTORE-DRYRUN"]["status"] == "pass"
    assert staging["checks"]["RESTORE-RTO"]["status"] == "pass"
    assert staging["drill"]["scratch_dropped"] is True and staging["drill"]["rto"]["target_s"] == 900
    assert set(staging["checks"]["RESTORE-DRYRUN"]["evidence"]["counts"]) == set(SEED_COUNTS)
    for check_id in IDS:
        assert prod["checks"][check_id]["status"] == "fail"
        assert "local to a host of the production group" in prod["checks"][check_id]["message"]
        # bad settings fail the role's argument validation: both items fail, naming the variable
        bad = drills["db-badvars"]["checks"][check_id]
        assert bad["status"] == "fail" and "pg_restore_dryrun_jobs" in bad["message"]
    assert scratch_databases(pg) == []
    assert_no_secret(run, pg.password)

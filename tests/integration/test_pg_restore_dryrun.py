"""CHECKLIST 6.3 restore drill (RESTORE-DRYRUN, RESTORE-RTO) on a real PostgreSQL.

The backups are taken by the real hunter.ops.pg_backup module (every format), so the drill reads
manifests exactly as the producer writes them. Cases are grouped: one ansible-playbook run per
group of module calls. Interruptions run the module directly (python <module> <args.json>), the
only way to hold its PID and signal it mid-restore.

A restore that lacks an object is made the way it happens: a backup whose content lost the
object (its statement removed from a plain dump, the checksum recomputed, as a damaged or
hand-edited file would be) while its manifest still describes the source database.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sandbox.services import seed
from tests.harness import AnsibleHarness

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / ".ansible" / "collections"))
from ansible_collections.hunter.ops.plugins.module_utils import backup, backup_s3, s3  # noqa: E402
from ansible_collections.hunter.ops.plugins.module_utils import pg as pg_client  # noqa: E402
from ansible_collections.hunter.ops.plugins.module_utils.signals import (  # noqa: E402
    Interrupted, deferring_signals, raising_on_signals)

IDS = ("RESTORE-DRYRUN", "RESTORE-RTO")
SEED_COUNTS = {"public.companies": {"expected": 50, "restored": 50},
               "public.domain_signals": {"expected": 400, "restored": 400}}
SEED_SCHEMA = {"views": 0, "materialized_views": 0, "indexes": 5, "constraints": 5, "sequences": 2, "functions": 0,
               "triggers": 0, "extensions": 1}
# Objects of every kind the inventory records, on top of the seed (a database of its own).
RICH_SQL = """
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE VIEW company_summary AS
  SELECT c.id, c.domain, count(s.id) AS signals FROM companies c LEFT JOIN domain_signals s ON s.company_id = c.id
  GROUP BY c.id, c.domain;
CREATE MATERIALIZED VIEW signal_types AS SELECT signal_type, count(*) AS n FROM domain_signals GROUP BY signal_type;
CREATE INDEX companies_name_trgm_idx ON companies USING gin (name gin_trgm_ops);
CREATE SEQUENCE invoice_numbers START 1000;
SELECT nextval('invoice_numbers'), nextval('invoice_numbers');
CREATE TABLE bookings (id int PRIMARY KEY, company_id int REFERENCES companies (id), during tsrange,
  EXCLUDE USING gist (during WITH &&));
CREATE FUNCTION touch_created_at() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.created_at := now(); RETURN NEW; END $$;
CREATE TRIGGER companies_touch BEFORE INSERT ON companies FOR EACH ROW EXECUTE FUNCTION touch_created_at();
CREATE PROCEDURE noop() LANGUAGE sql AS $$ SELECT 1 $$;
"""
RICH_SCHEMA = {"views": 1, "materialized_views": 1, "indexes": 8, "constraints": 8, "sequences": 3, "functions": 2,
               "triggers": 1, "extensions": 2}
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


def without_entry(sql: str, entry: str) -> str:
    """A plain dump without one of its entries (e.g. 'Type: VIEW; Schema: public' of a name): from its
    '-- Name: ...' header up to the next entry."""
    match = re.search(r"\n--\n-- Name: [^\n]*%s[^\n]*\n" % re.escape(entry), sql)
    assert match, entry
    following = re.compile(r"\n--\n-- (?:Data for )?Name: ").search(sql, match.end())
    return sql[:match.start()] + sql[following.start():]


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
        # the seed's indexes, constraints, sequences and extension, as recorded in the manifest
        assert ev["schema"]["compared"] == SEED_SCHEMA and ev["schema"]["missing"] == {}
        assert ev["schema"]["definitions_compared"] is True
        assert "schema as recorded (5 indexes, 5 constraints, 2 sequences, 1 extension)" in dry["message"]
        # RTO: measured, compared with 15 min, projected for 40 GB from the measured throughput
        assert rto["status"] in ("pass", "warn"), rto["message"]
        figures = rto["evidence"]
        assert figures["target_s"] == 900 and 0 < figures["restore_s"] < 60
        assert figures["restore_s"] < figures["end_to_end_s"] < 60
        assert set(figures["phases_s"]) >= {"sha256_s", "create_s", "restore_s", "verify_s", "drop_s"}
        assert figures["end_to_end_projected_s"] > figures["projected_s"]
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
    # the newest backup damaged (its manifest still describes the original), an older valid one beside it
    older = copy_backup(the_backup(backups["plain_gzip"]), tmp_path / "damaged",
                        name="backup_drill_20200101_000000.sql.gz")
    rewrite_manifest(older, started_at="2020-01-01T00:00:00Z")
    damaged = copy_backup(the_backup(backups["plain_gzip"]), tmp_path / "damaged")
    damaged.write_bytes(damaged.read_bytes()[:-100] + bytes(100))
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
        drill(pg, backup_dir=ok_dir, scratch_name="dbname=%s" % pg.database),         # 11
        drill(pg, backup_dir=ok_dir, scratch_name="drill x"),                         # 12
        drill(pg, backup_dir=os.path.relpath(ok_dir)),                                # 13
    ]
    before = pg.psql("SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace")
    run, r = harness.run_tasks(cases, extravars={"db_password": pg.password})

    def dry(i):
        return r[i]["checks"]["RESTORE-DRYRUN"]

    for i in (0, 1):  # the restore itself fails with PostgreSQL's message; scratch dropped
        assert dry(i)["status"] == "fail" and r[i]["checks"]["RESTORE-RTO"]["status"] == "fail"
        assert "failed" in dry(i)["message"] and dry(i)["message"].endswith("scratch dropped")
        assert dry(i)["evidence"]["scratch_dropped"] is True and dry(i)["evidence"]["scratch_database"]
    assert "psql" in dry(0)["message"] and "ERROR" in dry(0)["message"]
    assert "pg_restore" in dry(1)["message"]
    # the newest backup is invalid: the drill fails with why, and does not test the older one instead
    assert dry(2)["status"] == "fail" and not r[2].get("backup")
    assert dry(2)["message"].startswith("the newest backup in %s, %s, is not valid: sha256 is " % (damaged.parent,
                                                                                                   damaged.name))
    assert "manifest says" in dry(2)["message"] and "an older one, %s, is not tested instead" % older.name \
        in dry(2)["message"]
    assert "scratch_database" not in dry(2)["evidence"]          # refused before creating anything
    assert dry(3)["status"] == "fail" and dry(3)["evidence"]["mismatches"] == {
        "public.companies": {"expected": 51, "restored": 50}}
    assert "public.companies: 50 rows restored, manifest has 51" in dry(3)["message"]
    assert r[4].get("check_task_failed") and "source database" in r[4]["msg"]
    assert r[5].get("check_task_failed") and "protected" in r[5]["msg"]
    assert r[6].get("check_task_failed") and "production group" in r[6]["msg"]
    assert r[7].get("check_task_failed") and "local to a host of the production group" in r[7]["msg"]
    assert dry(8)["status"] == "pass", dry(8)["message"]
    assert r[9].get("check_task_failed") and r[9]["msg"].startswith("scratch_prefix: ")
    assert dry(10)["status"] == "fail" and "password authentication failed" in dry(10)["message"]
    # a scratch name a client could expand into a connection string (to the source database) is refused
    assert r[11].get("check_task_failed") and r[11]["msg"].startswith("scratch_name: must be a lower-case identifier")
    assert "never a connection string" in r[11]["msg"] and "scratch_database" not in r[11]
    assert r[12].get("check_task_failed") and r[12]["msg"].startswith("scratch_name: ")
    assert r[13].get("check_task_failed") and r[13]["msg"].startswith("backup_dir: must be an absolute path")
    assert pg.psql("SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace") \
        == before
    assert pg.psql("SELECT count(*) FROM companies") == "50"
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
    assert mixed["status"] == "fail" and not r[2].get("backup")
    assert mixed["message"].startswith("the newest backup in s3://%s/mixed/ (downloaded), %s, is not valid: sha256 is "
                                       % (bucket, newer.name))
    assert "scratch_database" not in mixed["evidence"]
    missing = r[3]["checks"]["RESTORE-DRYRUN"]
    assert missing["status"] == "fail" and "NoSuchBucket" in missing["message"]
    assert scratch_databases(pg) == []
    assert_no_secret(run, pg.password, s3_server.secret_key)


# -- the schema: a restore lacking an object fails, naming it ----------------------------------------

@pytest.fixture(scope="module")
def rich(pg, harness, tmp_path_factory) -> dict[str, Path]:
    """Backups (plain, directory) of a database with every kind of object the inventory records."""
    pg.psql('CREATE DATABASE hunter_rich OWNER "%s"' % pg.user, superuser=True)
    seed(pg, database="hunter_rich")
    pg.psql(RICH_SQL, database="hunter_rich")
    root = tmp_path_factory.mktemp("drill-rich")
    tasks = [{"hunter.ops.pg_backup": dict(
        db_host=pg.host, db_port=pg.port, db_name="hunter_rich", db_user=pg.user, db_password="{{ db_password }}",
        backup_dir=str(root / fmt), label="rich", format=fmt)} for fmt in ("plain", "directory")]
    run, results = harness.run_tasks(tasks, extravars={"db_password": pg.password})
    for result in results:
        assert not result.get("check_task_failed"), result.get("msg")
        assert result["manifest"]["manifest_version"] == 2
        assert dict((k, len(v)) for k, v in result["manifest"]["schema"].items()) == RICH_SCHEMA
    yield {fmt: root / fmt for fmt in ("plain", "directory")}
    pg.psql("DROP DATABASE hunter_rich WITH (FORCE)", superuser=True)


def edited_plain(rich, tmp_path, case, edit) -> Path:
    """A copy of the rich plain backup whose SQL went through edit(), its checksum recomputed: the
    manifest still describes the source database, the file no longer holds all of it."""
    dest = copy_backup(the_backup(rich["plain"]), tmp_path / case)
    dest.write_text(edit(dest.read_text()))
    rewrite_manifest(dest)
    return dest


def without_first_row(table):
    def edit(sql):
        at = sql.index("COPY public.%s (" % table)
        first = sql.index("\n", at) + 1
        return sql[:first] + sql[sql.index("\n", first) + 1:]
    return edit


def test_a_restore_lacking_a_view_an_index_or_a_foreign_key_fails_naming_it(pg, harness, rich, tmp_path):
    cases = {
        "complete": rich["plain"],
        "complete_directory": rich["directory"],
        "no_view": edited_plain(rich, tmp_path, "no_view", lambda sql: without_entry(sql, "company_summary; Type: VIEW;")),
        "no_index": edited_plain(rich, tmp_path, "no_index",
                                 lambda sql: without_entry(sql, "companies_name_trgm_idx; Type: INDEX;")),
        "no_fk": edited_plain(rich, tmp_path, "no_fk", lambda sql: without_entry(
            sql, "domain_signals domain_signals_company_id_fkey; Type: FK CONSTRAINT;")),
        "no_setval": edited_plain(rich, tmp_path, "no_setval",
                                  lambda sql: without_entry(sql, "invoice_numbers; Type: SEQUENCE SET;")),
        "row_lost": edited_plain(rich, tmp_path, "row_lost", without_first_row("domain_signals")),
    }
    # a directory backup with a data file damaged behind a recomputed checksum
    damaged = copy_backup(the_backup(rich["directory"]), tmp_path / "damaged_data")
    data = max(damaged.glob("*.dat.gz"), key=lambda f: f.stat().st_size)
    raw = bytearray(data.read_bytes())
    for at in range(len(raw) // 2, len(raw) // 2 + 64):
        raw[at] ^= 0x5A
    data.write_bytes(bytes(raw))
    rewrite_manifest(damaged)
    cases["damaged_data"] = damaged
    # a manifest of the first version (no schema inventory)
    old = copy_backup(the_backup(rich["plain"]), tmp_path / "manifest_v1")
    manifest = backup.load_manifest(str(old))
    manifest.pop("schema")
    manifest["manifest_version"] = 1
    backup.write_manifest(str(old), manifest)
    cases["manifest_v1"] = old
    names = list(cases)
    run, results = harness.run_tasks(
        [drill(pg, **{"backup_dir" if path.is_dir() and not path.name.endswith(".dir") else "backup_path": str(path)})
         for path in cases.values()], extravars={"db_password": pg.password})
    dry = dict((name, r["checks"]["RESTORE-DRYRUN"]) for name, r in zip(names, results))

    for name in ("complete", "complete_directory"):
        assert dry[name]["status"] == "pass", dry[name]["message"]
        assert dry[name]["evidence"]["schema"]["compared"] == RICH_SCHEMA
        assert ("schema as recorded (1 view, 1 materialized view, 8 indexes, 8 constraints, 3 sequences, "
                "2 functions, 1 trigger, 2 extensions)") in dry[name]["message"]
    for name, expected in (
            ("no_view", "missing after restore: 1 view (public.company_summary)"),
            ("no_index", "missing after restore: 1 index (public.companies_name_trgm_idx)"),
            ("no_fk", "missing after restore: 1 foreign key (public.domain_signals.domain_signals_company_id_fkey)"),
            ("no_setval", "different: 1 sequence (public.invoice_numbers)"),
            ("row_lost", "public.domain_signals: 399 rows restored, manifest has 400")):
        item = dry[name]
        assert item["status"] == "fail", (name, item["message"])
        assert "but differs from its manifest: " in item["message"] and expected in item["message"], item["message"]
        assert item["message"].endswith("scratch dropped")
    schema = dict((name, dry[name]["evidence"]["schema"]) for name in ("no_view", "no_index", "no_fk", "no_setval"))
    assert schema["no_view"]["missing"] == {"views": ["public.company_summary"]}
    assert schema["no_index"]["missing"] == {"indexes": ["public.companies_name_trgm_idx"]}
    assert schema["no_fk"]["missing"] == {"constraints": ["public.domain_signals.domain_signals_company_id_fkey"]}
    assert schema["no_setval"]["different"] == {"sequences": {
        "public.invoice_numbers": "never used after restore, manifest has last value 1001"}}
    assert dry["damaged_data"]["status"] == "fail" and dry["damaged_data"]["message"].startswith(
        "restore of %s into restore_drill_" % damaged.name) and "pg_restore failed" in dry["damaged_data"]["message"]
    v1 = dry["manifest_v1"]
    assert v1["status"] == "warn", v1["message"]
    assert v1["message"].endswith("not compared: views, materialized views, indexes, constraints, sequences, functions, "
                                  "triggers, extensions (manifest_version 1 has no schema inventory); scratch dropped")
    assert v1["evidence"]["schema"] == {"compared": False, "reason": "manifest_version 1 has no schema inventory"}
    assert scratch_databases(pg) == []


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


def wait_for_restore(pg, proc, others=()) -> tuple[str, int]:
    """(scratch name, restore child PID) once the restore is under way (`others`: scratch databases
    of other drills running meanwhile)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        names, kids = [n for n in scratch_databases(pg) if n not in others], children(proc.pid)
        if names and kids:
            return names[0], kids[0]
        time.sleep(0.1)
    raise AssertionError("the restore did not start")


def running(pid: int) -> bool:
    """The process exists and is not a zombie waiting for a busy machine to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def finish(proc) -> dict:
    out, err = proc.communicate(timeout=60)
    assert out, err
    return json.loads(out)


def signal_me_after(seconds: float, signum=signal.SIGTERM) -> threading.Timer:
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signum))
    timer.start()
    return timer


def test_a_signal_during_a_statement_is_an_interruption_not_a_database_error(pg):
    """Seen in CI: SIGTERM while the drill's CREATE DATABASE ran came back from the driver wrapper
    as "creating the scratch database ... failed: interrupted by signal 15", the run not failed as
    interrupted and the scratch database left to the next run."""
    kwargs = dict(host=pg.host, port=pg.port, user=pg.user, password=pg.password, dbname=pg.database)
    signal_me_after(0.3)
    with pytest.raises(Interrupted):
        with raising_on_signals():
            pg_client.query(kwargs, "SELECT pg_sleep(10)")
    # held back: the statement finishes and its result is kept, then the run is interrupted
    done = []
    signal_me_after(0.3)
    with pytest.raises(Interrupted):
        with raising_on_signals():
            with deferring_signals():
                done.append(pg_client.query(kwargs, "SELECT pg_sleep(1), 42")[0][1])
    assert done == [42]


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

    # the module killed outright: it said beforehand which database it creates; its restore dies
    # with it; the next run, seconds later and whatever leftover_max_age, drops the leftover and says so
    proc = start_module(pg, tmp_path, backup_path=str(slow_backup))
    name, restore_pid = wait_for_restore(pg, proc)
    proc.kill()
    out, err = proc.communicate(timeout=10)
    assert out == "" and err.startswith("hunter.ops notice: restore drill run ")
    assert "creates scratch database %s on %s:%s; if this run dies, the database may remain" % (
        name, pg.host, pg.port) in err
    deadline = time.monotonic() + 15
    while running(restore_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(restore_pid), "the restore outlived the module"
    assert scratch_databases(pg) == [name]
    state_files = list(slow_backup.parent.glob(".hunter_ops_drill-*.json"))
    assert len(state_files) == 1 and json.loads(state_files[0].read_text())["scratch"] == name
    planned = finish(start_module(pg, tmp_path, backup_path=str(slow_backup), _ansible_check_mode=True))
    assert [e["name"] for e in planned["leftovers_dropped"]] == [name]       # would drop: its owner is gone
    assert "dropped" not in planned["leftovers_dropped"][0] and scratch_databases(pg) == [name]
    result = finish(start_module(pg, tmp_path, backup_dir=str(slow_backup.parent), restore_timeout=2))
    dropped = result["leftovers_dropped"]
    assert [e["name"] for e in dropped] == [name] and dropped[0]["dropped"] is True and result["changed"] is True
    assert "its drill is gone" in dropped[0]["reason"] and dropped[0]["size_bytes"] > 0
    message = result["checks"]["RESTORE-DRYRUN"]["message"]
    assert "dropped 1 leftover(s) of earlier runs whose drill is gone: %s (" % name in message
    assert "an earlier drill died (run %s" % name.rsplit("_", 1)[1] in message
    assert "its scratch database %s dropped now" % name in message
    assert [e["outcome"] for e in result["earlier_runs_died"]] == ["dropped now"]
    assert scratch_databases(pg) == [] and list(slow_backup.parent.glob(".hunter_ops_drill-*.json")) == []


def test_a_running_drill_survives_another_drills_sweep(pg, slow_backup, backups, tmp_path):
    """Drill A restores (slowly); drill B starts meanwhile, with leftover_max_age 0: B leaves A's
    scratch database alone (A's session is connected), then A is stopped and drops its own."""
    first = start_module(pg, tmp_path, backup_path=str(slow_backup))
    name, _pid = wait_for_restore(pg, first)
    try:
        second = finish(start_module(pg, tmp_path, backup_dir=str(backups["custom"]), leftover_max_age=0))
        assert second["checks"]["RESTORE-DRYRUN"]["status"] == "pass", second["checks"]["RESTORE-DRYRUN"]["message"]
        assert second["leftovers_dropped"] == [] and second["changed"] is False
        assert second["leftovers_left"] == [{"name": name, "reason": "its drill is running (the session of run %s "
                                                                     "is connected)" % name.rsplit("_", 1)[1]}]
        assert scratch_databases(pg) == [name]                   # A's database survived B's sweep
        assert first.poll() is None                              # and A is still restoring
    finally:
        first.send_signal(signal.SIGTERM)
    result = finish(first)
    assert result["failed"] and "interrupted by signal 15 during the restore step" in result["msg"]
    assert scratch_databases(pg) == []


def test_an_exception_inside_the_drill_leaves_no_scratch_database(pg, backups):
    """The engine in this process, its verification replaced by one that raises: whatever the
    exception, the scratch database it created is dropped (Drill.run's finally) and it propagates."""
    from ansible_collections.hunter.ops.plugins.module_utils import restore_drill
    from ansible_collections.hunter.ops.plugins.modules import pg_restore_dryrun

    params = dict((k, v.get("default")) for k, v in pg_restore_dryrun.argument_spec().items())
    params.update(db_host=pg.host, db_port=pg.port, db_user=pg.user, db_password=pg.password,
                  backup_dir=str(backups["directory"]))
    seen = []

    class Broken(restore_drill.Drill):
        def verify(self):
            seen.append((self.scratch, scratch_databases(pg)))
            raise KeyError("injected after the restore")

    drill = Broken(params, restore_drill.validate_settings(params))
    with pytest.raises(KeyError, match="injected"):
        drill.run()
    assert seen and seen[0][1] == [seen[0][0]]                  # it existed, restored, when the exception came
    assert drill.dropped is True and scratch_databases(pg) == []
    assert list(backups["directory"].glob(".hunter_ops_drill-*.json")) == []   # state file removed too


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


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def drill_modules_restoring() -> list[int]:
    """PIDs of the module processes (this test's own descendants) running a restore client.

    With pipelining the module's interpreter reads its code on stdin, so no command line names the
    module: the process to kill is the Python parent of the drill's psql/pg_restore."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() not in ("psql", "pg_restore"):
                continue
            module = _parent(int(entry.name))
            if "python" not in (Path(f"/proc/{module}/comm").read_text().strip()
                                + Path(f"/proc/{module}/cmdline").read_bytes().split(b"\0")[0].decode()):
                continue
            pid = module
            while pid > 1:   # only a process this test started, however deep
                pid = _parent(pid)
                if pid == os.getpid():
                    found.append(module)
                    break
        except (OSError, IndexError, ValueError):
            continue
    return found


def test_a_drill_killed_outright_says_which_scratch_database_may_remain(pg, harness, slow_backup, tmp_path,
                                                                        assert_no_secret):
    """The role's task is killed with SIGKILL mid-restore (as the OOM killer would): its items say
    which scratch database may remain, and the next drill drops it."""
    inventory = {"all": {"vars": {
        "hunter_db_host": pg.host, "hunter_db_port": pg.port, "hunter_db_name": pg.database,
        "hunter_db_user": pg.user, "hunter_db_password": pg.password,
        "pg_restore_dryrun_source": "path", "pg_restore_dryrun_backup_path": str(slow_backup)},
        "children": {"db": {"hosts": {"db-killed": {}}}}}}
    box = {}
    thread = threading.Thread(target=lambda: box.update(
        run=harness.run_playbook("playbooks/restore_drill.yml", inventory)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        modules, names = drill_modules_restoring(), scratch_databases(pg)
        if modules and names:
            break
        time.sleep(0.2)
    assert modules and names, "the drill did not start"
    os.kill(modules[0], signal.SIGKILL)
    thread.join(120)
    run = box["run"]
    assert run.rc != 0
    item = run.artifact_data["hunter_restore_drill"]["db-killed"]["checks"]["RESTORE-DRYRUN"]
    assert item["status"] == "fail"
    assert "hunter.ops notice: restore drill run" in item["message"]
    assert "creates scratch database %s on %s:%s" % (names[0], pg.host, pg.port) in item["message"]
    assert scratch_databases(pg) == names
    after = finish(start_module(pg, tmp_path, backup_path=str(slow_backup), restore_timeout=2))
    assert [e["name"] for e in after["leftovers_dropped"] if e["dropped"]] == names
    assert scratch_databases(pg) == []
    assert_no_secret(run, pg.password)


def test_a_sql_ascii_server_is_read_as_text(pg):
    """On a SQL_ASCII cluster (initdb without a locale) psycopg hands back bytes unless the connection asks
    for UTF8; the drill's database-name checks then crashed (found on the fleet's first db image)."""
    import psycopg

    from ansible_collections.hunter.ops.plugins.module_utils import pg as pgu
    with psycopg.connect(pg.superuser_dsn, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS ascii_probe")
        conn.execute("CREATE DATABASE ascii_probe ENCODING 'SQL_ASCII' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'")
    try:
        kwargs = pgu.connect_kwargs(dict(db_host=pg.host, db_port=pg.port, db_name="ascii_probe", db_user=pg.user,
                                         db_password=pg.password))
        with psycopg.connect(**kwargs) as conn:
            names = [r[0] for r in conn.execute("SELECT datname FROM pg_catalog.pg_database")]
        assert "ascii_probe" in names and all(isinstance(n, str) for n in names)
    finally:
        with psycopg.connect(pg.superuser_dsn, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS ascii_probe")

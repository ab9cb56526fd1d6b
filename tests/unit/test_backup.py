"""Pure parts of the backup: names, manifests, checksums, listing, retention selection, the lock,
the pg_backup plan (validation, compression, module_utils/backup_run.py), the lock-wait diagnosis,
S3 checksums, cron entries and BACKUP-LOCATION."""
import hashlib
import json
import re
import os
import time
from datetime import datetime

import pytest

from ansible_collections.hunter.ops.plugins.module_utils import backup as bk
from ansible_collections.hunter.ops.plugins.module_utils import backup_s3
from ansible_collections.hunter.ops.plugins.module_utils import pg_dump
from ansible_collections.hunter.ops.plugins.module_utils.validate import ParameterError
from ansible_collections.hunter.ops.plugins.modules import backup_location, backup_schedule
from ansible_collections.hunter.ops.plugins.module_utils import backup_run as mod

DAY = 86400.0


# -- names ---------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt,method,external,ext", [
    ("plain", "none", False, "sql"), ("plain-gzip", "gzip", False, "sql.gz"), ("plain", "gzip", False, "sql.gz"),
    ("plain", "zstd", True, "sql.zst"), ("plain", "lz4", True, "sql.lz4"), ("custom", "gzip", False, "dump"),
    ("custom", "zstd", False, "dump"), ("custom", "zstd", True, "dump.zst"), ("custom", "lz4", True, "dump.lz4"),
    ("directory", "gzip", False, "dir"),
])
def test_name_has_label_local_timestamp_and_extension_and_parses_back(fmt, method, external, ext):
    when = datetime(2026, 11, 28, 2, 0, 0)
    name = bk.backup_name("pre_v1.0", fmt, method, when, external=external)
    assert name == "backup_pre_v1.0_20261128_020000." + ext
    parsed = bk.parse_backup_name(name)
    assert parsed["label"] == "pre_v1.0" and parsed["stamp"] == "20261128_020000" and parsed["ext"] == ext
    assert parsed["created"] == time.mktime(when.timetuple())


@pytest.mark.parametrize("name", ["backup_20261128_020000.sql.gz", "backup_x_20261128_0200.sql", "backup_x_20261128_020000.tar",
                                  ".pg_backup-hunter-backup_x_20261128_020000.sql.partial", "backup_x_20261128_020000.sql.manifest.json",
                                  "backup_x_20261340_020000.sql"])
def test_names_that_are_not_backups(name):
    assert bk.parse_backup_name(name) is None


@pytest.mark.parametrize("label", ["", "a/b", "pre v1", "../x", "-x", "x" * 101])
def test_bad_labels_are_refused(label):
    assert not bk.valid_label(label)
    with pytest.raises(ValueError):
        bk.backup_name(label, "plain")


def test_manifest_path_and_back():
    assert bk.manifest_path("/b/backup_x_20261128_020000.dir/") == "/b/backup_x_20261128_020000.dir.manifest.json"
    assert bk.backup_path_of("/b/backup_x_20261128_020000.dir.manifest.json") == "/b/backup_x_20261128_020000.dir"
    assert bk.backup_path_of("/b/backup_x_20261128_020000.sql") == "/b/backup_x_20261128_020000.sql"


# -- manifests, checksums, listing -----------------------------------------------------------------

def make_backup(directory, label="x", stamp="20261128_020000", content=b"-- PostgreSQL database dump\n", database="hunter",
                started_at=None, fmt="plain", as_dir=False):
    name = "backup_%s_%s.%s" % (label, stamp, "dir" if as_dir else "sql")
    path = os.path.join(str(directory), name)
    if as_dir:
        os.makedirs(path)
        for rel, data in (("toc.dat", content), ("sub/1.dat.gz", b"x" * 10)):
            os.makedirs(os.path.dirname(os.path.join(path, rel)), exist_ok=True)
            with open(os.path.join(path, rel), "wb") as handle:
                handle.write(data)
    else:
        with open(path, "wb") as handle:
            handle.write(content)
    manifest = dict(manifest_version=1, backup=name, label=label, database=database, format="directory" if as_dir else fmt,
                    compression={"method": "none", "level": 0, "external": None}, size_bytes=bk.backup_size(path),
                    sha256=bk.backup_sha256(path), tables={"public.companies": 50},
                    started_at=started_at or bk.iso_utc(time.mktime(time.strptime(stamp, bk.STAMP_FORMAT))))
    bk.write_manifest(path, manifest)
    return path


def test_manifest_round_trip_is_private_and_verifies(tmp_path):
    path = make_backup(tmp_path)
    assert oct(os.stat(bk.manifest_path(path)).st_mode & 0o777) == "0o600"
    manifest = bk.load_manifest(path)
    assert manifest == bk.load_manifest(bk.manifest_path(path))
    assert bk.verify_backup(path, manifest) == []
    assert bk.restore_tool(manifest) == "psql" and bk.decompress_command(manifest) is None


def test_verify_names_each_problem(tmp_path):
    path = make_backup(tmp_path)
    with open(path, "ab") as handle:
        handle.write(b"tampered")
    problems = bk.verify_backup(path)
    assert problems and "size" in problems[0]
    path2 = make_backup(tmp_path, stamp="20261128_030000", content=b"abc")
    with open(path2, "wb") as handle:
        handle.write(b"abd")  # same size, other bytes
    assert "sha256" in bk.verify_backup(path2)[0]
    os.unlink(bk.manifest_path(path2))
    assert "cannot read manifest" in bk.verify_backup(path2)[0]
    assert "does not exist" in bk.verify_backup(str(tmp_path / "backup_x_20261128_040000.sql"))[0]


@pytest.mark.parametrize("text,problem", [
    ("{", "not valid JSON"), ("[]", "JSON object"), ('{"manifest_version": 1}', "missing keys"),
    (json.dumps(dict(manifest_version=3, backup="b", database="d", format="plain", compression={}, size_bytes=1,
                     sha256="x", tables={})), "not supported"),
    (json.dumps(dict(manifest_version=2, backup="b", database="d", format="plain", compression={}, size_bytes=1,
                     sha256="x", tables={})), "'schema' must be an object"),
    (json.dumps(dict(manifest_version=1, backup="b", database="d", format="tar", compression={}, size_bytes=1,
                     sha256="x", tables={})), "unknown format"),
])
def test_bad_manifests_are_refused_with_the_reason(text, problem):
    with pytest.raises(bk.ManifestError, match=problem):
        bk.parse_manifest(text)


def test_both_manifest_versions_are_read_and_version_2_carries_the_schema():
    common = dict(backup="b", database="d", format="plain", compression={}, size_bytes=1, sha256="x", tables={})
    assert "schema" not in bk.parse_manifest(json.dumps(dict(common, manifest_version=1)))
    schema = {"views": {"public.v": "md5"}}
    assert bk.parse_manifest(json.dumps(dict(common, manifest_version=2, schema=schema)))["schema"] == schema
    assert bk.MANIFEST_VERSION == 2


def test_directory_sha256_is_the_contract(tmp_path):
    path = make_backup(tmp_path, as_dir=True)
    lines = "".join("%s %s\n" % (rel, hashlib.sha256(open(os.path.join(path, rel), "rb").read()).hexdigest())
                    for rel in sorted(["toc.dat", "sub/1.dat.gz"]))
    assert bk.sha256_directory(path) == hashlib.sha256(lines.encode()).hexdigest()
    assert bk.backup_size(path) == len(b"-- PostgreSQL database dump\n") + 10
    assert bk.verify_backup(path) == []
    assert bk.restore_tool(bk.load_manifest(path)) == "pg_restore"


@pytest.mark.parametrize("fmt,method,external,expected", [
    ("plain", "none", None, None), ("plain-gzip", "gzip", None, ["gzip", "-dc", "--"]),
    ("plain", "zstd", "zstd -3", ["zstd", "-dcq", "--"]), ("plain", "lz4", None, ["lz4", "-dcq", "--"]),
    ("custom", "gzip", None, None), ("custom", "zstd", None, None), ("custom", "zstd", "zstd -3 -T2", ["zstd", "-dcq", "--"]),
    ("directory", "gzip", None, None),
])
def test_decompress_command_follows_the_manifest(fmt, method, external, expected):
    manifest = dict(format=fmt, compression=dict(method=method, external=external))
    assert bk.decompress_command(manifest) == expected


def test_list_newest_first_filtered_by_database_and_label_and_newest_valid_skips_broken(tmp_path):
    old = make_backup(tmp_path, stamp="20261120_020000")
    mid = make_backup(tmp_path, stamp="20261121_020000")
    make_backup(tmp_path, stamp="20261122_020000", database="other")
    new = make_backup(tmp_path, stamp="20261123_020000")
    make_backup(tmp_path, label="y", stamp="20261119_020000")
    with open(new, "ab") as handle:
        handle.write(b"corrupt")
    (tmp_path / "backup_x_20261124_020000.sql").write_bytes(b"no manifest")
    (tmp_path / ".pg_backup-hunter-backup_x_20261125_020000.sql.partial").write_bytes(b"partial")
    names = [b["name"] for b in bk.list_backups(str(tmp_path), database="hunter")]
    assert names == ["backup_x_20261124_020000.sql", os.path.basename(new), os.path.basename(mid),
                     os.path.basename(old), "backup_y_20261119_020000.sql"]
    assert [b["name"] for b in bk.list_backups(str(tmp_path), label="y")] == ["backup_y_20261119_020000.sql"]
    assert bk.newest_valid_backup(str(tmp_path), database="hunter")["name"] == os.path.basename(mid)
    assert bk.newest_valid_backup(str(tmp_path / "missing")) is None


# -- retention selection --------------------------------------------------------------------------

def items(*ages_days, now=1000 * DAY):
    return [dict(name="b%d" % i, created=now - age * DAY) for i, age in enumerate(ages_days)]


def test_age_rule_deletes_only_old_backups():
    keep, delete = bk.retention_plan(items(0, 3, 8, 30), 1000 * DAY, keep_days=7)
    assert [k["name"] for k in keep] == ["b0", "b1"] and [d["name"] for d in delete] == ["b2", "b3"]
    assert "days old" in delete[0]["reason"]


def test_count_and_age_are_both_limits():
    keep, delete = bk.retention_plan(items(0, 1, 2, 3), 1000 * DAY, keep_days=0, keep_count=2)
    assert [d["name"] for d in delete] == ["b2", "b3"]
    keep, delete = bk.retention_plan(items(10, 20, 30, 1), 1000 * DAY, keep_days=7, keep_count=2)
    assert [k["name"] for k in keep] == ["b3"] and sorted(d["name"] for d in delete) == ["b0", "b1", "b2"]


def test_newest_valid_is_never_deleted_even_when_every_rule_would():
    keep, delete = bk.retention_plan(items(10, 20, 30), 1000 * DAY, keep_days=7, protect=["b1"])
    assert [k["name"] for k in keep] == ["b1"] and "never deleted" in keep[0]["reason"]
    assert [d["name"] for d in delete] == ["b0", "b2"]


def test_no_rule_deletes_nothing():
    keep, delete = bk.retention_plan(items(100, 200), 1000 * DAY, keep_days=0, keep_count=0)
    assert delete == [] and len(keep) == 2


# -- lock -------------------------------------------------------------------------------------------

def test_second_lock_waits_then_fails_clearly(tmp_path):
    path = bk.lock_path(str(tmp_path), "hunter db")
    assert os.path.basename(path) == ".pg_backup_hunter_db.lock"
    with bk.BackupLock(path, timeout=5):
        began = time.monotonic()
        with pytest.raises(bk.LockTimeout, match="another backup of this database is running .* waited 1 s"):
            bk.BackupLock(path, timeout=1, interval=0.05).acquire()
        assert 0.9 < time.monotonic() - began < 3
    with bk.BackupLock(path, timeout=0) as lock:  # released: free again at once
        assert lock.waited_s < 0.5


# -- the pg_backup plan -----------------------------------------------------------------------------

def params(**over):
    base = dict(format="directory", compression=None, compression_level=None, compressor="auto", jobs=0,
                mode="direct", container=None, extra_options=[], label="pre_v1.0", db_name="hunter", timeout=60,
                lock_timeout=5, table_lock_timeout=60, backup_dir="/var/backups/hunter")
    base.update(over)
    return base


def test_default_plan_is_directory_gzip_1_parallel():
    fmt, method, level, compressor, jobs = mod.validate_plan(params())
    assert (fmt, method, level, compressor) == ("directory", "gzip", 1, "auto") and 1 <= jobs <= 4


def test_plain_with_gzip_is_plain_gzip_and_plain_defaults_to_no_compression():
    assert mod.validate_plan(params(format="plain", compression="gzip"))[:3] == ("plain-gzip", "gzip", 1)
    assert mod.validate_plan(params(format="plain"))[:2] == ("plain", "none")
    assert mod.validate_plan(params(format="plain", compression="zstd"))[:3] == ("plain", "zstd", 3)


@pytest.mark.parametrize("over,param,text", [
    (dict(format="plain-gzip", compression="zstd"), "compression", "gzip'd SQL"),
    (dict(compression="zstd", compression_level=25), "compression_level", "1..19"),
    (dict(format="custom", jobs=4), "jobs", "need format directory"),
    (dict(jobs=-1), "jobs", r"0 \(auto\)"),
    (dict(compressor="external"), "compressor", "plain and custom"),
    (dict(mode="docker"), "container", "required with mode docker"),
    (dict(mode="compose", container="db"), "format", "cannot stream out of a container"),
    (dict(extra_options=["--file=/tmp/x"]), "extra_options", "--file is set by the module"),
    (dict(extra_options=["-Fc"]), "extra_options", "-F is set by the module"),
    (dict(extra_options=["--dbname=postgresql://u:pw@h/db"]), "extra_options", "password|--dbname"),
    (dict(extra_options=["password=secret"]), "extra_options", "looks like a password"),
    (dict(label="pre v1"), "label", "letters, digits"),
    (dict(db_name=""), "db_name", "required"),
    (dict(backup_dir="backups"), "backup_dir", "absolute path"),
    (dict(table_lock_timeout=-1), "table_lock_timeout", "0 .no limit"),
    (dict(extra_options=["--lock-wait-timeout=5"]), "extra_options", "--lock-wait-timeout is set by the module"),
])
def test_bad_settings_name_the_parameter(over, param, text):
    with pytest.raises(ParameterError) as err:
        mod.validate_plan(params(**over))
    assert err.value.param == param
    assert re.search(text, str(err.value))


def test_harmless_extra_options_pass():
    mod.validate_plan(params(extra_options=["--exclude-table-data", "audit_log", "-n", "public", "--no-comments"]))


def test_compression_plan_internal_external_and_refusals():
    assert mod.compression_plan("directory", "gzip", 1, "auto", 2, 15) == ("1", None)
    assert mod.compression_plan("custom", "none", 0, "auto", 1, 15) == ("0", None)
    assert mod.compression_plan("plain", "none", 0, "auto", 1, 15) == (None, None)
    assert mod.compression_plan("custom", "zstd", 3, "auto", 2, 16) == ("zstd:3", None)
    internal, external = mod.compression_plan("custom", "zstd", 3, "auto", 2, 15)
    assert internal == "0" and os.path.basename(external[0]) == "zstd" and "-T2" in external
    internal, external = mod.compression_plan("plain", "lz4", 1, "auto", 2, 15)
    assert internal is None and os.path.basename(external[0]) == "lz4"
    with pytest.raises(pg_dump.DumpError, match="needs pg_dump 16"):
        mod.compression_plan("directory", "zstd", 3, "auto", 2, 15)
    with pytest.raises(pg_dump.DumpError, match="pg_dump 16 or newer can"):
        mod.compression_plan("plain", "zstd", 3, "internal", 2, 15)


@pytest.mark.parametrize("text,version,major", [
    ("pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)", "15.20", 15), ("pg_dump (PostgreSQL) 9.6.24", "9.6.24", 9.6),
    ("pg_dump (PostgreSQL) 17beta1", "17beta1", 17), ("pg_dump (PostgreSQL) 16.4", "16.4", 16),
])
def test_versions(text, version, major):
    assert pg_dump.parse_version(text) == version and pg_dump.major_of(version) == major


def test_server_major_from_version_num():
    assert pg_dump.major_of_num(150019) == 15 and pg_dump.major_of_num(90624) == 9.6
    assert pg_dump.major_of("14.9") < pg_dump.major_of_num(150019)


def test_container_commands_forward_the_password_by_name_only():
    env = {"PGHOST": "localhost", "PGUSER": "u", "PGPASSWORD": "pw-secret", "PGDATABASE": "d"}
    docker = pg_dump.ClientTools(mode="docker", container="pg", libpq_env=env).argv("pg_dump", ["-Fc"])
    assert docker[:3] == ["docker", "exec", "-i"] and docker[-3:] == ["pg", "pg_dump", "-Fc"]
    assert "PGPASSWORD" in docker and not any("pw-secret" in a for a in docker)
    compose = pg_dump.ClientTools(mode="compose", container="postgres", compose_files=["/srv/c.yml"],
                                  compose_project_dir="/srv", libpq_env=env).argv("psql", [])
    assert compose[:6] == ["docker", "compose", "-f", "/srv/c.yml", "--project-directory", "/srv"]
    assert compose[6:8] == ["exec", "-T"] and compose[-2:] == ["postgres", "psql"]
    legacy = pg_dump.ClientTools(mode="compose", container="db", container_cli="/usr/bin/docker-compose",
                                 libpq_env=env).argv("psql", [])
    assert legacy[:3] == ["/usr/bin/docker-compose", "exec", "-T"]


# -- S3 checksums -------------------------------------------------------------------------------------

def test_s3_checksums_single_and_composite(tmp_path):
    data = os.urandom(12 * 1024 * 1024 + 5)
    path = tmp_path / "f"
    path.write_bytes(data)
    part = backup_s3.part_size_for(len(data), 5 * backup_s3.MB)
    whole, parts = backup_s3.file_digests(str(path), part)
    assert whole == hashlib.sha256(data).hexdigest() and len(parts) == 3
    single = backup_s3.expected_checksum(whole, parts, multipart=False)
    assert single == backup_s3.b64(hashlib.sha256(data).digest())
    composite = backup_s3.expected_checksum(whole, parts, multipart=True)
    assert composite.endswith("-3")
    assert composite.split("-")[0] == backup_s3.b64(hashlib.sha256(b"".join(parts)).digest())


def test_part_size_stays_within_s3_limits():
    assert backup_s3.part_size_for(10, 1) == backup_s3.MIN_PART
    huge = 5 * 1024 ** 4
    assert huge / backup_s3.part_size_for(huge, 16 * backup_s3.MB) <= backup_s3.MAX_PARTS


# -- cron entries and BACKUP-LOCATION ---------------------------------------------------------------------

CRONTAB = """# other
#Ansible: other job
5 * * * * /bin/true
#Ansible: hunter.ops pg_backup db1
0 2 * * * '/srv/hunter/.schedule/pg_backup_db1.sh'
"""


def test_cron_entry_is_found_by_its_marker():
    entry = backup_schedule.find_entry(CRONTAB, "hunter.ops pg_backup db1", system_format=False)
    assert entry["schedule"] == "0 2 * * *" and entry["command"] == "'/srv/hunter/.schedule/pg_backup_db1.sh'"
    assert not entry["disabled"]
    system = backup_schedule.find_entry("#Ansible: j\n@daily root /x.sh --flag\n", "j", system_format=True)
    assert (system["schedule"], system["user"], system["command"]) == ("@daily", "root", "/x.sh --flag")
    assert backup_schedule.find_entry("#Ansible: j\n#0 2 * * * /x\n", "j", False)["disabled"]
    assert backup_schedule.find_entry(CRONTAB, "missing", False) is None


def test_location_records_from_registered_results():
    assert backup_location.normalise(dict(skipped=True)) is None
    ok = backup_location.normalise(dict(changed=True, location=dict(kind="s3", location="s3://b/p/x", verified=True,
                                                                    message="ok", evidence={})))
    assert ok["verified"] and ok["kind"] == "s3"
    failed = backup_location.normalise(dict(failed=True, msg="connect timeout",
                                            location=dict(kind="s3", location="s3://b/p/x", verified=False)))
    assert not failed["verified"] and failed["message"] == "connect timeout"
    bare = backup_location.normalise(dict(failed=True, msg="unreachable host"))
    assert not bare["verified"] and bare["message"] == "unreachable host"


# -- bounded lock waits: what the errors say ---------------------------------------------------------

PG_DUMP_LOCK = ("pg_dump: error: query failed: ERROR:  canceling statement due to statement timeout "
                "pg_dump: detail: Query was: LOCK TABLE public.companies IN ACCESS SHARE MODE")
COUNT_LOCK = ("psql:<stdin>:13: ERROR:  canceling statement due to lock timeout "
              "QUERY:  SELECT count(*) AS c FROM public.domain_signals")
WORKER_LOCK = ('pg_dump: error: could not obtain lock on relation "public.events" This usually means that '
               "someone requested an ACCESS EXCLUSIVE lock on the table after the pg_dump parent process")


@pytest.mark.parametrize("text,relation", [(PG_DUMP_LOCK, "public.companies"), (COUNT_LOCK, "public.domain_signals"),
                                           (WORKER_LOCK, "public.events"),
                                           ("ERROR: canceling statement due to lock timeout", None)])
def test_lock_waits_are_recognised_with_their_table(text, relation):
    assert pg_dump.is_lock_wait(text)
    assert pg_dump.locked_relation(text) == relation


@pytest.mark.parametrize("text", ["pg_dump: error: connection to server failed", "canceling statement due to "
                                  "statement timeout (Query was: SELECT 1)", "", None])
def test_other_errors_are_not_lock_waits(text):
    assert not pg_dump.is_lock_wait(text)


def test_a_lock_holder_is_described_with_what_the_role_may_see():
    holder = dict(pid=4242, granted=True, relation="public.companies", application="migrate", user="app",
                  state="idle in transaction", xact_s=75)
    assert pg_dump.describe_holder(holder) == ('pid 4242 holds ACCESS EXCLUSIVE on public.companies (application '
                                               '"migrate", user app, idle in transaction, transaction open 75 s)')
    hidden = dict(pid=7, granted=False, relation="public.x", application="", user="", state="", xact_s=None)
    assert pg_dump.describe_holder(hidden) == "pid 7 awaits ACCESS EXCLUSIVE on public.x"

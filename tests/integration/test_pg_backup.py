"""pg_backup and its companions against real PostgreSQL (private clusters) and moto S3.

Every backup here is restored (or listed) for real; faults are real too: the server killed in
the middle of a large dump, a full tmpfs, a wrong password, a failing compressor, a second run
against the lock, S3 unreachable.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from sandbox.services import PostgresServer, refused_port, seed
from tests.harness import AnsibleHarness

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / ".ansible" / "collections"))
from ansible_collections.hunter.ops.plugins.module_utils import backup as bk  # noqa: E402
from ansible_collections.hunter.ops.plugins.module_utils.pg_dump import COUNT_SQL  # noqa: E402
from ansible_collections.hunter.ops.plugins.module_utils.schema_inventory import KINDS  # noqa: E402

NAME_RE = re.compile(r"^backup_(?P<label>[A-Za-z0-9._-]+)_\d{8}_\d{6}\.(sql|sql\.gz|sql\.zst|sql\.lz4|dump|dump\.zst|dump\.lz4|dir)$")


# -- helpers -------------------------------------------------------------------------------------

def conn_args(pg: PostgresServer, password: str | None = None) -> dict:
    return dict(db_host=pg.host, db_port=pg.port, db_name=pg.database, db_user=pg.user,
                db_password=password or pg.password)


def counts(pg: PostgresServer, database: str | None = None) -> dict:
    with psycopg.connect(host=pg.host, port=pg.port, user=pg.user, password=pg.password,
                         dbname=database or pg.database, connect_timeout=5) as conn:
        return {name: int(n) for name, n in conn.execute(COUNT_SQL).fetchall()}


def restore_counts(pg: PostgresServer, path: str) -> dict:
    """Restore a backup into a scratch database the way its manifest says; its table counts."""
    manifest = bk.load_manifest(path)
    scratch = "rt_" + secrets.token_hex(4)
    pg.psql(f'CREATE DATABASE "{scratch}"')
    env = dict(os.environ, **dict(pg.env, PGDATABASE=scratch))
    decompress = bk.decompress_command(manifest)
    try:
        if bk.restore_tool(manifest) == "psql":
            tool = [str(pg.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
        else:
            tool = [str(pg.bindir / "pg_restore"), "--no-owner", "--no-acl", "--exit-on-error", "-d", scratch]
            if manifest["format"] == "directory":
                tool += ["-j", "2"]
        if decompress:
            feeder = subprocess.Popen(decompress + [path], stdout=subprocess.PIPE)
            result = subprocess.run(tool, stdin=feeder.stdout, capture_output=True, env=env, timeout=300, check=False)
            feeder.stdout.close()
            assert feeder.wait(60) == 0
        else:
            args = ["-f", path] if bk.restore_tool(manifest) == "psql" else [path]
            result = subprocess.run(tool + args, capture_output=True, env=env, timeout=300, check=False)
        assert result.returncode == 0, result.stderr.decode()[-2000:]
        return counts(pg, scratch)
    finally:
        pg.psql(f'DROP DATABASE IF EXISTS "{scratch}"', database="postgres")


def backups_in(directory) -> list[str]:
    return sorted(n for n in os.listdir(directory) if n.startswith("backup_") and not n.endswith(".manifest.json"))


def leftovers(directory) -> list[str]:
    """Anything a failed run could leave behind: partials, temp manifests."""
    return sorted(n for n in os.listdir(directory) if n.endswith(".partial") or n.startswith(".manifest-"))


class PsWatcher(threading.Thread):
    """Records every command line `ps` shows while it runs."""

    def __init__(self):
        super().__init__(daemon=True)
        self.lines: set[str] = set()
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            out = subprocess.run(["ps", "-ww", "-eo", "args", "--no-headers"], capture_output=True, text=True, check=False).stdout
            self.lines.update(line.strip() for line in out.splitlines())
            time.sleep(0.01)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self._halt.set()
        self.join(5)


def run_in_thread(ansible_dir: Path, fqcn: str, args: dict) -> tuple[threading.Thread, dict]:
    box: dict = {}

    def target():
        box["result"] = AnsibleHarness(base_dir=ansible_dir).run_module(fqcn, args)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# -- fixtures ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def src(tmp_path_factory):
    """Seeded PostgreSQL (companies, domain_signals) plus an 80k-row table, private to these tests
    (they write to it)."""
    server = PostgresServer(tmp_path_factory.mktemp("pg-backup-src")).start()
    seed(server)
    server.psql("CREATE TABLE signals_archive AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS payload "
                "FROM generate_series(1, 80000) g;")
    yield server
    server.destroy()


@pytest.fixture(scope="module")
def big_pg(tmp_path_factory):
    """A database whose plain-gzip-9 dump takes several seconds (for the lock and kill tests)."""
    server = PostgresServer(tmp_path_factory.mktemp("pg-backup-big")).start()
    seed(server)
    server.psql("CREATE TABLE events AS SELECT g AS id, md5(g::text) || md5((g + 1)::text) || md5((g + 2)::text) "
                "AS payload FROM generate_series(1, 1000000) g;")
    yield server
    server.destroy()


@pytest.fixture
def bucket(s3_server):
    return s3_server.create_bucket("bk-" + secrets.token_hex(6))


# -- BACKUP-CMD / BACKUP-VALID: formats -----------------------------------------------------------------

FORMATS = [
    dict(),                                                    # default: directory, gzip 1, parallel
    dict(format="plain"),
    dict(format="plain-gzip"),
    dict(format="custom"),
    dict(format="plain", compression="zstd"),                  # external zstd (pg_dump 15)
    dict(format="custom", compression="lz4"),                  # custom wrapped by lz4
    dict(format="plain", compression="gzip", compressor="external", compression_level=6),  # the runbook way
]


@pytest.mark.slow
def test_every_format_round_trips_with_exact_counts(src, ansible, tmp_path, assert_no_secret):
    backup_dir = tmp_path / "backups"
    expected = counts(src)
    assert expected["public.companies"] == 50 and expected["public.domain_signals"] == 400
    seen_ext = set()
    for options in FORMATS:
        result = ansible.run_module("hunter.ops.pg_backup", dict(conn_args(src), backup_dir=str(backup_dir),
                                                                 label="pre_v1.0", **options))
        assert not result.get("check_task_failed"), result.get("msg")
        assert result["changed"] is True
        assert_no_secret(result, src.password)
        path = result["backup"]
        name = os.path.basename(path)
        assert NAME_RE.match(name) and NAME_RE.match(name).group("label") == "pre_v1.0", name
        seen_ext.add(bk.parse_backup_name(name)["ext"])
        manifest = result["manifest"]
        assert manifest == bk.load_manifest(path)
        assert manifest["tables"] == expected
        assert manifest["manifest_version"] == 2 and set(manifest["schema"]) == set(KINDS)
        assert manifest["schema"]["constraints"]["public.domain_signals.domain_signals_company_id_fkey"] == {
            "type": "foreign", "definition": "FOREIGN KEY (company_id) REFERENCES public.companies(id) ON DELETE CASCADE"}
        assert manifest["schema"]["sequences"]["public.companies_id_seq"]["last_value"] == 50
        assert "inventory_s" in result["checks"]["BACKUP-CMD"]["evidence"]["timings"]
        assert manifest["sha256"] == bk.backup_sha256(path) and manifest["size_bytes"] == bk.backup_size(path) > 0
        assert manifest["server_version"].startswith("15") and manifest["pg_dump_version"].startswith("15")
        assert manifest["verified"] is True and manifest["snapshot"]
        assert bk.verify_backup(path) == []
        assert result["checks"]["BACKUP-CMD"]["status"] == "pass"
        valid = result["checks"]["BACKUP-VALID"]
        assert valid["status"] == "pass" and valid["evidence"]["sha256"] == manifest["sha256"]
        if manifest["format"] in ("plain", "plain-gzip"):
            assert "dump complete" in valid["message"]
        else:
            assert "pg_restore --list succeeded" in valid["message"]
        # private files
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert mode == (0o700 if os.path.isdir(path) else 0o600)
        assert stat.S_IMODE(os.stat(bk.manifest_path(path)).st_mode) == 0o600
        assert restore_counts(src, path) == manifest["tables"]
        time.sleep(1)  # distinct timestamps
    assert stat.S_IMODE(os.stat(backup_dir).st_mode) == 0o700
    assert seen_ext == {"dir", "sql", "sql.gz", "dump", "sql.zst", "dump.lz4"}
    assert leftovers(backup_dir) == []
    default = bk.load_manifest(str(backup_dir / backups_in(backup_dir)[0]))
    assert default["format"] == "directory" and default["compression"] == {"method": "gzip", "level": 1, "external": None}


def test_check_mode_reports_the_command_and_writes_nothing(src, ansible, tmp_path):
    backup_dir = tmp_path / "backups"
    result = ansible.run_module("hunter.ops.pg_backup", dict(conn_args(src), backup_dir=str(backup_dir), label="x"),
                                check=True)
    assert not result.get("check_task_failed"), result.get("msg")
    assert result["changed"] is True and "would write" in result["msg"]
    assert "pg_dump" in result["command"][0] and "--format=d" in result["command"][0]
    assert result["checks"]["BACKUP-CMD"]["status"] == "skip"
    assert not backup_dir.exists()


def test_counts_match_the_dump_not_the_live_table_while_a_writer_inserts(src, ansible, tmp_path, assert_no_secret):
    """The manifest's counts come from the snapshot pg_dump used, so they equal what a restore shows,
    although rows keep arriving during the whole dump. Also: the password never shows in `ps`."""
    stop = threading.Event()
    inserted = [0]

    def writer():
        with psycopg.connect(host=src.host, port=src.port, user=src.user, password=src.password,
                             dbname=src.database, autocommit=True) as conn:
            while not stop.is_set():
                conn.execute("INSERT INTO signals_archive (id, payload) VALUES (%s, md5(random()::text))",
                             (10_000_000 + inserted[0],))
                inserted[0] += 1

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    wait_for(lambda: inserted[0] > 50, 10, "the writer")
    try:
        with PsWatcher() as ps:
            result = ansible.run_module("hunter.ops.pg_backup", dict(conn_args(src), backup_dir=str(tmp_path / "b"),
                                                                     label="live"))
        before_stop = inserted[0]
    finally:
        stop.set()
        thread.join(10)
    assert not result.get("check_task_failed"), result.get("msg")
    manifest = result["manifest"]
    live = counts(src)
    assert live["public.signals_archive"] > manifest["tables"]["public.signals_archive"], \
        "the writer went on after the snapshot"
    assert before_stop > 50
    assert restore_counts(src, result["backup"]) == manifest["tables"]
    # ps saw the dump, never the password
    assert any("pg_dump" in line and "--snapshot=" in line for line in ps.lines), "ps never caught pg_dump"
    assert_no_secret("\n".join(ps.lines), src.password)
    assert_no_secret(result, src.password)


# -- bounded lock waits -------------------------------------------------------------------------------------

def test_a_locked_table_fails_the_backup_in_time_naming_the_table_and_the_holder(src, ansible, tmp_path):
    """A session holds ACCESS EXCLUSIVE on a table (as a migration would) far longer than the lock
    timeout: the backup fails after table_lock_timeout, not after the lock, and says who held it."""
    backup_dir = tmp_path / "b"
    holder = psycopg.connect(host=src.host, port=src.port, user=src.user, password=src.password,
                             dbname=src.database, application_name="migrate-0042")
    try:
        holder.execute("LOCK TABLE signals_archive IN ACCESS EXCLUSIVE MODE")   # in its open transaction
        pid = holder.info.backend_pid
        for options in (dict(), dict(count_rows=False)):   # the counting session's wait, then pg_dump's own
            began = time.monotonic()
            result = ansible.run_module("hunter.ops.pg_backup", dict(conn_args(src), backup_dir=str(backup_dir),
                                                                     label="x", table_lock_timeout=2, **options))
            assert time.monotonic() - began < 30
            assert result.get("check_task_failed"), options
            msg = result["msg"]
            assert msg.startswith("backup of hunter failed: waited 2 s for "), msg
            assert ('pid %d holds ACCESS EXCLUSIVE on public.signals_archive (application "migrate-0042", user %s'
                    % (pid, src.user)) in msg, msg
            assert "(table_lock_timeout 2 s)" in msg and "partial output removed" in msg
            lock_wait = result["checks"]["BACKUP-CMD"]["evidence"]["lock_wait"]
            assert lock_wait["lock_holders"][0]["pid"] == pid and lock_wait["lock_holders"][0]["granted"] is True
            assert result["checks"]["BACKUP-VALID"]["status"] == "fail"
            assert backups_in(backup_dir) == [] and leftovers(backup_dir) == []
        assert "Query was: LOCK TABLE public.signals_archive" in msg     # pg_dump --lock-wait-timeout said so
    finally:
        holder.close()
    result = ansible.run_module("hunter.ops.pg_backup", dict(conn_args(src), backup_dir=str(backup_dir), label="x",
                                                             table_lock_timeout=2))
    assert not result.get("check_task_failed"), result.get("msg")


# -- container mode with a stand-in `docker` ----------------------------------------------------------------

FAKE_DOCKER = r'''#!{python}
"""Stand-in for docker / docker compose: logs its argv, then runs the command "in the container"
(here) with only the variables forwarded by -e NAME, as a container would see them."""
import json, os, sys
args = sys.argv[1:]
with open({log!r}, "a") as log:
    log.write(json.dumps(args) + "\n")
i = 0
if args[0] == "compose":
    i = 1
    while args[i] != "exec":
        i += 2  # -f FILE / --project-directory DIR
i += 1
names = []
while args[i].startswith("-"):
    if args[i] == "-e":
        names.append(args[i + 1]); i += 2
    else:
        i += 1  # -i / -T
container, cmd = args[i], args[i + 1:]
assert container in ("hunter-postgres", "postgres"), container
env = {{"PATH": "/usr/bin:/bin", "LC_ALL": "C"}}
env.update((n, os.environ[n]) for n in names if n in os.environ)
os.execvpe(cmd[0], cmd, env)
'''


def test_container_mode_docker_exec_and_compose_exec(src, ansible, tmp_path, venv_python, assert_no_secret):
    log = tmp_path / "docker-argv.jsonl"
    fake = tmp_path / "bin" / "docker"
    fake.parent.mkdir()
    fake.write_text(FAKE_DOCKER.format(python=venv_python, log=str(log)))
    fake.chmod(0o755)
    expected = counts(src)
    docker = ansible.run_module("hunter.ops.pg_backup", dict(
        conn_args(src), backup_dir=str(tmp_path / "b"), label="pre_v1.0", mode="docker", container="hunter-postgres",
        container_cli=str(fake), format="custom"))
    assert not docker.get("check_task_failed"), docker.get("msg")
    assert docker["manifest"]["tables"] == expected and docker["manifest"]["mode"] == "docker"
    assert docker["command"][0].startswith(f"{fake} exec -i ") and " hunter-postgres pg_dump " in docker["command"][0]
    time.sleep(1)
    compose = ansible.run_module("hunter.ops.pg_backup", dict(
        conn_args(src), backup_dir=str(tmp_path / "b"), label="pre_v1.0", mode="compose", container="postgres",
        container_cli=str(fake), compose_project_dir=str(tmp_path), format="plain-gzip"))
    assert not compose.get("check_task_failed"), compose.get("msg")
    assert compose["backup"].endswith(".sql.gz") and compose["manifest"]["tables"] == expected
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert {c[0] for c in calls} == {"exec", "compose"}
    for call in calls:
        assert "PGPASSWORD" in call, call                 # forwarded by name ...
        assert_no_secret(" ".join(call), src.password)    # ... never by value
    assert any(c[:4] == ["compose", "--project-directory", str(tmp_path), "exec"] and "-T" in c for c in calls)
    assert any(c[:2] == ["exec", "-i"] and "pg_restore" in c for c in calls)  # verification ran in the container
    for result in (docker, compose):
        assert restore_counts(src, result["backup"]) == expected
        assert_no_secret(result, src.password)


# -- refusals and faults ----------------------------------------------------------------------------------------

def test_refuses_pg_dump_older_than_the_server(src, ansible, tmp_path):
    bindir = tmp_path / "old-bin"
    bindir.mkdir()
    (bindir / "pg_dump").write_text("#!/bin/sh\n[ \"$1\" = --version ] && echo 'pg_dump (PostgreSQL) 14.9' && exit 0\n"
                                    "echo 'should not run' >&2; exit 9\n")
    (bindir / "pg_dump").chmod(0o755)
    for tool in ("psql", "pg_restore"):
        (bindir / tool).symlink_to(src.bindir / tool)
    result = ansible.run_module("hunter.ops.pg_backup", dict(conn_args(src), backup_dir=str(tmp_path / "b"),
                                                             label="x", pg_bin_dir=str(bindir)))
    assert result.get("check_task_failed")
    assert "pg_dump 14.9 is older than the server (PostgreSQL 15" in result["msg"]
    assert result["checks"]["BACKUP-CMD"]["status"] == "fail"
    assert backups_in(tmp_path / "b") == [] and leftovers(tmp_path / "b") == []


def test_a_failing_pipeline_stage_leaves_nothing_and_earlier_backups_intact(src, tmp_path):
    backup_dir = tmp_path / "b"
    good = AnsibleHarness(base_dir=tmp_path / "a1").run_module(
        "hunter.ops.pg_backup", dict(conn_args(src), backup_dir=str(backup_dir), label="x", format="plain",
                                     compression="zstd"))
    assert not good.get("check_task_failed"), good.get("msg")
    fakebin = tmp_path / "fakebin"
    fakebin.mkdir()
    (fakebin / "zstd").write_text("#!/bin/sh\nhead -c 65536 >/dev/null\necho 'zstd: simulated write error' >&2\n"
                                  "exit 1\n")
    (fakebin / "zstd").chmod(0o755)
    time.sleep(1)
    venv_bin = Path(sys.executable).parent
    broken = AnsibleHarness(base_dir=tmp_path / "a2", envvars={"PATH": f"{fakebin}:{venv_bin}:{os.environ['PATH']}"})
    result = broken.run_module("hunter.ops.pg_backup", dict(conn_args(src), backup_dir=str(backup_dir), label="x",
                                                            format="plain", compression="zstd"))
    assert result.get("check_task_failed")
    assert "zstd failed (exit 1): zstd: simulated write error" in result["msg"]
    assert "partial output removed" in result["msg"]
    assert backups_in(backup_dir) == [os.path.basename(good["backup"])] and leftovers(backup_dir) == []
    assert bk.verify_backup(good["backup"]) == []


def test_wrong_password_is_a_clear_error_and_never_shown(src, ansible, tmp_path, assert_no_secret):
    wrong = "Wr0ng-" + secrets.token_urlsafe(12)
    with PsWatcher() as ps:
        result = ansible.run_module("hunter.ops.pg_backup", dict(conn_args(src, password=wrong),
                                                                 backup_dir=str(tmp_path / "b"), label="x"))
    assert result.get("check_task_failed")
    assert "password authentication failed for user" in result["msg"]
    assert result["checks"]["BACKUP-CMD"]["status"] == "fail"
    assert_no_secret(result, wrong)
    assert_no_secret(ansible.last_run, wrong)
    assert_no_secret("\n".join(ps.lines), wrong)
    assert backups_in(tmp_path / "b") == [] and leftovers(tmp_path / "b") == []


@pytest.mark.slow
def test_concurrent_runs_wait_on_the_lock_then_fail_clearly(big_pg, tmp_path):
    backup_dir = tmp_path / "b"
    slow = dict(conn_args(big_pg), backup_dir=str(backup_dir), label="x", format="plain-gzip", compression_level=9)
    first, box = run_in_thread(tmp_path / "first", "hunter.ops.pg_backup", slow)
    lock = Path(bk.lock_path(str(backup_dir), big_pg.database))
    wait_for(lambda: lock.exists() and lock.read_text().startswith("pid "), 60, "the first run to take the lock")
    began = time.monotonic()
    second = AnsibleHarness(base_dir=tmp_path / "second").run_module("hunter.ops.pg_backup", dict(slow, lock_timeout=1))
    assert first.is_alive(), "the first dump finished too early for this test"
    assert second.get("check_task_failed")
    assert "another backup of this database is running" in second["msg"] and "waited 1 s" in second["msg"]
    assert time.monotonic() - began < 30
    first.join(300)
    assert not box["result"].get("check_task_failed"), box["result"].get("msg")
    assert backups_in(backup_dir) == [os.path.basename(box["result"]["backup"])]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_backup_removes_its_partial_output(big_pg, tmp_path, signum):
    """The module stopped mid-dump (Ansible's timeout, cron, Ctrl-C): it fails saying so, and the
    cleanup contract leaves neither a partial nor a backup behind."""
    backup_dir = tmp_path / "b"
    args = dict(conn_args(big_pg), backup_dir=str(backup_dir), label="x", format="plain-gzip", compression_level=9)
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    path.chmod(0o600)
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, str(repo / "plugins" / "modules" / "pg_backup.py"), str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(repo / ".ansible" / "collections")))
    wait_for(lambda: backup_dir.exists() and any(n.endswith(".partial") and (backup_dir / n).stat().st_size > 0
                                                 for n in os.listdir(backup_dir)), 120, "the dump to write")
    proc.send_signal(signum)
    out, _err = proc.communicate(timeout=60)
    result = json.loads(out)
    assert result["failed"] and "interrupted by signal %d" % signum in result["msg"]
    assert "partial output removed" in result["msg"] and result["checks"]["BACKUP-CMD"]["status"] == "fail"
    assert backups_in(backup_dir) == [] and leftovers(backup_dir) == []


@pytest.mark.slow
def test_server_stopped_in_the_middle_of_a_large_dump(big_pg, tmp_path):
    backup_dir = tmp_path / "b"
    earlier = AnsibleHarness(base_dir=tmp_path / "earlier").run_module(
        "hunter.ops.pg_backup", dict(conn_args(big_pg), backup_dir=str(backup_dir), label="x", count_rows=False,
                                     extra_options=["--exclude-table-data", "events"]))
    assert not earlier.get("check_task_failed"), earlier.get("msg")
    time.sleep(1)
    thread, box = run_in_thread(tmp_path / "victim", "hunter.ops.pg_backup", dict(
        conn_args(big_pg), backup_dir=str(backup_dir), label="x", format="plain-gzip", compression_level=9))
    wait_for(lambda: any(n.endswith(".partial") and (backup_dir / n).stat().st_size > 0
                         for n in os.listdir(backup_dir)), 120, "the dump to write")
    time.sleep(0.5)
    big_pg.kill()
    thread.join(120)
    result = box["result"]
    assert result.get("check_task_failed")
    assert "backup of hunter failed: pg_dump failed" in result["msg"] or "database session failed" in result["msg"]
    assert re.search(r"server closed the connection|terminating connection|connection to server", result["msg"])
    assert "partial output removed" in result["msg"]
    assert backups_in(backup_dir) == [os.path.basename(earlier["backup"])] and leftovers(backup_dir) == []
    assert bk.verify_backup(earlier["backup"]) == []


def test_disk_full_leaves_nothing_and_earlier_backups_intact(make_pg, ansible, tmp_path):
    full = tmp_path / "tmpfs"
    full.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(full)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); the disk-full test needs it")
    try:
        pg = make_pg()
        backup_dir = full / "backups"
        earlier = ansible.run_module("hunter.ops.pg_backup", dict(conn_args(pg), backup_dir=str(backup_dir),
                                                                  label="x", format="plain"))
        assert not earlier.get("check_task_failed"), earlier.get("msg")
        pg.psql("CREATE TABLE filler AS SELECT g, md5(g::text) AS m FROM generate_series(1, 60000) g;")
        time.sleep(1)
        result = ansible.run_module("hunter.ops.pg_backup", dict(conn_args(pg), backup_dir=str(backup_dir),
                                                                 label="x", format="plain"))
        assert result.get("check_task_failed")
        assert "No space left on device" in result["msg"] and "partial output removed" in result["msg"]
        assert backups_in(backup_dir) == [os.path.basename(earlier["backup"])] and leftovers(backup_dir) == []
        assert bk.verify_backup(earlier["backup"]) == []
    finally:
        subprocess.run(["umount", "-l", str(full)], capture_output=True, check=False)


# -- S3 copy and retention ----------------------------------------------------------------------------------------

def s3_args(s3_server, bucket, prefix="prod/") -> dict:
    return dict(s3_endpoint_url=s3_server.endpoint_url, s3_region="us-east-1", s3_bucket=bucket, s3_prefix=prefix,
                s3_access_key=s3_server.access_key, s3_secret_key=s3_server.secret_key)


@pytest.mark.slow
def test_s3_copy_is_verified_and_retention_applies_there(src, s3_server, bucket, ansible, tmp_path, assert_no_secret):
    backup_dir = tmp_path / "b"
    made = []
    for _attempt in range(3):
        result = ansible.run_module("hunter.ops.pg_backup", dict(conn_args(src), backup_dir=str(backup_dir), label="x",
                                                                 format="plain" if not made else "directory"))
        assert not result.get("check_task_failed"), result.get("msg")
        copy = ansible.run_module("hunter.ops.backup_s3_copy", dict(
            s3_args(s3_server, bucket), backup=result["backup"], s3_multipart_threshold_mb=5,
            s3_multipart_chunk_mb=5))
        assert not copy.get("check_task_failed"), copy.get("msg")
        loc = copy["location"]
        assert loc["verified"] and loc["evidence"]["verified_by"] == ["checksum"]
        assert loc["evidence"]["sha256"] == result["manifest"]["sha256"]
        if not made:
            assert loc["evidence"]["multipart_objects"] == 1, "a 6 MB plain dump goes up in 5 MiB parts"
        assert_no_secret(copy, s3_server.secret_key)
        assert_no_secret(ansible.last_run, s3_server.secret_key)
        made.append(os.path.basename(result["backup"]))
        time.sleep(1)
    stored = s3_server.objects(bucket, "prod/")
    assert f"prod/{made[0]}" in stored and f"prod/{made[0]}.manifest.json" in stored
    for name in made[1:]:
        assert f"prod/{name}.manifest.json" in stored and f"prod/{name}/toc.dat" in stored
    head = s3_server.client().head_object(Bucket=bucket, Key=f"prod/{made[1]}/toc.dat")
    assert head["ServerSideEncryption"] == "AES256" and head["Metadata"]["sha256"]

    # the newest copy in the bucket gets damaged: it is no longer valid there
    damaged_key = f"prod/{made[2]}/toc.dat"
    s3_server.client().put_object(Bucket=bucket, Key=damaged_key, Body=b"garbage")
    policy = dict(s3_args(s3_server, bucket), backup_dir=str(backup_dir), database="hunter", keep_days=0, keep_count=1)
    dry = ansible.run_module("hunter.ops.backup_retention", policy, check=True)
    assert not dry.get("check_task_failed"), dry.get("msg")
    assert sorted(dry["deleted"]) == sorted([f"local:{made[0]}", f"local:{made[1]}",
                                             f"s3://{bucket}/prod/{made[0]}"])
    assert dry["checks"]["BACKUP-RETENTION"]["message"].startswith("check mode: would delete 3")
    assert backups_in(backup_dir) == sorted(made) and len(s3_server.objects(bucket, "prod/")) == len(stored)

    real = ansible.run_module("hunter.ops.backup_retention", policy)
    assert not real.get("check_task_failed"), real.get("msg")
    assert real["changed"] and real["checks"]["BACKUP-RETENTION"]["status"] == "pass"
    assert backups_in(backup_dir) == [made[2]]
    remaining = s3_server.objects(bucket, "prod/")
    assert not any(k.startswith(f"prod/{made[0]}") for k in remaining)
    # kept in the bucket: the newest by count (damaged) and the newest valid one, whatever the rules say
    assert any(k.startswith(f"prod/{made[2]}") for k in remaining)
    assert f"prod/{made[1]}.manifest.json" in remaining
    s3_evidence = real["checks"]["BACKUP-RETENTION"]["evidence"]["s3"]
    assert s3_evidence["newest_valid"] == made[1]
    assert_no_secret(real, s3_server.secret_key)


@pytest.mark.slow
def test_local_retention_by_age_never_deletes_the_newest_valid(src, ansible, tmp_path):
    backup_dir = tmp_path / "b"
    made = []
    for _attempt in range(3):
        result = ansible.run_module("hunter.ops.pg_backup", dict(conn_args(src), backup_dir=str(backup_dir), label="x",
                                                                 format="custom"))
        assert not result.get("check_task_failed"), result.get("msg")
        made.append(result["backup"])
        time.sleep(1)
    # all three are 10+ days old now; the newest is damaged
    for index, path in enumerate(made):
        manifest = bk.load_manifest(path)
        manifest["started_at"] = bk.iso_utc(time.time() - (12 - index) * 86400)
        bk.write_manifest(path, manifest)
    with open(made[2], "ab") as handle:
        handle.write(b"damage")
    result = ansible.run_module("hunter.ops.backup_retention", dict(backup_dir=str(backup_dir), keep_days=7))
    assert not result.get("check_task_failed"), result.get("msg")
    assert backups_in(backup_dir) == [os.path.basename(made[1])]
    assert sorted(result["deleted"]) == sorted(f"local:{os.path.basename(p)}" for p in (made[0], made[2]))
    assert result["kept"] == [dict(backup=f"local:{os.path.basename(made[1])}",
                                   reason="newest valid backup (never deleted)")]


# -- the role ---------------------------------------------------------------------------------------------------------

def role_inventory(pg, tmp_path, **extra) -> dict:
    variables = dict(
        hunter_db_host=pg.host, hunter_db_port=pg.port, hunter_db_name=pg.database, hunter_db_user=pg.user,
        hunter_db_password=pg.password, hunter_release_label="pre_v1.0", hunter_backup_dir=str(tmp_path / "backups"),
        pg_backup_schedule_cron_file=str(tmp_path / "cron.d" / "hunter-backup"),
        pg_backup_schedule_dir=str(tmp_path / "schedule"),
    )
    variables.update(extra)
    (tmp_path / "cron.d").mkdir(exist_ok=True)
    return {"all": {"vars": variables, "children": {"db": {"hosts": {"db1": {}}},
                                                    "backup": {"hosts": {"bk1": {}}}}}}


def items(run, host="db1") -> dict:
    found = {}
    for res in run.task_results(host=host):
        facts = res.get("ansible_facts") or {}
        if "hunter_ops_checks" in facts:
            found = facts["hunter_ops_checks"]
    return found


@pytest.mark.slow
def test_role_s3_unreachable_keeps_the_local_backup_and_fails_location(src, ansible, tmp_path, assert_no_secret):
    secret = "s3-" + secrets.token_urlsafe(16)
    inventory = role_inventory(
        src, tmp_path, hunter_backup_s3_endpoint_url=f"http://127.0.0.1:{refused_port()}", hunter_backup_s3_bucket="hb",
        hunter_backup_s3_region="us-east-1", hunter_backup_s3_access_key="AKIATEST", hunter_backup_s3_secret_key=secret,
        pg_backup_s3_timeout=2, pg_backup_remote_host="")
    run = ansible.run_playbook("playbooks/pg_backup.yml", inventory)
    assert run.rc == 0, run.stdout[-3000:]
    checks = items(run)
    assert checks["BACKUP-CMD"]["status"] == "pass" and checks["BACKUP-VALID"]["status"] == "pass"
    location = checks["BACKUP-LOCATION"]
    assert location["status"] == "fail" and "s3 copy s3://hb/" in location["message"]
    assert "127.0.0.1" in location["message"]
    assert checks["BACKUP-SCHEDULE"]["status"] == "warn"
    # the bucket cannot be pruned either: a warning, and the local directory is pruned all the same
    retention = checks["BACKUP-RETENTION"]
    assert retention["status"] == "warn" and "bucket not pruned" in retention["message"], retention
    assert retention["evidence"]["local"]["newest_valid"] == os.path.basename(checks["BACKUP-VALID"]["evidence"]["path"])
    kept = backups_in(tmp_path / "backups")
    assert len(kept) == 1 and bk.verify_backup(str(tmp_path / "backups" / kept[0])) == []
    assert_no_secret(run, secret, src.password)


@pytest.mark.slow
def test_role_full_run_copies_everywhere_and_installs_nothing(src, s3_server, bucket, ansible, tmp_path,
                                                              assert_no_secret):
    inventory = role_inventory(
        src, tmp_path, hunter_backup_s3_endpoint_url=s3_server.endpoint_url, hunter_backup_s3_bucket=bucket,
        hunter_backup_s3_prefix="role/", hunter_backup_s3_region="us-east-1",
        hunter_backup_s3_access_key=s3_server.access_key, hunter_backup_s3_secret_key=s3_server.secret_key,
        pg_backup_remote_dir=str(tmp_path / "remote"))
    cron_file = tmp_path / "cron.d" / "hunter-backup"
    first = ansible.run_playbook("playbooks/backup.yml", inventory)
    assert first.rc == 0, first.stdout[-3000:]
    checks = items(first)
    assert {k: v["status"] for k, v in checks.items()} == {
        "BACKUP-CMD": "pass", "BACKUP-VALID": "pass", "BACKUP-LOCATION": "pass", "BACKUP-RETENTION": "pass",
        "BACKUP-SCHEDULE": "warn"}  # no job installed: the role only checks (playbooks/install_backup_schedule.yml)
    assert "no scheduled backup job installed" in checks["BACKUP-SCHEDULE"]["message"]
    evidence = checks["BACKUP-VALID"]["evidence"]
    assert evidence["path"].startswith(str(tmp_path / "backups")) and evidence["size_bytes"] > 0 and evidence["sha256"]
    assert "3 places" in checks["BACKUP-LOCATION"]["message"]
    name = os.path.basename(evidence["path"])
    assert bk.verify_backup(str(tmp_path / "remote" / name)) == []
    assert f"role/{name}.manifest.json" in s3_server.objects(bucket, "role/")
    assert not cron_file.exists() and not (tmp_path / "schedule").exists()

    time.sleep(1)
    second = ansible.run_playbook("playbooks/backup.yml", inventory)
    assert second.rc == 0, second.stdout[-3000:]
    assert not cron_file.exists()
    # the label's count limit (pre_* keeps 3) leaves both backups in every place
    assert len(backups_in(tmp_path / "backups")) == len(backups_in(tmp_path / "remote")) == 2
    for run in (first, second):
        assert_no_secret(run, src.password, s3_server.secret_key)

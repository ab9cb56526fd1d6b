"""Rows of the fault matrix that each need a run of their own, caught mid-module by a real signal
(tests/faults/table.py INTERRUPTS); moved here from tests/integration/test_secrets_on_disk.py (issue 11,
item 1: interrupted and killed runs leave no secret on disk).

A backup (pg_backup, then backup_s3_copy) and a restore drill (pg_restore_dryrun) run through
ansible-runner against PostgreSQL and moto whose credentials are marker secrets (tests/faults/conftest.py).
Each run is caught mid-module (pg_dump waiting on a table lock the test holds; the restore sleeping inside
the backup's SQL) and its ansible-playbook process group gets SIGINT, SIGTERM or SIGKILL (what
`ansible-runner`/AWX cancel does); or pg_dump alone is killed; or the S3 server is killed mid-upload; or a
second backup starts while the first runs. Once every process of the run is gone, every file a run can
write is searched for the markers in every encoding: the run's ANSIBLE_REMOTE_TEMP and ANSIBLE_LOCAL_TEMP,
~/.ansible/tmp, /tmp, /var/tmp, /dev/shm, the backup and report dirs and the runner's artifacts; only the
input files the test wrote itself (extra vars, inventory, playbook) are left out, as a vault would be.
What a killed run cannot clean up (a partial backup, a scratch database) is cleaned by the next run: the
rows check that too.

The control case turns pipelining off: the killed drill then leaves its AnsiballZ file with the
arguments in the remote temp dir, and the same search finds the markers there. That is the leak
pipelining (ansible.cfg) closes, and the proof that the search can fail.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from ansible_collections.hunter.ops.plugins.module_utils.scratch_db import APPLICATION_PREFIX
from tests.faults import lib
from tests.faults.lib import Run, activity, group_gone, scan, wait_for
from tests.faults.table import check_items, record, row_named
from tests.harness import AnsibleHarness

pytestmark = pytest.mark.slow

# (row suffix, signal, whole_tree): see interrupt(). SIGKILL is sent to every process of the run (a container
# kill); SIGKILL-group only to ansible-playbook's process group (ansible-runner's cancel without a container).
SIGNALS = [("SIGINT", signal.SIGINT, False), ("SIGTERM", signal.SIGTERM, False), ("SIGKILL", signal.SIGKILL, True)]
BACKUP_SIGNALS = SIGNALS + [("SIGKILL-group", signal.SIGKILL, False)]
SCRATCH_PREFIX = "restore_drill_marked"


@pytest.fixture(scope="module")
def disk_markers(markers) -> dict[str, str]:
    return {k: markers[k] for k in ("db_password", "s3_access_key", "s3_secret_key")}


@pytest.fixture(scope="module")
def slow_s3_backup(marked_pg, marked_s3, disk_markers, tmp_path_factory) -> dict:
    """A valid plain backup in S3 whose restore sleeps 60 s half-way (time to interrupt the drill)."""
    from ansible_collections.hunter.ops.plugins.module_utils import backup, backup_s3
    harness = AnsibleHarness(base_dir=tmp_path_factory.mktemp("marked-setup"))
    where = tmp_path_factory.mktemp("marked-backup")
    run, results = harness.run_tasks(
        [{"hunter.ops.pg_backup": dict(_db_args(marked_pg), db_name=marked_pg.database, backup_dir=str(where),
                                       label="marked", format="plain")}],
        extravars={"db_password": disk_markers["db_password"]})
    assert not results[0].get("check_task_failed"), results[0].get("msg")
    path = Path(results[0]["backup"])
    sql = path.read_text()
    at = sql.index("COPY public.domain_signals")
    path.write_text(sql[:at] + "SELECT pg_sleep(60);\n" + sql[at:])
    manifest = backup.load_manifest(str(path))
    manifest.update(size_bytes=backup.backup_size(str(path)), sha256=backup.backup_sha256(str(path)))
    backup.write_manifest(str(path), manifest)
    bucket = marked_s3.create_bucket("marked-" + uuid.uuid4().hex[:8])
    backup_s3.upload_backup(marked_s3.client(), bucket, "drill/", str(path))
    return {"bucket": bucket, "prefix": "drill/"}


def _s3_args(s3_server, bucket, prefix):
    return dict(s3_endpoint_url=s3_server.endpoint_url, s3_region=s3_server.region, s3_bucket=bucket,
                s3_prefix=prefix, s3_access_key="{{ s3_access_key }}", s3_secret_key="{{ s3_secret_key }}")


def _db_args(pg):
    return dict(db_host=pg.host, db_port=pg.port, db_user=pg.user, db_password="{{ db_password }}")


def failed(result: dict) -> bool:
    """A task failed: the module failed, or its action plugin recorded the failure (check_task_failed)."""
    return bool(result.get("failed") or result.get("check_task_failed"))


def locked(pg, table="public.companies"):
    """A session holding ACCESS EXCLUSIVE on a table in its open transaction (a migration)."""
    conn = psycopg.connect(pg.superuser_dsn.rsplit("/", 1)[0] + "/" + pg.database, connect_timeout=5)
    conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    return conn


def interrupt_problems(outcome: dict) -> list[str]:
    """What every interrupted run must hold: pipelining on, no secret on disk, a failed run."""
    problems = []
    if outcome["remote_tmp_during"]:
        problems.append("pipelining is off: module files in the remote temp dir")
    if outcome["hits"]:
        problems.append("secrets left on disk: " + "; ".join(outcome["hits"]))
    if outcome["rc"] == 0:
        problems.append("rc 0")
    return problems


def interrupt(run: Run, mid_run, sig: int, markers: dict[str, str], extra_roots=(), whole_tree: bool = False,
              after_signal=None) -> dict:
    """Start the run, wait until `mid_run()`, signal it, wait until every process of the run is gone (the
    playbook's process group and every process below ansible-playbook: the workers and the modules they run
    are in sessions of their own); then search the disk. Returns timings, hits and what was read.

    By default the signal goes to ansible-playbook's process group, as a terminal's Ctrl-C or
    ansible-runner's own cancel (killpg) sends it: ansible-playbook passes SIGINT/SIGTERM on to its
    workers, but SIGKILL reaches no worker, and the task in flight goes on to its own end.
    whole_tree=True kills every process of the run with SIGKILL at once, as a container kill (AWX cancels a
    job by killing its execution environment's container) or the OOM killer does.
    after_signal: called once the signal is sent (e.g. to release what the module waits for)."""
    began = time.time()
    clock = time.monotonic()
    run.start()
    playbook = run.playbook_pid()
    pgid = os.getpgid(playbook)
    wait_for(mid_run, 90, "the module to be mid-run")
    reached = time.monotonic() - clock
    during = sorted(str(p) for p in run.remote_tmp.rglob("*"))
    tree = lib.descendants(playbook) | {playbook}
    if whole_tree:
        # freeze the tree until no process forks any more, then kill it all at once
        while True:
            for pid in tree:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
            grown = lib.descendants(playbook) | {playbook}
            if grown <= tree:
                break
            tree |= grown
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    else:
        os.killpg(pgid, sig)
    signalled = time.monotonic()
    if after_signal:
        after_signal()
    wait_for(lambda: group_gone(pgid) and lib.all_gone(tree), 90, "every process of the run to end")
    gone = time.monotonic() - signalled
    run.finish()
    roots = list(lib.SCAN_ROOTS) + [run.base] + list(extra_roots)
    hits, read = scan(roots, began - 1, markers, run.inputs)
    return dict(reached_s=round(reached, 1), gone_s=round(gone, 1), hits=hits, read=read,
                remote_tmp_during=during, rc=run.runner.rc, status=run.runner.status,
                seconds=time.monotonic() - clock)


def backup_tasks(pg, s3, bucket, backup_dir, **extra):
    return [
        {"name": "backup", "register": "_backup",
         "hunter.ops.pg_backup": dict(_db_args(pg), db_name=pg.database, backup_dir=str(backup_dir),
                                      label="interrupted", format="custom", **extra)},
        {"name": "copy", "hunter.ops.backup_s3_copy": dict(_s3_args(s3, bucket, "backups/"),
                                                           backup="{{ _backup.backup }}")},
    ]


def next_backup(tmp_path, pg, s3, bucket, backup_dir, markers) -> dict:
    """One more backup in the same folder, run to the end (the next scheduled run)."""
    run = Run(tmp_path / f"next-{uuid.uuid4().hex[:6]}", backup_tasks(pg, s3, bucket, backup_dir), dict(markers))
    run.start()
    run.finish(180)
    return run.results().get("backup", {})


@pytest.mark.parametrize("signame,sig,whole_tree", BACKUP_SIGNALS, ids=[s[0] for s in BACKUP_SIGNALS])
def test_interrupted_backup_leaves_no_secret_on_disk(signame, sig, whole_tree, tmp_path, marked_pg, marked_s3,
                                                     disk_markers):
    row = row_named(f"backup-{signame}")
    bucket = marked_s3.create_bucket("marked-" + uuid.uuid4().hex[:8])
    backup_dir = tmp_path / "backups"
    run = Run(tmp_path / "run", backup_tasks(marked_pg, marked_s3, bucket, backup_dir), dict(disk_markers))
    # The test holds a lock on a table: the backup blocks on it mid-run, holding its connection.
    locker = locked(marked_pg)
    try:
        # SIGKILL-group: the backup in flight survives the signal; the lock is released so it can go on.
        outcome = interrupt(run, lambda: activity(marked_pg, "wait_event_type = 'Lock'"), sig, disk_markers,
                            extra_roots=[backup_dir], whole_tree=whole_tree,
                            after_signal=locker.close if sig == signal.SIGKILL and not whole_tree else None)
    finally:
        locker.close()
    print(f"backup {signame}: mid-run after {outcome['reached_s']} s, every process gone "
          f"{outcome['gone_s']} s after the signal, {outcome['read']} files searched")
    problems = interrupt_problems(outcome)
    wait_for(lambda: not activity(marked_pg, "usename = 'hunter'"), 30, "the backup's sessions to end")
    partial = lib.leftovers(backup_dir)
    observed = f"rc {outcome['rc']}; gone {outcome['gone_s']} s after the signal; {outcome['read']} files searched, " \
               f"{len(outcome['hits'])} hits; partial left: {partial or 'none'}"
    if not whole_tree and partial:
        problems.append(f"partial output left: {partial}")
    # Nothing under a backup's final name unless it is whole: after SIGKILL-group the backup in flight
    # completes (its worker is in a session of its own), and what it keeps must verify against its manifest.
    from ansible_collections.hunter.ops.plugins.module_utils import backup as bk
    for name in lib.backups_in(backup_dir):
        wrong = bk.verify_backup(str(backup_dir / name))
        kept = f"{name} kept, " + ("verified" if not wrong else f"NOT valid: {wrong}")
        observed += f"; {kept}"
        if wrong:
            problems.append(f"a backup that does not verify was kept: {kept}")
    if signame == "SIGKILL-group" and not lib.backups_in(backup_dir):
        problems.append("the backup in flight neither completed nor failed visibly after SIGKILL-group")
    if whole_tree:
        # a killed module cannot remove its partial: the next backup of the folder does
        result = next_backup(tmp_path, marked_pg, marked_s3, bucket, backup_dir, disk_markers)
        after = lib.leftovers(backup_dir)
        observed += f"; next backup: {'ok' if not failed(result) else result.get('msg')}, partial after: " \
                    f"{after or 'none'}"
        if failed(result) or after:
            problems.append(f"the next backup did not clean up: {result.get('msg')} {after}")
    record(row, observed, outcome["seconds"], problems)
    assert not problems, problems


@pytest.mark.parametrize("signame,sig,whole_tree", SIGNALS, ids=[s[0] for s in SIGNALS])
def test_interrupted_drill_leaves_no_secret_on_disk(signame, sig, whole_tree, tmp_path, marked_pg, marked_s3,
                                                    disk_markers, slow_s3_backup):
    row = row_named(f"drill-{signame}")
    outcome = _interrupted_drill(tmp_path, marked_pg, marked_s3, disk_markers, slow_s3_backup, sig, whole_tree)
    print(f"drill {signame}: mid-run after {outcome['reached_s']} s, every process gone "
          f"{outcome['gone_s']} s after the signal, {outcome['read']} files searched")
    problems = interrupt_problems(outcome)
    scratch = outcome["scratch_after"]
    observed = f"rc {outcome['rc']}; gone {outcome['gone_s']} s after the signal; {outcome['read']} files " \
               f"searched, {len(outcome['hits'])} hits; scratch left: {scratch or 'none'}"
    if not whole_tree and scratch:
        problems.append(f"scratch database left: {scratch}")
    if whole_tree:
        observed += f"; next drill: scratch after {outcome['scratch_after_next'] or 'none'}"
        if outcome["scratch_after_next"]:
            problems.append(f"the next drill did not drop the leftover: {outcome['scratch_after_next']}")
    record(row, observed, outcome["seconds"], problems)
    assert not problems, problems


def test_without_pipelining_a_killed_drill_leaves_its_arguments_on_disk(tmp_path, marked_pg, marked_s3, disk_markers,
                                                                        slow_s3_backup):
    """The control: what ansible.cfg's pipelining prevents, and proof that the search finds a leak."""
    outcome = _interrupted_drill(tmp_path, marked_pg, marked_s3, disk_markers, slow_s3_backup, signal.SIGKILL,
                                 whole_tree=True, env={"ANSIBLE_PIPELINING": "false"}, next_drill=False)
    print(f"drill SIGKILL without pipelining: {outcome['hits']}")
    assert any("AnsiballZ_pg_restore_dryrun.py" in p for p in outcome["remote_tmp_during"])
    leaked = {hit.rsplit(": ", 1)[1] for hit in outcome["hits"] if "AnsiballZ_pg_restore_dryrun.py" in hit}
    assert leaked & {"db_password", "s3_secret_key"}, outcome["hits"]
    for path in Path(tmp_path / "run" / "remote_tmp").iterdir():
        shutil.rmtree(path, ignore_errors=True)  # the leak, made on purpose: gone with the test


def _drill_tasks(tmp_path, pg, s3_server, where):
    args = dict(_db_args(pg), download_dir=str(tmp_path / "downloads"), scratch_prefix=SCRATCH_PREFIX,
                restore_timeout=300, state_dir=str(tmp_path / "drill-state"))
    args.update(_s3_args(s3_server, where["bucket"], where["prefix"]))
    return [{"name": "drill", "hunter.ops.pg_restore_dryrun": args}]


def _interrupted_drill(tmp_path, pg, s3_server, markers, where, sig, whole_tree, env=None, next_drill=True):
    run = Run(tmp_path / "run", _drill_tasks(tmp_path, pg, s3_server, where), dict(markers), env=env)
    try:
        outcome = interrupt(run, lambda: activity(pg, "query LIKE '%pg_sleep(60)%'"), sig, markers,
                            extra_roots=[tmp_path / "downloads"], whole_tree=whole_tree)
        # A backend inside pg_sleep notices its client is gone only when the sleep ends: end it now, as the
        # server would at its next write (the drill's sweep leaves a scratch alone while its run has sessions).
        # Only after a kill: a drill that was signalled ends its own restore session.
        if whole_tree:
            pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' "
                    "AND pid <> pg_backend_pid()", superuser=True)
        wait_for(lambda: not activity(pg, "query LIKE '%pg_sleep(60)%'"), 30, "the restore's session to end")
        # and its guard session (the run's sign of life to the next drill's sweep): the server ends it once
        # it reads the closed socket, a moment after the kill
        wait_for(lambda: not activity(pg, f"application_name LIKE '{APPLICATION_PREFIX}%'"), 30,
                 "the killed drill's guard session to end")
        outcome["scratch_after"] = lib.scratch_databases(pg, SCRATCH_PREFIX)
        if next_drill and outcome["scratch_after"]:
            # the next drill sweeps what a killed one left (its owner is gone); it restores the slow
            # backup again, so it is stopped with SIGINT once its own restore is under way
            follow = Run(tmp_path / "next", _drill_tasks(tmp_path, pg, s3_server, where), dict(markers))
            interrupt(follow, lambda: activity(pg, "query LIKE '%pg_sleep(60)%'"), signal.SIGINT, markers)
            wait_for(lambda: not activity(pg, "query LIKE '%pg_sleep(60)%'"), 30, "the restore's session to end")
        outcome["scratch_after_next"] = lib.scratch_databases(pg, SCRATCH_PREFIX)
        return outcome
    finally:
        # whatever a failing case left, the next case starts clean
        for name in lib.scratch_databases(pg, SCRATCH_PREFIX):
            pg.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', superuser=True)


# -- pg_dump killed; two backups at once; S3 killed mid-upload ---------------------------------------------------

def pg_dump_pids(backup_dir: Path) -> list[int]:
    return [pid for pid, argv in lib.processes()
            if argv and argv[0].endswith(b"pg_dump") and any(str(backup_dir).encode() in a for a in argv)]


def test_pg_dump_killed_mid_dump(tmp_path, marked_pg, marked_s3, disk_markers):
    row = row_named("pg-dump-killed")
    began = time.monotonic()
    bucket = marked_s3.create_bucket("marked-" + uuid.uuid4().hex[:8])
    backup_dir = tmp_path / "backups"
    earlier = next_backup(tmp_path, marked_pg, marked_s3, bucket, backup_dir, disk_markers)
    assert not failed(earlier), earlier.get("msg")
    time.sleep(1)
    run = Run(tmp_path / "run", backup_tasks(marked_pg, marked_s3, bucket, backup_dir, count_rows=False),
              dict(disk_markers))
    locker = locked(marked_pg)   # pg_dump waits on it: alive, mid-dump, when it is killed
    try:
        run.start()
        pids = wait_for(lambda: pg_dump_pids(backup_dir), 60, "pg_dump to start")
        wait_for(lambda: activity(marked_pg, "wait_event_type = 'Lock'"), 30, "pg_dump to wait on the lock")
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
    finally:
        locker.close()
    run.finish(120)
    result = run.results().get("backup", {})
    items = result.get("checks", {})
    problems = check_items(row, items)
    partial = lib.leftovers(backup_dir)
    kept = lib.backups_in(backup_dir)
    if partial:
        problems.append(f"partial output left: {partial}")
    if kept != [os.path.basename(earlier["backup"])]:
        problems.append(f"backups in the folder: {kept}")
    leaked = lib.text_hits(run.all_text(), disk_markers)
    if leaked:
        problems.append(f"secrets in the output or artifacts: {leaked}")
    intact = kept == [os.path.basename(earlier["backup"])]
    observed = f"BACKUP-CMD={items.get('BACKUP-CMD', {}).get('status')}: " \
               f"{(items.get('BACKUP-CMD', {}).get('message') or result.get('msg') or '')[:120]}; " \
               f"partial left: {partial or 'none'}; earlier backup kept: {intact}"
    record(row, observed, time.monotonic() - began, problems)
    assert not problems, problems


def test_two_backups_at_once(tmp_path, marked_pg, marked_s3, disk_markers):
    """The first backup waits on a table lock; the second, started meanwhile on the same folder and database,
    gives up after its lock_timeout naming the other run; the first completes once the table is free."""
    row = row_named("two-backups")
    began = time.monotonic()
    bucket = marked_s3.create_bucket("marked-" + uuid.uuid4().hex[:8])
    backup_dir = tmp_path / "backups"
    # the first waits on the table as long as the second needs to run, however loaded the machine is
    first = Run(tmp_path / "first", backup_tasks(marked_pg, marked_s3, bucket, backup_dir, table_lock_timeout=600),
                dict(disk_markers))
    second = Run(tmp_path / "second", backup_tasks(marked_pg, marked_s3, bucket, backup_dir, lock_timeout=2),
                 dict(disk_markers))
    locker = locked(marked_pg)
    try:
        first.start()
        wait_for(lambda: activity(marked_pg, "wait_event_type = 'Lock'"), 60, "the first backup to be mid-run")
        second.start()
        second.finish(120)
    finally:
        locker.close()
    first.finish(180)
    one, two = first.results().get("backup", {}), second.results().get("backup", {})
    problems = check_items(row, two.get("checks", {}))
    if failed(one):
        problems.append(f"the first backup failed: {one.get('msg')}")
    if lib.leftovers(backup_dir):
        problems.append(f"partial output left: {lib.leftovers(backup_dir)}")
    if len(lib.backups_in(backup_dir)) != 1:
        problems.append(f"backups in the folder: {lib.backups_in(backup_dir)}")
    leaked = lib.text_hits(first.all_text() + second.all_text(), disk_markers)
    if leaked:
        problems.append(f"secrets in the output or artifacts: {leaked}")
    cmd = two.get("checks", {}).get("BACKUP-CMD", {})
    observed = f"second: BACKUP-CMD={cmd.get('status')}: {(cmd.get('message') or two.get('msg') or '')[:110]}; " \
               f"first: {'ok' if not failed(one) else 'failed'}; backups: {len(lib.backups_in(backup_dir))}"
    record(row, observed, time.monotonic() - began, problems)
    assert not problems, problems


def test_s3_killed_mid_upload(tmp_path, marked_pg, markers):
    """A private moto (marker keys) is killed with SIGKILL once the backup's multipart upload is under way:
    the copy fails naming S3, in bounded time, and the local backup stays, verified."""
    from sandbox.s3 import MotoServer
    from ansible_collections.hunter.ops.plugins.module_utils import backup as bk
    row = row_named("s3-killed-mid-upload")
    began = time.monotonic()
    s3 = MotoServer(tmp_path / "moto", access_key=markers["s3_access_key"], secret_key=markers["s3_secret_key"]).start()
    database = "hunter_upload_" + uuid.uuid4().hex[:6]
    marked_pg.psql(f"CREATE DATABASE {database} OWNER hunter", database="postgres", superuser=True)
    marked_pg.psql("CREATE TABLE filler AS SELECT g, md5(random()::text) || md5(random()::text) AS a "
                   "FROM generate_series(1, 250000) g", database=database)   # a 16 MB plain dump: 4 parts
    try:
        bucket = s3.create_bucket("marked-" + uuid.uuid4().hex[:8])
        backup_dir = tmp_path / "backups"
        tasks = [
            {"name": "backup", "register": "_backup",
             "hunter.ops.pg_backup": dict(_db_args(marked_pg), db_name=database, backup_dir=str(backup_dir),
                                          label="upload", format="plain")},
            {"name": "copy", "hunter.ops.backup_s3_copy": dict(
                _s3_args(s3, bucket, "up/"), backup="{{ _backup.backup }}", s3_multipart_threshold_mb=5,
                s3_multipart_chunk_mb=5, s3_max_concurrency=1, s3_timeout=3)},
        ]
        run = Run(tmp_path / "run", tasks, {k: markers[k] for k in ("db_password", "s3_access_key", "s3_secret_key")})
        client = s3.client()

        def uploading():
            try:
                return client.list_multipart_uploads(Bucket=bucket).get("Uploads")
            except Exception:  # noqa: BLE001 - moto busy: ask again
                return None
        run.start()
        wait_for(uploading, 120, "the multipart upload to begin", interval=0.02)
        s3.kill()
        run.finish(180)
    finally:
        s3.stop()
        marked_pg.psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)", database="postgres", superuser=True)
    results = run.results()
    made, copy = results.get("backup", {}), results.get("copy", {})
    location = copy.get("location") or {}
    problems = []
    if failed(made):
        problems.append(f"the backup itself failed: {made.get('msg')}")
    if not failed(copy) or location.get("verified"):
        problems.append("the copy claims success")
    message = copy.get("msg") or location.get("message") or ""
    if "s3" not in message.lower():
        problems.append(f"the failure does not name S3: {message[:200]}")
    kept = lib.backups_in(backup_dir)
    if len(kept) != 1 or bk.verify_backup(str(backup_dir / kept[0])):
        problems.append(f"the local backup is not intact: {kept}")
    leaked = lib.text_hits(run.all_text(), markers)
    if leaked:
        problems.append(f"secrets in the output or artifacts: {leaked}")
    observed = f"copy failed: {failed(copy)}: {message[:120]}; local backup verified: " \
               f"{len(kept) == 1 and not bk.verify_backup(str(backup_dir / kept[0]))}"
    record(row, observed, time.monotonic() - began, problems)
    assert not problems, problems

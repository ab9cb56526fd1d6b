"""The fault matrix's shared runs (tests/faults/table.py): one preflight with a host per fault row beside
healthy baselines, and one restore drill with damaged newest backups whose report folder is unwritable."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.faults import lib
from tests.faults.conftest import all_secrets
from tests.faults.table import (DRILL, FULL_DISK, PREFLIGHT, REPORT_DIR_ROW, RowNotRun, check_items, record,
                                record_not_run)

HERE = Path(__file__).parent
BASELINES = {"app": "f-baseline-app", "cache": "f-baseline-cache", "db": "f-baseline-db"}


def build_inventory(ctx, rows, baselines: dict) -> tuple[dict, dict, list]:
    """({group: {host: vars}} inventory, {row name: host}, rows built); hosts are built concurrently.
    A row whose fault cannot be made here (RowNotRun) is recorded as not run and left out."""
    hosts = {row.name: "f-" + row.name for row in rows}

    def build(row):
        try:
            return row.build(ctx, hosts[row.name])
        except RowNotRun as exc:
            record_not_run(row, str(exc))
            return None
    with ThreadPoolExecutor(4) as pool:
        built = list(pool.map(build, rows))
        base = {group: pool.submit(make, ctx, host) for group, (host, make) in baselines.items()}
        base = {group: future.result() for group, future in base.items()}
    groups: dict[str, dict] = {}
    for group, (host, _make) in baselines.items():
        groups.setdefault(group, {})[host] = base[group]
    made = []
    for row, variables in zip(rows, built):
        if variables is not None:
            groups.setdefault(row.group, {})["f-" + row.name] = variables
            made.append(row)
    return {"all": {"children": {g: {"hosts": h} for g, h in groups.items()}}}, hosts, made


def items_by_host(report: dict) -> tuple[dict, dict]:
    by_host: dict[str, dict] = {}
    for item in report["items"]:
        by_host.setdefault(item["host"], {})[item["id"]] = item
    blocking: dict[str, set] = {}
    for b in report["blocking"]:
        blocking.setdefault(b["host"], set()).add(b["id"])
    return by_host, blocking


def observe(row, host, by_host, blocking, baseline_host) -> tuple[str, list[str]]:
    """(observed text, problems) of one host row."""
    items = by_host.get(host, {})
    baseline = by_host.get(baseline_host, {})
    problems = check_items(row, items)
    verdict = "NO-GO" if blocking.get(host) else "GO"
    if verdict != row.verdict:
        problems.append(f"host verdict {verdict}, expected {row.verdict} (blocking: {sorted(blocking.get(host, []))})")
    if set(items) != set(baseline):
        problems.append(f"items differ from the baseline's: {sorted(set(items) ^ set(baseline))}")
    changed = sorted(i for i in set(items) & set(baseline)
                     if i not in row.expect and items[i]["status"] != baseline[i]["status"])
    for item in changed:
        problems.append(f"{item} changed: {baseline[item]['status']} -> {items[item]['status']}: "
                        f"{items[item]['message'][:200]}")
    shown = {}
    for item in row.expect:
        status = items[item]["status"] if item in items else "missing"
        shown.setdefault(status, []).append(item)
    observed = "; ".join([verdict] + [f"{', '.join(v)}={k}" for k, v in shown.items()])
    first = next(iter(row.expect), None)
    if first in items:  # what an operator reads first
        text = items[first]["message"]
        observed += f"; {first}: \"{text if len(text) <= 120 else text[:60] + ' … ' + text[-55:]}\""
    if changed:
        observed += "; ALSO CHANGED " + ", ".join(f"{i}={items[i]['status']}" for i in changed)
    return observed, problems


def slowest_tasks(run, count=8) -> str:
    """The tasks that took longest (start to next start), for the one who has to make the run faster."""
    from datetime import datetime
    starts = [(datetime.fromisoformat(e["created"]), e["event_data"].get("task") or e["event_data"].get("play"))
              for e in run.events
              if e.get("event") in ("playbook_on_task_start", "playbook_on_play_start", "playbook_on_stats")
              and e.get("created")]
    spans = sorted((((b[0] - a[0]).total_seconds(), a[1]) for a, b in zip(starts, starts[1:])), reverse=True)
    return ", ".join(f"{name} {sec:.0f} s" for sec, name in spans[:count])


def run_wide(run, ctx, harness, ps, since: float, secrets: dict) -> list[str]:
    """What every row of a run shares: no secret anywhere, nothing left behind."""
    problems = []
    leaked = lib.text_hits(run.all_text(), secrets)
    if leaked:
        problems.append(f"secrets in the output, artifacts or report: {leaked}")
    leaked = lib.text_hits("\n".join(ps.lines), secrets)
    if leaked:
        problems.append(f"secrets in the process list: {leaked}")
    skip = lib.input_files(run.private_data_dir)
    hits, read = lib.scan(lib.SCAN_ROOTS + list(harness.temp_dirs), since, secrets, skip)
    # Bugsink's own database holds its token and DSN key by design: the tracker's storage, not a leak.
    hits = [h for h in hits if str(ctx.bugsink.base_dir) not in h]
    if hits:
        problems.append("secrets on disk: " + "; ".join(hits[:10]))
    left = lib.files_under(*harness.temp_dirs, run.private_data_dir / "tmp")
    if left:
        problems.append(f"left in the run's temp folders: {left[:10]}")
    scratch = lib.scratch_databases(ctx.pg)
    if scratch:
        problems.append(f"scratch databases left: {scratch}")
    for host, directory in ctx.backup_dirs.items():
        partial = lib.leftovers(directory)
        if partial:
            problems.append(f"{host}: partial backup files left in {directory}: {partial}")
    uploads = ctx.s3.client().list_multipart_uploads(Bucket=ctx.bucket).get("Uploads") or []
    if uploads:
        problems.append(f"unfinished multipart uploads in the bucket: {[u['Key'] for u in uploads]}")
    print(f"run-wide: {read} files searched on disk, {ps.samples} process-list samples, "
          f"{len(ctx.backup_dirs)} backup folders")
    return problems


def judge(rows, run, hosts, ctx, harness, ps, since, seconds, secrets, groups_of) -> list[str]:
    assert run.report is not None, run.stdout[-4000:]
    by_host, blocking = items_by_host(run.report)
    for group, baseline in groups_of.items():
        assert not blocking.get(baseline), {i: by_host[baseline][i]["message"] for i in blocking[baseline]}
    shared = run_wide(run, ctx, harness, ps, since, secrets)
    failures = [f"run-wide: {p}" for p in shared]
    for row in rows:
        observed, problems = observe(row, hosts[row.name], by_host, blocking, groups_of[row.group])
        if shared:
            observed += "; RUN-WIDE PROBLEM"
        record(row, observed, seconds, problems + shared)
        if problems:
            failures.append(f"{row.name} ({row.scenario}){' [BUG: ' + row.bug + ']' if row.bug else ''}: "
                            + " | ".join(problems))
    return failures


def test_preflight_fault_rows(fault_ctx, harness, markers, bugsink):
    ctx = fault_ctx
    baselines = {"app": (BASELINES["app"], lambda c, h: c.app_host(c.baseline_service)),
                 "cache": (BASELINES["cache"], lambda c, h: c.cache_host()),
                 "db": (BASELINES["db"], lambda c, h: c.db_host(h))}
    inventory, hosts, rows = build_inventory(ctx, PREFLIGHT, baselines)
    secrets = all_secrets(markers, bugsink)
    since = time.time() - 1
    began = time.monotonic()
    try:
        with lib.PsWatcher() as ps:
            run = harness.run_playbook("preflight.yml", inventory)
    finally:
        ctx.release()
    seconds = time.monotonic() - began
    secrets.update(ctx.extra_secrets)
    print(f"preflight with {sum(len(g['hosts']) for g in inventory['all']['children'].values())} hosts: "
          f"{seconds:.1f} s, rc {run.rc}; slowest tasks: {slowest_tasks(run)}")
    assert run.rc != 0 and "VERDICT: NO-GO" in run.stdout
    failures = judge(rows, run, hosts, ctx, harness, ps, since, seconds, secrets,
                     {g: h for g, (h, _m) in baselines.items()})
    assert not failures, "\n".join(failures)


@pytest.fixture(scope="module")
def good_backups(marked_pg, tmp_path_factory) -> list[Path]:
    """Two valid plain backups of the marked database, a second apart (oldest first)."""
    from tests.harness import AnsibleHarness
    where = tmp_path_factory.mktemp("drill-backups")
    made = []
    harness = AnsibleHarness(base_dir=tmp_path_factory.mktemp("drill-setup"))
    for _attempt in range(2):
        _run, results = harness.run_tasks(
            [{"hunter.ops.pg_backup": dict(db_host=marked_pg.host, db_port=marked_pg.port, db_name=marked_pg.database,
                                           db_user=marked_pg.user, db_password="{{ pw }}", backup_dir=str(where),
                                           label="pre_v1.0", format="plain")}],
            extravars={"pw": marked_pg.password})
        assert not results[0].get("check_task_failed"), results[0].get("msg")
        made.append(Path(results[0]["backup"]))
        time.sleep(1.1)
    return made


def test_drill_fault_rows(fault_ctx, harness, markers, bugsink, good_backups, tmp_path):
    """The newest backup damaged (two ways) beside an intact copy; the report folder under a regular file
    (unwritable even for root): the table and verdict are printed and the report goes to the fallback."""
    ctx = fault_ctx
    ctx.good_backups = good_backups
    baselines = {"db": (BASELINES["db"], lambda c, h: c.drill_host(h))}
    inventory, hosts, rows = build_inventory(ctx, DRILL, baselines)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the report folder's parent should be\n")
    fallback = tmp_path / "fallback-reports"
    secrets = all_secrets(markers, bugsink)
    since = time.time() - 1
    began = time.monotonic()
    with lib.PsWatcher() as ps:
        run = harness.run_playbook(HERE / "playbooks" / "drill_report.yml", inventory, extravars={
            "hunter_ops_report_dir": str(blocker / "reports"), "preflight_report_fallback_dirs": [str(fallback)]})
    seconds = time.monotonic() - began
    # the report went to the fallback folder: read it from there
    from tests.harness import find_report
    run.report, run.report_path = find_report(fallback)
    stdout = " ".join(run.stdout.split())
    report_problems = []
    if run.report is None:
        report_problems.append("no report in the fallback folder")
    if "report NOT written to" not in stdout:
        report_problems.append("the run does not say the report folder failed")
    if "VERDICT: NO-GO" not in stdout or "RESTORE-DRYRUN" not in stdout:
        report_problems.append("the table or the verdict is not printed")
    if run.rc == 0:
        report_problems.append("rc 0 on NO-GO")
    record(REPORT_DIR_ROW, "NO-GO; " + ("table and verdict printed, report in the fallback folder"
                                        if not report_problems else "; ".join(report_problems)),
           seconds, report_problems)
    assert not report_problems, report_problems
    failures = judge(rows, run, hosts, ctx, harness, ps, since, seconds, secrets, {"db": BASELINES["db"]})
    assert not failures, "\n".join(failures)


def test_full_disk_in_every_format(fault_ctx, harness, markers, bugsink):
    """Every other backup format on a full disk: one run of hunter.ops.pg_backup, a task and a tmpfs each."""
    ctx = fault_ctx
    rows, tasks, disks = [], [], {}
    for row in FULL_DISK:
        try:
            disks[row.name] = ctx.tmpfs(row.name) / "backups"
        except RowNotRun as exc:
            record_not_run(row, str(exc))
            continue
        rows.append(row)
        tasks.append({"hunter.ops.pg_backup": dict(
            db_host=ctx.pg.host, db_port=ctx.pg.port, db_name="hunter_big", db_user=ctx.pg.user,
            db_password="{{ pw }}", backup_dir=str(disks[row.name]), label="full", **row.build(ctx, row.name))})
    if not rows:
        pytest.skip("no tmpfs can be mounted here")
    secrets = all_secrets(markers, bugsink)
    since = time.time() - 1
    began = time.monotonic()
    with lib.PsWatcher() as ps:
        run, results = harness.run_tasks(tasks, extravars={"pw": ctx.pg.password})
    seconds = time.monotonic() - began
    shared = run_wide(run, ctx, harness, ps, since, secrets)
    failures = [f"run-wide: {p}" for p in shared]
    for row, result in zip(rows, results):
        items = result.get("checks") or {}
        problems = check_items(row, items) + list(shared)
        partial, kept = lib.leftovers(disks[row.name]), lib.backups_in(disks[row.name])
        if partial or kept:
            problems.append(f"left on the full disk: {partial + kept}")
        cmd = items.get("BACKUP-CMD", {})
        observed = (f"BACKUP-CMD={cmd.get('status')}, BACKUP-VALID={items.get('BACKUP-VALID', {}).get('status')}: "
                    f"{(cmd.get('message') or '')[len('backup of hunter_big failed: '):][:90]}; "
                    f"left: {partial + kept or 'nothing'}")
        record(row, observed, seconds, problems)
        if problems:
            failures.append(f"{row.name}: " + " | ".join(problems))
    assert not failures, "\n".join(failures)

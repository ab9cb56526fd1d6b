"""Restore drill benchmark on the backup benchmark's ~2 GB database, in one run.

Datasets (both in the shared cluster of bench/dbgen.py):
- `bench_backup`: the backup benchmark's database (bench/backup_bench.py: pgbench scale 100 + ~0.5 GB
  of jsonb events, ~2 GB), the issue's "same ~2 GB database as the backup benchmark";
- `hunter`: bench/dbgen.py's build of the runbook's own tables (companies 200k, domain_signals 6 M,
  ~2.1 GB): one table holds 95 % of the data, the worst case for a parallel restore.

On each, alternating:
- the runbook way (PRODUCTION-CHECKLIST-RUNBOOK 6.3 step 3): CREATE DATABASE staging_test,
  `psql -d staging_test < backup.sql` (the plain dump), `\\dt`, the two SELECT COUNT(*) (companies
  and domain_signals; on bench_backup its two large tables), DROP DATABASE;
- the role's drill: hunter.ops.pg_restore_dryrun on the directory backup (pg_backup's default
  format) - newest backup + sha256, create, `pg_restore -j N`, exact count of every table and the
  schema inventory compared with the manifest, drop - timed from the module's start to its end;
- the drill on the plain backup (psql --single-transaction), to separate format from tooling.

Backups are taken by hunter.ops.pg_backup (plain, and directory with its defaults) so the drill
reads real manifests. Reported: median wall times, the restore and verification parts, the
speed-up (target >= 1.7x) and the verification overhead (target <= 10 % of the restore).

    .venv/bin/python bench/restore_bench.py [--repeat 2] [--jobs 2] [--datasets bench_backup hunter] [--json F]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import backup_bench  # noqa: E402  (its database and its way of running a module)
import dbgen  # noqa: E402

run_module = backup_bench.run_module

# dataset -> (how to build it, the two tables the runbook way counts)
DATASETS = {
    "bench_backup": (lambda server: backup_bench.ensure_db(server, 100, 500), ("pgbench_accounts", "events")),
    "hunter": (lambda server: dbgen.ensure(server, 2.0), ("companies", "domain_signals")),
}


def conn_args(server) -> dict:
    return dict(db_host=server.host, db_port=server.port, db_user=server.user, db_password=server.password)


def take_backups(server, database: str, workdir: Path, jobs: int) -> dict[str, dict]:
    """{'plain': result, 'directory': result} of hunter.ops.pg_backup (each in its own directory)."""
    taken = {}
    workdir.mkdir(parents=True, exist_ok=True)
    for fmt in ("plain", "directory"):
        began = time.monotonic()
        args = dict(conn_args(server), db_name=database, label="bench", format=fmt,
                    backup_dir=str(workdir / fmt), timeout=7200)
        if fmt == "directory":
            args["jobs"] = jobs
        result = run_module("pg_backup", args, workdir)
        result["wall_s"] = round(time.monotonic() - began, 1)
        taken[fmt] = result
    return taken


def runbook_way(server, plain_path: str, counted: tuple[str, str]) -> dict:
    """The runbook's commands, as written (no ON_ERROR_STOP, no single transaction), timed step by step."""
    env = dict(os.environ, PGHOST=server.host, PGPORT=str(server.port), PGUSER=server.user,
               PGPASSWORD=server.password)
    psql = [str(server.bindir / "psql"), "-X", "-q"]

    def step(args, stdin=None, db="postgres"):
        began = time.monotonic()
        out = subprocess.run(psql + ["-d", db] + args, env=env, stdin=stdin, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"runbook step {args} failed: {out.stderr.strip()}")
        return time.monotonic() - began, out.stdout

    times = {}
    began = time.monotonic()
    times["create_s"], _ = step(["-c", "CREATE DATABASE staging_test;"])
    with open(plain_path) as dump:
        times["restore_s"], _ = step([], stdin=dump, db="staging_test")
    verify = 0.0
    for sql in ("\\dt",) + tuple(f"SELECT COUNT(*) FROM {table};" for table in counted):
        spent, _ = step(["-c", sql], db="staging_test")
        verify += spent
    times["verify_s"] = verify
    times["drop_s"], _ = step(["-c", "DROP DATABASE staging_test;"])
    times["total_s"] = time.monotonic() - began
    return {k: round(v, 2) for k, v in times.items()}


def drill(server, backup_dir: str, jobs: int, workdir: Path) -> dict:
    began = time.monotonic()
    result = run_module("pg_restore_dryrun", dict(conn_args(server), backup_dir=backup_dir, jobs=jobs,
                                                  leftover_max_age=0), workdir)
    total = time.monotonic() - began
    item = result["checks"]["RESTORE-DRYRUN"]
    if item["status"] != "pass":
        raise RuntimeError(f"drill did not pass: {item['message']}")
    ev = item["evidence"]
    return {"total_s": round(total, 2), "restore_s": ev["timings_s"]["restore_s"],
            "verify_s": ev["timings_s"]["verify_s"], "end_to_end_s": ev["timings_s"]["end_to_end_s"],
            "verify_schema_s": ev["timings_s"].get("verify_schema_s", 0.0),
            "counts_compared": ev["counts_compared"], "schema_compared": sum(ev["schema"]["compared"].values()),
            "rto": result["rto"]}


def median(rows: list[dict], key: str) -> float:
    return round(statistics.median(r[key] for r in rows), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=2, help="pg_dump/pg_restore -j (the reference machine has 2 cores)")
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args()
    with dbgen.exclusive():  # benchmarks take turns on the shared cluster
        load_before = os.getloadavg()
        results = measure(args)
        load_after = os.getloadavg()
    # The machine may be shared: its load says how much the parallel restore could use its CPUs.
    summary = {"jobs": args.jobs, "repeat": args.repeat, "cpus": os.cpu_count(),
               "loadavg_1_5_15": {"before": load_before, "after": load_after}, "datasets": results}
    for name in args.datasets:
        report(args, name, results[name])
    print("\nload average (1/5/15 min) before %.1f/%.1f/%.1f, after %.1f/%.1f/%.1f on %d CPUs"
          % (load_before + load_after + (os.cpu_count(),)))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")  # with the ratios report() added
        print(f"raw results: {args.json}")


def measure(args) -> dict:
    server = dbgen.bench_server()
    workdir = Path(tempfile.mkdtemp(prefix="restore-bench-", dir="/var/tmp"))
    results = {}
    try:
        for name in args.datasets:
            build, counted = DATASETS[name]
            db = build(server)
            print(f"[{name}] {db['size_gb']} GB", flush=True)
            backups = take_backups(server, name, workdir / name, args.jobs)
            for fmt, result in backups.items():
                print(f"[{name}] backup {fmt}: {result['manifest']['size_bytes'] / 1024 ** 2:.0f} MiB "
                      f"in {result['wall_s']} s", flush=True)
            runs = {"runbook": [], "drill_directory": [], "drill_plain": []}
            ways = [("runbook", lambda: runbook_way(server, backups["plain"]["backup"], counted)),
                    ("drill_directory", lambda: drill(server, str(workdir / name / "directory"), args.jobs, workdir)),
                    ("drill_plain", lambda: drill(server, str(workdir / name / "plain"), args.jobs, workdir))]
            for rep in range(args.repeat):
                for way, run in ways[rep % len(ways):] + ways[:rep % len(ways)]:  # rotate: no order bias
                    subprocess.run(["sync"], check=False)
                    runs[way].append(run())
                    print(f"[{name}] rep {rep + 1} {way:<16} {runs[way][-1]['total_s']:6.1f} s", flush=True)
            results[name] = {"database": db, "counted_by_runbook": counted, "runs": runs,
                             "backups": {fmt: {"size_bytes": r["manifest"]["size_bytes"], "seconds": r["wall_s"]}
                                         for fmt, r in backups.items()}}
            shutil.rmtree(workdir / name, ignore_errors=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        server.stop()
    return results


def report(args, name: str, result: dict) -> None:
    runs, db = result["runs"], result["database"]
    rb, dd, dp = runs["runbook"], runs["drill_directory"], runs["drill_plain"]
    speedup = median(rb, "total_s") / median(dd, "total_s")
    overhead = median(dd, "verify_s") / median(dd, "restore_s")
    result.update(speedup=round(speedup, 2), verification_overhead=round(overhead, 3))
    counted = " and ".join(result["counted_by_runbook"])
    print(f"\n### {name}: {db['size_gb']} GB, {os.cpu_count()} CPUs, median of {args.repeat} alternating runs\n")
    print("| way | total (s) | restore (s) | verification (s) | verified |")
    print("|---|---:|---:|---:|---|")
    print("| runbook: create, `psql < backup.sql`, `\\dt`, 2 counts, drop | %.1f | %.1f | %.2f | %s counted, not compared |"
          % (median(rb, "total_s"), median(rb, "restore_s"), median(rb, "verify_s"), counted))
    print("| drill: directory backup, sha256, `pg_restore -j%d`, verify, drop | %.1f | %.1f | %.2f | %d tables, exact counts = manifest |"
          % (args.jobs, median(dd, "total_s"), median(dd, "restore_s"), median(dd, "verify_s"), dd[0]["counts_compared"]))
    print("| drill: plain backup, sha256, `psql --single-transaction`, verify, drop | %.1f | %.1f | %.2f | %d tables |"
          % (median(dp, "total_s"), median(dp, "restore_s"), median(dp, "verify_s"), dp[0]["counts_compared"]))
    print(f"\nspeed-up (runbook total / drill total): {speedup:.2f}x (target >= 1.7x); "
          f"verification overhead (verify / restore): {overhead:.1%} (target <= 10%)")
    rto = dd[-1]["rto"]
    print(f"verification: {dd[0]['counts_compared']} tables counted and {dd[0]['schema_compared']} schema objects "
          f"compared (the schema part {median(dd, 'verify_schema_s'):.2f} s of {median(dd, 'verify_s'):.2f} s); "
          f"drill end to end (module's own clock) {median(dd, 'end_to_end_s'):.1f} s")
    print(f"RESTORE-RTO: restore {rto['restore_s']} s, end to end {rto['end_to_end_s']} s of "
          f"{rto['restored_database_size']} ({rto['throughput']}), projected restore {rto['projected']}, end to end "
          f"{rto['end_to_end_projected']} for {rto['production_size']} ({rto['projection_basis']})")


if __name__ == "__main__":
    main()

"""Restore drill benchmark on the ~2 GB database of bench/dbgen.py (the backup benchmark's).

In one run, on the same server, alternating:

- the runbook way (PRODUCTION-CHECKLIST-RUNBOOK 6.3 step 3): CREATE DATABASE staging_test,
  `psql -d staging_test < backup.sql` (the plain dump), `\\dt`, the two SELECT COUNT(*), DROP DATABASE;
- the role's drill: hunter.ops.pg_restore_dryrun on the directory backup (pg_backup's default
  format) - pick + sha256 check, create, `pg_restore -j N`, verify every table's exact count against
  the manifest, drop - timed from the module's start to its end;
- the drill on the plain backup (psql --single-transaction), to separate format from tooling.

Backups are taken by hunter.ops.pg_backup (plain, and directory with its defaults) so the drill
reads real manifests. Reported: the median wall time of each, the restore and verification
shares, the speed-up (target >= 1.7x) and the verification overhead (target <= 10% of the restore).

    .venv/bin/python bench/restore_bench.py [--repeat 2] [--size-gb 2] [--jobs 2]
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

import dbgen  # noqa: E402

COLLECTIONS = ROOT / ".ansible" / "collections"
MODULES = ROOT / "plugins" / "modules"


def run_module(name: str, args: dict, workdir: Path) -> dict:
    """A hunter.ops module run directly (args file 0600: it holds the password); its JSON result."""
    path = workdir / f"{name}-{time.monotonic_ns()}.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
    env = dict(os.environ, PYTHONPATH=str(COLLECTIONS))
    try:
        out = subprocess.run([sys.executable, str(MODULES / f"{name}.py"), str(path)], env=env,
                             capture_output=True, text=True)
    finally:
        path.unlink()
    result = json.loads(out.stdout)
    if result.get("failed"):
        raise RuntimeError(f"{name} failed: {result.get('msg')}")
    return result


def conn_args(server) -> dict:
    return dict(db_host=server.host, db_port=server.port, db_user=server.user, db_password=server.password)


def take_backups(server, workdir: Path, jobs: int) -> dict[str, dict]:
    """{'plain': result, 'directory': result} of hunter.ops.pg_backup (each in its own directory)."""
    taken = {}
    for fmt in ("plain", "directory"):
        began = time.monotonic()
        args = dict(conn_args(server), db_name=server.database, label="bench", format=fmt,
                    backup_dir=str(workdir / fmt), timeout=7200)
        if fmt == "directory":
            args["jobs"] = jobs
        result = run_module("pg_backup", args, workdir)
        result["wall_s"] = round(time.monotonic() - began, 1)
        taken[fmt] = result
    return taken


def runbook_way(server, plain_path: str) -> dict:
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
    for sql in ("\\dt", "SELECT COUNT(*) FROM companies;", "SELECT COUNT(*) FROM domain_signals;"):
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
    return {"total_s": round(total, 2), "restore_s": ev["restore_s"], "verify_s": ev["verify_s"],
            "counts_compared": ev["counts_compared"], "rto": result["rto"]}


def median(rows: list[dict], key: str) -> float:
    return round(statistics.median(r[key] for r in rows), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--size-gb", type=float, default=2.0)
    parser.add_argument("--jobs", type=int, default=2, help="pg_dump/pg_restore -j (the reference machine has 2 cores)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "restore_bench.json"))
    args = parser.parse_args()

    with dbgen.exclusive():
        db, backups, runs = measure(args)
    report(args, db, backups, runs)


def measure(args):
    server = dbgen.bench_server()
    workdir = Path(tempfile.mkdtemp(prefix="restore-bench-"))
    try:
        db = dbgen.ensure(server, args.size_gb)
        print(f"database: {db['size_gb']} GB, rows {db['tables']}", flush=True)
        backups = take_backups(server, workdir, args.jobs)
        for fmt, result in backups.items():
            print(f"backup {fmt}: {result['manifest']['size_bytes'] / 1024 ** 2:.0f} MiB in {result['wall_s']} s",
                  flush=True)
        runs = {"runbook": [], "drill_directory": [], "drill_plain": []}
        for i in range(args.repeat):
            runs["runbook"].append(runbook_way(server, backups["plain"]["backup"]))
            print(f"[{i}] runbook: {runs['runbook'][-1]}", flush=True)
            runs["drill_directory"].append(drill(server, str(workdir / "directory"), args.jobs, workdir))
            print(f"[{i}] drill (directory, -j{args.jobs}): {runs['drill_directory'][-1]['total_s']} s", flush=True)
            runs["drill_plain"].append(drill(server, str(workdir / "plain"), args.jobs, workdir))
            print(f"[{i}] drill (plain): {runs['drill_plain'][-1]['total_s']} s", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        server.stop()
    return db, backups, runs


def report(args, db, backups, runs):
    rb, dd, dp = runs["runbook"], runs["drill_directory"], runs["drill_plain"]
    speedup = median(rb, "total_s") / median(dd, "total_s")
    overhead = median(dd, "verify_s") / median(dd, "restore_s")
    rows = [
        ("runbook: `psql < backup.sql`, \\dt, 2 counts, drop", median(rb, "total_s"), median(rb, "restore_s"),
         median(rb, "verify_s"), "2 tables (counts printed, not compared)"),
        (f"drill: directory backup, `pg_restore -j{args.jobs}`, verify, drop", median(dd, "total_s"),
         median(dd, "restore_s"), median(dd, "verify_s"), f"{dd[0]['counts_compared']} tables compared with the manifest"),
        ("drill: plain backup, `psql --single-transaction`, verify, drop", median(dp, "total_s"),
         median(dp, "restore_s"), median(dp, "verify_s"), f"{dp[0]['counts_compared']} tables compared"),
    ]
    table = ["| way | total (s) | restore (s) | verification (s) | verified |", "|---|---:|---:|---:|---|"]
    table += ["| %s | %.1f | %.1f | %.2f | %s |" % row for row in rows]
    summary = {
        "database": db, "jobs": args.jobs, "repeat": args.repeat, "cpus": os.cpu_count(),
        "backups": {fmt: {"size_bytes": r["manifest"]["size_bytes"], "seconds": r["wall_s"]}
                    for fmt, r in backups.items()},
        "runs": runs, "speedup": round(speedup, 2), "verification_overhead": round(overhead, 3),
        "targets": {"speedup": ">= 1.7", "verification_overhead": "<= 0.10"},
        "rto_projection": dd[-1]["rto"],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    print()
    print("\n".join(table))
    print(f"\nspeed-up (runbook total / drill total): {speedup:.2f}x (target >= 1.7x)")
    print(f"verification overhead (verify / restore, drill): {overhead:.1%} (target <= 10%)")
    rto = dd[-1]["rto"]
    print(f"RTO: restore {rto['restore_s']} s of a {rto['restored_database_size']} database; "
          f"projected {rto['projected']} for {rto['production_size']} ({rto['projection_basis']})")
    print(f"details: {args.out}")


if __name__ == "__main__":
    main()

"""Backup benchmark: the runbook's `pg_dump | gzip` against the pg_backup role's default backup.

The data (built once, kept with the cluster of bench/dbgen.py in /var/tmp/hunter-ops-bench-pg):
database `bench_backup` = pgbench scale 100 (pgbench_accounts 10 M rows, ~1.5 GB with indexes)
plus a jsonb-heavy table `events` (~0.5 GB of nested documents), ~2 GB in all.

In one run, alternating the order on every repetition (warm cache for both, no order bias):

- runbook: `pg_dump -h H -U U -d DB --no-owner --no-acl | gzip > backup.sql.gz` (bash, pipefail);
- default: hunter.ops.pg_backup with its defaults (directory format, gzip 1, jobs = CPUs up to 4)
  including what the runbook does not do: the snapshot, exact row counts of every table, fsync,
  `pg_restore --list`, sha256 (recorded, then re-checked after the rename) and the manifest.
  Timed from the module's process start to its end (no Ansible overhead);
- with --all, further rows for the table: the bare `pg_dump -Fd -j N -Z1` (the default without its
  checks, to show what they cost), custom + external zstd, directory uncompressed;
- with --baseline-tree DIR, the default of another checkout of the collection (e.g. the commit
  before a change: `git worktree add DIR <commit>`; DIR/.ansible/collections must resolve
  hunter.ops to DIR), alternating with the rest: what a change costs, measured in the same run.

Reported: median wall time and size of each, the speed-up and the size ratio against the runbook
(targets: >= 2.5x faster, <= 1.2x the size).

    .venv/bin/python bench/backup_bench.py [--repeat 3] [--all | --only default,bare-dir] [--scale 100] [--jsonb-mb 500]
                                            [--baseline-tree DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import dbgen  # noqa: E402

COLLECTIONS = ROOT / ".ansible" / "collections"
MODULES = ROOT / "plugins" / "modules"
DATABASE = "bench_backup"
MARKER = "bench_backup_gen"
OUT = Path(os.environ.get("HUNTER_OPS_BENCH_OUT", "/var/tmp/hunter-ops-bench-backups"))

EVENTS_SQL = """
INSERT INTO events (id, account_id, kind, doc, created_at)
SELECT n, 1 + (n * 7919) % 10000000,
       (ARRAY['login', 'purchase', 'refund', 'signup', 'scan', 'export'])[1 + n % 6],
       jsonb_build_object(
           'source', 'bench', 'version', 1 + n % 5,
           'user', jsonb_build_object('id', n % 100000, 'email', format('user%s@company%s.example', n % 100000, n % 977),
                                      'roles', jsonb_build_array('reader', CASE WHEN n % 7 = 0 THEN 'admin' ELSE 'user' END)),
           'request', jsonb_build_object('ip', format('10.%s.%s.%s', n % 256, (n / 256) % 256, (n / 65536) % 256),
                                         'agent', 'Mozilla/5.0 (X11; Linux x86_64) bench/' || (n % 40),
                                         'path', format('/api/v1/leads/company%s.example/sales-summary', n % 5000)),
           'signals', jsonb_build_array(md5(n::text), md5((n * 3)::text), md5((n * 5)::text), md5((n * 11)::text)),
           'scores', jsonb_build_object('fit', (n * 13) % 100, 'intent', (n * 17) % 100, 'risk', round(((n * 19) % 1000) / 1000.0, 3)),
           'note', repeat(md5((n * 23)::text), 3)),
       timestamptz '2025-01-01 00:00:00+00' + (n % 500000) * interval '1 minute'
FROM generate_series({first}::bigint, {last}) AS n;
"""


def cluster_running() -> bool:
    """Whether the shared benchmark cluster already runs (then it is left running at the end)."""
    state = dbgen.state_path(dbgen.default_root())
    if not state.exists():
        return False
    pid_file = next(dbgen.default_root().glob("postgres-*/data/postmaster.pid"), None)
    if pid_file is None:
        return False
    try:
        os.kill(int(pid_file.read_text().split("\n", 1)[0]), 0)
        return True
    except (OSError, ValueError):
        return False


def env_of(server) -> dict:
    return dict(os.environ, PGHOST=server.host, PGPORT=str(server.port), PGUSER=server.user,
                PGPASSWORD=server.password, PGDATABASE=DATABASE)


def marker(server) -> dict:
    text = server.psql(f"SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '{DATABASE}'",
                       database="postgres")
    try:
        return json.loads(text).get(MARKER) or {}
    except ValueError:
        return {}


def ensure_db(server, scale: int, jsonb_mb: int) -> dict:
    """Build bench_backup (pgbench + events) unless a build with these settings is there; its facts."""
    wanted = {"scale": scale, "jsonb_mb": jsonb_mb}
    built = marker(server)
    if {k: built.get(k) for k in wanted} != wanted:
        began = time.monotonic()
        print(f"[bench] building {DATABASE}: pgbench scale {scale} + ~{jsonb_mb} MB of jsonb (fsync on) ...")
        server.psql(f"DROP DATABASE IF EXISTS {DATABASE}", database="postgres")
        server.psql(f"CREATE DATABASE {DATABASE}", database="postgres")
        subprocess.run([str(server.bindir / "pgbench"), "-i", "-q", "-s", str(scale), "-I", "dtGvp"],
                       env=env_of(server), check=True, capture_output=True)
        print(f"[bench]   pgbench done in {time.monotonic() - began:.0f} s")
        server.psql("CREATE TABLE events (id bigint PRIMARY KEY, account_id int NOT NULL, kind text NOT NULL, "
                    "doc jsonb NOT NULL, created_at timestamptz NOT NULL)", database=DATABASE)
        first, batch = 1, 100_000
        while int(server.psql("SELECT pg_total_relation_size('events')", database=DATABASE)) < jsonb_mb * 1024 ** 2:
            server.psql(EVENTS_SQL.format(first=first, last=first + batch - 1), database=DATABASE)
            first += batch
        server.psql("VACUUM ANALYZE", database=DATABASE)
        note = json.dumps({MARKER: dict(wanted, built_s=round(time.monotonic() - began, 1))})
        server.psql(f"COMMENT ON DATABASE {DATABASE} IS '{note}'", database=DATABASE)
        print(f"[bench]   built in {time.monotonic() - began:.0f} s")
    size = int(server.psql("SELECT pg_database_size(current_database())", database=DATABASE))
    rows = server.psql("SELECT (SELECT count(*) FROM pgbench_accounts), (SELECT count(*) FROM events)",
                       database=DATABASE).split("|")
    return {"database": DATABASE, "size_bytes": size, "size_gb": round(size / 1024 ** 3, 2),
            "pgbench_accounts": int(rows[0]), "events": int(rows[1]), "built_s": marker(server).get("built_s")}


def dir_size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def runbook_way(server, workdir: Path) -> dict:
    """The runbook's compressed backup command as written (PGPASSWORD instead of a prompt)."""
    target = workdir / "backup_runbook.sql.gz"
    command = (f"set -o pipefail; {server.bindir / 'pg_dump'} -h {server.host} -p {server.port} -U {server.user} "
               f"-d {DATABASE} --no-owner --no-acl | gzip > {target}")
    began = time.monotonic()
    subprocess.run(["bash", "-c", command], env=env_of(server), check=True)
    return {"seconds": time.monotonic() - began, "size_bytes": dir_size(target)}


def bare_directory_dump(server, workdir: Path) -> dict:
    """`pg_dump -Fd -j N -Z1` alone: what the default costs without the role's checks."""
    target = workdir / "bare.dir"
    jobs = max(1, min(os.cpu_count() or 1, 4))
    began = time.monotonic()
    subprocess.run([str(server.bindir / "pg_dump"), "-Fd", f"-j{jobs}", "-Z1", "--no-owner", "--no-acl",
                    "-f", str(target)], env=env_of(server), check=True)
    return {"seconds": time.monotonic() - began, "size_bytes": dir_size(target)}


def run_module(name: str, args: dict, workdir: Path, tree: Path | None = None) -> dict:
    """A hunter.ops module run directly (args file 0600: it holds the password); its JSON result.
    `tree`: another checkout of the collection to run the module from (default this one)."""
    path = workdir / f"{name}-args.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
    collections, modules = (COLLECTIONS, MODULES) if tree is None else (
        tree / ".ansible" / "collections", tree / "plugins" / "modules")
    env = dict(os.environ, PYTHONPATH=str(collections))
    try:
        out = subprocess.run([sys.executable, str(modules / f"{name}.py"), str(path)], env=env,
                             capture_output=True, text=True)
    finally:
        path.unlink()
    result = json.loads(out.stdout)
    if result.get("failed"):
        raise RuntimeError(f"{name} failed: {result.get('msg')}")
    return result


def module_way(server, workdir: Path, tree: Path | None = None, **options) -> dict:
    args = dict(db_host=server.host, db_port=server.port, db_user=server.user, db_password=server.password,
                db_name=DATABASE, label="bench", backup_dir=str(workdir / "backups"), timeout=7200, **options)
    began = time.monotonic()
    result = run_module("pg_backup", args, workdir, tree=tree)
    seconds = time.monotonic() - began
    manifest = result["manifest"]
    return {"seconds": seconds, "size_bytes": manifest["size_bytes"], "manifest_s": manifest["duration_s"],
            "tables": len(manifest["tables"]), "command": result["command"],
            "manifest_version": manifest["manifest_version"],
            "manifest_bytes": os.path.getsize(result["manifest_path"]),
            "schema_objects": sum(len(v) for v in (manifest.get("schema") or {}).values()),
            "timings": result["checks"]["BACKUP-CMD"]["evidence"].get("timings", {})}


CONFIGS = {
    "runbook": ("runbook: `pg_dump \\| gzip` (plain SQL, gzip -6)", None),
    "default": ("role default: `-Fd -j N -Z1` + snapshot counts, fsync, `pg_restore --list`, sha256 x2, manifest",
                {}),
}
EXTRA = {
    "bare-dir": ("bare `pg_dump -Fd -j N -Z1` (no snapshot counts, checks, fsync or manifest)", None),
    "custom-zstd": ("`-Fc -Z0 \\| zstd -3 -T N` (external, checked pipeline) + the same checks",
                    dict(format="custom", compression="zstd", compression_level=3)),
    "dir-none": ("`-Fd -j N -Z0` (uncompressed parallel) + the same checks", dict(compression="none")),
}


def measure(args, configs) -> tuple[dict, dict]:
    was_running = cluster_running()
    server = dbgen.bench_server()
    try:
        facts = ensure_db(server, args.scale, args.jsonb_mb)
        print(f"[bench] {facts}")
        if args.build_only:
            sys.exit(0)
        runs: dict[str, list[dict]] = {name: [] for name in configs}
        names = list(configs)
        for rep in range(args.repeat):
            order = names[rep % len(names):] + names[:rep % len(names)]  # rotate: every config goes first once
            for name in order:
                workdir = OUT / name
                shutil.rmtree(workdir, ignore_errors=True)
                workdir.mkdir(parents=True)
                subprocess.run(["sync"], check=False)
                if name == "runbook":
                    run = runbook_way(server, workdir)
                elif name == "bare-dir":
                    run = bare_directory_dump(server, workdir)
                elif name == "baseline":
                    run = module_way(server, workdir, tree=args.baseline_tree)
                else:
                    run = module_way(server, workdir, **configs[name][1])
                runs[name].append(run)
                print(f"[bench] rep {rep + 1} {name:<12} {run['seconds']:6.1f} s  {run['size_bytes'] / 1e6:7.1f} MB")
                shutil.rmtree(workdir, ignore_errors=True)
    finally:
        if not was_running:  # it was started here; one found running is left so
            server.stop()
        shutil.rmtree(OUT, ignore_errors=True)
    return facts, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--all", action="store_true", help="also the extra configurations")
    parser.add_argument("--scale", type=int, default=100, help="pgbench scale")
    parser.add_argument("--jsonb-mb", type=int, default=500, help="size of the jsonb table")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--build-only", action="store_true", help="build (or check) the database and stop")
    parser.add_argument("--only", help="comma-separated extra configurations (runbook and default always run): "
                                       + ", ".join(list(CONFIGS) + list(EXTRA)))
    parser.add_argument("--baseline-tree", type=Path, help="also run the default from this checkout of the collection")
    args = parser.parse_args()

    configs = dict(CONFIGS, **(EXTRA if args.all or args.only else {}))
    if args.baseline_tree:
        args.baseline_tree = args.baseline_tree.resolve()
        configs["baseline"] = ("role default from %s (baseline)" % args.baseline_tree, {})
    if args.only:
        wanted = {"runbook", "default"} | set(args.only.split(","))
        unknown = wanted - set(configs)
        if unknown:
            parser.error("unknown configuration(s): " + ", ".join(sorted(unknown)))
        configs = {k: v for k, v in configs.items() if k in wanted}
    with dbgen.exclusive():  # benchmarks take turns on the shared cluster
        facts, runs = measure(args, configs)
    base_s = statistics.median(r["seconds"] for r in runs["runbook"])
    base_b = statistics.median(r["size_bytes"] for r in runs["runbook"])
    print()
    print(f"Database: {facts['size_gb']} GB (pgbench scale {args.scale}: {facts['pgbench_accounts']:,} accounts; "
          f"{facts['events']:,} jsonb events), {os.cpu_count()} CPUs, {args.repeat} alternating runs, medians.")
    print()
    print("| configuration | median s (min-max) | size MB | faster than runbook | size vs runbook |")
    print("|---|---|---|---|---|")
    for name, (label, _) in configs.items():
        secs = [r["seconds"] for r in runs[name]]
        med = statistics.median(secs)
        size = statistics.median(r["size_bytes"] for r in runs[name])
        print(f"| {label} | {med:.1f} ({min(secs):.1f}-{max(secs):.1f}) | {size / 1e6:.0f} | "
              f"{base_s / med:.2f}x | {size / base_b:.2f}x |")
    default_s = statistics.median(r["seconds"] for r in runs["default"])
    default_b = statistics.median(r["size_bytes"] for r in runs["default"])
    phases = sorted({k for r in runs["default"] for k in r.get("timings", {})})
    if phases:
        print()
        print("Default, where the time goes (medians, s): " + ", ".join(
            f"{k[:-2]} {statistics.median(r['timings'].get(k, 0) for r in runs['default']):.2f}" for k in phases)
            + " (count runs beside the dump)")
    print()
    print(f"Target: >= 2.5x faster and <= 1.2x the size. Default: {base_s / default_s:.2f}x faster "
          f"({'met' if base_s / default_s >= 2.5 else 'NOT met'}), {default_b / base_b:.2f}x the size "
          f"({'met' if default_b / base_b <= 1.2 else 'NOT met'}).")
    manifests = [(name, r) for name in ("baseline", "default") if name in runs for r in runs[name][:1]]
    if manifests:
        print("Manifests: " + "; ".join("%s v%s %d bytes, %d schema objects" % (
            name, r["manifest_version"], r["manifest_bytes"], r["schema_objects"]) for name, r in manifests))
    if "baseline" in runs:
        base = statistics.median(r["seconds"] for r in runs["baseline"])
        print(f"Default against the baseline tree: {default_s - base:+.2f} s ({(default_s - base) / base:+.1%}), "
              f"runbook / baseline {base_s / base:.2f}x")
    print(f"Load average (1/5/15 min) at the end: {'/'.join('%.2f' % x for x in os.getloadavg())}")
    if args.json:
        args.json.write_text(json.dumps({"facts": facts, "runs": runs, "loadavg": os.getloadavg()}, indent=2,
                                        default=str))


if __name__ == "__main__":
    main()

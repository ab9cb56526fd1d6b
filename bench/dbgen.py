"""The ~2 GB benchmark database, shared by bench/backup_bench.py and bench/restore_bench.py.

The seed schema (sandbox/seed.sql: companies, domain_signals with their indexes) scaled up with
server-side generate_series until pg_database_size reaches the target. The cluster is a private
PostgresServer kept in /var/tmp/hunter-ops-bench-pg (fsync on, like a real server), so the
benchmarks that share it build the data once, and take turns on it (exclusive()):

    .venv/bin/python bench/dbgen.py [--size-gb 2] [--fresh]      # build (or reuse) and print facts

    from bench import dbgen
    with dbgen.exclusive():                  # one benchmark at a time on the cluster
        server = dbgen.bench_server()        # started, reused across runs (port, secrets in state.json)
        facts = dbgen.ensure(server, size_gb=2)  # {'database', 'size_bytes', 'tables': {...}, 'built_s'}
        ...
        server.stop()                        # data stays for the next benchmark; --fresh rebuilds
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox.services import PostgresServer, ServiceError, seed  # noqa: E402

DATABASE = "hunter"
# Rows of companies per run of the generator; domain_signals grows until the size is reached.
COMPANIES = 200_000
SIGNALS_PER_BATCH = 1_000_000
# The build is recorded in the database's comment (not a table: backups and their manifests
# see only the seed's two tables), so ensure() knows a complete build of that size is there.
MARKER = "bench_dbgen"

# A staging-like server, not the sandbox's test settings (shared_buffers 32 MB, max_wal_size 1 GB):
# restores and dumps of 2 GB otherwise measure buffer eviction and back-to-back checkpoints.
SERVER_SETTINGS = {"shared_buffers": "512MB", "max_wal_size": "4GB", "checkpoint_timeout": "15min"}

# Same shapes as the seed (sandbox/seed.sql), many more rows; payloads of realistic size.
COMPANIES_SQL = """
INSERT INTO companies (id, domain, name, segment, country, employees, score, created_at)
SELECT n, format('company%s.example', n), format('Company %s Ltd', n),
       (ARRAY['enterprise', 'mid-market', 'smb', 'public-sector'])[1 + n % 4],
       (ARRAY['TR', 'DE', 'GB', 'US', 'NL'])[1 + n % 5],
       10 + (n * 37) % 5000, (n * 53) % 101,
       timestamptz '2025-01-01 09:00:00+00' + (n % 3650) * interval '1 day'
FROM generate_series(51, {last}) AS n;
SELECT setval(pg_get_serial_sequence('companies', 'id'), {last});
"""

SIGNALS_SQL = """
INSERT INTO domain_signals (company_id, domain, signal_type, payload, observed_at)
SELECT c, format('company%s.example', c),
       (ARRAY['mx', 'spf', 'dmarc', 'dkim', 'tenant', 'web', 'tls', 'tech'])[1 + n % 8],
       jsonb_build_object(
           'source', 'bench', 'batch', {batch},
           'value', md5(n::text) || md5((n * 7)::text),
           'records', jsonb_build_array(md5((n * 3)::text), md5((n * 5)::text)),
           'confidence', round(((n * 13) % 100) / 100.0, 2)),
       timestamptz '2025-01-15 12:00:00+00' + (n % 100000) * interval '3 minutes'
FROM generate_series({first}::bigint, {last}) AS n, LATERAL (SELECT (51 + (n * 7919) % ({companies} - 50))::int) AS pick(c);
"""


def state_path(root: Path) -> Path:
    return root / "state.json"


def default_root() -> Path:
    # Not under the (0700, root's) home cache: the postgres OS user must reach the data directory,
    # or PostgresServer falls back to a fresh temporary directory and the build is lost each run.
    return Path(os.environ.get("HUNTER_OPS_BENCH_DIR", "/var/tmp/hunter-ops-bench-pg"))


def _make_root(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")


@contextlib.contextmanager
def exclusive(root: str | os.PathLike | None = None, log=print):
    """Hold the benchmark cluster alone while timing: two benchmarks at once measure each other,
    and one's server.stop() would cut the other's run. A second benchmark waits here."""
    root = Path(root or default_root())
    _make_root(root)
    with open(root / "bench.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log("[dbgen] another benchmark is using the cluster; waiting for it ...")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def bench_server(root: str | os.PathLike | None = None, fresh: bool = False) -> PostgresServer:
    """The benchmark cluster, started; created once and reused (same port and secrets) afterwards."""
    root = Path(root or default_root())
    if fresh and root.exists():
        _destroy(root)
    _make_root(root)
    state = state_path(root)
    if state.exists():
        saved = json.loads(state.read_text())
        server = PostgresServer(root, port=saved["port"], password=saved["password"],
                                superuser_password=saved["superuser_password"], fsync=True)
        try:
            return configure(server.start())
        except ServiceError as err:  # e.g. the saved port is taken now: start over
            print(f"[dbgen] cannot reuse the cached cluster ({err}); rebuilding", file=sys.stderr)
            _destroy(root)
            _make_root(root)
    server = PostgresServer(root, fsync=True)
    server.start()
    if server.root.parent != root:
        raise ServiceError(f"the postgres user cannot use {root}: the cluster would not be reused")
    fd = os.open(state, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"port": server.port, "password": server.password,
                   "superuser_password": server.superuser_password}, handle)
    return configure(server)


def configure(server: PostgresServer) -> PostgresServer:
    """Apply SERVER_SETTINGS (ALTER SYSTEM); restart when one needs it. Idempotent."""
    for name, value in SERVER_SETTINGS.items():
        server.psql(f"ALTER SYSTEM SET {name} = '{value}'", superuser=True)
    server.psql("SELECT pg_reload_conf()", superuser=True)
    if server.psql("SELECT count(*) FROM pg_settings WHERE pending_restart", superuser=True) != "0":
        server.stop()
        server.start()
    return server


def _destroy(root: Path) -> None:
    if state_path(root).exists():
        saved = json.loads(state_path(root).read_text())
        PostgresServer(root, port=saved["port"], password=saved["password"],
                       superuser_password=saved["superuser_password"]).destroy()
    shutil.rmtree(root, ignore_errors=True)


def _marker(server: PostgresServer, database: str) -> dict:
    text = server.psql("SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                       "WHERE datname = current_database()", database=database)
    try:
        return json.loads(text).get(MARKER) or {}
    except ValueError:
        return {}


def facts(server: PostgresServer, database: str = DATABASE) -> dict:
    sizes = server.psql(
        "SELECT pg_database_size(current_database()), "
        "(SELECT count(*) FROM companies), (SELECT count(*) FROM domain_signals)", database=database)
    size, companies, signals = (int(v) for v in sizes.split("|"))
    return {"database": database, "size_bytes": size, "size_gb": round(size / 1024 ** 3, 2),
            "tables": {"public.companies": companies, "public.domain_signals": signals},
            "built_s": _marker(server, database).get("built_s")}


def is_built(server: PostgresServer, size_gb: float, database: str = DATABASE) -> bool:
    return _marker(server, database).get("target_gb") == size_gb


def ensure(server: PostgresServer, size_gb: float = 2.0, database: str = DATABASE, log=print) -> dict:
    """Build the database to ~size_gb unless a build of that size is already there; its facts."""
    if is_built(server, size_gb, database):
        return facts(server, database)
    began = time.monotonic()
    log(f"[dbgen] building a ~{size_gb} GB database on port {server.port} (fsync on) ...")
    seed(server, database)  # the seed's schema and 50/400 rows; resets both tables
    server.psql(COMPANIES_SQL.format(last=COMPANIES), database=database)
    target = int(size_gb * 1024 ** 3)
    first, batch = 1, 0
    while True:
        size = int(server.psql("SELECT pg_database_size(current_database())", database=database))
        if size >= target:
            break
        last = first + SIGNALS_PER_BATCH - 1
        server.psql(SIGNALS_SQL.format(first=first, last=last, batch=batch, companies=COMPANIES),
                    database=database)
        log(f"[dbgen]   {last:,} signals, {size / 1024 ** 3:.2f} GB, {time.monotonic() - began:.0f} s")
        first, batch = last + 1, batch + 1
    server.psql("VACUUM ANALYZE", database=database)
    built_s = round(time.monotonic() - began, 1)
    marker = json.dumps({MARKER: {"target_gb": size_gb, "built_s": built_s}})
    server.psql(f"COMMENT ON DATABASE {database} IS '{marker}'", database=database)
    return facts(server, database)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, default=2.0)
    parser.add_argument("--fresh", action="store_true", help="delete the cached cluster first")
    parser.add_argument("--keep-running", action="store_true")
    args = parser.parse_args()
    with exclusive():
        server = bench_server(fresh=args.fresh)
        try:
            print(json.dumps(ensure(server, args.size_gb), indent=2))
        finally:
            if not args.keep_running:
                server.stop()


if __name__ == "__main__":
    main()

"""Fixtures of the fault matrix: services whose every credential is a marker secret, and the context a
row's build(ctx, host) uses to break exactly its own host (tests/faults/table.py)."""
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import threading
import urllib.parse
import uuid
from pathlib import Path

import psycopg
import pytest

from sandbox.services import PostgresServer, RedisServer, SampleService, SilentServer, refused_port, seed
from tests.harness import REPO_ROOT, AnsibleHarness

sys.path.insert(0, str(REPO_ROOT / ".ansible" / "collections"))
from ansible_collections.hunter.ops.plugins.module_utils import backup as bk  # noqa: E402


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def markers() -> dict[str, str]:
    """One distinctive value per credential; shapes that break naive URL and YAML handling on purpose."""
    tag = uuid.uuid4().hex[:12]
    return {"db_password": f"HOPSMARK-db-{tag}/p@ss:w#rd",
            "db_superuser_password": f"HOPSMARK-su-{tag}",
            "redis_password": f"HOPSMARK-rd-{tag}/x+y=",
            "api_key": f"hk_HOPSMARK-api-{tag}",
            "s3_access_key": f"HOPSMARKAK{tag.upper()}",
            "s3_secret_key": f"HOPSMARK-s3-{tag}+sec/ret"}


@pytest.fixture(scope="session")
def marked_pg(tmp_path_factory, markers):
    """PostgreSQL with the marker passwords: db hunter (seeded), hunter_locked (a copy, for the row whose
    table is locked), hunter_big (4 MB of incompressible rows, for the full disks)."""
    server = PostgresServer(tmp_path_factory.mktemp("marked-pg"), password=markers["db_password"],
                            superuser_password=markers["db_superuser_password"]).start()
    seed(server)
    server.psql("CREATE DATABASE hunter_locked TEMPLATE hunter OWNER hunter", database="postgres", superuser=True)
    server.psql("CREATE DATABASE hunter_big OWNER hunter", database="postgres", superuser=True)
    server.psql("CREATE TABLE filler AS SELECT g, md5(random()::text) || md5(random()::text) AS a "
                "FROM generate_series(1, 60000) g", database="hunter_big")
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def marked_redis(tmp_path_factory, markers):
    server = RedisServer(tmp_path_factory.mktemp("marked-redis"), password=markers["redis_password"]).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def marked_s3(tmp_path_factory, markers):
    from sandbox.s3 import MotoServer
    server = MotoServer(tmp_path_factory.mktemp("marked-moto"), access_key=markers["s3_access_key"],
                        secret_key=markers["s3_secret_key"]).start()
    yield server
    server.stop()


def all_secrets(markers, bugsink) -> dict[str, str]:
    """The markers plus what Bugsink generated (its API token, the DSN's key): searched for everywhere."""
    found = dict(markers, bugsink_token=bugsink.token)
    found["sentry_dsn_key"] = urllib.parse.urlsplit(bugsink.dsn).username
    return found


class FaultContext:
    """What a row's build(ctx, host) uses. Everything it starts, stops, hangs, mounts or locks is undone
    by `release()` (hung processes resumed, locks released) and `close()` (stopped, unmounted)."""

    def __init__(self, tmp_path: Path, markers, pg, redis, s3, bugsink):
        self.tmp_path, self.markers, self.pg, self.redis_shared, self.s3, self.bugsink = (
            tmp_path, markers, pg, redis, s3, bugsink)
        self.api_key = markers["api_key"]
        self.bucket = s3.create_bucket("faults-" + uuid.uuid4().hex[:8])
        self.backup_dirs: dict[str, Path] = {}
        self.extra_secrets: dict[str, str] = {}
        self._servers, self._resume, self._unlock, self._mounts = [], [], [], []
        self._lock = threading.Lock()
        self._baseline = None
        self.bad_scheme_dsn = "ftp://" + bugsink.dsn.split("://", 1)[1]

    # -- services --------------------------------------------------------------------------------
    @staticmethod
    def dead_port() -> int:
        """A port that refuses connections (sandbox.services.refused_port)."""
        return refused_port()

    def _keep(self, server):
        with self._lock:
            self._servers.append(server)
        return server

    def service(self, env: dict | None = None, breaks: tuple = ()) -> SampleService:
        merged = {"HUNTER_DATABASE_URL": self.pg.dsn, "HUNTER_REDIS_URL": self.redis_shared.url,
                  "HUNTER_API_KEYS": self.api_key, "HUNTER_ENVIRONMENT": "production", "HUNTER_SANDBOX_ADMIN": "1",
                  "HUNTER_SENTRY_DSN": self.bugsink.dsn}
        merged.update(env or {})
        if breaks:
            merged["HUNTER_BREAK"] = ",".join(breaks)
        service = SampleService(self.tmp_path / f"service-{uuid.uuid4().hex[:6]}",
                                env={k: v for k, v in merged.items() if v is not None})
        return self._keep(service).start()

    @property
    def baseline_service(self) -> SampleService:
        with self._lock:
            if self._baseline is None:
                self._baseline = "starting"
                starting = True
            else:
                starting = False
        if starting:
            self._baseline = self.service()
        while self._baseline == "starting":
            threading.Event().wait(0.1)
        return self._baseline

    def new_pg(self) -> PostgresServer:
        server = PostgresServer(self.tmp_path / f"pg-{uuid.uuid4().hex[:6]}", password=self.markers["db_password"],
                                superuser_password=self.markers["db_superuser_password"])
        self._keep(server)
        return server.start()

    def new_redis(self) -> RedisServer:
        server = RedisServer(self.tmp_path / f"redis-{uuid.uuid4().hex[:6]}", password=self.markers["redis_password"])
        self._keep(server)
        return server.start()

    def hang(self, pid: int) -> None:
        """SIGSTOP: the kernel still accepts connections on its socket; nothing ever answers."""
        os.kill(pid, signal.SIGSTOP)
        with self._lock:
            self._resume.append(pid)

    # -- hosts -----------------------------------------------------------------------------------
    def app_host(self, service, **overrides) -> dict:
        host = {
            "hunter_app_url": service.url, "hunter_expected_environment": "production",
            "hunter_api_key": self.api_key, "hunter_api_legacy_decision": "removed",
            "hunter_app_db_host": self.pg.host, "hunter_app_db_port": self.pg.port,
            "hunter_app_db_name": self.pg.database, "hunter_app_db_user": self.pg.user,
            "hunter_app_db_password": self.pg.password, "hunter_app_redis_url": self.redis_shared.url,
            "hunter_sentry_dsn_source": "process", "hunter_sentry_pidfile": str(service.pid_path),
            "hunter_sentry_app_module": "sandbox.app",
            "hunter_sentry_backend": "bugsink", "hunter_sentry_api_url": self.bugsink.url,
            "hunter_sentry_api_token": self.bugsink.token, "hunter_sentry_project": str(self.bugsink.project_id),
            "hunter_sentry_allow_http": True, "sentry_probe_wait_timeout": 15,
            "health_check_startup_timeout": 2, "health_check_startup_interval": 0.5, "health_check_timeout": 3,
            "api_versioning_timeout": 3,
        }
        host.update(overrides)
        return host

    def cache_host(self, **overrides) -> dict:
        host = {"hunter_redis_host": self.redis_shared.host, "hunter_redis_port": self.redis_shared.port,
                "hunter_redis_password": self.redis_shared.password, "hunter_redis_db": 0,
                "redis_check_connect_timeout": 2, "redis_check_command_timeout": 2}
        host.update(overrides)
        return host

    def db_host(self, host: str, **overrides) -> dict:
        base = self.tmp_path / host
        (base / "cron.d").mkdir(parents=True, exist_ok=True)
        backup_dir = Path(overrides.get("hunter_backup_dir", base / "backups"))
        if backup_dir.is_absolute():
            self.backup_dirs[host] = backup_dir
        variables = {
            "hunter_db_host": self.pg.host, "hunter_db_port": self.pg.port, "hunter_db_name": self.pg.database,
            "hunter_db_user": self.pg.user, "hunter_db_password": self.pg.password,
            "hunter_release_label": "pre_v1.0", "hunter_backup_dir": str(base / "backups"),
            "pg_backup_schedule_cron_file": str(base / "cron.d" / "hunter-backup"),
            "pg_backup_schedule_dir": str(base / "schedule"),
            "pg_restore_dryrun_state_dir": str(base / "drill-state"),
            "hunter_backup_s3_endpoint_url": self.s3.endpoint_url, "hunter_backup_s3_bucket": self.bucket,
            "hunter_backup_s3_prefix": f"{host}/", "hunter_backup_s3_region": "us-east-1",
            "hunter_backup_s3_access_key": self.s3.access_key, "hunter_backup_s3_secret_key": self.s3.secret_key,
            "pg_backup_s3_timeout": 3, "pg_restore_dryrun_s3_timeout": 3,
            "pg_backup_lock_timeout": 5, "pg_backup_table_lock_timeout": 10, "pg_backup_remote_host": "",
        }
        variables.update(overrides)
        return variables

    def down_host(self, kind: str, host: str) -> dict:
        if kind == "redis":
            server = self.new_redis()
            server.stop()
            return self.cache_host(hunter_redis_port=server.port)
        if kind == "pg":
            server = self.new_pg()
            server.stop()
            return self.db_host(host, hunter_db_port=server.port)
        if kind == "app":
            service = self.service()
            service.stop()
            return self.app_host(service)
        if kind == "s3":  # nothing listens where the endpoint was
            return self.db_host(host, hunter_backup_s3_endpoint_url=f"http://127.0.0.1:{refused_port()}")
        raise ValueError(kind)

    def hung_host(self, kind: str, host: str) -> dict:
        if kind == "redis":
            server = self.new_redis()
            self.hang(server.pid)
            return self.cache_host(hunter_redis_port=server.port)
        if kind == "pg":
            server = self.new_pg()
            self.hang(server.pid)
            return self.db_host(host, hunter_db_port=server.port, pg_backup_db_connect_timeout=2,
                                pg_restore_dryrun_db_connect_timeout=2)
        if kind == "app":
            service = self.service()
            self.hang(service.pid)
            # every request of the host waits its whole timeout: keep them short
            return self.app_host(service, health_check_timeout=2, api_versioning_timeout=2)
        if kind == "s3":
            server = self._keep(SilentServer())
            return self.db_host(host, hunter_backup_s3_endpoint_url=server.url, pg_backup_s3_timeout=2)
        raise ValueError(kind)

    def html_catch_all(self) -> str:
        from sandbox.services import HtmlCatchAllServer
        return self._keep(HtmlCatchAllServer()).url

    def tracker_down_host(self, host: str) -> dict:
        dead = refused_port()
        parts = urllib.parse.urlsplit(self.bugsink.dsn)
        dsn = parts._replace(netloc=f"{parts.username}@127.0.0.1:{dead}").geturl()
        return self.app_host(self.service(env={"HUNTER_SENTRY_DSN": dsn}),
                             hunter_sentry_api_url=f"http://127.0.0.1:{dead}", sentry_probe_wait_timeout=8)

    def wrong_dsn_key_host(self, host: str) -> dict:
        key = uuid.uuid4().hex
        self.extra_secrets["wrong_dsn_key"] = key
        parts = urllib.parse.urlsplit(self.bugsink.dsn)
        dsn = parts._replace(netloc=f"{key}@{parts.hostname}:{parts.port}").geturl()
        return self.app_host(self.service(env={"HUNTER_SENTRY_DSN": dsn}), sentry_probe_wait_timeout=8)

    def lock_held_host(self, host: str) -> dict:
        variables = self.db_host(host, pg_backup_lock_timeout=2)
        directory = self.backup_dirs[host]
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(bk.lock_path(str(directory), self.pg.database), os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, f"pid {os.getpid()} since the fault matrix began".encode())

        def unlock():
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        self._unlock.append(unlock)
        return variables

    def table_locked_host(self, host: str) -> dict:
        holder = psycopg.connect(host=self.pg.host, port=self.pg.port, user=self.pg.user, password=self.pg.password,
                                 dbname="hunter_locked", application_name="migrate-0042", connect_timeout=5)
        holder.execute("LOCK TABLE public.companies IN ACCESS EXCLUSIVE MODE")
        self._unlock.append(holder.close)
        return self.db_host(host, hunter_db_name="hunter_locked", pg_backup_table_lock_timeout=2)

    def tmpfs(self, name: str) -> Path:
        """A fresh 1 MiB tmpfs (unmounted by close())."""
        disk = self.tmp_path / name / "disk"
        disk.mkdir(parents=True)
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(disk)],
                                 capture_output=True, text=True, check=False)
        if mounted.returncode != 0:
            from tests.faults.table import RowNotRun
            raise RowNotRun(f"cannot mount a 1 MiB tmpfs here (root needed): {mounted.stderr.strip()}")
        self._mounts.append(disk)
        return disk

    def disk_full_host(self, host: str, **fmt) -> dict:
        disk = self.tmpfs(host)
        return self.db_host(host, hunter_backup_dir=str(disk / "backups"), hunter_db_name="hunter_big", **fmt)

    # -- the drill run ---------------------------------------------------------------------------------
    good_backups: list[Path] = []   # set by the drill test: two valid plain backups, oldest first

    def corrupt_host(self, host: str, keep_checksum: bool) -> dict:
        variables = self.drill_host(host)
        newest = self.backup_dirs[host] / self.good_backups[-1].name
        data = newest.read_bytes()
        newest.write_bytes(data[: len(data) // 2])   # cut in the middle of the data, as a broken copy is
        if keep_checksum:
            manifest = bk.load_manifest(str(newest))
            manifest.update(size_bytes=bk.backup_size(str(newest)), sha256=bk.backup_sha256(str(newest)))
            bk.write_manifest(str(newest), manifest)
        return variables

    def drill_host(self, host: str) -> dict:
        variables = self.db_host(host)
        directory = self.backup_dirs[host]
        directory.mkdir(parents=True, exist_ok=True)
        for path in self.good_backups:
            shutil.copy2(path, directory / path.name)
            shutil.copy2(str(path) + ".manifest.json", str(directory / path.name) + ".manifest.json")
        return variables

    # -- undo ----------------------------------------------------------------------------------------
    def release(self) -> None:
        """Resume hung processes and release held locks (before the leftovers are looked at)."""
        for pid in self._resume:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self._resume.clear()
        for undo in self._unlock:
            with contextlib.suppress(Exception):
                undo()
        self._unlock.clear()

    def close(self) -> None:
        self.release()
        for server in reversed(self._servers):
            with contextlib.suppress(Exception):
                server.destroy() if hasattr(server, "destroy") else server.stop()
        for disk in self._mounts:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True, check=False)


@pytest.fixture
def fault_ctx(tmp_path, markers, marked_pg, marked_redis, marked_s3, bugsink):
    ctx = FaultContext(tmp_path, markers, marked_pg, marked_redis, marked_s3, bugsink)
    yield ctx
    ctx.close()


@pytest.fixture
def harness(tmp_path) -> AnsibleHarness:
    """ansible-runner whose every temp folder (TMPDIR, Ansible's local and remote temp) is private to the
    test, so what a run leaves there is its own."""
    tmp = tmp_path / "run-tmp"
    for name in ("tmpdir", "remote"):
        (tmp / name).mkdir(parents=True)
    harness = AnsibleHarness(base_dir=tmp_path / "ansible",
                             envvars={"TMPDIR": str(tmp / "tmpdir"), "ANSIBLE_REMOTE_TEMP": str(tmp / "remote"),
                                      # every host of the matrix at once: the slowest fault sets the pace
                                      "ANSIBLE_FORKS": "40"})
    harness.temp_dirs = [tmp / "tmpdir", tmp / "remote"]
    return harness


# -- the table ------------------------------------------------------------------------------------------------

def pytest_terminal_summary(terminalreporter):
    """Print the fault matrix (scenario, expected, observed, seconds) and keep it in reports/test-results/."""
    table = sys.modules.get("tests.faults.table")
    if table is None or not table.OBSERVED:
        return
    lines = ["fault matrix: %d of %d rows ran" % (len(table.OBSERVED), len(table.ROWS)),
             "| row | scenario | expected | observed | s | result |", "|---|---|---|---|---|---|"]
    for row in table.ROWS:
        if row.name in table.OBSERVED:
            scenario, expected, observed, seconds, result = table.OBSERVED[row.name]
            cells = [row.name, scenario, expected, observed, str(seconds), result]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        else:
            lines.append(f"| {row.name} | {row.scenario} | {table.expected_text(row)} | not run | | NOT RUN |")
    lines.append("(s: seconds of the row's run; rows of one shared run show that run's seconds)")
    terminalreporter.write_sep("=", "fault matrix")
    for line in lines:
        terminalreporter.write_line(line)
    out = REPO_ROOT / "reports" / "test-results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "faults.md").write_text("\n".join(lines) + "\n")

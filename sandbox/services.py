"""Private servers on free loopback ports, for tests and the demo sandbox.

Every server binds 127.0.0.1 only, logs to files in its base_dir, keeps secrets
out of argv (config files, environment, stdin), and has a stop() that is safe to
call twice. A server started by one process can be stopped by another (pidfiles,
pg_ctl), which is what `python -m sandbox stop` relies on.

To add a service, subclass ManagedProcess: implement command() and is_ready(),
optionally prepare() (write config files) and environment().
"""
from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable, Iterable, Mapping

REPO_ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"


class ServiceError(RuntimeError):
    """A managed server failed to start or to answer."""


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


# Ports that refuse connections: bound, never listening. A test that stops a server (or needs a dead
# endpoint) keeps its port here, so no server started later (another test, another pytest-xdist worker)
# can take the port and answer in its place: a "down" service stays down. The socket has no
# SO_REUSEADDR: with it, a server that sets it (Redis, PostgreSQL, uvicorn) could still bind and listen.
_REFUSING: dict[int, socket.socket] = {}
_PENDING: set[int] = set()
_PORTS_LOCK = threading.Lock()


def _bind_refusing(port: int) -> socket.socket | None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((LOOPBACK, port))
    except OSError:
        sock.close()
        return None
    return sock


def _hold_later(port: int, seconds: float = 120.0) -> None:
    """A stopped server's port in TIME_WAIT cannot be bound yet (free_port() skips it meanwhile):
    retry until it can, unless a server of ours starts on it again first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.5)
        with _PORTS_LOCK:
            if port not in _PENDING:
                return
            sock = _bind_refusing(port)
            if sock is not None:
                _PENDING.discard(port)
                _REFUSING[port] = sock
                return
    with _PORTS_LOCK:
        _PENDING.discard(port)


def refused_port(port: int = 0) -> int:
    """Hold `port` (0: a new one) on 127.0.0.1 for as long as this process lives, or until a server of
    ours starts on it again (release_port); connecting to it is refused."""
    with _PORTS_LOCK:
        if port in _REFUSING or port in _PENDING:
            return port
        sock = _bind_refusing(port)
        if sock is None:
            if not port:
                raise ServiceError("no free loopback port to hold")
            _PENDING.add(port)
            threading.Thread(target=_hold_later, args=(port,), daemon=True).start()
            return port
        held = sock.getsockname()[1]
        _REFUSING[held] = sock
        return held


def release_port(port: int) -> None:
    with _PORTS_LOCK:
        _PENDING.discard(port)
        sock = _REFUSING.pop(port, None)
    if sock is not None:
        sock.close()


def random_secret(nbytes: int = 18) -> str:
    """URL-safe random secret (no characters that need quoting in a DSN)."""
    return secrets.token_urlsafe(nbytes)


def venv_python() -> Path:
    """The project's virtualenv interpreter, or the running one."""
    candidate = REPO_ROOT / ".venv" / "bin" / "python"
    return candidate if candidate.exists() else Path(sys.executable)


def venv_without(dest: str | os.PathLike, missing: Iterable[str]) -> Path:
    """A virtualenv at `dest` holding the project's packages except `missing` (distribution
    names, e.g. "sentry_sdk"): an application runtime where those were never installed.
    The packages are symlinked, so it takes a second; returns its interpreter."""
    dest = Path(dest)
    python = dest / "bin" / "python"
    if python.exists():
        return python
    source = Path(subprocess.run([str(venv_python()), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                 check=True, capture_output=True, text=True).stdout.strip())
    subprocess.run([str(venv_python()), "-m", "venv", "--without-pip", str(dest)], check=True, capture_output=True)
    target = dest / source.relative_to(source.parents[2])  # lib/pythonX.Y/site-packages
    prefixes = tuple(name.lower().replace("-", "_") for name in missing)
    for entry in source.iterdir():
        name = entry.name.lower().replace("-", "_")
        if any(name == p or name.startswith(p + "-") or name.startswith(p + ".") for p in prefixes):
            continue
        link = target / entry.name
        if not link.exists():
            link.symlink_to(entry)
    return python


def cache_dir() -> Path:
    return Path(os.environ.get("HUNTER_OPS_CACHE", Path.home() / ".cache" / "hunter-ops"))


def wait_until(predicate: Callable[[], bool], timeout: float, what: str,
               alive: Callable[[], bool] | None = None, interval: float = 0.05) -> None:
    """Poll predicate until true; fail fast when `alive` says the process died."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if alive is not None and not alive():
            raise ServiceError(f"{what}: process exited before it was ready")
        if time.monotonic() > deadline:
            raise ServiceError(f"{what}: not ready after {timeout:.0f}s")
        time.sleep(interval)


def pid_alive(pid: int | None) -> bool:
    """True when pid exists and is not a zombie."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def write_private(path: Path, text: str) -> Path:
    """Write a file only its owner can read (it holds secrets), creating its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply to a file that already existed
    return path


def build_once(template: Path, marker: str, build: Callable[[Path], None]) -> Path:
    """The cached directory `template`, made by `build(staging)` the first time only.

    Concurrent test sessions take a lock beside it and build once; `build` fills a staging
    directory that is renamed into place, so a half-built cache never has `marker` (a file
    `build` writes last or copies in) and is rebuilt.
    """
    if (template / marker).exists():
        return template
    template.parent.mkdir(parents=True, exist_ok=True)
    with open(template.with_name(template.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (template / marker).exists():
            return template
        staging = template.with_name(template.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        build(staging)
        os.rename(staging, template)
    return template


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class ManagedProcess:
    """A server process we start detached, with a log file and a pidfile."""

    name = "process"
    ready_timeout = 30.0
    #: substring of /proc/<pid>/cmdline proving a pidfile's pid is still ours
    cmdline_marker: str | None = None

    def __init__(self, base_dir: str | os.PathLike, port: int | None = None):
        self.base_dir = Path(base_dir).resolve()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.host = LOOPBACK
        self.port = int(port) if port else free_port()
        self._proc: subprocess.Popen | None = None
        self.startup_seconds: float | None = None

    # -- what subclasses provide -------------------------------------------
    def command(self) -> list[str]:
        raise NotImplementedError

    def is_ready(self) -> bool:
        raise NotImplementedError

    def prepare(self) -> None:
        """Write config files before the first start."""

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def cwd(self) -> Path:
        return self.base_dir

    # -- files ----------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.base_dir / f"{self.name}-{self.port}.log"

    @property
    def pid_path(self) -> Path:
        return self.base_dir / f"{self.name}-{self.port}.pid"

    # -- lifecycle ------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None
        if self.cmdline_marker:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                return None
            if self.cmdline_marker not in cmdline:
                return None
        return pid

    def is_running(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        return pid_alive(self.pid)

    def start(self) -> "ManagedProcess":
        if self.is_running():
            return self
        release_port(self.port)
        self.prepare()
        began = time.monotonic()
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=self.environment(), cwd=str(self.cwd()), start_new_session=True)
        self.pid_path.write_text(f"{self._proc.pid}\n")
        try:
            wait_until(self.is_ready, self.ready_timeout, f"{self.name} on port {self.port}",
                       alive=lambda: self._proc.poll() is None)
        except ServiceError as exc:
            self.stop()
            raise ServiceError(f"{exc}; log {self.log_path}:\n{tail(self.log_path)}") from None
        self.startup_seconds = time.monotonic() - began
        return self

    def _signal(self, sig: int, timeout: float) -> None:
        pid = self.pid
        if pid is None:
            self.pid_path.unlink(missing_ok=True)
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if self._proc is not None:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        else:
            try:
                wait_until(lambda: not pid_alive(pid), timeout, f"{self.name} stop")
            except ServiceError:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self._proc = None
        self.pid_path.unlink(missing_ok=True)
        refused_port(self.port)  # stopped stays stopped: nothing else answers on its port

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop (SIGTERM, then SIGKILL). Safe to call twice."""
        self._signal(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Immediate death (SIGKILL), for fault tests."""
        self._signal(signal.SIGKILL, 5.0)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.host}:{self.port} running={self.is_running()}>"


# -- PostgreSQL -------------------------------------------------------------------

def pg_bindir() -> Path:
    """Newest PostgreSQL server bindir (Debian layout), else initdb on PATH."""
    root = Path("/usr/lib/postgresql")
    dirs = sorted((p / "bin" for p in root.glob("*") if (p / "bin" / "initdb").exists()),
                  key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True)
    if dirs:
        return dirs[0]
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise ServiceError("PostgreSQL server binaries not found (run scripts/setup.sh)")


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """SCRAM-SHA-256 verifier, so a plaintext password never reaches the server."""
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _as_postgres() -> list[str]:
    """initdb/postgres refuse root: drop to the postgres OS user when we are root."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _postgres_can_reach(path: Path) -> bool:
    """Can the postgres OS user traverse path (and so a postgres-owned dir in it)?"""
    if os.geteuid() != 0:
        return True
    return subprocess.run(_as_postgres() + ["test", "-x", str(path)], capture_output=True).returncode == 0


def _chown_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def pg_template(bindir: Path) -> Path:
    """An initdb'd cluster cached per major version; built once, under a lock."""
    major = subprocess.run([str(bindir / "pg_config"), "--version"], capture_output=True,
                           text=True).stdout.split()[1].split(".")[0] \
        if (bindir / "pg_config").exists() else bindir.parent.name

    def initdb(staging: Path) -> None:
        work = Path(tempfile.mkdtemp(prefix="hunter-pg-initdb-"))  # where the postgres user can reach
        try:
            _chown_postgres(work)
            data = work / "data"
            result = subprocess.run(
                _as_postgres() + [str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                                  "--auth-local=peer", "--auth-host=scram-sha-256",
                                  "--encoding=UTF8", "--no-locale", "--no-sync"],
                capture_output=True, text=True)
            if result.returncode != 0:
                raise ServiceError(f"initdb failed: {result.stderr.strip()}")
            subprocess.run(["cp", "-a", str(data), str(staging)], check=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    return build_once(cache_dir() / f"pg-template-{major}", "PG_VERSION", initdb)


class PostgresServer(ManagedProcess):
    """A private PostgreSQL cluster copied from a cached template (~1 s start).

    The app role `user` owns `database` and has CREATEDB; the superuser
    `postgres` has `superuser_password`. TCP on 127.0.0.1 with scram-sha-256;
    the unix socket (peer auth, postgres OS user only) lives in the data root.
    """

    name = "postgres"
    ready_timeout = 60.0

    def __init__(self, base_dir, port=None, user="hunter", password=None, database="hunter",
                 superuser_password=None, fsync=False, bindir=None, data_root=None):
        super().__init__(base_dir, port)
        self.user = user
        self.password = password or random_secret()
        self.database = database
        self.superuser = "postgres"
        self.superuser_password = superuser_password or random_secret()
        self.fsync = fsync
        self.bindir = Path(bindir) if bindir else pg_bindir()
        # data_root: reattach to a cluster made earlier (python -m sandbox stop)
        root = Path(data_root) if data_root else self.base_dir / f"postgres-{self.port}"
        if not data_root and not _postgres_can_reach(self.base_dir):
            # e.g. pytest's tmp dirs sit in a 0700 root dir: use /tmp, link the log back
            root = Path(tempfile.mkdtemp(prefix=f"hunter-pg-{self.port}-"))
            link = self.base_dir / f"postgres-{self.port}.log"
            if not link.is_symlink():
                link.symlink_to(root / "postgres.log")
        root.mkdir(parents=True, exist_ok=True)
        _chown_postgres(root)
        self.root = root
        self.datadir = root / "data"
        self.socket_dir = root / "run"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    @property
    def dsn(self) -> str:
        return (f"postgresql://{urllib.parse.quote(self.user, safe='')}:"
                f"{urllib.parse.quote(self.password, safe='')}@{self.host}:{self.port}/"
                f"{urllib.parse.quote(self.database, safe='')}")

    @property
    def superuser_dsn(self) -> str:
        return (f"postgresql://postgres:{urllib.parse.quote(self.superuser_password, safe='')}"
                f"@{self.host}:{self.port}/postgres")

    @property
    def env(self) -> dict[str, str]:
        return {"PGHOST": self.host, "PGPORT": str(self.port), "PGUSER": self.user,
                "PGPASSWORD": self.password, "PGDATABASE": self.database}

    @property
    def pid(self) -> int | None:
        try:
            return int((self.datadir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def is_running(self) -> bool:
        return pid_alive(self.pid)

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(_as_postgres() + [str(self.bindir / "pg_ctl"), "-D",
                                                  str(self.datadir), *args],
                                capture_output=True, text=True)
        if check and result.returncode != 0:
            raise ServiceError(f"pg_ctl {args[-1]} failed: {result.stderr.strip()}\n"
                               f"{tail(self.log_path)}")
        return result

    def _create_cluster(self) -> None:
        subprocess.run(["cp", "-a", str(pg_template(self.bindir)), str(self.datadir)], check=True)
        self.socket_dir.mkdir(exist_ok=True)
        _chown_postgres(self.socket_dir)
        settings = {
            "port": str(self.port), "listen_addresses": f"'{LOOPBACK}'",
            "unix_socket_directories": f"'{self.socket_dir}'", "unix_socket_permissions": "0700",
            "password_encryption": "'scram-sha-256'", "max_connections": "40",
            "shared_buffers": "32MB", "fsync": "on" if self.fsync else "off",
            "synchronous_commit": "on" if self.fsync else "off",
            "full_page_writes": "on" if self.fsync else "off", "logging_collector": "off",
        }
        with open(self.datadir / "postgresql.conf", "a") as conf:
            conf.write("\n# hunter.ops sandbox\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        (self.datadir / "pg_hba.conf").write_text(
            "# hunter.ops sandbox: peer for the postgres OS user, scram over loopback TCP\n"
            "local all postgres peer\n"
            f"host all all {LOOPBACK}/32 scram-sha-256\n")

    def _bootstrap_roles(self) -> None:
        """Roles and database; passwords go in as SCRAM verifiers through stdin."""
        user = self.user.replace('"', '""')
        sql = (f"ALTER ROLE postgres PASSWORD '{scram_verifier(self.superuser_password)}';\n"
               f"CREATE ROLE \"{user}\" LOGIN CREATEDB PASSWORD '{scram_verifier(self.password)}';\n"
               f"CREATE DATABASE \"{self.database.replace(chr(34), chr(34) * 2)}\" OWNER \"{user}\";\n")
        result = subprocess.run(
            _as_postgres() + [str(self.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                              "-h", str(self.socket_dir), "-p", str(self.port), "-U", "postgres",
                              "-d", "postgres", "-f", "-"],
            input=sql, capture_output=True, text=True)
        if result.returncode != 0:
            raise ServiceError(f"bootstrap failed: {result.stderr.strip()}")

    def start(self) -> "PostgresServer":
        if self.is_running():
            return self
        release_port(self.port)
        began = time.monotonic()
        fresh = not (self.datadir / "PG_VERSION").exists()
        if fresh:
            self._create_cluster()
        self._pg_ctl("-l", str(self.log_path), "-w", "-t", str(int(self.ready_timeout)), "start")
        if fresh:
            self._bootstrap_roles()
        self.startup_seconds = time.monotonic() - began
        return self

    def is_ready(self) -> bool:
        result = subprocess.run([str(self.bindir / "pg_isready"), "-q", "-h", self.host,
                                 "-p", str(self.port), "-t", "1"], capture_output=True)
        return result.returncode == 0

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown. Safe to call twice."""
        if self.is_running():
            self._pg_ctl("-m", "fast", "-w", "-t", str(int(timeout)), "stop", check=False)
            refused_port(self.port)

    def kill(self) -> None:
        """Immediate shutdown (no checkpoint), for fault tests."""
        if self.is_running():
            self._pg_ctl("-m", "immediate", "-w", "stop", check=False)
            refused_port(self.port)

    def destroy(self) -> None:
        """Stop and delete the cluster's files."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def psql(self, sql: str, database: str | None = None, superuser: bool = False,
             check: bool = True) -> str:
        """Run SQL (through stdin) as the app user or the superuser; return stdout."""
        env = dict(os.environ, PGPASSWORD=self.superuser_password if superuser else self.password,
                   PGCONNECT_TIMEOUT="5")
        result = subprocess.run(
            [str(self.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-h", self.host, "-p", str(self.port),
             "-U", self.superuser if superuser else self.user,
             "-d", database or (self.database if not superuser else "postgres"), "-f", "-"],
            input=sql, capture_output=True, text=True, env=env)
        if check and result.returncode != 0:
            raise ServiceError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def __exit__(self, *exc):
        self.destroy()


def seed(pg: PostgresServer, database: str | None = None) -> None:
    """Load sandbox/seed.sql (50 companies, 400 signals) as the app user."""
    pg.psql((Path(__file__).parent / "seed.sql").read_text(), database=database)


# -- Redis ---------------------------------------------------------------------------

class RedisServer(ManagedProcess):
    """redis-server, no persistence; the password lives in a 0600 config file."""

    name = "redis"
    cmdline_marker = "redis-server"

    def __init__(self, base_dir, port=None, password=None, extra_args: Iterable[str] = (),
                 replicaof=None, masterauth: str | None = None):
        super().__init__(base_dir, port)
        self.password = password
        self.extra_args = list(extra_args)
        if isinstance(replicaof, RedisServer):
            masterauth = masterauth or replicaof.password
            replicaof = (replicaof.host, replicaof.port)
        self.replicaof = replicaof
        self.masterauth = masterauth

    @property
    def config_path(self) -> Path:
        return self.base_dir / f"redis-{self.port}.conf"

    @property
    def url(self) -> str:
        auth = f":{urllib.parse.quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/0"

    def prepare(self) -> None:
        lines = [f"bind {LOOPBACK}", f"port {self.port}", 'save ""', "appendonly no",
                 f"dir {self.base_dir}", "daemonize no", "protected-mode yes",
                 'logfile ""', f"dbfilename redis-{self.port}.rdb"]
        if self.password:
            lines.append(f"requirepass {self.password}")
        if self.replicaof:
            lines.append(f"replicaof {self.replicaof[0]} {self.replicaof[1]}")
        if self.masterauth:
            lines.append(f"masterauth {self.masterauth}")
        write_private(self.config_path, "\n".join(lines) + "\n")

    def command(self) -> list[str]:
        return [shutil.which("redis-server") or "redis-server", str(self.config_path),
                *self.extra_args]

    def client(self, **kwargs):
        import redis  # the sandbox's own dependency, imported where used
        kwargs.setdefault("socket_timeout", 2)
        kwargs.setdefault("socket_connect_timeout", 2)
        return redis.Redis(host=self.host, port=self.port, password=self.password, **kwargs)

    def is_ready(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                if self.password:
                    auth = self.password.encode()
                    sock.sendall(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(auth), auth))
                    if not sock.recv(64).startswith(b"+OK"):
                        return False
                sock.sendall(b"*1\r\n$4\r\nPING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False


# -- the sample service ---------------------------------------------------------------

# App modules that read their settings from an env file in their working directory (the file's name).
ENV_FILE_APPS = {"sandbox.app_unlike_runbook": ".env"}
# Kept in the process environment even for those: the sandbox's fault switches, not app settings.
PROCESS_ONLY_SETTINGS = ("HUNTER_BREAK",)


class SampleService(ManagedProcess):
    """A sample service under uvicorn: ``app_module`` sandbox.app (the runbook's shapes, configured
    through HUNTER_* environment) by default, or sandbox.app_unlike_runbook (profile B), whose
    settings (``env``) are written to the env file in its working directory (``env_file_path``)."""

    name = "sample-service"
    # FastAPI's imports take 2 s on a quiet machine; a test bed starting dozens at once on two
    # busy cores needs far longer (a wait for readiness, not a timing).
    ready_timeout = 90.0

    def __init__(self, base_dir, port=None, env: Mapping[str, str] | None = None,
                 python: str | os.PathLike | None = None, app_module: str = "sandbox.app"):
        super().__init__(base_dir, port)
        self.env = {k: str(v) for k, v in (env or {}).items() if v is not None}
        self.python = Path(python) if python else venv_python()
        self.app_module = app_module
        self.cmdline_marker = f"{app_module}:app"
        self.env_file = ENV_FILE_APPS.get(app_module)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def env_file_path(self) -> Path | None:
        return self.base_dir / self.env_file if self.env_file else None

    def prepare(self) -> None:
        if self.env_file:
            write_private(self.env_file_path, "".join(
                f"{k}={v}\n" for k, v in self.env.items() if k not in PROCESS_ONLY_SETTINGS))
            # Its code lives in its working directory, as a deployed app's does (/srv/hunter/app/...):
            # uvicorn imports it from there, and so does anything run in the app's runtime (the Sentry
            # probe's method A imports the module that sets up Sentry) without a path of its own.
            code = self.base_dir / "sandbox"
            if not code.is_symlink():
                code.symlink_to(REPO_ROOT / "sandbox", target_is_directory=True)

    def command(self) -> list[str]:
        # python -m puts the working directory first on sys.path: the env-file app is found there.
        return [str(self.python), "-m", "uvicorn", self.cmdline_marker, "--host", self.host,
                "--port", str(self.port), "--log-level", "warning"]

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUNTER_")}
        settings = self.env if not self.env_file else {
            k: v for k, v in self.env.items() if k in PROCESS_ONLY_SETTINGS}
        env.update(settings, PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
        return env

    def cwd(self) -> Path:
        return self.base_dir if self.env_file else REPO_ROOT

    def request(self, method: str, path: str, body=None, headers=None, timeout: float = 10.0):
        """(status, headers, parsed JSON or text) of one request to the service."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, hdrs, raw = resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            status, hdrs, raw = err.code, dict(err.headers), err.read()
        try:
            return status, hdrs, json.loads(raw)
        except ValueError:
            return status, hdrs, raw.decode(errors="replace")

    def is_ready(self) -> bool:
        # Serving HTTP at all: a service started with a fault on liveness (503) is up too.
        try:
            return self.request("GET", "/healthz/live", timeout=1)[0] > 0
        except OSError:
            return False

    def configure(self, **settings) -> dict:
        """Change behaviour at run time (needs HUNTER_SANDBOX_ADMIN=1)."""
        status, _, body = self.request("PUT", "/_sandbox/config", settings)
        if status != 200:
            raise ServiceError(f"configure failed: {status} {body}")
        return body

    def reset(self) -> dict:
        """Back to the configuration the environment gave at start."""
        return self.configure(reset=True)


# -- a server that never answers ------------------------------------------------------

class SilentServer:
    """Accepts TCP connections and never answers (timeout tests)."""

    def __init__(self, port: int | None = None):
        self.host = LOOPBACK
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((LOOPBACK, port or 0))
        self.port = self._sock.getsockname()[1]
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        self._conns: list[socket.socket] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
                self._conns.append(conn)  # held open, never read, never answered
            except socket.timeout:
                continue
            except OSError:
                return

    def start(self) -> "SilentServer":
        return self

    def is_running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._thread.join(2)
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.close()
        with contextlib.suppress(OSError):
            self._sock.close()

    kill = stop

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# -- a web server that is not the API -------------------------------------------------------

class HtmlCatchAllServer:
    """Answers every request, whatever its method and path, with 200 and an HTML page: a default
    virtual host or a single-page app's fallback where the API should be (must-fail matrix)."""

    PAGE = (b"<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head>\n"
            b"<body><h1>Welcome to nginx!</h1><p>If you see this page, the web server is working.</p></body></html>\n")

    def __init__(self, port: int | None = None):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        page = self.PAGE

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(page)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _answer

            def log_message(self, *args):  # quiet
                pass

        self.host = LOOPBACK
        self._server = ThreadingHTTPServer((LOOPBACK, port or 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "HtmlCatchAllServer":
        return self

    def is_running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(2)
        self._server.server_close()

    kill = stop

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

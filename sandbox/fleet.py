"""The fleet test bed: managed hosts as Podman containers, reached over real SSH.

Each host is a container (its own filesystem and processes) on the machine's network
(`--network host`), with its own loopback address (127.77.0.N by default), an OpenSSH server
on that address with its own host key, and an unprivileged login user (`hunter`) with key
authentication and passwordless sudo. Services run inside the hosts, on non-default ports of
their own addresses (nothing touches the machine's own services):

  app         the sample service (sandbox/app.py) from this repository and its virtualenv,
              bind-mounted read-only (the application's "deployment"), as root
  db          PostgreSQL (seeded like the sandbox's), the database the backup reads
  cache       Redis with a password
  backup      nothing: the backup copies land on its filesystem
  staging-db  PostgreSQL, the separate server the restore drill restores into

The images come from scripts/setup.d/containers.sh. The hosts are bare otherwise: what the
collection's modules need there is playbooks/prepare_hosts.yml's job. Bugsink (the Sentry
stand-in) is not part of the fleet: tests/fleet runs it on the controller (sandbox/bugsink.py) and
the sample service reaches it over the machine's loopback. The fleet inventory has no S3 copy, so
no moto either.

    fleet = Fleet(tmp_dir).start()       # or Fleet(tmp_dir, hosts=Fleet.ssh_hosts(50)) for bare hosts
    fleet.extravars()                    # SSH key, known_hosts, secrets for the example inventory
    fleet.stop_host("app"); fleet.start_host("app")
    fleet.stop()

One fleet with the default addresses runs at a time on a machine (a lock under the cache dir).

The Molecule scenarios start and stop theirs from the command line (molecule/_shared/create.yml):

    python -m sandbox.fleet start --name molecule-<scenario> --net 127.79.N --hosts app,db,cache \
        --dir DIR --inventory FILE [--app-env-from VARS_FILE HUNTER_SENTRY_DSN=hunter_sentry_dsn]
    python -m sandbox.fleet stop --name molecule-<scenario>

`start` leaves the hosts running when it returns (the lock is held while it starts them only)
and writes FILE (0600): an inventory of the hosts as fleet-<name> with their SSH settings, and the
services' variables with their secrets. `--app-env-from VARS_FILE NAME=key` gives the sample service
the environment variable NAME with the value of `key` in the YAML file VARS_FILE (the controller-side
sandbox's variables): the value is read here, never on a command line or in an environment prefix. `stop` removes every
container of that name.
"""
from __future__ import annotations

import argparse
import fcntl
import os
import shlex
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from sandbox.services import (REPO_ROOT, ServiceError, cache_dir, random_secret, scram_verifier,
                              venv_python, write_private)

CONTAINERS_CONF = REPO_ROOT / ".config" / "containers" / "containers.conf"
IMAGES = {"host": "localhost/hunter-ops-fleet-host:latest",
          "db": "localhost/hunter-ops-fleet-db:latest",
          "cache": "localhost/hunter-ops-fleet-cache:latest"}
NET = os.environ.get("HUNTER_OPS_FLEET_NET", "127.77.0")
SSH_PORT = 2222
PG_PORT = 15432
REDIS_PORT = 16379
APP_PORT = 18000
LOGIN_USER = "hunter"
APP_PIDFILE = "/run/hunter-app.pid"
APP_ENV_FILE = "/etc/hunter/app.env"
BACKUP_DIR = "/var/backups/hunter"
PG_DATA = "/var/lib/postgresql/fleet"
LABEL = "hunter.ops.fleet"


@dataclass
class HostSpec:
    name: str      # inventory-style short name: the container is hunter-fleet-<name>
    image: str     # key of IMAGES
    address: str   # its own loopback address
    service: str = ""  # app | postgres | redis | "" (none)


def default_hosts(net: str = NET) -> list[HostSpec]:
    """The fleet of inventories/examples/fleet (same names and addresses)."""
    return [HostSpec("app", "host", f"{net}.2", "app"),
            HostSpec("db", "db", f"{net}.3", "postgres"),
            HostSpec("cache", "cache", f"{net}.4", "redis"),
            HostSpec("backup", "host", f"{net}.5"),
            HostSpec("staging-db", "db", f"{net}.6", "postgres")]


def podman_env() -> dict:
    return dict(os.environ, CONTAINERS_CONF=str(CONTAINERS_CONF))


def podman(*args: str, input: str | None = None, env: dict | None = None, check: bool = True,
           timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(["podman", *args], input=input, capture_output=True, text=True,
                            env=env or podman_env(), timeout=timeout)
    if check and result.returncode != 0:
        raise ServiceError(f"podman {args[0]} failed: {(result.stderr or result.stdout).strip()[-800:]}")
    return result


def missing_images() -> list[str]:
    """Images of the fleet that Podman's store lacks (scripts/setup.sh builds them)."""
    try:
        return [image for image in IMAGES.values()
                if podman("image", "exists", image, check=False).returncode != 0]
    except FileNotFoundError:
        return ["podman itself (not installed)"]


# The container's main process: a login user with the controller's key and NOPASSWD sudo, a host
# key of its own (made at first start, kept across stop/start), sshd on the host's own address.
# Idempotent, since `podman start` after a stop runs it again.
_INIT = r"""
set -e
[ -f /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
id "$LOGIN_USER" >/dev/null 2>&1 || useradd -m -s /bin/bash -p '*' "$LOGIN_USER"
install -d -m 700 -o "$LOGIN_USER" -g "$LOGIN_USER" "/home/$LOGIN_USER/.ssh"
grep -qxF "$AUTHORIZED_KEY" "/home/$LOGIN_USER/.ssh/authorized_keys" 2>/dev/null \
  || printf '%s\n' "$AUTHORIZED_KEY" >> "/home/$LOGIN_USER/.ssh/authorized_keys"
chown "$LOGIN_USER:" "/home/$LOGIN_USER/.ssh/authorized_keys"; chmod 600 "/home/$LOGIN_USER/.ssh/authorized_keys"
printf '%s ALL=(ALL) NOPASSWD: ALL\n' "$LOGIN_USER" > /etc/sudoers.d/hunter-fleet; chmod 440 /etc/sudoers.d/hunter-fleet
mkdir -p /run/sshd
exec /usr/sbin/sshd -D -e -o ListenAddress="$ADDRESS" -o Port="$SSH_PORT" \
  -o HostKey=/etc/ssh/ssh_host_ed25519_key -o PasswordAuthentication=no -o UsePAM=no
"""


class Fleet:
    def __init__(self, base_dir: str | os.PathLike, hosts: list[HostSpec] | None = None,
                 lock_name: str = "fleet"):
        self.base_dir = Path(base_dir)
        self.hosts = {h.name: h for h in (hosts or default_hosts())}
        self.lock_name = lock_name
        self.key = self.base_dir / "id_ed25519"
        self.known_hosts = self.base_dir / "known_hosts"
        self.db_password = random_secret()
        self.db_superuser_password = random_secret()
        self.staging_password = random_secret()
        self.redis_password = random_secret()
        self.api_key = "hk_" + random_secret()
        self.app_env: dict[str, str] = {}
        self._lock = None
        self.started_at = 0.0
        self.startup_seconds = 0.0

    @staticmethod
    def ssh_hosts(count: int, net: str = "127.78.0", first: int = 2, image: str = "host") -> list[HostSpec]:
        """`count` bare SSH hosts (no service) named host-1.., for benchmarks (lock_name apart)."""
        return [HostSpec(f"host-{i + 1}", image, f"{net}.{first + i}") for i in range(count)]

    # -- naming ----------------------------------------------------------------------------
    def container(self, name: str) -> str:
        return f"hunter-fleet-{self.lock_name}-{name}"

    def address(self, name: str) -> str:
        return self.hosts[name].address

    @property
    def app_url(self) -> str:
        return f"http://{self.address('app')}:{APP_PORT}"

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, app_env: dict | None = None) -> "Fleet":
        """Start every host and its service. app_env: extra environment of the sample service
        (e.g. HUNTER_SENTRY_DSN of the controller's Bugsink)."""
        began = time.monotonic()
        missing = missing_images()
        if missing:
            raise ServiceError(f"fleet images missing: {', '.join(missing)}; run scripts/setup.sh "
                               "(scripts/setup.d/containers.sh builds them)")
        self.base_dir.mkdir(parents=True, exist_ok=True)
        locks = cache_dir() / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        self._lock = open(locks / f"{self.lock_name}.lock", "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ServiceError(f"another fleet '{self.lock_name}' runs on this machine "
                               f"({locks / self.lock_name}.lock)") from None
        # Leftovers of a run that was killed before its stop(): same names, same addresses.
        for name in self.hosts:
            podman("rm", "-f", "-t", "0", self.container(name), check=False)
        if not self.key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hunter-fleet-controller",
                            "-f", str(self.key)], check=True)
        self.app_env = dict(app_env or {})
        try:
            # In parallel: most of a host's start is waiting (sshd, PostgreSQL, uvicorn).
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(self._run_container, self.hosts.values()))
                list(pool.map(self._wait_ssh, self.hosts.values()))
                self._write_known_hosts()
                list(pool.map(lambda spec: self._start_service(spec, first=True),
                              [s for s in self.hosts.values() if s.service != "app"]))
            for spec in self.hosts.values():
                if spec.service == "app":  # after its database and Redis
                    self._start_service(spec, first=True)
            if "backup" in self.hosts and "db" in self.hosts:
                self._trust_backup_to_db()
        except Exception:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        for name in self.hosts:
            podman("rm", "-f", "-t", "0", self.container(name), check=False)
        if self._lock:
            self._lock.close()
            self._lock = None

    def stop_host(self, name: str) -> None:
        """The host goes away (its container stopped): SSH to it fails, its service is down."""
        podman("stop", "-t", "0", self.container(name))

    def start_host(self, name: str) -> None:
        podman("start", self.container(name))
        spec = self.hosts[name]
        self._wait_ssh(spec)
        self._start_service(spec, first=False)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- commands inside a host --------------------------------------------------------------
    def exec(self, name: str, script: str, input: str | None = None, user: str | None = None,
             env: dict | None = None, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run a shell script inside host `name` (as root, or `user`). env values reach the
        script through podman's own environment (`-e NAME`), never its command line."""
        args = ["exec", "-i"] if input is not None else ["exec"]
        if user:
            args += ["--user", user]
        penv = podman_env()
        for key, value in (env or {}).items():
            args += ["-e", key]
            penv[key] = value
        args += [self.container(name), "bash", "-c", script]
        return podman(*args, input=input, env=penv, check=check, timeout=timeout)

    def files_containing(self, name: str, needles: list[str], paths=("/home", "/root", "/tmp", "/var/tmp")
                         ) -> list[str]:
        """Files under `paths` of host `name` holding any of `needles` (given on stdin, not argv, and
        kept in /run meanwhile). The host's own filesystem only (-xdev): the app host's read-only
        mounts (the repository, the Python install) are the controller's files."""
        result = self.exec(name, "umask 077; f=$(mktemp -p /run); cat > \"$f\"; "
                                 f"find {' '.join(map(shlex.quote, paths))} -xdev -type f -print0 2>/dev/null "
                                 "| xargs -0 -r grep -lF -f \"$f\" 2>/dev/null; rm -f \"$f\"; true",
                           input="\n".join(needles) + "\n")
        return [line for line in result.stdout.splitlines() if line]

    def find(self, name: str, pattern: str, paths=("/home", "/root", "/tmp", "/var/tmp")) -> list[str]:
        result = self.exec(name, f"find {' '.join(map(shlex.quote, paths))} -xdev -name {shlex.quote(pattern)} "
                                 "2>/dev/null; true")
        return [line for line in result.stdout.splitlines() if line]

    # -- what the example inventory needs from the fleet --------------------------------------
    def extravars(self) -> dict:
        """Connection settings and secrets for inventories/examples/fleet (the vault's part)."""
        return {
            "ansible_ssh_private_key_file": str(self.key),
            "ansible_ssh_common_args": f"-o UserKnownHostsFile={self.known_hosts} -o IdentitiesOnly=yes",
            "vault_hunter_db_password": self.db_password,
            "vault_hunter_app_db_password": self.db_password,
            "vault_hunter_restore_db_password": self.staging_password,
            "vault_hunter_redis_password": self.redis_password,
            "vault_hunter_api_key": self.api_key,
        }

    def inventory(self) -> dict:
        """An inventory of the started hosts, named fleet-<name> as in inventories/examples/fleet,
        with their SSH settings, and the services' variables with concrete values (secrets
        included): what a Molecule scenario's plays need (the interpreter is pinned per host, so
        tasks delegated to the controller keep its Python)."""
        extra = self.extravars()
        connection = {"ansible_port": SSH_PORT, "ansible_user": LOGIN_USER,
                      "ansible_python_interpreter": "/usr/bin/python3",
                      "ansible_ssh_private_key_file": extra["ansible_ssh_private_key_file"],
                      "ansible_ssh_common_args": extra["ansible_ssh_common_args"]}
        # The node_exporter textfile directory of each host (docs/METRICS.md), one the login user
        # can write: per host, so the controller's own runs (the report) keep theirs.
        connection["hunter_ops_metrics_dir"] = f"/home/{LOGIN_USER}/textfile-collector"
        hosts = {f"fleet-{spec.name}": dict(connection, ansible_host=spec.address)
                 for spec in self.hosts.values()}
        values = {key: value for key, value in extra.items() if key.startswith("vault_")}
        values.update(hunter_expected_environment="production", hunter_api_legacy_decision="removed",
                      hunter_backup_dir=BACKUP_DIR)
        if "app" in self.hosts:
            values.update(hunter_app_url=self.app_url, hunter_api_key=self.api_key,
                          hunter_app_env_file=APP_ENV_FILE)
        if "db" in self.hosts:
            for prefix in ("hunter_db", "hunter_app_db"):
                values.update({f"{prefix}_host": self.address("db"), f"{prefix}_port": PG_PORT,
                               f"{prefix}_name": "hunter", f"{prefix}_user": "hunter",
                               f"{prefix}_password": self.db_password})
        if "cache" in self.hosts:
            values.update(hunter_redis_host=self.address("cache"), hunter_redis_port=REDIS_PORT,
                          hunter_redis_db=0, hunter_redis_password=self.redis_password,
                          hunter_app_redis_url=(f"redis://:{self.redis_password}@{self.address('cache')}:"
                                                f"{REDIS_PORT}/0"))
        if "staging-db" in self.hosts:
            values.update(hunter_restore_db_host=self.address("staging-db"), hunter_restore_db_port=PG_PORT,
                          hunter_restore_db_user="hunter", hunter_restore_db_password=self.staging_password)
        return {"all": {"hosts": hosts, "vars": values}}

    def write_app_env_file(self, path: str = APP_ENV_FILE) -> None:
        """The sample service's environment as an operator keeps it (docker compose .env style) on
        the app host, readable by the login user only: REDIS-APP-PING and SENTRY-DSN read it."""
        text = "".join(f"{key}={value}\n" for key, value in sorted(self.app_environment().items()))
        self.exec("app", f'umask 077; install -d -m 755 "$(dirname "$F")"; cat > "$F"; chown {LOGIN_USER}: "$F"',
                  input=text, env={"F": path})

    def secrets(self) -> list[str]:
        return [self.db_password, self.db_superuser_password, self.staging_password,
                self.redis_password, self.api_key]

    # -- internals ---------------------------------------------------------------------------
    def _run_container(self, spec: HostSpec) -> None:
        args = ["run", "-d", "--name", self.container(spec.name), "--hostname", f"fleet-{spec.name}",
                "--network", "host", "--add-host", f"fleet-{spec.name}:{spec.address}", "--label", f"{LABEL}={self.lock_name}",
                "-e", f"LOGIN_USER={LOGIN_USER}", "-e", f"ADDRESS={spec.address}",
                "-e", f"SSH_PORT={SSH_PORT}", "-e", f"AUTHORIZED_KEY={self.key.with_suffix('.pub').read_text().strip()}"]
        if spec.service == "app":
            args += self._app_mounts()
        args += [IMAGES[spec.image], "bash", "-c", _INIT]
        podman(*args)

    @staticmethod
    def _app_mounts() -> list[str]:
        """The repository (sample service) and its virtualenv, read-only at the same paths; the
        virtualenv's base Python too unless it is the system's (/usr, the same in the image)."""
        mounts = ["-v", f"{REPO_ROOT}:{REPO_ROOT}:ro"]
        venv = venv_python().parent.parent
        cfg = dict(line.split(" = ", 1) for line in (venv / "pyvenv.cfg").read_text().splitlines()
                   if " = " in line)
        base_prefix = Path(cfg.get("home", "/usr/bin")).parent
        if base_prefix != Path("/usr") and not venv.is_relative_to(REPO_ROOT):
            mounts += ["-v", f"{venv}:{venv}:ro"]
        if base_prefix != Path("/usr"):
            mounts += ["-v", f"{base_prefix}:{base_prefix}:ro"]
        return mounts

    def _wait_ssh(self, spec: HostSpec, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                sock.settimeout(1)
                if sock.connect_ex((spec.address, SSH_PORT)) == 0:
                    return
            if podman("inspect", "-f", "{{.State.Running}}", self.container(spec.name),
                      check=False).stdout.strip() != "true":
                logs = podman("logs", self.container(spec.name), check=False)
                raise ServiceError(f"host {spec.name}: container exited: {(logs.stdout + logs.stderr)[-600:]}")
            time.sleep(0.2)
        raise ServiceError(f"host {spec.name}: sshd not listening on {spec.address}:{SSH_PORT}")

    def _write_known_hosts(self) -> None:
        lines = []
        for spec in self.hosts.values():
            key = self.exec(spec.name, "cat /etc/ssh/ssh_host_ed25519_key.pub").stdout.split()
            lines.append(f"[{spec.address}]:{SSH_PORT} {key[0]} {key[1]}")
        self.known_hosts.write_text("\n".join(lines) + "\n")

    def _trust_backup_to_db(self) -> None:
        """The backup host pulls from the db host (pg_backup's backup_pull): its login user's key
        authorized on the db host, the db host's host key in its known_hosts."""
        pub = self.exec("backup", "[ -f ~/.ssh/id_ed25519 ] || ssh-keygen -q -t ed25519 -N '' "
                                  "-f ~/.ssh/id_ed25519; cat ~/.ssh/id_ed25519.pub", user=LOGIN_USER).stdout.strip()
        self.exec("db", f"grep -qxF \"$KEY\" ~/.ssh/authorized_keys || printf '%s\\n' \"$KEY\" >> ~/.ssh/authorized_keys",
                  user=LOGIN_USER, env={"KEY": pub})
        db_key = self.exec("db", "cat /etc/ssh/ssh_host_ed25519_key.pub").stdout.split()
        self.exec("backup", "printf '%s\\n' \"$LINE\" > ~/.ssh/known_hosts", user=LOGIN_USER,
                  env={"LINE": f"[{self.address('db')}]:{SSH_PORT} {db_key[0]} {db_key[1]}"})

    def _start_service(self, spec: HostSpec, first: bool) -> None:
        if spec.service == "postgres":
            self._start_postgres(spec, first)
        elif spec.service == "redis":
            self._start_redis(spec)
        elif spec.service == "app":
            self._start_app(spec)

    def _start_postgres(self, spec: HostSpec, first: bool) -> None:
        bindir = "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
        if first:
            # The cluster was made with the image (sandbox/containers/db.Containerfile).
            self.exec(spec.name, f"""cat >> {PG_DATA}/postgresql.conf <<EOF
listen_addresses = '{spec.address}'
port = {PG_PORT}
unix_socket_directories = '/run/postgresql'
max_connections = 40
shared_buffers = 32MB
fsync = off
EOF
""")
        self.exec(spec.name, f"install -d -o postgres -g postgres /run/postgresql; "
                             f"su postgres -c \"{bindir}/pg_ctl -D {PG_DATA} -l /var/log/postgresql/fleet.log -w -t 60 start\" >/dev/null",
                  timeout=90)
        if not first:
            return
        password = self.db_password if spec.name == "db" else self.staging_password
        sql = (f"ALTER ROLE postgres PASSWORD '{scram_verifier(self.db_superuser_password)}';\n"
               f"CREATE ROLE hunter LOGIN CREATEDB PASSWORD '{scram_verifier(password)}';\n"
               "CREATE DATABASE hunter OWNER hunter;\n")
        self.exec(spec.name, f"su postgres -c 'psql -X -q -v ON_ERROR_STOP=1 -p {PG_PORT} -d postgres -f -'",
                  input=sql)
        if spec.name == "db":
            seed = (REPO_ROOT / "sandbox" / "seed.sql").read_text()
            self.exec(spec.name, f"su postgres -c 'psql -X -q -v ON_ERROR_STOP=1 -p {PG_PORT} -d hunter -f -'",
                      input="SET ROLE hunter;\n" + seed)

    def _start_redis(self, spec: HostSpec) -> None:
        # The password lives in a 0600 configuration file inside the host, written from stdin.
        conf = (f"bind {spec.address}\nport {REDIS_PORT}\nrequirepass {self.redis_password}\n"
                "save \"\"\nappendonly no\ndaemonize yes\nlogfile /var/log/redis/fleet.log\n")
        self.exec(spec.name, "umask 077; cat > /etc/redis/fleet.conf; mkdir -p /var/log/redis; "
                             "redis-server /etc/redis/fleet.conf", input=conf)
        self._wait_port(spec, REDIS_PORT)

    def app_environment(self) -> dict:
        """The sample service's environment (secrets included): what it runs with, and what
        write_app_env_file() keeps for the checks that read an application's settings."""
        db, cache = self.hosts.get("db"), self.hosts.get("cache")
        env = {
            "HUNTER_DATABASE_URL": (f"postgresql://hunter:{self.db_password}@{db.address}:{PG_PORT}/hunter"
                                    if db else ""),
            "HUNTER_REDIS_URL": f"redis://:{self.redis_password}@{cache.address}:{REDIS_PORT}/0" if cache else "",
            "HUNTER_API_KEYS": self.api_key, "HUNTER_ENVIRONMENT": "production",
            "HUNTER_LEGACY": "removed", "HUNTER_SANDBOX_ADMIN": "1",
            "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1",
        }
        env.update(self.app_env)
        return {k: v for k, v in env.items() if v}

    def _start_app(self, spec: HostSpec) -> None:
        env = self.app_environment()
        python = venv_python()
        # The pidfile is how SENTRY-DSN finds the process (hunter_sentry_pidfile).
        self.exec(spec.name, f"cd {shlex.quote(str(REPO_ROOT))}; "
                             f"setsid bash -c 'echo $$ > {APP_PIDFILE}; exec {shlex.quote(str(python))} -m uvicorn "
                             f"sandbox.app:app --host {spec.address} --port {APP_PORT} --log-level warning' "
                             "</dev/null >/var/log/hunter-app.log 2>&1 &", env=env)
        self._wait_port(spec, APP_PORT, what="the sample service",
                        log=lambda: self.exec(spec.name, "tail -20 /var/log/hunter-app.log", check=False).stdout)

    def _wait_port(self, spec: HostSpec, port: int, timeout: float = 30, what: str = "", log=None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                sock.settimeout(1)
                if sock.connect_ex((spec.address, port)) == 0:
                    return
            time.sleep(0.2)
        raise ServiceError(f"host {spec.name}: {what or 'port'} {spec.address}:{port} not listening"
                           + (f"\n{log()}" if log else ""))


# -- command line (molecule/_shared/create.yml, destroy.yml) ---------------------------------------
def remove_fleet(name: str) -> list[str]:
    """Remove every container of fleet `name` (by label: also those of a start that was killed)."""
    ids = podman("ps", "-aq", "--filter", f"label={LABEL}={name}").stdout.split()
    if ids:
        podman("rm", "-f", "-t", "0", *ids)
    return ids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.fleet",
                                     description="Start or stop a fleet of managed hosts as containers.")
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="start the hosts, write their inventory, leave them running")
    start.add_argument("--name", required=True, help="the fleet's name: its lock and container names")
    start.add_argument("--net", required=True, help="first three octets of the hosts' loopback addresses")
    start.add_argument("--hosts", required=True,
                       help="comma-separated, of: " + ", ".join(h.name for h in default_hosts()))
    start.add_argument("--dir", required=True, help="where the controller's SSH key and known_hosts live")
    start.add_argument("--inventory", required=True, help="the inventory file to write (0600)")
    start.add_argument("--app-env-from", nargs=2, action="append", default=[], metavar=("VARS_FILE", "NAME=KEY"),
                       help="the sample service's variable NAME, from KEY in the YAML file VARS_FILE (absent key: unset)")
    stop = commands.add_parser("stop", help="remove the fleet's containers")
    stop.add_argument("--name", required=True)
    args = parser.parse_args(argv)
    if args.command == "stop":
        print(f"removed {len(remove_fleet(args.name))} container(s) of fleet {args.name}")
        return 0
    wanted = [name for name in args.hosts.split(",") if name]
    specs = {spec.name: spec for spec in default_hosts(args.net)}
    unknown = sorted(set(wanted) - set(specs))
    if unknown or not wanted:
        parser.error(f"unknown hosts {unknown or wanted}: choose from {', '.join(specs)}")
    fleet = Fleet(args.dir, [specs[name] for name in wanted], lock_name=args.name)
    try:
        app_env = {}
        for vars_file, pair in args.app_env_from:
            name, _, key = pair.partition("=")
            value = (yaml.safe_load(Path(vars_file).read_text()) or {}).get(key or name)
            if value:
                app_env[name] = str(value)
        fleet.start(app_env=app_env)
        if "app" in fleet.hosts:
            fleet.write_app_env_file()
        write_private(Path(args.inventory), yaml.safe_dump(fleet.inventory(), sort_keys=False))
    except Exception as exc:
        fleet.stop()
        print(f"fleet {args.name}: {exc}", file=sys.stderr)
        return 1
    for spec in fleet.hosts.values():
        print(f"started fleet-{spec.name:<11} {spec.address}:{SSH_PORT} {spec.service or '-'}")
    print(f"fleet {args.name} up in {fleet.startup_seconds:.1f}s; inventory: {args.inventory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

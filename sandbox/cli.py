"""`python -m sandbox start|stop|status`: the local demo sandbox.

start  runs PostgreSQL (seeded), Redis (password) and the sample service (API
       key enforced, environment production, legacy endpoints removed) on
       loopback ports, keeps them running after it returns, and writes the local
       inventory's generated vars (inventories/local/group_vars/all/zz_sandbox.yml).
stop   stops everything, removes the generated vars file and deletes the state dir
       (logs, backups, Bugsink's data, generated secrets): the next start needs none of it.
status prints what runs.

State lives in .sandbox/ (gitignored; HUNTER_SANDBOX_DIR and HUNTER_SANDBOX_VARS_FILE
move it and the vars file, for tests; HUNTER_SANDBOX_SERVICES="bugsink s3" starts only those
services, as the Molecule scenarios do): state.json (0600: it holds the generated
secrets), one directory per service with its logs and pidfile.

Adding a service (Bugsink, moto S3, ...): subclass SandboxPlugin in your own module
(`name`, `start(ctx)`, `server(ctx, record)`, `detail(server, record)`), and add
"module:attribute" to PLUGINS before the sample service, so the app environment
(ctx.app_env, e.g. HUNTER_SENTRY_DSN) is complete when the service starts.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import secrets
import shutil
import socket
import sys
import time
from pathlib import Path

import yaml

from sandbox.services import (REPO_ROOT, PostgresServer, RedisServer, SampleService, free_port,
                              random_secret, seed, write_private)

STATE_DIR = Path(os.environ.get("HUNTER_SANDBOX_DIR", REPO_ROOT / ".sandbox"))
VARS_FILE = Path(os.environ.get(
    "HUNTER_SANDBOX_VARS_FILE",
    REPO_ROOT / "inventories" / "local" / "group_vars" / "all" / "zz_sandbox.yml"))

# Start order; stop runs in reverse. Insert new services before the sample service.
PLUGINS = [
    "sandbox.cli:PostgresPlugin",
    "sandbox.cli:RedisPlugin",
    "sandbox.bugsink:BugsinkPlugin",
    "sandbox.s3:S3Plugin",
    "sandbox.cli:SampleServicePlugin",
]


class Context:
    """What plugins share during one command.

    state["services"][name]: a plugin's own record (ports, dirs, secrets) so another
        process can stop it later;
    state["vars"]: the inventory variables written to zz_sandbox.yml;
    state["app_env"]: environment for the sample service (HUNTER_*).
    """

    def __init__(self, state_dir: Path = STATE_DIR):
        self.state_dir = state_dir
        self.state_file = state_dir / "state.json"
        self.state = {"services": {}, "vars": {}, "app_env": {}}
        if self.state_file.exists():
            self.state.update(json.loads(self.state_file.read_text()))

    @property
    def vars(self) -> dict:
        return self.state["vars"]

    @property
    def app_env(self) -> dict:
        return self.state["app_env"]

    def record(self, name: str, data: dict | None = None) -> dict:
        """A plugin's record in the state; `data` replaces it."""
        services = self.state["services"]
        if data is not None:
            services[name] = data
        return services.setdefault(name, {})

    def service_dir(self, name: str) -> Path:
        path = self.state_dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def save(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        write_private(self.state_file, json.dumps(self.state, indent=2, sort_keys=True) + "\n")


class SandboxPlugin:
    """A sandbox service. `start` launches its server and records in the state what `server`
    needs to find it again from another process (`python -m sandbox stop|status`)."""

    name = "service"

    def start(self, ctx: Context) -> None:
        raise NotImplementedError

    def server(self, ctx: Context, rec: dict):
        """The ManagedProcess this plugin's record `rec` describes."""
        raise NotImplementedError

    def detail(self, server, rec: dict) -> str:
        """One line for `status`, without secrets."""
        raise NotImplementedError

    def launch(self, ctx: Context, server, rec: dict):
        """Record `rec`, save it before starting (a failed start can still be cleaned up), start."""
        ctx.record(self.name, rec)
        ctx.save()
        server.start()
        ctx.record(self.name)["startup_seconds"] = round(server.startup_seconds or 0, 2)
        return server

    def stop(self, ctx: Context) -> None:
        rec = ctx.state["services"].get(self.name)
        if rec:
            self.server(ctx, rec).stop()

    def status(self, ctx: Context) -> dict:
        """{"running": bool, "detail": "<one line, no secrets>"}"""
        rec = ctx.state["services"].get(self.name)
        if not rec:
            return {"running": False, "detail": "not started"}
        server = self.server(ctx, rec)
        return {"running": server.is_running(), "detail": self.detail(server, rec)}


class PostgresPlugin(SandboxPlugin):
    name = "postgres"

    def server(self, ctx, rec) -> PostgresServer:
        return PostgresServer(ctx.service_dir(self.name), port=rec["port"], user=rec["user"],
                              password=rec["password"], database=rec["database"],
                              superuser_password=rec["superuser_password"], data_root=rec["root"])

    def start(self, ctx):
        server = PostgresServer(ctx.service_dir(self.name))
        self.launch(ctx, server, {"port": server.port, "user": server.user, "password": server.password,
                                  "database": server.database, "root": str(server.root),
                                  "superuser_password": server.superuser_password})
        seed(server)
        ctx.vars.update({
            "hunter_app_db_host": server.host, "hunter_app_db_port": server.port,
            "hunter_app_db_name": server.database, "hunter_app_db_user": server.user,
            "hunter_app_db_password": server.password,
            "hunter_db_host": server.host, "hunter_db_port": server.port,
            "hunter_db_name": server.database, "hunter_db_user": server.user,
            "hunter_db_password": server.password,
        })
        ctx.app_env["HUNTER_DATABASE_URL"] = server.dsn

    def detail(self, server, rec):
        return f"127.0.0.1:{rec['port']} db={rec['database']} user={rec['user']} pid={server.pid} data={server.datadir}"

    def stop(self, ctx):
        # Stop drops the state, so nothing can reattach to the cluster: delete its files too
        # (they may live in /tmp, outside the state dir, when postgres cannot reach it).
        rec = ctx.state["services"].get(self.name)
        if rec:
            self.server(ctx, rec).destroy()


class RedisPlugin(SandboxPlugin):
    name = "redis"

    def server(self, ctx, rec) -> RedisServer:
        return RedisServer(ctx.service_dir(self.name), port=rec["port"], password=rec["password"])

    def start(self, ctx):
        server = RedisServer(ctx.service_dir(self.name), password=random_secret())
        self.launch(ctx, server, {"port": server.port, "password": server.password})
        ctx.vars.update({"hunter_redis_host": server.host, "hunter_redis_port": server.port,
                         "hunter_redis_db": 0, "hunter_redis_password": server.password,
                         "hunter_app_redis_url": server.url})
        ctx.app_env["HUNTER_REDIS_URL"] = server.url

    def detail(self, server, rec):
        return f"127.0.0.1:{rec['port']} pid={server.pid}"


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


class SampleServicePlugin(SandboxPlugin):
    """The sample service on port 8000 when free (the runbook's URLs), else a free port."""

    name = "sample-service"
    legacy_decision = "removed"
    environment = "production"

    def server(self, ctx, rec) -> SampleService:
        return SampleService(ctx.service_dir(self.name), port=rec["port"], env=rec.get("env", {}))

    def start(self, ctx):
        api_key = "hk_" + secrets.token_urlsafe(24)
        port = 8000 if _port_free(8000) else free_port()
        env = dict(ctx.app_env, HUNTER_API_KEYS=api_key, HUNTER_ENVIRONMENT=self.environment,
                   HUNTER_LEGACY=self.legacy_decision, HUNTER_SANDBOX_ADMIN="1")
        service = self.launch(ctx, SampleService(ctx.service_dir(self.name), port=port, env=env),
                              {"port": port, "env": env})
        # The app's environment as an operator would keep it (docker compose .env style).
        env_file = ctx.service_dir(self.name) / "app.env"
        write_private(env_file, "".join(f"{k}={v}\n" for k, v in sorted(env.items())))
        ctx.vars.update({"hunter_app_url": service.url, "hunter_api_key": api_key,
                         "hunter_expected_environment": self.environment,
                         "hunter_api_legacy_decision": self.legacy_decision,
                         "hunter_app_env_file": str(env_file),
                         "hunter_app_pidfile": str(service.pid_path)})

    def detail(self, server, rec):
        return (f"{server.url} pid={server.pid} environment={rec['env'].get('HUNTER_ENVIRONMENT')} "
                f"legacy={rec['env'].get('HUNTER_LEGACY')}")


def load_plugins() -> list:
    """The plugins, in start order; HUNTER_SANDBOX_SERVICES ("bugsink s3": plugin names) keeps
    only those (the Molecule scenarios run their databases as containers, sandbox/fleet.py)."""
    only = os.environ.get("HUNTER_SANDBOX_SERVICES", "").split()
    plugins = []
    for spec in PLUGINS:
        module, _, attr = spec.partition(":")
        obj = getattr(importlib.import_module(module), attr)
        plugins.append(obj() if isinstance(obj, type) else obj)
    unknown = set(only) - {plugin.name for plugin in plugins}
    if unknown:
        raise SystemExit(f"HUNTER_SANDBOX_SERVICES: unknown services {sorted(unknown)}")
    return [plugin for plugin in plugins if not only or plugin.name in only]


def render_vars(ctx: Context) -> None:
    header = ("# Generated by `python -m sandbox start` for the local demo sandbox.\n"
              "# Holds generated secrets: gitignored, mode 0600, removed by `python -m sandbox stop`.\n")
    write_private(VARS_FILE, header + yaml.safe_dump(dict(sorted(ctx.vars.items())),
                                                     default_flow_style=False, sort_keys=False))


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def cmd_stop(ctx: Context, quiet: bool = False, keep_files: bool = False) -> int:
    """Stop every service, then delete the state dir's files: the next start makes everything anew,
    and what is left would hold generated secrets (app.env, redis.conf, Bugsink's token).
    `keep_files` keeps them (logs) after a failed start, for the diagnosis."""
    failed = False
    for plugin in reversed(load_plugins()):
        try:
            plugin.stop(ctx)
            if not quiet:
                print(f"stopped {plugin.name}")
        except Exception as exc:  # keep stopping the others
            failed = True
            print(f"could not stop {plugin.name}: {exc}", file=sys.stderr)
    VARS_FILE.unlink(missing_ok=True)
    if keep_files or failed:  # a service still running keeps its files
        ctx.state_file.unlink(missing_ok=True)
        return 0
    size = sum(p.stat().st_size for p in ctx.state_dir.rglob("*") if p.is_file() and not p.is_symlink())
    shutil.rmtree(ctx.state_dir, ignore_errors=True)
    if not quiet:
        print(f"removed {_shown(ctx.state_dir)} ({size / 1e6:.1f} MB: logs, backups, Bugsink's data)")
    return 0


def cmd_start(ctx: Context) -> int:
    if ctx.state["services"]:
        cmd_stop(ctx, quiet=True)  # a previous sandbox: start clean
        ctx = Context(ctx.state_dir)
    for path in ctx.state_dir.glob("*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
    began = time.monotonic()
    for plugin in load_plugins():
        try:
            plugin.start(ctx)
            ctx.save()
        except Exception as exc:
            ctx.save()
            print(f"sandbox: {plugin.name} failed to start: {exc} (logs kept in {_shown(ctx.state_dir)})",
                  file=sys.stderr)
            cmd_stop(ctx, quiet=True, keep_files=True)
            return 1
        seconds = ctx.state["services"].get(plugin.name, {}).get("startup_seconds")
        print(f"started {plugin.name:<15} {plugin.status(ctx)['detail']}"
              + (f"  ({seconds:.2f}s)" if seconds is not None else ""))
    render_vars(ctx)
    print(f"sandbox up in {time.monotonic() - began:.1f}s; inventory vars: {_shown(VARS_FILE)}")
    return 0


def cmd_status(ctx: Context) -> int:
    if not ctx.state["services"]:
        print("sandbox not started (python -m sandbox start)")
        return 3
    all_up = True
    for plugin in load_plugins():
        info = plugin.status(ctx)
        all_up &= info["running"]
        print(f"{plugin.name:<15} {'running' if info['running'] else 'DOWN':<8} {info['detail']}")
    print(f"inventory vars: {_shown(VARS_FILE)} "
          f"({'present' if VARS_FILE.exists() else 'missing'})")
    return 0 if all_up else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["start", "stop", "status"])
    args = parser.parse_args(argv)
    ctx = Context()
    return {"start": cmd_start, "stop": cmd_stop, "status": cmd_status}[args.command](ctx)

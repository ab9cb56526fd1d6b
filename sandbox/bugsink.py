"""Bugsink, the Sentry-compatible server of the tests and the demo sandbox.

Bugsink (PyPI `bugsink`) runs from its own virtualenv `.venv-bugsink/`
(scripts/setup.d/bugsink.sh) under gunicorn on 127.0.0.1, with SQLite and eager
ingestion: an event is readable through the API as soon as the SDK's POST
returned. Migrating takes ~5 s, so the migrated databases are built once per
Bugsink version into ~/.cache/hunter-ops/bugsink-template/<version>/ and copied
for each server.

After start() the server is provisioned without any prompt: a full-access API
token (`bugsink-manage create_auth_token`, straight into the copied database),
then a team and a project through the REST API; the project's DSN comes back
from the API. Token and DSN live in memory and in a 0600 state file only.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from sandbox.cli import SandboxPlugin
from sandbox.services import (LOOPBACK, REPO_ROOT, ManagedProcess, ServiceError, build_once,
                              cache_dir, random_secret, write_private)

BUGSINK_VENV = REPO_ROOT / ".venv-bugsink"
API_PREFIX = "/api/canonical/0"

_CONF = '''\
# Written by sandbox/bugsink.py: a private, loopback-only Bugsink.
import os
from bugsink.settings.default import *  # noqa: F401,F403

_HERE = os.path.dirname(os.path.abspath(__file__))
SECRET_KEY = os.environ["BUGSINK_SECRET_KEY"]
DATABASES["default"]["NAME"] = os.path.join(_HERE, "db.sqlite3")  # noqa: F405
DATABASES["snappea"]["NAME"] = os.path.join(_HERE, "snappea.sqlite3")  # noqa: F405
TIME_ZONE = "UTC"
# Eager: events are digested inside the ingest request, no worker process needed.
SNAPPEA = {{"TASK_ALWAYS_EAGER": True, "WAKEUP_CALLS_DIR": os.path.join(_HERE, "wakeup")}}
EMAIL_BACKEND = "bugsink.email_backends.QuietConsoleEmailBackend"
BUGSINK = {{
    "BASE_URL": "http://{host}:{port}",
    "SINGLE_USER": False,  # teams and projects are created over the API
    "SINGLE_TEAM": False,
    "USER_REGISTRATION": "CB_NOBODY",
    "PHONEHOME": False,
    "INGEST_STORE_BASE_DIR": os.path.join(_HERE, "ingestion"),
}}
'''


def bugsink_version(venv: Path = BUGSINK_VENV) -> str:
    """Installed Bugsink version, from its dist-info directory."""
    found = sorted(venv.glob("lib/python*/site-packages/bugsink-*.dist-info"))
    if not found or not (venv / "bin" / "gunicorn").exists():
        raise ServiceError(f"Bugsink is not installed in {venv} (run scripts/setup.sh, hook "
                           "scripts/setup.d/bugsink.sh)")
    return found[-1].name[len("bugsink-"):-len(".dist-info")]


def _manage(venv: Path, workdir: Path, *args: str, env: dict | None = None,
            timeout: float = 120) -> str:
    """Run bugsink-manage with workdir's bugsink_conf.py; stdout, or ServiceError."""
    full_env = dict(os.environ, DJANGO_SETTINGS_MODULE="bugsink_conf", PYTHONPATH=str(workdir),
                    **(env or {}))
    result = subprocess.run([str(venv / "bin" / "bugsink-manage"), *args], cwd=workdir,
                            env=full_env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise ServiceError(f"bugsink-manage {args[0]} failed: {result.stderr.strip()[-2000:]}")
    return result.stdout


def template_dir(venv: Path = BUGSINK_VENV) -> Path:
    """Migrated SQLite databases for this Bugsink version, built once under a lock."""
    version = bugsink_version(venv)

    def migrate(staging: Path) -> None:
        work = Path(tempfile.mkdtemp(prefix="hunter-bugsink-migrate-", dir=staging.parent))
        try:
            (work / "bugsink_conf.py").write_text(_CONF.format(host=LOOPBACK, port=8000))
            env = {"BUGSINK_SECRET_KEY": random_secret(32)}
            _manage(venv, work, "migrate", "--verbosity", "0", env=env)
            _manage(venv, work, "migrate", "snappea", "--database=snappea", "--verbosity", "0", env=env)
            staging.mkdir()
            for name in ("db.sqlite3", "snappea.sqlite3"):
                shutil.copy2(work / name, staging / name)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    return build_once(cache_dir() / "bugsink-template" / version, "db.sqlite3", migrate)


class BugsinkServer(ManagedProcess):
    """gunicorn + Bugsink on a free loopback port, provisioned with a team, a project and a token.

    Attributes after start(): `url`, `api_url`, `token`, `project_id`, `dsn`,
    `team_id`, `startup_seconds` (template copy + token + server + provisioning).
    """

    name = "bugsink"
    cmdline_marker = "bugsink.wsgi"
    ready_timeout = 60.0

    def __init__(self, base_dir, port=None, venv: str | os.PathLike | None = None,
                 team: str = "hunter", project: str = "hunter-sample"):
        super().__init__(base_dir, port)
        self.venv = Path(venv) if venv else BUGSINK_VENV
        self.workdir = self.base_dir / f"bugsink-{self.port}"
        self.team_name = team
        self.project_name = project
        self.token: str | None = None
        self.team_id: str | None = None
        self.project_id: int | None = None
        self.dsn: str | None = None
        self._secret_key = random_secret(32)
        self._token_proc: subprocess.Popen | None = None
        self._load_state()

    # -- ManagedProcess ---------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return self.url + API_PREFIX

    @property
    def state_path(self) -> Path:
        return self.workdir / "hunter-state.json"

    def prepare(self) -> None:
        fresh = not (self.workdir / "db.sqlite3").exists()
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "bugsink_conf.py").write_text(_CONF.format(host=self.host, port=self.port))
        if fresh:
            template = template_dir(self.venv)
            for name in ("db.sqlite3", "snappea.sqlite3"):
                shutil.copy2(template / name, self.workdir / name)
            # Straight into the database, no prompt, no login; it boots Django (~1 s), so it runs
            # while gunicorn starts and start() collects it.
            self._token_proc = subprocess.Popen(
                [str(self.venv / "bin" / "bugsink-manage"), "create_auth_token"], cwd=self.workdir,
                env=dict(self.environment()), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True)

    def command(self) -> list[str]:
        return [str(self.venv / "bin" / "gunicorn"), "bugsink.wsgi",
                "--bind", f"{self.host}:{self.port}", "--no-control-socket",
                "--workers", "1", "--threads", "4", "--timeout", "60"]

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "HUNTER_"))}
        env.update(DJANGO_SETTINGS_MODULE="bugsink_conf", PYTHONPATH=str(self.workdir),
                   BUGSINK_SECRET_KEY=self._secret_key, PYTHONDONTWRITEBYTECODE="1")
        return env

    def cwd(self) -> Path:
        return self.workdir

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health/ready", timeout=1) as resp:
                return resp.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def start(self) -> "BugsinkServer":
        if self.is_running():
            return self
        began = time.monotonic()
        self._token_proc = None
        try:
            super().start()
        finally:
            self._collect_token()
        if self.project_id is None:
            self._provision()
        self.startup_seconds = time.monotonic() - began
        return self

    def _collect_token(self) -> None:
        proc, self._token_proc = self._token_proc, None
        if proc is None:
            return
        out, err = proc.communicate(timeout=120)
        if proc.returncode != 0 or not out.strip():
            self.stop()
            raise ServiceError(f"bugsink-manage create_auth_token failed: {err.strip()[-2000:]}")
        self.token = out.strip().splitlines()[-1]
        self._save_state()

    def destroy(self) -> None:
        """Stop and delete the server's files."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- API ---------------------------------------------------------------------------------
    def api(self, method: str, path: str, body: dict | None = None, token: str | None = None,
            timeout: float = 10.0):
        """(status, parsed JSON or text) of one call to /api/canonical/0/<path>."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.api_url + "/" + path.lstrip("/"), data=data, method=method,
                                     headers={"Authorization": f"Bearer {token or self.token}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def create_project(self, name: str, **settings) -> dict:
        """A further project in the team: {'id', 'dsn', ...} (for wrong-project tests); ``settings``
        are further project fields (e.g. alert_on_new_issue=False)."""
        status, body = self.api("POST", "projects/", dict(settings, name=name, team=self.team_id))
        if status != 201:
            raise ServiceError(f"Bugsink project creation answered {status}: {body}")
        status, body = self.api("GET", f"projects/{body['id']}/")
        if status != 200 or not body.get("dsn"):
            raise ServiceError(f"Bugsink project lookup answered {status}: {body}")
        return body

    def _provision(self) -> None:
        status, body = self.api("POST", "teams/", {"name": self.team_name})
        if status != 201:
            raise ServiceError(f"Bugsink team creation answered {status}: {body}")
        self.team_id = body["id"]
        project = self.create_project(self.project_name)
        self.project_id, self.dsn = int(project["id"]), project["dsn"]
        self._save_state()

    def _save_state(self) -> None:
        state = {"token": self.token, "team_id": self.team_id, "project_id": self.project_id,
                 "dsn": self.dsn, "secret_key": self._secret_key}
        write_private(self.state_path, json.dumps(state))

    def _load_state(self) -> None:
        """Pick up a server started earlier (by `python -m sandbox start` in another process)."""
        try:
            state = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return
        self.token, self.team_id = state.get("token"), state.get("team_id")
        self.project_id, self.dsn = state.get("project_id"), state.get("dsn")
        self._secret_key = state.get("secret_key") or self._secret_key

    def inventory_vars(self) -> dict:
        """The hunter_sentry_* variables the local inventory gets (sandbox/cli.py)."""
        return {
            "hunter_sentry_backend": "bugsink",
            "hunter_sentry_api_url": self.url,
            "hunter_sentry_api_token": self.token,
            "hunter_sentry_project": str(self.project_id),
            "hunter_sentry_dsn": self.dsn,
            "hunter_sentry_allow_http": True,
        }


class BugsinkPlugin(SandboxPlugin):
    """`python -m sandbox start` service (sandbox/cli.py PLUGINS): Bugsink before the sample service.

    Sets the sample service's HUNTER_SENTRY_DSN and the inventory's hunter_sentry_* variables.
    """

    name = "bugsink"

    def server(self, ctx, rec) -> BugsinkServer:
        return BugsinkServer(ctx.service_dir(self.name), port=rec["port"])

    def start(self, ctx):
        server = BugsinkServer(ctx.service_dir(self.name))
        self.launch(ctx, server, {"port": server.port})
        ctx.record(self.name)["project_id"] = server.project_id
        ctx.vars.update(server.inventory_vars())
        ctx.app_env["HUNTER_SENTRY_DSN"] = server.dsn

    def detail(self, server, rec):
        return f"{server.url} project={server.project_id} pid={server.pid}"

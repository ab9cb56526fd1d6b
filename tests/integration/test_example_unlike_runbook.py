"""The example inventory inventories/examples/unlike_runbook (docs/ADAPTING.md) against a real profile-B
sandbox (sandbox/app_unlike_runbook.py: settings in the .env of its working directory, readiness booleans
under `checks`, the environment only on /api/v1/info, the scan a POST, no test-error endpoint, legacy routes
live without deprecation headers, Sentry only in production).

The inventory directory is used as it is, group_vars and all; on top of it the test gives only what a real
site gives: where things are (URLs, ports, paths, the error tracker) and the vault's secrets (SITE). Nothing
that describes the service's shape is given here, so the GO is earned by the example's configuration.
"""
from __future__ import annotations

import yaml

from tests.harness import REPO_ROOT

EXAMPLE = REPO_ROOT / "inventories" / "examples" / "unlike_runbook"
PLAYBOOK = REPO_ROOT / "preflight.yml"
# Every variable the test may give on top of the example: addresses, paths, the tracker, the vault, the
# local connection. None of them says anything about what the service answers.
SITE = {
    "ansible_connection", "ansible_python_interpreter", "hunter_ops_metrics_dir",
    "hunter_app_url", "hunter_app_env_file", "hunter_app_pidfile",
    "hunter_sentry_backend", "hunter_sentry_api_url", "hunter_sentry_project", "hunter_sentry_allow_http",
    "hunter_db_host", "hunter_db_port", "hunter_backup_dir", "hunter_redis_host", "hunter_redis_port",
    "vault_hunter_api_key", "vault_hunter_db_password", "vault_hunter_redis_password",
    "vault_hunter_sentry_api_token",
}


def site_vars(service, *, pg, redis_server, bugsink, api_key, python, backup_dir) -> dict:
    site = {
        "ansible_connection": "local", "ansible_python_interpreter": str(python), "hunter_ops_metrics_dir": "",
        "hunter_app_url": service.url, "hunter_app_env_file": str(service.env_file_path),
        "hunter_app_pidfile": str(service.pid_path),
        "hunter_sentry_backend": "bugsink", "hunter_sentry_api_url": bugsink.url,
        "hunter_sentry_project": str(bugsink.project_id), "hunter_sentry_allow_http": True,
        "hunter_db_host": pg.host, "hunter_db_port": pg.port, "hunter_backup_dir": str(backup_dir),
        "hunter_redis_host": redis_server.host, "hunter_redis_port": redis_server.port,
        "vault_hunter_api_key": api_key, "vault_hunter_db_password": pg.password,
        "vault_hunter_redis_password": redis_server.password, "vault_hunter_sentry_api_token": bugsink.token,
    }
    assert set(site) <= SITE, set(site) - SITE
    return site


def by_host(report: dict) -> dict:
    items: dict[str, dict] = {}
    for item in report["items"]:
        items.setdefault(item["host"], {})[item["id"]] = item
    return items


def test_example_describes_profile_b_by_configuration_only():
    """The example sets the shape knobs, and no secret in plaintext (every secret is a vault reference)."""
    app = yaml.safe_load((EXAMPLE / "group_vars" / "app" / "main.yml").read_text())
    assert app["health_check_assertions"]["HEALTH-DB"] == "checks.database == `true`"
    assert app["health_check_environment_path"] == "/api/v1/info"
    assert app["hunter_sentry_dsn_variable"] == "SENTRY_DSN" and app["hunter_sentry_method"] == "sdk"
    assert not {"hunter_app_redis_url", "hunter_app_db_password"} & set(app), \
        "the app's own credentials are read from its env file, not copied into the inventory"
    for path in EXAMPLE.rglob("*.yml"):
        for key, value in (yaml.safe_load(path.read_text()) or {}).items():
            if any(word in key for word in ("password", "token", "api_key", "dsn")) and isinstance(value, str) \
                    and not key.endswith(("_source", "_variable", "_dsn_source")):
                assert value.startswith("{{ vault_"), f"{path.name}: {key} is not a vault reference"


def test_example_inventory_gets_a_truthful_go_on_profile_b(ansible, make_unlike_runbook_service, pg, redis_server,
                                                           bugsink, api_key, venv_python, tmp_path,
                                                           assert_no_secret):
    service = make_unlike_runbook_service(settings={"SENTRY_DSN": bugsink.dsn})
    site = site_vars(service, pg=pg, redis_server=redis_server, bugsink=bugsink, api_key=api_key,
                     python=venv_python, backup_dir=tmp_path / "backups")
    run = ansible.run_playbook(PLAYBOOK, EXAMPLE, extravars=site)
    assert run.report is not None, run.stdout[-3000:]
    items = by_host(run.report)
    blocking = [(b["host"], b["id"], items[b["host"]][b["id"]]["message"]) for b in run.report["blocking"]]
    assert run.report["verdict"] == "GO" and run.rc == 0, blocking

    app = items["hunter-b-app-1"]
    status = {i: item["status"] for i, item in app.items()}
    # Every app-side item is observed on the service: nothing required is skipped, and what passes
    # says what the service answered.
    for check_id in ("HEALTH-LIVE", "HEALTH-READY", "HEALTH-STARTUP", "HEALTH-ENV", "HEALTH-DB", "HEALTH-REDIS",
                     "SENTRY-DSN", "SENTRY-EVENT", "SENTRY-ENV", "SENTRY-DETAIL", "REDIS-APP-PING", "REDIS-HEALTH",
                     "API-V1-LEADS", "API-V1-SCAN", "API-V1-SALES", "API-COMPAT"):
        assert status[check_id] == "pass", (check_id, app[check_id]["message"])
    # legacy is live and announces no deprecation: supported as documented, with that finding
    assert status["API-LEGACY"] == "warn", app["API-LEGACY"]["message"]
    assert "/api/v1/info" in str(app["HEALTH-ENV"]["evidence"]) and "production" in app["HEALTH-ENV"]["message"]
    # HEALTH-DIAG is not needed on a ready service; REDIS-APP-PING read the app's REDIS_URL in its .env
    assert status["HEALTH-DIAG"] == "skip", app["HEALTH-DIAG"]["message"]
    assert ".env" in str(app["REDIS-APP-PING"]["evidence"]), app["REDIS-APP-PING"]["evidence"]
    # the event came from the application's own Sentry client, with the environment it set
    # (the release is set by the app's own sentry_sdk.init only; the probe ran in the app's process runtime)
    sentry = app["SENTRY-EVENT"]["evidence"]
    assert sentry["method"] == "sdk" and sentry["runtime"]["kind"] == "process", sentry
    assert sentry["client"]["release"] == "hunter@2.4.0" and sentry["client"]["environment"] == "production", sentry
    for check_id in ("REDIS-PING", "REDIS-OPS", "REDIS-POOL"):
        assert items["hunter-b-cache-1"][check_id]["status"] == "pass", items["hunter-b-cache-1"][check_id]
    db = items["hunter-b-db-1"]
    for check_id in ("BACKUP-CMD", "BACKUP-VALID", "RESTORE-DRYRUN"):
        assert db[check_id]["status"] == "pass", db[check_id]
    # the example configures no off-host copy, and the item says so
    assert db["BACKUP-LOCATION"]["status"] == "warn" and "no off-host copy" in db["BACKUP-LOCATION"]["message"]
    assert_no_secret(run, api_key, pg.password, redis_server.password, bugsink.token, bugsink.dsn)

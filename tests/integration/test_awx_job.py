"""The preflight and the nightly backup run as AWX runs them (tests/awx.py: the private data
directory AWX's task runner lays out, handed to ansible-runner), against the real sandbox services.

The collections come from the execution environment's build context (ansible-builder create, then
the image's galaxy stage, offline): what an image built from execution-environment.yml holds.
Secrets reach the jobs the two ways docs/AWX.md describes: a vaulted vars file in the project
with a Vault credential (the password answers the `Vault password:` prompt from env/passwords),
and a custom credential type injecting extra vars. Three jobs in all (each is ~10 s): preflight
GO, preflight NO-GO (the sample service's readiness endpoint broken), nightly backup + drill.
"""
from __future__ import annotations

import json
import secrets
import urllib.parse

import pytest
import yaml

from sandbox.services import SampleService
from tests.awx import REPO_ROOT, AwxJob, builder_context, credential_injection, galaxy_stage
from tests.harness import assert_no_secret

pytestmark = pytest.mark.integration

APP, DB, CACHE = "hunter-awx-app", "hunter-awx-db", "hunter-awx-cache"
# Playbook-adjacent group_vars: every play of preflight.yml, backup.yml and restore_drill.yml lives in
# playbooks/, and Ansible reads group_vars/ next to the play's own file (not next to preflight.yml).
VAULT_FILE = "playbooks/group_vars/all/vault.yml"


@pytest.fixture(scope="module")
def awx(tmp_path_factory, venv_python):
    base = tmp_path_factory.mktemp("awx")
    collections = galaxy_stage(builder_context(base / "ee"), base / "ee" / "collections")
    return AwxJob(base_dir=base / "jobs", collections=collections, python=venv_python)


@pytest.fixture(scope="module")
def app(tmp_path_factory, pg, redis_server, bugsink, api_key):
    """The sample service with its Sentry DSN (Bugsink) in its environment, read by SENTRY-DSN."""
    env = {"HUNTER_DATABASE_URL": pg.dsn, "HUNTER_REDIS_URL": redis_server.url, "HUNTER_API_KEYS": api_key,
           "HUNTER_ENVIRONMENT": "production", "HUNTER_SANDBOX_ADMIN": "1", "HUNTER_SENTRY_DSN": bugsink.dsn}
    service = SampleService(tmp_path_factory.mktemp("awx-app"), env=env).start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, pg, redis_server, bugsink, s3_server, app, api_key, venv_python):
    """AWX's inventory script data (no secret: they refer to vault_* variables) and the secrets."""
    bucket = s3_server.create_bucket("awx-" + secrets.token_hex(4))
    state = tmp_path_factory.mktemp("awx-state")
    hosts = [APP, DB, CACHE]
    values = {
        "hunter_expected_environment": "production", "hunter_api_legacy_decision": "removed",
        "hunter_release_label": "pre_awx",
        "hunter_app_url": app.url, "hunter_api_key": "{{ vault_hunter_api_key }}",
        "hunter_app_db_host": pg.host, "hunter_app_db_port": pg.port, "hunter_app_db_name": pg.database,
        "hunter_app_db_user": pg.user, "hunter_app_db_password": "{{ vault_hunter_app_db_password }}",
        "hunter_app_redis_url": f"redis://:{{{{ vault_hunter_redis_password | urlencode }}}}@{redis_server.host}:"
                                f"{redis_server.port}/0",
        "hunter_sentry_dsn_source": "process", "hunter_sentry_pidfile": str(app.pid_path),
        "hunter_sentry_app_module": "sandbox.app",
        "hunter_sentry_backend": "bugsink", "hunter_sentry_api_url": bugsink.url,
        "hunter_sentry_project": str(bugsink.project_id), "hunter_sentry_allow_http": True,
        "hunter_sentry_api_token": "{{ vault_hunter_sentry_api_token }}",
        "hunter_db_host": pg.host, "hunter_db_port": pg.port, "hunter_db_name": pg.database,
        "hunter_db_user": pg.user, "hunter_db_password": "{{ vault_hunter_db_password }}",
        "hunter_redis_host": redis_server.host, "hunter_redis_port": redis_server.port, "hunter_redis_db": 0,
        "hunter_redis_password": "{{ vault_hunter_redis_password }}",
        "hunter_backup_dir": str(state / "backups"),
        "pg_backup_schedule_dir": str(state / "schedule"),
        "pg_backup_schedule_cron_file": str(state / "schedule" / "hunter-backup.cron"),
        "hunter_backup_s3_endpoint_url": s3_server.endpoint_url, "hunter_backup_s3_region": s3_server.region,
        "hunter_backup_s3_bucket": bucket, "hunter_backup_s3_prefix": "awx/",
        "hunter_backup_s3_access_key": "{{ vault_hunter_backup_s3_access_key }}",
        "hunter_backup_s3_secret_key": "{{ vault_hunter_backup_s3_secret_key }}",
    }
    inventory = {
        "all": {"children": ["app", "db", "cache", "backup"], "vars": values},
        "app": {"hosts": [APP]}, "db": {"hosts": [DB]}, "cache": {"hosts": [CACHE]}, "backup": {"hosts": []},
        "_meta": {"hostvars": {h: {"ansible_connection": "local", "ansible_python_interpreter": str(venv_python)}
                               for h in hosts}},
    }
    vaulted = {
        "vault_hunter_api_key": api_key, "vault_hunter_app_db_password": pg.password,
        "vault_hunter_db_password": pg.password, "vault_hunter_redis_password": redis_server.password,
        "vault_hunter_sentry_api_token": bugsink.token,
        "vault_hunter_backup_s3_access_key": s3_server.access_key,
        "vault_hunter_backup_s3_secret_key": s3_server.secret_key,
    }
    dsn_key = urllib.parse.urlsplit(bugsink.dsn).username
    vault_password = "vault-" + secrets.token_urlsafe(18)
    # Everything that must never show: the secrets, the DSN and its key, the vault password.
    leak_markers = sorted({*vaulted.values(), bugsink.dsn, dsn_key, vault_password})
    return {"inventory": inventory, "vaulted": vaulted, "vault_password": vault_password,
            "markers": leak_markers, "s3": (s3_server, bucket), "state": state}


def _vault_yaml(vaulted: dict) -> str:
    return "---\n" + "".join(f"{name}: {json.dumps(value)}\n" for name, value in vaulted.items())


@pytest.fixture(scope="module")
def preflight_jobs(awx, deployment, app):
    """Preflight job template with a Vault credential: GO, then NO-GO with /healthz/ready broken."""
    common = dict(vault_password=deployment["vault_password"],
                  vault_files={VAULT_FILE: _vault_yaml(deployment["vaulted"])}, template="Preflight (awx-test)")
    go = awx.run("preflight.yml", deployment["inventory"], **common)
    app.configure(faults="ready:503")
    try:
        nogo = awx.run("preflight.yml", deployment["inventory"], **common)
    finally:
        app.reset()
    return go, nogo


@pytest.fixture(scope="module")
def backup_job(awx, deployment):
    """Nightly backup job template (playbooks/backup.yml, restore drill chained) with the secrets
    from the project's custom credential type (awx/credential_type.yml); no Vault credential."""
    credential_type = yaml.safe_load((REPO_ROOT / "awx" / "credential_type.yml").read_text())
    # the credential's inputs: field ids are the vault_hunter_* names without the prefix
    inputs = {name.removeprefix("vault_hunter_"): value for name, value in deployment["vaulted"].items()}
    injected = credential_injection(credential_type, inputs)
    # it provides exactly the variables the vaulted file provides
    assert injected == deployment["vaulted"]
    return awx.run("playbooks/backup.yml", deployment["inventory"], {"pg_backup_chain_restore_drill": True},
                   credential_extra_vars=injected, template="Nightly backup (awx-test)")


@pytest.fixture(scope="module")
def gate_jobs(awx, deployment, preflight_jobs):
    """The workflow's next node (playbooks/verdict_gate.yml) with each preflight's artifacts as its
    extra vars, as AWX passes them along a workflow; and with none (the preflight never reported)."""
    go, nogo = preflight_jobs
    summary = go.artifact_data["hunter_ops_preflight"]
    dry_go = {"hunter_ops_preflight": dict(summary, dry_run=True)}          # a "Check" job's GO
    unwritten_go = {"hunter_ops_preflight": dict(summary, report_written=False)}
    return [awx.run("playbooks/verdict_gate.yml", deployment["inventory"], extra, template="Verdict gate (awx-test)")
            for extra in (go.artifact_data, nogo.artifact_data, {}, dry_go, unwritten_go)]


def _report(run, summary) -> dict:
    report_dir = summary["report_dir"]
    assert report_dir.startswith(str(run.project_dir / "reports") + "/"), report_dir
    with open(f"{report_dir}/report.json", encoding="utf-8") as handle:
        return json.load(handle)


def _items(report) -> dict:
    return {(item["host"], item["id"]): item for item in report["items"]}


def test_go_job_is_successful_and_publishes_the_verdict(preflight_jobs):
    go = preflight_jobs[0]
    assert go.rc == 0 and go.status == "successful", go.stdout[-5000:]
    summary = go.artifact_data["hunter_ops_preflight"]
    assert summary["verdict"] == "GO" and summary["blocking"] == [], summary
    assert summary["counts"]["fail"] == 0 and summary["counts"]["pass"] >= 13, summary
    report = _report(go, summary)
    assert report["verdict"] == "GO"
    items = _items(report)
    # The vaulted secrets were decrypted and used: these need the API key, the app's Redis URL (its
    # password), the Sentry token, the Redis password, the database password and the S3 keys.
    for key in ((APP, "API-V1-SCAN"), (APP, "REDIS-APP-PING"), (APP, "SENTRY-EVENT"), (CACHE, "REDIS-PING"),
                (DB, "BACKUP-CMD"), (DB, "BACKUP-LOCATION"), (DB, "RESTORE-DRYRUN")):
        assert items[key]["status"] == "pass", items[key]
    # The vaulted file sat in the project encrypted, as committed to the SCM.
    assert (go.project_dir / VAULT_FILE).read_text().startswith("$ANSIBLE_VAULT;1.1;AES256")


def test_no_go_job_fails_after_writing_the_report(preflight_jobs):
    nogo = preflight_jobs[1]
    assert nogo.rc != 0 and nogo.status == "failed", nogo.stdout[-5000:]
    summary = nogo.artifact_data["hunter_ops_preflight"]
    assert summary["verdict"] == "NO-GO"
    assert f"HEALTH-READY@{APP}" in summary["blocking"], summary
    report = _report(nogo, summary)
    assert report["verdict"] == "NO-GO"
    items = _items(report)
    assert items[(APP, "HEALTH-READY")]["status"] == "fail"
    # every other check still ran and is reported
    assert items[(DB, "BACKUP-CMD")]["status"] == "pass" and items[(APP, "API-V1-SCAN")]["status"] == "pass"
    # The job failed on the verdict task, after the report task wrote the report.
    failed = [e for e in nogo.events if e["event"] == "runner_on_failed"]
    assert failed and all(e["event_data"]["task"].startswith("Fail on NO-GO") for e in failed), \
        [e["event_data"].get("task") for e in failed]
    report_task = max(e["counter"] for e in nogo.events if e["event"] == "runner_on_ok"
                      and "report" in e["event_data"].get("task", "").lower()
                      and e["event_data"].get("task_action", "").endswith("preflight_report"))
    assert report_task < min(e["counter"] for e in failed)


def test_nightly_backup_job_with_a_custom_credential(backup_job, deployment):
    run = backup_job
    assert run.rc == 0 and run.status == "successful", run.stdout[-5000:]
    backup = run.artifact_data["hunter_backup"][DB]
    assert backup["checks"]["BACKUP-CMD"]["status"] == "pass", backup["checks"]
    assert backup["checks"]["BACKUP-VALID"]["status"] == "pass", backup["checks"]
    drill = run.artifact_data["hunter_restore_drill"][DB]
    assert drill["checks"]["RESTORE-DRYRUN"]["status"] == "pass", drill["checks"]
    s3_server, bucket = deployment["s3"]
    assert any(key.startswith("awx/") for key in s3_server.objects(bucket)), "no S3 copy"
    # the credential's file was passed the way AWX passes it, and the job never asked for a vault password
    assert "-e @" in run.cmdline and "--ask-vault-pass" not in run.cmdline


def test_workflow_gate_passes_only_a_go_verdict(gate_jobs):
    on_go, on_nogo, without, dry_go, unwritten_go = gate_jobs
    assert on_go.rc == 0 and on_go.status == "successful", on_go.stdout[-3000:]
    assert on_nogo.rc != 0 and f"HEALTH-READY@{APP}" in on_nogo.stdout, on_nogo.stdout[-3000:]
    assert without.rc != 0 and "no preflight verdict" in without.stdout, without.stdout[-3000:]
    assert dry_go.rc != 0 and "the GO of a dry run" in dry_go.stdout, dry_go.stdout[-3000:]
    assert unwritten_go.rc != 0 and "GO without a written report" in unwritten_go.stdout, unwritten_go.stdout[-3000:]


def test_job_events_and_artifacts_hold_no_secret(preflight_jobs, backup_job, deployment):
    for run in (*preflight_jobs, backup_job):
        job_events = run.private_data_dir / "artifacts" / str(run.job_id) / "job_events"
        assert len(list(job_events.glob("*.json"))) == len(run.events) > 20
        assert {"playbook_on_start", "playbook_on_stats", "runner_on_ok"} <= {e["event"] for e in run.events}
        command = (run.private_data_dir / "artifacts" / str(run.job_id) / "command").read_text()
        assert "ansible-playbook" in command
        assert_no_secret(run.all_text(), *deployment["markers"])
        assert_no_secret(run.cmdline, *deployment["markers"])

"""The report play when the report folder cannot be written, and the inventory's secrets in the report.

Real runs: a real REDIS-PING against a real Redis, recorded like every role records its items, then
playbooks/report.yml as preflight.yml imports it. The report folder sits under a regular file
(NotADirectoryError even for root, who ignores permission bits).
"""
from __future__ import annotations

import json
import shutil
import urllib.parse
from pathlib import Path

import pytest

from sandbox.services import refused_port
from tests.harness import AnsibleHarness

PLAYBOOK = Path(__file__).parent / "playbooks" / "report_fallback.yml"


def inventory(redis_server, port=None, **extra):
    cache = {"hunter_redis_host": redis_server.host, "hunter_redis_port": port or redis_server.port,
             "hunter_redis_password": redis_server.password}
    cache.update(extra)
    return {"all": {"children": {"cache": {"hosts": {"cache1": cache}}}}}


@pytest.fixture
def blocked(tmp_path) -> Path:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the report folder's parent should be\n")
    return blocker / "reports"


def _report_in(folder: Path) -> dict:
    found = sorted(folder.glob("preflight_*/report.json"))
    assert len(found) == 1, found
    return json.loads(found[0].read_text())


def test_unwritable_report_dir_falls_back_and_the_exit_code_follows_go(ansible, tmp_path, redis_server, blocked,
                                                                       assert_no_secret):
    fallback = tmp_path / "fallback"
    run = ansible.run_playbook(PLAYBOOK, inventory(redis_server), extravars={
        "hunter_ops_report_dir": str(blocked), "hunter_ops_required_checks": ["REDIS-PING"],
        "preflight_report_fallback_dirs": [str(fallback)]})
    assert run.rc == 0, run.stdout[-3000:]
    assert "VERDICT: GO" in run.stdout and "REDIS-PING" in run.stdout
    assert f"report NOT written to {blocked} ({blocked.parent}: Not a directory" in run.stdout.replace("\n", " ") \
        or f"report NOT written to {blocked}" in run.stdout
    report = _report_in(fallback)
    assert report["verdict"] == "GO"
    assert f"written to {fallback}/preflight_" in run.stdout
    assert (fallback / "latest" / "report.json").exists()
    assert run.artifact_data["hunter_ops_preflight"]["report_dir"].startswith(str(fallback))
    assert "went to an AnsiballZ file" not in run.stdout  # pipelined (ansible.cfg): no warning
    assert_no_secret(run, redis_server.password)


def test_unwritable_report_dir_on_no_go_still_prints_table_and_fails(ansible, tmp_path, redis_server, blocked):
    fallback = tmp_path / "fallback"
    run = ansible.run_playbook(PLAYBOOK, inventory(redis_server, port=refused_port()), extravars={
        "hunter_ops_report_dir": str(blocked), "hunter_ops_required_checks": ["REDIS-PING"],
        "preflight_report_fallback_dirs": [str(fallback)]})
    assert run.rc != 0
    assert "VERDICT: NO-GO" in run.stdout and "FAIL REDIS-PING*" in run.stdout
    assert "connection refused" in run.stdout
    report = _report_in(fallback)
    assert report["verdict"] == "NO-GO"
    failed = [t["_task"] for t in run.failed_tasks() if t["_host"] == "localhost"]
    assert failed == ["Fail on NO-GO (CHECKLIST 6.5)"]


def test_no_writable_folder_at_all_fails_the_run_even_on_go(ansible, tmp_path, redis_server, blocked):
    run = ansible.run_playbook(PLAYBOOK, inventory(redis_server), extravars={
        "hunter_ops_report_dir": str(blocked), "hunter_ops_required_checks": ["REDIS-PING"],
        "preflight_report_fallback_dirs": [str(blocked.parent / "fallback")],
        "preflight_report_fallback_tempdir": False})
    assert run.rc != 0
    assert "VERDICT: GO" in run.stdout  # the run's result is printed all the same
    assert "NO REPORT WRITTEN" in run.stdout and str(blocked) in run.stdout
    assert str(blocked.parent / "fallback") in run.stdout
    failed = [t["_task"] for t in run.failed_tasks() if t["_host"] == "localhost"]
    assert failed == ["Fail when no report could be written anywhere"]


def test_last_resort_is_a_private_temporary_directory(ansible, tmp_path, redis_server, blocked):
    run = ansible.run_playbook(PLAYBOOK, inventory(redis_server), extravars={
        "hunter_ops_report_dir": str(blocked), "hunter_ops_required_checks": ["REDIS-PING"],
        "preflight_report_fallback_dirs": [str(blocked.parent / "fallback")]})
    assert run.rc == 0, run.stdout[-3000:]
    where = Path(run.artifact_data["hunter_ops_preflight"]["report_dir"])
    try:
        assert where.parent.name.startswith("hunter-ops-report-") and where.parent.stat().st_mode & 0o077 == 0
        assert json.loads((where / "report.json").read_text())["verdict"] == "GO"
        assert f"written to {where} instead" in run.stdout
    finally:
        shutil.rmtree(where.parent, ignore_errors=True)


def test_report_scrubs_the_inventorys_secrets_in_every_encoding(ansible, tmp_path, redis_server, assert_no_secret):
    """A check that echoes a vaulted value (raw and URL-encoded): the report, its table and the run's
    output show neither; the secret reaches the module only as a no_log parameter fed by the role."""
    vaulted = "HOPSMARK-api/" + tmp_path.name[-8:] + "@key"
    encoded = urllib.parse.quote(vaulted, safe="")
    echo = f"upstream said key={vaulted[:4]} ... {vaulted} and {encoded}"
    run = ansible.run_playbook(PLAYBOOK, inventory(redis_server, vault_hunter_api_key=vaulted, report_echo=echo),
                               extravars={"hunter_ops_required_checks": ["REDIS-PING"]})
    assert run.rc == 0, run.stdout[-3000:]
    item = [row for row in run.report["items"] if row["id"] == "API-LEGACY"][0]
    assert item["message"].startswith("upstream said key=") and "********" in item["message"]
    assert_no_secret(run, vaulted, encoded)


@pytest.mark.parametrize("env,words", [({"ANSIBLE_PIPELINING": "false"}, "pipelining is off"),
                                       ({"ANSIBLE_KEEP_REMOTE_FILES": "1"}, "ANSIBLE_KEEP_REMOTE_FILES is on")])
def test_a_run_that_wrote_module_arguments_to_disk_says_so(tmp_path, redis_server, env, words):
    harness = AnsibleHarness(base_dir=tmp_path / "ansible", envvars=env)
    run = harness.run_playbook(PLAYBOOK, inventory(redis_server), extravars={"hunter_ops_required_checks": ["REDIS-PING"]})
    assert run.rc == 0 and "VERDICT: GO" in run.stdout
    assert "WARNING: " + words in run.stdout

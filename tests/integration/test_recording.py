"""The recording mechanism end to end (plugins/plugin_utils/recording.py): an unreachable host still
reports every item it owns, and results an earlier run left in a fact cache never count.

The sample service on real PostgreSQL and Redis; an SSH host on a port nobody listens on.
"""
from __future__ import annotations

from pathlib import Path

from sandbox.services import refused_port

PLAYBOOK = Path(__file__).parent / "playbooks" / "health_preflight.yml"
HEALTH_IDS = ["HEALTH-LIVE", "HEALTH-READY", "HEALTH-STARTUP", "HEALTH-ENV", "HEALTH-DB", "HEALTH-REDIS",
              "HEALTH-DIAG"]
REQUIRED = ["HEALTH-LIVE", "HEALTH-READY", "HEALTH-STARTUP"]


def app_host(service, **extra):
    host = {"hunter_app_url": service.url, "hunter_expected_environment": "production",
            "health_check_startup_timeout": 2, "health_check_startup_interval": 0.5, "health_check_timeout": 3}
    host.update(extra)
    return host


def by_host(run, host):
    assert run.report is not None, f"no report (rc={run.rc}):\n{run.stdout[-3000:]}"
    return {i["id"]: i for i in run.report["items"] if i["host"] == host}


def test_an_unreachable_host_fails_every_item_it_owns_and_the_others_are_still_judged(ansible, sample_service):
    gone = app_host(sample_service, ansible_connection="ssh", ansible_host="127.0.0.1", ansible_port=refused_port(),
                    ansible_user="nobody",
                    ansible_ssh_common_args="-o StrictHostKeyChecking=no -o ConnectTimeout=3 -o BatchMode=yes")
    inventory = {"all": {"children": {"app": {"hosts": {"app-ok": app_host(sample_service), "app-gone": gone}}}}}
    run = ansible.run_playbook(PLAYBOOK, inventory, extravars={"hunter_ops_required_checks": REQUIRED})
    ok, lost = by_host(run, "app-ok"), by_host(run, "app-gone")
    assert {i: ok[i]["status"] for i in REQUIRED} == dict.fromkeys(REQUIRED, "pass")
    assert set(lost) >= set(HEALTH_IDS[:-1])
    for check_id in HEALTH_IDS[:-1]:
        assert lost[check_id]["status"] == "fail", lost[check_id]
        assert lost[check_id]["message"].startswith("host unreachable"), lost[check_id]["message"]
    assert run.report["verdict"] == "NO-GO" and run.rc != 0
    assert sorted({(b["id"], b["host"]) for b in run.report["blocking"]}) == sorted(
        (i, "app-gone") for i in REQUIRED)


def test_results_an_earlier_run_left_in_a_fact_cache_never_make_a_go(ansible, sample_service, tmp_path):
    """AWX's fact storage hands a job the facts of the previous one (ansible-runner's jsonfile fact
    cache, shared here between two runs as AWX shares it between two jobs)."""
    ansible.settings["fact_cache"] = str(tmp_path / "fact-cache")
    inventory = {"all": {"children": {"app": {"hosts": {"app1": app_host(sample_service)}}}}}
    first = ansible.run_playbook(PLAYBOOK, inventory, extravars={"hunter_ops_required_checks": REQUIRED})
    assert first.report["verdict"] == "GO", first.stdout[-3000:]
    assert any((tmp_path / "fact-cache").iterdir())  # the items are in the cache now

    # The next run checks nothing (only the report play): the cached passes must not count.
    report_only = Path(__file__).resolve().parents[2] / "playbooks" / "report.yml"
    second = ansible.run_playbook(report_only, inventory, extravars={"hunter_ops_required_checks": REQUIRED})
    items = [i for i in second.report["items"] if i["id"] in REQUIRED]
    assert items and all(i["status"] == "fail" for i in items), items
    assert all("another run" in str(i["evidence"].get("stale")) for i in items), items
    assert second.report["verdict"] == "NO-GO" and second.rc != 0

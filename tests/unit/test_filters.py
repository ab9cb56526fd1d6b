"""The role-recording filters (plugins/filter/checks.py): checks_from, failed_checks, role_check_ids."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.hunter.ops.plugins.filter.checks import checks_from, failed_checks, role_check_ids
from ansible_collections.hunter.ops.plugins.module_utils.checklist import CHECK_IDS


def test_role_check_ids_come_from_the_catalogue_in_report_order():
    assert role_check_ids("health_check") == ["HEALTH-LIVE", "HEALTH-READY", "HEALTH-STARTUP", "HEALTH-ENV",
                                              "HEALTH-DB", "HEALTH-REDIS", "HEALTH-DIAG"]
    assert role_check_ids("pg_restore_dryrun") == ["RESTORE-DRYRUN", "RESTORE-RTO"]
    roles = ["health_check", "sentry_probe", "pg_backup", "pg_restore_dryrun", "redis_check", "api_versioning"]
    assert sum((role_check_ids(r) for r in roles), []) == list(CHECK_IDS)  # every ID has one owner


def test_role_check_ids_by_group_as_the_redis_rescue_needs():
    assert role_check_ids("redis_check", ["cache"]) == ["REDIS-PING", "REDIS-OPS", "REDIS-POOL"]
    assert role_check_ids("redis_check", ["app", "staging"]) == ["REDIS-APP-PING", "REDIS-HEALTH"]
    assert role_check_ids("redis_check", ["cache", "app"]) == role_check_ids("redis_check")
    assert role_check_ids("redis_check", ["db"]) == []


def test_role_check_ids_refuses_an_unknown_role_or_bad_groups():
    with pytest.raises(AnsibleFilterError, match="no checklist ID belongs to role 'health_checks'"):
        role_check_ids("health_checks")
    with pytest.raises(AnsibleFilterError, match="groups must be a list"):
        role_check_ids("redis_check", "cache")


def test_checks_from_keeps_the_items_or_fails_every_id_with_the_reason():
    items = {"REDIS-PING": {"status": "pass", "message": "PONG", "evidence": {}}}
    assert checks_from({"checks": items}, ["REDIS-PING"]) == items
    failed = checks_from({"failed": True, "msg": "port: bad\nvalue"}, ["A", "B"])
    assert failed == failed_checks(["A", "B"], "port: bad value")
    assert failed["A"] == {"status": "fail", "message": "port: bad value", "evidence": {"error": "port: bad value"}}
    assert checks_from({"unreachable": True, "msg": "ssh"}, ["A"])["A"]["message"] == "host unreachable: ssh"
    assert checks_from({"skipped": True}, ["A"])["A"]["message"] == "the check task was skipped: condition false"


def test_a_module_killed_outright_leaves_its_notices_in_the_items():
    died = {"failed": True, "rc": -9, "msg": "MODULE FAILURE: No start of json char found\nSee stdout/stderr",
            "module_stdout": "", "module_stderr": "warning: something\nhunter.ops notice: restore drill run 3f9a0c12 "
                                                  "(pid 42) creates scratch database restore_drill_x on db:5432; if "
                                                  "this run dies, the database may remain\n"}
    item = checks_from(died, ["RESTORE-DRYRUN"])["RESTORE-DRYRUN"]
    assert item["status"] == "fail"
    assert item["message"].startswith("MODULE FAILURE: No start of json char found See stdout/stderr; hunter.ops "
                                      "notice: restore drill run 3f9a0c12")
    assert "scratch database restore_drill_x on db:5432" in item["message"]
    assert "warning" not in item["message"]
    assert checks_from({"failed": True, "msg": "x", "module_stderr": None}, ["A"])["A"]["message"] == "x"

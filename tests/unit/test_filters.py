"""The role_check_ids filter (plugins/filter/checks.py): the IDs a role owns, from the catalogue."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.hunter.ops.plugins.filter.checks import role_check_ids
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

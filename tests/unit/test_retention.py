"""Retention selection by age and by count per label (module_utils/backup.py retention_plan) and the module's
pure parts (plugins/modules/backup_retention.py): limits per label, the newest valid never deleted, nothing
deleted where nothing is valid, results of the backup host folded into one item."""
import pytest

from ansible_collections.hunter.ops.plugins.module_utils import backup as bk
from ansible_collections.hunter.ops.plugins.module_utils.validate import ParameterError
from ansible_collections.hunter.ops.plugins.modules import backup_retention as mod

DAY = 86400.0
NOW = 1000 * DAY


def backups(*spec):
    """spec: (label, age in days) newest first -> list_backups-like items with real names."""
    found = []
    for index, (label, age) in enumerate(spec):
        stamp = "2027%02d%02d_%06d" % (1 + index // 28, 1 + index % 28, index)
        found.append(dict(name="backup_%s_%s.dump" % (label, stamp), label=label, created=NOW - age * DAY - index))
    return found


def names(items):
    return sorted(i["name"].split("_")[1] for i in items)


def test_count_limit_per_label_bounds_repeated_runs_whatever_their_age():
    runs = backups(*[("pre_v1.0", 0.01)] * 20 + [("daily", d) for d in range(10)])
    keep, delete = bk.retention_plan(runs, NOW, keep_days=7, count_by_label={"pre_*": 3})
    kept = [k["label"] for k in keep]
    assert kept.count("pre_v1.0") == 3 and kept.count("daily") == 7
    assert all("beyond the 3 newest of label pre_v1.0" in d["reason"] for d in delete if d["label"] == "pre_v1.0")
    assert all("days old" in d["reason"] for d in delete if d["label"] == "daily")


def test_first_matching_pattern_wins_and_zero_means_no_count_limit():
    assert bk.count_limit("pre_v2", 5, [("pre_*", 3), ("pre_v2", 9)]) == 3
    assert bk.count_limit("daily", 5, [("pre_*", 3)]) == 5
    runs = backups(*[("manual", 0.1)] * 6)
    keep, delete = bk.retention_plan(runs, NOW, keep_days=0, keep_count=2, count_by_label={"manual": 0})
    assert delete == [] and all(k["reason"] == "no limit for label manual" for k in keep)


def test_protected_newest_valid_survives_both_limits():
    runs = backups(("x", 10), ("x", 11), ("x", 12))
    keep, delete = bk.retention_plan(runs, NOW, keep_days=7, keep_count=1, protect=[runs[1]["name"]])
    assert [k["name"] for k in keep] == [runs[1]["name"]]
    assert keep[0]["reason"] == "newest valid backup (never deleted)"


def params(**over):
    base = dict(keep_days=7.0, keep_count=0, keep_count_by_label=[("pre_*", 2)], database="hunter", label=None)
    base.update(over)
    return base


def test_plan_with_a_damaged_newest_keeps_it_counted_and_protects_the_newest_valid():
    runs = backups(("pre_v1", 0.1), ("pre_v1", 0.2), ("pre_v1", 0.3), ("pre_v1", 0.4))
    damaged = {runs[0]["name"], runs[1]["name"]}
    side = mod.plan(runs, NOW, params(), lambda item: ["sha256 mismatch"] if item["name"] in damaged else [])
    assert side["newest_valid"] == runs[2]["name"]
    assert sorted(k["name"] for k in side["keep"]) == sorted(n["name"] for n in runs[:3])
    assert [d["name"] for d in side["delete"]] == [runs[3]["name"]]


def test_plan_deletes_nothing_where_no_backup_is_valid():
    runs = backups(("pre_v1", 30), ("pre_v1", 31), ("pre_v1", 32))
    side = mod.plan(runs, NOW, params(), lambda item: ["no manifest"])
    assert side["newest_valid"] is None and side["delete"] == []
    assert all(k["reason"] == mod.NO_VALID for k in side["keep"])


def test_results_of_the_backup_host_become_one_place_each():
    remote = dict(changed=True, deleted=["bk1:/srv/b/backup_x_20270101_000000.dump"],
                  checks={"BACKUP-RETENTION": {"status": "pass", "message": "deleted 1", "evidence": {
                      "local": {"location": "bk1:/srv/b", "total": 4, "newest_valid": "n", "kept": 3}}}})
    summary = mod.other_location(remote)
    assert summary["location"] == "bk1:/srv/b" and summary["status"] == "pass" and summary["kept"] == 3
    assert summary["deleted"] == remote["deleted"]
    unreachable = mod.other_location(dict(unreachable=True, msg="ssh: connect to host bk1 port 22: refused",
                                          checks={"BACKUP-RETENTION": {"status": "fail", "message": "host unreachable"}}))
    assert unreachable["status"] == "warn", "an unreachable backup host loses no backup: the next run prunes"
    assert mod.other_location(dict(skipped=True)) is None
    crashed = mod.other_location(dict(failed=True, msg="MODULE FAILURE"))
    assert crashed["status"] == "fail" and crashed["message"] == "MODULE FAILURE"


@pytest.mark.parametrize("over,param", [
    (dict(keep_days=-1), "keep_days"), (dict(keep_count=-2), "keep_count"),
    (dict(keep_count_by_label={"pre_*": "three"}), "keep_count_by_label"),
    (dict(keep_count_by_label={"pre_*": True}), "keep_count_by_label"),
    (dict(lock_timeout=-1), "lock_timeout"), (dict(backup_dir="relative"), "backup_dir"),
])
def test_bad_settings_name_the_parameter(tmp_path, over, param):
    p = dict(keep_days=7.0, keep_count=0, keep_count_by_label={}, lock_timeout=60.0, backup_dir=str(tmp_path))
    p.update(over)
    with pytest.raises(ParameterError) as err:
        mod.validate(p)
    assert str(err.value).startswith(param + ":")

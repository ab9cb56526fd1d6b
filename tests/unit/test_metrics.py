"""Metrics of the nightly jobs (module_utils/metrics.py): every file parses with prometheus_client, the
values come from the run's items, last-success series survive a failed run, and files are replaced
atomically."""
import os

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.hunter.ops.plugins.module_utils import metrics

NOW = 1_800_000_000.0
LABELS = {"host": "db1", "database": "hunter", "label": "daily"}


def samples(text):
    """{(name, frozenset(labels)): value}, parsed by prometheus_client (the reference parser)."""
    found = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge", family.name
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(parsed, name, **labels):
    return parsed[(name, frozenset(labels.items()))]


def item(status):
    return {"status": status, "message": "m", "evidence": {}}


def backup_data(ok=True):
    checks = {"BACKUP-CMD": item("pass" if ok else "fail"), "BACKUP-VALID": item("pass" if ok else "fail"),
              "BACKUP-LOCATION": item("pass" if ok else "fail"), "BACKUP-RETENTION": item("warn"),
              "BACKUP-SCHEDULE": item("skip"), "HEALTH-LIVE": item("pass")}
    manifest = {"finished_at": "2027-01-15T07:00:00Z", "duration_s": 6.5, "size_bytes": 12345, "verified": True,
                "tables": {"public.companies": 50, "public.domain_signals": 400}}
    return {"checks": checks, "backup": {"path": "/b/x", "manifest": manifest} if ok else None}


def render(job, labels, data, previous=None, now=NOW):
    families, ok = metrics.build(job, labels, data, metrics.parse(previous) if previous else {}, now=now)
    return metrics.render(families), ok


def test_a_verified_backup_exports_its_size_rows_and_time():
    text, ok = render("backup", LABELS, backup_data())
    parsed = samples(text)
    assert ok
    assert value(parsed, "hunter_ops_backup_last_run_success", **LABELS) == 1
    assert value(parsed, "hunter_ops_backup_last_success_size_bytes", **LABELS) == 12345
    assert value(parsed, "hunter_ops_backup_last_success_rows", **LABELS) == 450
    assert value(parsed, "hunter_ops_backup_last_success_tables", **LABELS) == 2
    assert value(parsed, "hunter_ops_backup_last_success_duration_seconds", **LABELS) == 6.5
    assert value(parsed, "hunter_ops_backup_last_run_offsite_verified", **LABELS) == 1
    assert value(parsed, "hunter_ops_backup_check_status", check="BACKUP-RETENTION", status="warn", **LABELS) == 1
    assert value(parsed, "hunter_ops_backup_check_status", check="BACKUP-RETENTION", status="pass", **LABELS) == 0
    # only the backup's own items: a health item on the same host is not the backup's
    assert not any(dict(k[1]).get("check") == "HEALTH-LIVE" for k in parsed)


def test_the_finish_time_is_the_manifests_not_the_metrics_writers():
    parsed = samples(render("backup", LABELS, backup_data())[0])
    # 2027-01-15T07:00:00Z, an hour before the run that writes the metrics
    assert value(parsed, "hunter_ops_backup_last_success_timestamp_seconds", **LABELS) == 1_799_996_400
    assert value(parsed, "hunter_ops_backup_last_run_timestamp_seconds", **LABELS) == NOW


def test_a_failed_backup_keeps_the_last_success_and_says_it_failed():
    good = render("backup", LABELS, backup_data())[0]
    text, ok = render("backup", LABELS, backup_data(ok=False), previous=good, now=NOW + 86400)
    parsed = samples(text)
    assert not ok
    assert value(parsed, "hunter_ops_backup_last_run_success", **LABELS) == 0
    assert value(parsed, "hunter_ops_backup_last_run_timestamp_seconds", **LABELS) == NOW + 86400
    assert value(parsed, "hunter_ops_backup_last_success_timestamp_seconds", **LABELS) == 1_799_996_400
    assert value(parsed, "hunter_ops_backup_last_success_size_bytes", **LABELS) == 12345
    assert value(parsed, "hunter_ops_backup_check_status", check="BACKUP-VALID", status="fail", **LABELS) == 1
    # an alert on the age of the last success keeps firing instead of resetting
    assert NOW + 86400 - value(parsed, "hunter_ops_backup_last_success_timestamp_seconds", **LABELS) > 24 * 3600


def test_other_labels_keep_their_series_and_a_failed_first_run_has_no_success():
    nightly = render("backup", LABELS, backup_data())[0]
    pre = {**LABELS, "label": "pre_v1.0"}
    text = render("backup", pre, backup_data(ok=False), previous=nightly)[0]
    parsed = samples(text)
    assert value(parsed, "hunter_ops_backup_last_run_success", **pre) == 0
    assert ("hunter_ops_backup_last_success_timestamp_seconds", frozenset(pre.items())) not in parsed
    assert value(parsed, "hunter_ops_backup_last_success_size_bytes", **LABELS) == 12345
    assert value(parsed, "hunter_ops_backup_last_run_success", **LABELS) == 1


def test_drill_metrics_carry_the_rto_projection_and_the_result():
    rto = {"restore_s": 2.5, "end_to_end_s": 3.5, "throughput_bytes_per_s": 4_000_000.0, "projected_s": 1200.0,
           "end_to_end_projected_s": 1500.0, "target_s": 900.0, "backup_size_bytes": 999}
    data = {"checks": {"RESTORE-DRYRUN": item("pass"), "RESTORE-RTO": item("fail")},
            "drill": {"backup": {"name": "backup_daily_20270115_020000.dir"}, "rto": rto}}
    labels = {"host": "db1", "database": "hunter"}
    text, ok = render("restore_drill", labels, data)
    parsed = samples(text)
    assert ok
    assert value(parsed, "hunter_ops_restore_drill_last_run_success", **labels) == 1
    assert value(parsed, "hunter_ops_restore_drill_rto_ok", **labels) == 0
    assert value(parsed, "hunter_ops_restore_drill_rto_projected_seconds", **labels) == 1200
    assert value(parsed, "hunter_ops_restore_drill_rto_target_seconds", **labels) == 900
    assert value(parsed, "hunter_ops_restore_drill_throughput_bytes_per_second", **labels) == 4e6
    assert value(parsed, "hunter_ops_restore_drill_end_to_end_seconds", **labels) == 3.5
    assert value(parsed, "hunter_ops_restore_drill_last_success_timestamp_seconds", **labels) == NOW
    assert "hunter_ops_restore_drill_backup_timestamp_seconds" in {k[0] for k in parsed}
    failed = {"checks": {"RESTORE-DRYRUN": item("fail"), "RESTORE-RTO": item("fail")}, "drill": {"rto": None}}
    later, ok = render("restore_drill", labels, failed, previous=text, now=NOW + 60)
    parsed = samples(later)
    assert not ok and value(parsed, "hunter_ops_restore_drill_last_run_success", **labels) == 0
    assert value(parsed, "hunter_ops_restore_drill_last_success_timestamp_seconds", **labels) == NOW
    assert ("hunter_ops_restore_drill_rto_projected_seconds", frozenset(labels.items())) not in parsed


def test_preflight_metrics_hold_the_verdict_and_every_item_per_host():
    rows = [{"id": "HEALTH-LIVE", "host": "app1", "status": "pass"},
            {"id": "BACKUP-SCHEDULE", "host": "db1", "status": "warn"},
            {"id": "REDIS-PING", "host": "cache1", "status": "fail"}]
    data = {"verdict": "NO-GO", "counts": {"pass": 1, "warn": 1, "fail": 1, "skip": 0}, "items": rows,
            "blocking": [{"id": "REDIS-PING", "host": "cache1"}], "written": True}
    text, ok = render("preflight", {"environment": "staging"}, data)
    parsed = samples(text)
    assert not ok
    assert value(parsed, "hunter_ops_preflight_go", environment="staging") == 0
    assert value(parsed, "hunter_ops_preflight_blocking_items", environment="staging") == 1
    assert value(parsed, "hunter_ops_preflight_items", environment="staging", status="fail") == 1
    assert value(parsed, "hunter_ops_preflight_check_status", environment="staging", check="REDIS-PING",
                 host="cache1", status="fail") == 1
    assert value(parsed, "hunter_ops_preflight_check_status", environment="staging", check="BACKUP-SCHEDULE",
                 host="db1", status="pass") == 0
    go = render("preflight", {"environment": "staging"}, dict(data, verdict="GO", blocking=[]), previous=text)[0]
    assert value(samples(go), "hunter_ops_preflight_last_go_timestamp_seconds", environment="staging") == NOW


def test_label_values_are_escaped_and_read_back():
    labels = {"host": 'we"ird\\host\nname', "database": "hunter", "label": "daily"}
    text = render("backup", labels, backup_data())[0]
    parsed = samples(text)
    assert value(parsed, "hunter_ops_backup_last_run_success", **labels) == 1
    mine = metrics.parse(text)
    assert mine["hunter_ops_backup_last_run_success"]["samples"][0][0]["host"] == labels["host"]


def test_files_are_replaced_atomically_and_readable_by_the_collector(tmp_path):
    path = tmp_path / metrics.file_name("backup", LABELS)
    assert path.name == "hunter_ops_backup_db1_hunter.prom"
    metrics.write_atomic(str(path), "first\n")
    inode = path.stat().st_ino
    metrics.write_atomic(str(path), render("backup", LABELS, backup_data())[0])
    assert path.stat().st_ino != inode, "a new file renamed over the old one, never rewritten in place"
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert os.listdir(tmp_path) == [path.name], "no temporary file is left, and none ends in .prom"
    samples(path.read_text())


def test_directory_setting(tmp_path, monkeypatch):
    assert metrics.resolve_directory("")[0] is None
    assert metrics.resolve_directory(str(tmp_path))[0] == str(tmp_path)
    monkeypatch.setattr(metrics, "AUTO_DIRS", (str(tmp_path / "missing"), str(tmp_path)))
    assert metrics.resolve_directory("auto")[0] == str(tmp_path)
    monkeypatch.setattr(metrics, "AUTO_DIRS", (str(tmp_path / "missing"),))
    directory, why = metrics.resolve_directory("auto")
    assert directory is None and "no textfile collector directory" in why


def test_unknown_job_is_refused():
    with pytest.raises(ValueError):
        metrics.build("nightly", {}, {})

"""Pure rules of the restore drill: scratch names, leftovers, refusals, verification diff, RTO."""
import datetime

import pytest

from ansible_collections.hunter.ops.plugins.module_utils import restore_drill as rules
from ansible_collections.hunter.ops.plugins.module_utils.validate import ParameterError

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 11, 28, 2, 15, 0, tzinfo=UTC)


# -- names and leftovers ----------------------------------------------------------------

def test_scratch_name_is_prefix_and_utc_stamp_and_parses_back():
    name = rules.scratch_name("restore_drill", NOW)
    assert name == "restore_drill_20261128_021500"
    assert rules.scratch_created_at(name, "restore_drill") == NOW
    assert rules.scratch_name("restore_drill", NOW, attempt=1) == "restore_drill_20261128_021500_2"
    assert rules.scratch_created_at("restore_drill_20261128_021500_2", "restore_drill") == NOW


@pytest.mark.parametrize("name", ["restore_drill", "restore_drill_x", "restore_drill_20261328_021500",
                                  "restore_drill_extra_20261128_021500", "hunter", "restore_drill_20261128_0215"])
def test_names_that_are_not_scratch_databases_of_the_prefix(name):
    assert rules.scratch_created_at(name, "restore_drill") is None


def test_leftovers_only_of_the_prefix_older_than_the_limit_never_protected():
    names = ["hunter", "postgres", "restore_drill_20261128_011500",   # 1 h old
             "restore_drill_20261128_021000",                           # 5 min old: maybe a drill running now
             "restore_drill_20261127_021500_3",                         # 1 day old
             "other_20261101_000000", "restore_drill_20261101_000000"]
    found = rules.leftovers(names, "restore_drill", NOW, 3600, rules.protected_set(
        ["restore_drill_20261101_000000"], "hunter"))
    assert found == [("restore_drill_20261127_021500_3", 86400), ("restore_drill_20261128_011500", 3600)]
    assert [name for name, age in rules.leftovers(names, "restore_drill", NOW, 0, set())] == [
        "restore_drill_20261101_000000", "restore_drill_20261127_021500_3",
        "restore_drill_20261128_011500", "restore_drill_20261128_021000"]


@pytest.mark.parametrize("prefix", ["Restore", "1drill", "drill-x", "", "a" * 45, "drill;drop"])
def test_bad_prefix_names_the_parameter(prefix):
    with pytest.raises(ParameterError) as err:
        rules.validate_prefix("scratch_prefix", prefix)
    assert str(err.value).startswith("scratch_prefix: ")


def test_refused_names():
    assert "source database" in rules.refuse_name("hunter", "hunter", [])
    assert "protected" in rules.refuse_name("keep", "hunter", ["keep"])
    for name in ("postgres", "template0", "template1"):
        assert "protected" in rules.refuse_name(name, "hunter", [])
    assert rules.refuse_name("restore_drill_20261128_021500", "hunter", ["keep"]) is None


def test_production_rule():
    prod = ["hunter-prod-db-1", "10.10.0.21"]
    assert "production group (10.10.0.21)" in rules.refuse_server("10.10.0.21", prod, False, False)
    assert "production group" in rules.refuse_server("HUNTER-PROD-DB-1.", prod, False, False)
    # a local server is production when the host running the drill is
    for local in ("127.0.0.1", "localhost", "::1", "/var/run/postgresql", None, ""):
        assert "local to a host of the production group" in rules.refuse_server(local, prod, True, False)
        assert rules.refuse_server(local, prod, False, False) is None
    assert rules.refuse_server("10.20.0.21", prod, True, False) is None      # a staging server
    assert rules.refuse_server("10.10.0.21", prod, True, True) is None       # explicit override


# -- verification ------------------------------------------------------------------------------

MANIFEST = {"public.companies": 50, "public.domain_signals": 400, "audit.events": 7}


def test_tables_to_count_qualifies_and_defaults_to_all():
    assert rules.tables_to_count(MANIFEST, []) == sorted(MANIFEST)
    assert rules.tables_to_count(MANIFEST, ["companies", "public.companies", "audit.events"]) == [
        "public.companies", "audit.events"]


def test_verify_equal():
    out = rules.verify(MANIFEST, list(MANIFEST), dict(MANIFEST), sorted(MANIFEST))
    assert out["ok"] and out["problems"] == [] and out["restored_tables"] == 3
    assert out["compared"]["public.companies"] == {"expected": 50, "restored": 50}


def test_verify_names_each_mismatch_by_table():
    restored = {"public.companies": 49, "public.domain_signals": 400, "audit.events": 8}
    out = rules.verify(MANIFEST, list(MANIFEST), restored, sorted(MANIFEST))
    assert not out["ok"]
    assert out["mismatches"] == {"public.companies": {"expected": 50, "restored": 49},
                                 "audit.events": {"expected": 7, "restored": 8}}
    assert "public.companies: 49 rows restored, manifest has 50" in out["problems"]
    assert "audit.events: 8 rows restored, manifest has 7" in out["problems"]


def test_verify_table_set_both_ways_and_unknown_configured_table():
    restored_tables = ["public.companies", "public.extra"]
    out = rules.verify(MANIFEST, restored_tables, {"public.companies": 50},
                       ["public.companies", "public.nope"])
    assert out["missing"] == ["audit.events", "public.domain_signals"]
    assert out["unexpected"] == ["public.extra"]
    assert out["not_in_backup"] == ["public.nope"]
    assert out["compared"] == {"public.companies": {"expected": 50, "restored": 50}}
    assert not out["ok"] and len(out["problems"]) == 3


def test_verify_without_row_counts_is_not_a_pass():
    out = rules.verify({}, ["public.companies"], {}, [], rows_counted=False)
    assert not out["ok"] and "cannot be verified" in out["problems"][0]


# -- RTO -----------------------------------------------------------------------------------------

def test_projection_is_linear_in_the_measured_throughput():
    out = rules.project_rto(duration_s=20.0, measured_bytes=2 * 1024 ** 3, production_bytes=40 * 1024 ** 3)
    assert out["throughput_bytes_per_s"] == pytest.approx(2 * 1024 ** 3 / 20.0, rel=1e-6)
    assert out["projected_s"] == pytest.approx(400.0)


@pytest.mark.parametrize("duration,measured", [(0, 10), (5, 0), (None, 10), (5, None)])
def test_projection_without_figures(duration, measured):
    assert rules.project_rto(duration, measured, 100) == {"throughput_bytes_per_s": None, "projected_s": None}


def test_rto_verdicts():
    status, message = rules.rto_verdict(21.5, 400.0, 900)
    assert status == "pass" and "21.5 s" in message and "6 min 40 s" in message and "15 min 00 s" in message
    status, message = rules.rto_verdict(21.5, 1200.0, 900)
    assert status == "warn" and "20 min 00 s" in message
    status, message = rules.rto_verdict(901, 901, 900)
    assert status == "fail" and "over the RTO target" in message
    assert rules.rto_verdict(3, None, 900)[0] == "pass"


def test_formatting():
    assert rules.format_duration(42.14) == "42.1 s"
    assert rules.format_duration(185) == "3 min 05 s"
    assert rules.format_duration(7440) == "2 h 04 min"
    assert rules.format_bytes(512) == "512 B"
    assert rules.format_bytes(2 * 1024 ** 3) == "2.0 GiB"

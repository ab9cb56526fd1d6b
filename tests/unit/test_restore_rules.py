"""Pure rules of the restore drill (module_utils/restore_rules.py): the production refusal, the
table and row-count diff, RTO projections and verdicts, the restore command's target."""
import os

import pytest

from ansible_collections.hunter.ops.plugins.module_utils import pg, restore_exec
from ansible_collections.hunter.ops.plugins.module_utils import restore_rules as rules


# -- the server -------------------------------------------------------------------------------

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


def test_rto_verdicts_judge_the_end_to_end_time():
    status, message = rules.rto_verdict(21.5, 25.0, 400.0, 470.0, 900)
    assert status == "pass"
    assert message == ("restore 21.5 s, end to end 25.0 s; projected for the production size: restore 6 min 40 s, "
                       "end to end 7 min 50 s; target 15 min 00 s")
    # the restore alone would pass, the drill end to end is projected over target
    status, message = rules.rto_verdict(21.5, 25.0, 800.0, 1200.0, 900)
    assert status == "warn" and "end to end 20 min 00 s, over the RTO target of 15 min 00 s" in message
    status, message = rules.rto_verdict(800, 901, 800, 901, 900)
    assert status == "fail" and "end to end 15 min 01 s: over the RTO target" in message
    assert rules.rto_verdict(3, 4, None, None, 900)[0] == "pass"


def test_end_to_end_projection_scales_the_data_phases_only():
    phases = {"download_s": 2.0, "sha256_s": 1.0, "create_s": 0.5, "restore_s": 10.0, "verify_s": 1.0,
              "drop_s": 0.5}
    # 16 s end to end: 14.5 s of data-bound phases, 1.5 s fixed (start-up, connecting, CREATE DATABASE)
    assert rules.project_end_to_end(phases, 16.0, 10.0) == pytest.approx(1.5 + 145.0)
    assert rules.project_end_to_end(phases, 16.0, None) is None
    assert rules.project_end_to_end({}, 3.0, 100.0) == 3.0


def test_formatting():
    assert rules.format_duration(42.14) == "42.1 s"
    assert rules.format_duration(185) == "3 min 05 s"
    assert rules.format_duration(7440) == "2 h 04 min"
    assert rules.format_bytes(512) == "512 B"
    assert rules.format_bytes(2 * 1024 ** 3) == "2.0 GiB"


# -- the restore command: the database by a connection string built from parts ---------------------

def test_conninfo_quotes_what_is_not_a_plain_word():
    assert pg.conninfo(dbname="restore_drill_x") == "dbname=restore_drill_x"
    assert pg.conninfo(dbname="dbname=hunter") == "dbname='dbname=hunter'"
    assert pg.conninfo(dbname="a'b\\c", host=None) == "dbname='a\\'b\\\\c'"
    with pytest.raises(ValueError):
        pg.conninfo(dbname="x", password="secret")


@pytest.mark.parametrize("fmt,tool", [("plain", "psql"), ("custom", "pg_restore"), ("directory", "pg_restore")])
def test_restore_names_the_database_by_a_built_connection_string(fmt, tool):
    manifest = {"format": fmt, "compression": {"method": "none"}}
    stages = restore_exec.restore_stages("/b/backup_x", manifest, "restore_drill_x", jobs=2)
    argv = stages[-1]
    assert os.path.basename(argv[0]) == tool
    assert "--dbname=dbname=restore_drill_x" in argv and "-d" not in argv

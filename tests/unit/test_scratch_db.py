"""Scratch databases of the restore drill (module_utils/scratch_db.py): safe names, ownership,
what the sweep drops, the state file. Liveness is checked on real processes."""
import datetime
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from ansible_collections.hunter.ops.plugins.module_utils import scratch_db
from ansible_collections.hunter.ops.plugins.module_utils.signals import (
    Interrupted, deferring_signals, ignoring_signals, raising_on_signals)
from ansible_collections.hunter.ops.plugins.module_utils.validate import ParameterError

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 11, 28, 2, 15, 0, tzinfo=UTC)


# -- names --------------------------------------------------------------------------------------

def test_scratch_name_carries_utc_stamp_and_run_id_and_parses_back():
    name = scratch_db.scratch_name("restore_drill", NOW, "3f9a0c12")
    assert name == "restore_drill_20261128_021500_3f9a0c12"
    assert scratch_db.parse_scratch_name(name, "restore_drill") == dict(created=NOW, run_id="3f9a0c12")
    # names of earlier versions: no run id, maybe a clash suffix
    assert scratch_db.parse_scratch_name("restore_drill_20261128_021500", "restore_drill") == dict(
        created=NOW, run_id=None)
    assert scratch_db.parse_scratch_name("restore_drill_20261128_021500_2", "restore_drill")["run_id"] is None
    assert len(scratch_db.new_run_id()) == scratch_db.RUN_ID_LENGTH


@pytest.mark.parametrize("name", ["restore_drill", "restore_drill_x", "restore_drill_20261328_021500",
                                  "restore_drill_extra_20261128_021500", "hunter", "restore_drill_20261128_0215",
                                  "restore_drill_20261128_021500_XYZ", "other_20261128_021500_3f9a0c12"])
def test_names_that_are_not_scratch_databases_of_the_prefix(name):
    assert scratch_db.parse_scratch_name(name, "restore_drill") is None


@pytest.mark.parametrize("name", ["dbname=hunter", "dbname=hunter host=prod", "postgresql://prod/hunter",
                                  "Restore", "drill x", "drill;drop", "drill'", '"drill"', "", "a" * 64])
def test_a_scratch_name_must_be_a_plain_identifier_never_a_connection_string(name):
    with pytest.raises(ParameterError) as err:
        scratch_db.validate_name("scratch_name", name)
    assert str(err.value).startswith("scratch_name: ")


def test_a_plain_scratch_name_passes():
    assert scratch_db.validate_name("scratch_name", "drill_staging_1") == "drill_staging_1"


@pytest.mark.parametrize("prefix", ["Restore", "1drill", "drill-x", "", "a" * 39, "drill;drop"])
def test_bad_prefix_names_the_parameter(prefix):
    with pytest.raises(ParameterError) as err:
        scratch_db.validate_prefix("scratch_prefix", prefix)
    assert str(err.value).startswith("scratch_prefix: ")


def test_longest_prefix_still_fits_an_identifier():
    prefix = "a" * 38
    assert len(scratch_db.scratch_name(scratch_db.validate_prefix("p", prefix), NOW, "3f9a0c12")) == 63


def test_refused_names():
    assert "source database" in scratch_db.refuse_name("hunter", "hunter", [])
    assert "protected" in scratch_db.refuse_name("keep", "hunter", ["keep"])
    for name in ("postgres", "template0", "template1"):
        assert "protected" in scratch_db.refuse_name(name, "hunter", [])
    assert scratch_db.refuse_name("restore_drill_20261128_021500_3f9a0c12", "hunter", ["keep"]) is None


# -- ownership ----------------------------------------------------------------------------------------

def dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_owner_of_a_tag_is_alive_while_its_process_runs():
    tag = scratch_db.owner_tag("3f9a0c12", "restore_drill", backup="backup_x.dir", now=NOW)
    assert tag["pid"] == os.getpid() and tag["pid_start"] == scratch_db.process_start(os.getpid())
    assert scratch_db.parse_tag(scratch_db.tag_text(tag)) == tag
    assert scratch_db.owner_alive_here(tag) is True
    assert scratch_db.owner_alive_here(dict(tag, pid=dead_pid())) is False
    # a live process that is not the owner (the PID reused): another start time
    assert scratch_db.owner_alive_here(dict(tag, pid_start="1")) is False
    assert scratch_db.owner_alive_here(dict(tag, host="elsewhere")) is None


@pytest.mark.parametrize("comment", [None, "", "not json", "[]", json.dumps({"run_id": "x"}),
                                     json.dumps({scratch_db.TAG_KEY: 1})])
def test_comments_that_are_not_owner_tags(comment):
    assert scratch_db.parse_tag(comment) is None


def classify(databases, live=(), legacy_max_age=3600):
    found = scratch_db.classify(databases, "restore_drill", NOW, set(live), scratch_db.protected_set([], "hunter"),
                                legacy_max_age, this_host="this-host")
    return dict((e["name"], e) for e in found)


def tagged(name, run_id, host="this-host", pid=None, applications=()):
    tag = {scratch_db.TAG_KEY: 1, "run_id": run_id, "prefix": "restore_drill", "host": host,
           "pid": pid or dead_pid(), "pid_start": None}
    return dict(name=name, comment=json.dumps(tag), sessions=len(applications), applications=list(applications))


def test_sweep_keeps_a_running_drill_whatever_its_age_and_drops_a_dead_one():
    running = tagged("restore_drill_20200101_000000_aaaaaaaa", "aaaaaaaa", host="other-host")
    # 5 s old, killed; its restore's session lingers (a CREATE INDEX notices a dead client only when done)
    dead = tagged("restore_drill_20261128_021455_bbbbbbbb", "bbbbbbbb",
                  applications=[scratch_db.application_name("bbbbbbbb") + " restore"])
    alive_here = tagged("restore_drill_20261128_021400_cccccccc", "cccccccc", pid=os.getpid())
    found = classify([running, dead, alive_here], live=[scratch_db.application_name("aaaaaaaa"),
                                                        scratch_db.application_name("bbbbbbbb") + " restore"])
    assert found[running["name"]]["drop"] is False and "is running" in found[running["name"]]["reason"]
    # a killed run's restore session may linger; only its guard session counts as the owner
    assert found[dead["name"]]["drop"] is True and "no such process on this host" in found[dead["name"]]["reason"]
    assert found[alive_here["name"]]["drop"] is False and "is alive" in found[alive_here["name"]]["reason"]


def test_sweep_of_another_hosts_dead_drill_and_of_untagged_names():
    gone_elsewhere = tagged("restore_drill_20261128_021000_dddddddd", "dddddddd", host="other-host")
    # another host's drill whose guard session is gone but whose restore is still connected: kept
    busy_elsewhere = tagged("restore_drill_20261128_020000_ffffffff", "ffffffff", host="other-host",
                            applications=[scratch_db.application_name("ffffffff") + " restore"])
    legacy_old = dict(name="restore_drill_20261128_011500", comment=None, sessions=0)
    legacy_busy = dict(name="restore_drill_20261127_011500", comment=None, sessions=2)
    legacy_young = dict(name="restore_drill_20261128_021000", comment=None, sessions=0)
    custom = tagged("drill_custom", "eeeeeeee", host="other-host")
    foreign = dict(name="hunter_copy", comment=None, sessions=0)
    found = classify([gone_elsewhere, busy_elsewhere, legacy_old, legacy_busy, legacy_young, custom, foreign])
    assert found[gone_elsewhere["name"]]["drop"] is True
    assert found[busy_elsewhere["name"]]["drop"] is False
    assert "1 session(s) of run ffffffff still connected" in found[busy_elsewhere["name"]]["reason"]
    assert found["restore_drill_20261128_011500"]["drop"] is True
    assert found["restore_drill_20261127_011500"]["drop"] is False       # untagged with sessions: maybe running
    assert found["restore_drill_20261128_021000"]["drop"] is False       # untagged, younger than the limit
    assert found["drill_custom"]["drop"] is True                          # tagged with this prefix
    assert "hunter_copy" not in found and "hunter" not in found


# -- the state file -----------------------------------------------------------------------------------

def test_state_file_round_trip_is_private(tmp_path):
    path = scratch_db.state_path(str(tmp_path), "3f9a0c12")
    scratch_db.write_state(path, dict(run_id="3f9a0c12", scratch="restore_drill_x", pid=1))
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    (tmp_path / (scratch_db.STATE_PREFIX + "broken.json")).write_text("{")
    (tmp_path / "unrelated.json").write_text("{}")
    assert scratch_db.read_states(str(tmp_path)) == [(path, dict(run_id="3f9a0c12", scratch="restore_drill_x",
                                                                 pid=1))]
    scratch_db.remove_state(path)
    scratch_db.remove_state(path)   # twice is fine
    assert scratch_db.read_states(str(tmp_path)) == []


def test_notice_names_the_database_and_the_server():
    line = scratch_db.notice("restore_drill_20261128_021500_3f9a0c12", "db:5432", "3f9a0c12")
    assert line.startswith("hunter.ops notice: restore drill run 3f9a0c12 (pid %d) " % os.getpid())
    assert "restore_drill_20261128_021500_3f9a0c12 on db:5432" in line and line.endswith("\n")


# -- signals ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_termination_signals_raise_inside_the_block_and_are_restored_after(signum):
    before = signal.getsignal(signum)
    with pytest.raises(Interrupted) as err:
        with raising_on_signals():
            os.kill(os.getpid(), signum)
            time.sleep(5)   # the handler raises at once; the sleep is never finished
    assert err.value.signum == signum and str(err.value) == "interrupted by signal %d" % signum
    assert signal.getsignal(signum) == before


def test_an_interruption_is_not_caught_as_an_error():
    # the drivers' wrappers turn `except Exception` into one-line errors: an interruption is not one
    with pytest.raises(Interrupted):
        with raising_on_signals():
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
            except Exception:  # noqa: BLE001  (what pg.query does)
                pytest.fail("Interrupted was caught as an Exception")


def test_a_deferred_signal_lets_the_step_finish_then_interrupts():
    steps = []
    with pytest.raises(Interrupted) as err:
        with raising_on_signals():
            with deferring_signals():
                os.kill(os.getpid(), signal.SIGHUP)
                steps.append("created")
                os.kill(os.getpid(), signal.SIGTERM)   # only the first is delivered again
                steps.append("recorded")
            steps.append("after the block")
    assert steps == ["created", "recorded"] and err.value.signum == signal.SIGHUP
    assert signal.getsignal(signal.SIGHUP) == signal.SIG_DFL


def test_a_deferred_block_without_a_signal_changes_nothing():
    with raising_on_signals():
        with deferring_signals():
            pass
        done = True
    assert done and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_nested_deferrals_deliver_one_signal_at_the_outer_end():
    steps = []
    with pytest.raises(Interrupted) as err:
        with raising_on_signals():
            with deferring_signals():
                with deferring_signals():
                    os.kill(os.getpid(), signal.SIGTERM)
                steps.append("inner ended")   # handed to the outer block, which still holds it
            steps.append("never")
    assert steps == ["inner ended"] and err.value.signum == signal.SIGTERM


def test_a_deferral_inside_a_cleanup_lets_the_signal_be_ignored():
    with raising_on_signals():
        with ignoring_signals():
            with deferring_signals():
                os.kill(os.getpid(), signal.SIGINT)
            dropped = True
        done = True
    assert dropped and done and signal.getsignal(signal.SIGINT) == signal.default_int_handler


def test_a_cleanup_block_ignores_a_second_signal():
    with raising_on_signals():
        with ignoring_signals():
            os.kill(os.getpid(), signal.SIGTERM)   # ignored: the cleanup goes on
        cleaned = True
    assert cleaned

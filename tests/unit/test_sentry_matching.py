"""Whose event it is (issue 9.2) and what method A's script sees (issue 9.1), without a server:
the marker search over an event as Bugsink and Sentry return it, the clock bound from Date headers,
and the probe script run in a real interpreter (a venv without sentry-sdk, a module that sets up
no client) whose transport never reaches a server."""
from __future__ import annotations

import json
import secrets
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.hunter.ops.plugins.module_utils import app_runtime, sentry_api, sentry_emit
from ansible_collections.hunter.ops.plugins.module_utils.http import HttpResponse

PROBE = "hunter-probe-0123456789abcdef"


def bugsink_event(**data):
    return {"event_id": "ab" * 16, "ingested_at": "2026-11-30T10:00:05.000000Z", "data": dict(
        {"environment": "production", "exception": {"values": [{"type": "RuntimeError", "value": "boom",
                                                                "stacktrace": {"frames": [{}, {}]}}]}}, **data)}


@pytest.mark.parametrize("data, where", [
    ({"tags": {"probe_id": PROBE}}, "tag probe_id"),
    ({"tags": {"route": "scan"}, "request": {"url": "http://a/api/v1/scan", "headers": {"X-Probe-Id": PROBE}}},
     "request header X-Probe-Id"),
    ({"request": {"url": "http://a/api/v1/scan", "query_string": "hunter_probe=" + PROBE}}, "the request URL"),
    ({"request": {"headers": [["x-probe-id", PROBE]]}}, "request header x-probe-id"),
    ({"exception": {"values": [{"type": "ZeroDivisionError", "value": "test error (probe %s)" % PROBE}]}},
     "the exception message"),
    ({"contexts": {"probe": {"probe_id": PROBE}}}, "context probe"),
    ({"extra": {"probe": PROBE}}, "extra data"),
])
def test_bugsink_event_carries_the_probe_id(data, where):
    assert sentry_api.BugsinkApi.view(bugsink_event(**data)).marker(PROBE) == where


def test_an_event_of_another_probe_carries_no_marker():
    other = "hunter-probe-ffffffffffffffff"
    view = sentry_api.BugsinkApi.view(bugsink_event(tags={"probe_id": other, "route": "test-error"},
                                                    request={"headers": {"X-Probe-Id": other}}))
    assert view.marker(PROBE) is None and view.marker(other) == "tag probe_id"


def test_sentry_event_shape_request_entry_and_tags():
    body = {"eventID": "cd" * 16, "dateReceived": "2026-11-30T10:00:05Z", "dateCreated": "2026-11-30T10:00:04Z",
            "tags": [{"key": "environment", "value": "staging"}],
            "entries": [{"type": "exception", "data": {"values": [{"type": "E", "value": "x",
                                                                   "stacktrace": {"frames": [{}]}}]}},
                        {"type": "request", "data": {"url": "https://api/x", "query": [["a", "1"]],
                                                     "headers": [["X-Probe-Id", PROBE]]}}]}
    view = sentry_api.SentryApi.view(body)
    assert view.environment == "staging" and view.frame_count == 1
    assert view.marker(PROBE) == "request header X-Probe-Id"


def _api_with_dates(*answers):
    api = sentry_api.BugsinkApi("http://127.0.0.1:1", "t" * 40, "1")
    for date, received in answers:
        api._measure_clock(HttpResponse("GET", "http://x", 200, headers={"Date": date}), received)
    return api


def test_clock_offset_is_a_lower_bound_from_date_headers():
    received = datetime(2026, 11, 30, 10, 0, 0, 700000, tzinfo=timezone.utc)
    # the server is 30 s ahead: its Date (truncated to the second) reads 10:00:30
    api = _api_with_dates(("Mon, 30 Nov 2026 10:00:30 GMT", received),
                          ("Mon, 30 Nov 2026 10:00:31 GMT", received + timedelta(seconds=1)))
    assert api.clock_offset == pytest.approx(29.3)
    sent = received - timedelta(seconds=2)
    bound = api.server_time(sent)
    # an event the server received after our send (server time >= sent + 30 s) is never before the bound
    assert bound <= sent + timedelta(seconds=30)
    assert api._accept(sentry_api.BugsinkApi.view(bugsink_event()), sent + timedelta(seconds=30.1), bound, PROBE,
                       accept_time=True).startswith("received ")
    # an event of a run 5 s earlier is before the bound, marker or not in time mode
    assert api._accept(sentry_api.BugsinkApi.view(bugsink_event()), sent + timedelta(seconds=25), bound, PROBE,
                       accept_time=True) is None
    # in marker mode, a recent event without the marker does not count
    assert api._accept(sentry_api.BugsinkApi.view(bugsink_event()), sent + timedelta(seconds=31), bound, PROBE,
                       accept_time=False) is None


def test_no_date_header_means_no_time_bound():
    api = sentry_api.BugsinkApi("http://127.0.0.1:1", "t" * 40, "1")
    api._measure_clock(HttpResponse("GET", "http://x", 200, headers={}), datetime.now(timezone.utc))
    assert api.clock_offset is None and api.server_time(datetime.now(timezone.utc)) is None


def _run_script(tmp_path, python, env, **config):
    runtime = app_runtime.AppRuntime("command", [str(python), "-"], env=env, cwd=str(tmp_path))
    script = sentry_emit.probe_script(PROBE, "HUNTER_SENTRY_DSN", flush_timeout=1, **config)
    return runtime.run(script, timeout=60)


def test_probe_script_in_a_runtime_without_sentry_sdk(tmp_path):
    from sandbox.services import venv_without
    python = venv_without(tmp_path / "venv", ["sentry_sdk"])
    outcome = _run_script(tmp_path, python, {"PATH": "/usr/bin:/bin", "HUNTER_SENTRY_DSN": "https://k@h/1"})
    assert outcome.failure is None, outcome.failure
    assert outcome.result["sdk_missing"].startswith("ModuleNotFoundError")
    assert outcome.result["python"] == str(python)


def test_probe_script_sees_an_application_module_that_sets_up_no_client(tmp_path):
    (tmp_path / "quiet_app.py").write_text("import os\nSENTRY = os.environ.get('HUNTER_SENTRY_DSN')  # never init\n")
    (tmp_path / "broken_app.py").write_text("raise RuntimeError('settings missing: DATABASE_URL')\n")
    env = {"PATH": "/usr/bin:/bin", "HUNTER_SENTRY_DSN": "https://%s@127.0.0.1:9/1" % secrets.token_hex(16)}
    quiet = _run_script(tmp_path, sys.executable, env, app_module="quiet_app")
    assert quiet.result["initialised_by"] == "application" and quiet.result["client_active"] is False
    broken = _run_script(tmp_path, sys.executable, env, app_module="broken_app")
    assert broken.result["app_error"] == "RuntimeError: settings missing: DATABASE_URL"
    # the application's code ran with PYTHONDONTWRITEBYTECODE: no cache left in its tree
    assert not (tmp_path / "__pycache__").exists()


def test_probe_script_reports_the_applications_client_and_the_drop(tmp_path):
    """A module that initialises sentry-sdk for a server that refuses connections: the client the
    application set up is reported (environment, release, DSN parts but never its key), and the drop."""
    key = secrets.token_hex(16)  # a DSN key made for this run
    (tmp_path / "app_sentry.py").write_text(
        "import os, sentry_sdk\n"
        "sentry_sdk.init(dsn=os.environ['HUNTER_SENTRY_DSN'], environment=os.environ['APP_ENV'], release='app@3')\n")
    env = {"PATH": "/usr/bin:/bin", "APP_ENV": "staging", "HUNTER_SENTRY_DSN": "http://%s@127.0.0.1:9/7" % key}
    outcome = _run_script(tmp_path, sys.executable, env, app_module="app_sentry")
    result = outcome.result
    assert result["client_active"] is True and result["event_id"]
    assert result["client"]["environment"] == "staging" and result["client"]["release"] == "app@3"
    assert result["client"]["dsn"] == {"scheme": "http", "host": "127.0.0.1", "port": 9, "project_id": "7"}
    assert result["client"]["dsn_from_variable"] is True
    assert result["drops"] and result["errors"]
    assert key not in json.dumps(result)


def test_runtime_of_a_running_process_is_its_virtualenv_python(tmp_path):
    """argv[0] of a process started as .venv/bin/python names the virtualenv; /proc/<pid>/exe alone
    names the base interpreter, which would miss the virtualenv's packages. A process that renamed
    itself (gunicorn's "gunicorn: master") is found through $VIRTUAL_ENV, else the probe says what to set."""
    from sandbox.services import venv_python
    python = str(venv_python())
    plain = subprocess.Popen([python, "-c", "import time; time.sleep(30)"], cwd=str(tmp_path))
    renamed = subprocess.Popen(["bash", "-c", 'exec -a "gunicorn: master [app]" %s -c "import time; time.sleep(30)"'
                                % python], cwd=str(tmp_path))
    try:
        runtime = app_runtime.for_process(plain.pid, {"PATH": "/usr/bin"})
        assert runtime.argv == [python, "-"] and runtime.cwd == str(tmp_path)
        assert runtime.evidence["python_found_by"] == "argv[0] of process %d" % plain.pid
        assert runtime.env == {"PATH": "/usr/bin"}
        import time
        time.sleep(0.3)  # let bash exec
        with pytest.raises(app_runtime.RuntimeUnknown, match="set app_python"):
            app_runtime.for_process(renamed.pid, {"PATH": "/usr/bin"})
        venv = str(venv_python().parent.parent)
        found = app_runtime.for_process(renamed.pid, {"PATH": "/usr/bin", "VIRTUAL_ENV": venv})
        assert found.argv[0] == venv + "/bin/python"
        assert found.evidence["python_found_by"] == "VIRTUAL_ENV of process %d" % renamed.pid
    finally:
        for proc in (plain, renamed):
            proc.kill()
            proc.wait()

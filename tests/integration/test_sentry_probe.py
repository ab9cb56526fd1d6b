"""CHECKLIST 6.2 against a real Sentry-compatible server: Bugsink (PyPI `bugsink`, own venv,
SQLite, eager ingestion, 127.0.0.1), the sample service reporting to it through sentry-sdk, and
the application's DSN read from its real process environment.

Runs are grouped: several module calls share one ansible-playbook run (the harness's `run_tasks`), the
secrets (DSN, API token, API key) travel as extra vars only, and every run is scanned for them.
"""
from __future__ import annotations

import http.server
import json
import os
import stat
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

from sandbox.services import REPO_ROOT, SampleService, free_port, refused_port

PLAYBOOK = Path(__file__).parent / "playbooks" / "sentry_preflight.yml"
EVENT_IDS = ["SENTRY-EVENT", "SENTRY-ENV", "SENTRY-DETAIL", "SENTRY-ALERTS"]


def dsn_check(**args):
    return {"hunter.ops.sentry_dsn": dict({"allow_http": True}, **args)}


def event_check(bugsink, **args):
    base = {"environment": "production", "backend": "bugsink", "api_url": bugsink.url,
            "api_token": "{{ bs_token }}", "project": str(bugsink.project_id), "allow_http": True,
            "wait_timeout": 30}
    base.update(args)
    return {"hunter.ops.sentry_event": base}


def item(result, check_id):
    assert "checks" in result, f"no checks in {result}"
    return result["checks"][check_id]


def with_key(dsn: str, key: str) -> str:
    scheme, rest = dsn.split("://", 1)
    return f"{scheme}://{key}@{rest.split('@', 1)[1]}"


def public_key(dsn: str) -> str:
    return dsn.split("://", 1)[1].split("@", 1)[0]


@pytest.fixture(scope="module")
def sentry_app(tmp_path_factory, bugsink, api_key):
    """The sample service reporting to Bugsink (HUNTER_SENTRY_DSN), environment production, admin on.

    Its database and Redis are never touched by /debug/test-error, so none are started for it.
    """
    env = {"HUNTER_SENTRY_DSN": bugsink.dsn, "HUNTER_ENVIRONMENT": "production", "HUNTER_API_KEYS": api_key,
           "HUNTER_SANDBOX_ADMIN": "1", "HUNTER_DATABASE_URL": "postgresql://unused@127.0.0.1:1/unused",
           "HUNTER_REDIS_URL": "redis://127.0.0.1:1/0"}
    service = SampleService(tmp_path_factory.mktemp("sentry-app"), env=env).start()
    yield service
    service.stop()


@pytest.fixture
def secrets_of(bugsink, api_key):
    return lambda *extra: [bugsink.dsn, public_key(bugsink.dsn), bugsink.token, api_key, *extra]


def test_dsn_sources_and_method_a_against_bugsink(ansible, tmp_path, bugsink, sentry_app, secrets_of,
                                                  assert_no_secret):
    """SENTRY-DSN from the running process (pid, pidfile, command-line match) and env files, malformed
    DSNs named precisely, then method A: a real exception raised in the running service's runtime (its
    virtualenv's Python, working directory and environment) through the client its own module sets up."""
    env_file = tmp_path / "app.env"
    env_file.write_text(f"# app settings\nexport HUNTER_SENTRY_DSN='{bugsink.dsn}'\nOTHER=1\n")
    near_file = tmp_path / "near.env"
    near_file.write_text(f"SENTRY_DSN={bugsink.dsn}\n")
    good = bugsink.dsn
    malformed = {
        "https_required": good,                                   # http not allowed without allow_http
        "no_key": good.replace(public_key(good) + "@", ""),
        "project_not_numeric": good.rsplit("/", 1)[0] + "/hunter",
        "no_project": good.rsplit("/", 1)[0] + "/",
    }
    tasks = [
        dsn_check(source="process", pid=sentry_app.pid),
        dsn_check(source="process", pidfile=str(sentry_app.pid_path)),
        dsn_check(source="process", process_match=rf"uvicorn sandbox\.app:app .*--port {sentry_app.port}\b"),
        dsn_check(source="envfile", env_files=[str(env_file), "-/nonexistent/optional.env"]),
        dsn_check(source="envfile", env_files=[str(near_file)]),
        dsn_check(source="process", pid=2 ** 22 + 7),
        dsn_check(source="value", dsn="{{ bad_https_required }}", allow_http=False),
        dsn_check(source="value", dsn="{{ bad_no_key }}"),
        dsn_check(source="value", dsn="{{ bad_project_not_numeric }}"),
        dsn_check(source="value", dsn="{{ bad_no_project }}"),
        event_check(bugsink, method="sdk", source="process", pid=sentry_app.pid, app_module="sandbox.app"),
    ]
    extravars = {"bs_token": bugsink.token, **{f"bad_{k}": v for k, v in malformed.items()}}
    run, results = ansible.run_tasks(tasks, extravars)
    by_pid, by_pidfile, by_match, by_file, near, gone, *bad, event = results

    for result in (by_pid, by_pidfile, by_match, by_file):
        dsn_item = item(result, "SENTRY-DSN")
        assert dsn_item["status"] == "pass", dsn_item
        assert dsn_item["message"].startswith("HUNTER_SENTRY_DSN is SET (hidden) and valid (http, host 127.0.0.1:")
        assert dsn_item["evidence"]["dsn"]["project_id"] == str(bugsink.project_id)
        assert result["dsn_set"] is True and result["changed"] is False
    assert item(by_match, "SENTRY-DSN")["evidence"]["pid"] == sentry_app.pid
    assert item(by_file, "SENTRY-DSN")["evidence"]["files"] == [str(env_file)]

    near_item = item(near, "SENTRY-DSN")
    assert near_item["status"] == "warn"
    assert "HUNTER_SENTRY_DSN is not set" in near_item["message"] and "but SENTRY_DSN is" in near_item["message"]
    assert near_item["evidence"]["similar_variables"] == ["SENTRY_DSN"]

    assert item(gone, "SENTRY-DSN")["status"] == "fail"
    assert "is not running" in item(gone, "SENTRY-DSN")["message"]

    expected = ["scheme is http, expected https", "no public key", "project id 'hunter' is not numeric",
                "the project id is missing"]
    for result, problem in zip(bad, expected):
        assert item(result, "SENTRY-DSN")["status"] == "fail"
        assert problem in item(result, "SENTRY-DSN")["message"], item(result, "SENTRY-DSN")

    ev = item(event, "SENTRY-EVENT")
    assert ev["status"] == "pass", ev
    assert event["latency_s"] is not None and 0 < event["latency_s"] < 30
    assert ev["evidence"]["latency_s"] == event["latency_s"] and ev["evidence"]["ingest_status"] == 200
    runtime = ev["evidence"]["runtime"]
    assert runtime["kind"] == "process" and runtime["pid"] == sentry_app.pid
    assert runtime["python"] == str(sentry_app.python) and runtime["python_found_by"].startswith("argv[0]")
    assert runtime["cwd"] == str(sentry_app.cwd()) and runtime["sdk_version"]
    assert ev["evidence"]["client"]["release"] == "hunter-sample@1.0.0"  # the application's own client
    assert ev["evidence"]["client"]["dsn_from_variable"] is True
    assert ev["evidence"]["matched_by"] == "the event id sentry-sdk returned for the probe's exception"
    assert item(event, "SENTRY-ENV")["status"] == "pass"
    assert item(event, "SENTRY-ENV")["message"] == "the application's client sent environment 'production', the expected one"
    detail = item(event, "SENTRY-DETAIL")
    assert detail["status"] == "pass" and detail["evidence"]["frames"] >= 2
    assert detail["evidence"]["tags"]["probe_id"] == event["probe_id"]
    alerts = item(event, "SENTRY-ALERTS")
    assert alerts["status"] == "skip" and "Bugsink's API has no alert rules" in alerts["message"]
    # The event really is in Bugsink, sent by the application's client (its release), with the probe's tag.
    status, found = bugsink.api("GET", f"events/lookup/?project={bugsink.project_id}&event_id={event['event_id']}")
    assert status == 200 and found["data"]["tags"]["probe_id"] == event["probe_id"]
    assert found["data"]["release"] == "hunter-sample@1.0.0" and found["data"]["environment"] == "production"
    print(f"\nmethod A event latency: {event['latency_s']} s; Bugsink fixture start-up: "
          f"{bugsink.startup_seconds:.2f} s")

    assert_no_secret(run, *secrets_of(*malformed.values()))


def test_methods_b_and_c_through_the_sample_service(ansible, tmp_path, bugsink, sentry_app, api_key, secrets_of,
                                                    assert_no_secret):
    """Method B: the app's POST /debug/test-error with X-API-Key, found by the event id it returns and,
    without it, by its probe_id tag; method C: a request the app fails on (an injected 500 on /api/v1/scan)."""
    sentry_app.configure(faults="scan:500")
    try:
        common = {"app_url": sentry_app.url, "api_key": "{{ app_key }}"}
        tasks = [
            event_check(bugsink, method="endpoint", **common),
            event_check(bugsink, method="endpoint", event_id_key="", **common),
            event_check(bugsink, method="request", request_path="/api/v1/scan", request_method="POST",
                        request_body={"domain": "nonexistent-test-domain-12345.invalid"}, **common),
            event_check(bugsink, method="endpoint", app_url=sentry_app.url, api_key="wrong-key"),
        ]
        run, (by_id, by_tag, request, refused) = ansible.run_tasks(
            tasks, {"bs_token": bugsink.token, "app_key": api_key})
    finally:
        sentry_app.reset()

    for result in (by_id, by_tag, request):
        statuses = {check_id: item(result, check_id)["status"] for check_id in EVENT_IDS}
        assert statuses == {"SENTRY-EVENT": "pass", "SENTRY-ENV": "pass", "SENTRY-DETAIL": "pass",
                            "SENTRY-ALERTS": "skip"}, result["checks"]
    assert item(by_id, "SENTRY-EVENT")["evidence"]["app_status"] == 500
    assert item(by_id, "SENTRY-EVENT")["evidence"]["lookups"] == 1
    # Found through the tag search: the issue list was asked, not the lookup by a known id.
    assert "event_id" not in item(by_tag, "SENTRY-EVENT")["evidence"]["app_request"]
    assert item(by_tag, "SENTRY-DETAIL")["evidence"]["tags"]["probe_id"] == by_tag["probe_id"]
    assert item(request, "SENTRY-DETAIL")["evidence"]["tags"]["route"] == "scan"
    refused_item = item(refused, "SENTRY-EVENT")
    assert refused_item["status"] == "fail" and "refused the request (HTTP 401)" in refused_item["message"]
    assert_no_secret(run, *secrets_of())


def test_rejections_fail_fast_with_the_reason(ansible, tmp_path, bugsink, sentry_app, api_key, secrets_of,
                                              assert_no_secret):
    """Wrong public key and wrong project (HTTP 403 from ingestion), Bugsink down, the API down, an invalid
    and a malformed API token, an unknown project id for the API: each fails at once, naming the cause,
    far inside the 60 s wait."""
    other = bugsink.create_project(f"other-{uuid.uuid4().hex[:6]}")
    dead = f"http://{public_key(bugsink.dsn)}@127.0.0.1:{refused_port()}/{bugsink.project_id}"
    wrong = {"wrong_key": with_key(bugsink.dsn, "0" * 32),
             "wrong_project": with_key(bugsink.dsn, public_key(other["dsn"])),  # a real key of another project
             "down": dead}
    sdk = {"method": "sdk", "source": "value", "wait_timeout": 60}
    tasks = [
        event_check(bugsink, dsn="{{ wrong_key }}", **sdk),
        event_check(bugsink, dsn="{{ wrong_project }}", **sdk),
        event_check(bugsink, dsn="{{ down }}", **sdk),
        event_check(bugsink, method="endpoint", app_url=sentry_app.url, api_key="{{ app_key }}", wait_timeout=60,
                    api_url=f"http://127.0.0.1:{refused_port()}"),
        event_check(bugsink, dsn="{{ good }}", api_token="f" * 40, **sdk),
        event_check(bugsink, dsn="{{ good }}", api_token="not-a-token", **sdk),
        event_check(bugsink, dsn="{{ good }}", project="999999", **sdk),
    ]
    began = time.monotonic()
    run, results = ansible.run_tasks(tasks, {"bs_token": bugsink.token, "app_key": api_key,
                                             "good": bugsink.dsn, **wrong})
    took = time.monotonic() - began
    wrong_key, wrong_project, down, api_down, bad_token, malformed_token, unknown_project = results

    for result in (wrong_key, wrong_project):
        event = item(result, "SENTRY-EVENT")
        assert event["status"] == "fail"
        assert "rejected the event (HTTP 403): wrong public key or project id" in event["message"]
        assert event["evidence"]["drop_reason"] == "status_403" and "lookups" not in event["evidence"]
        assert item(result, "SENTRY-ENV")["message"] == "not verified: no event from this probe was found (see SENTRY-EVENT)"
    assert "network error" in item(down, "SENTRY-EVENT")["message"]
    assert "connection refused" in item(down, "SENTRY-EVENT")["message"]
    assert "Bugsink API unreachable after 3 attempts" in item(api_down, "SENTRY-EVENT")["message"]
    for result, words in ((bad_token, "Invalid Bearer token"), (malformed_token, "Malformed Bearer token")):
        event = item(result, "SENTRY-EVENT")
        assert event["status"] == "fail"
        assert "Bugsink API refused the token (HTTP 401" in event["message"] and words in event["message"]
        assert item(result, "SENTRY-ALERTS")["status"] == "fail"
    unknown = item(unknown_project, "SENTRY-EVENT")
    assert unknown["status"] == "fail" and unknown["message"].startswith("Bugsink API: project 999999 not found")
    # Seven probes with a 60 s wait each: fail-fast means the whole run is far below one timeout.
    assert took < 45, f"rejections took {took:.0f}s"
    assert_no_secret(run, *secrets_of(*wrong.values(), public_key(other["dsn"])))


def test_wrong_environment_fails_sentry_env(ansible, tmp_path, bugsink, make_service, api_key, secrets_of,
                                            assert_no_secret):
    """The app reports as `staging` while production is expected: the event is found, SENTRY-ENV fails."""
    staging = make_service(env={"HUNTER_ENVIRONMENT": "staging", "HUNTER_SENTRY_DSN": bugsink.dsn})
    run, (result,) = ansible.run_tasks([
        event_check(bugsink, method="endpoint", app_url=staging.url, api_key="{{ app_key }}")],
        {"bs_token": bugsink.token, "app_key": api_key})
    assert item(result, "SENTRY-EVENT")["status"] == "pass"
    env = item(result, "SENTRY-ENV")
    assert env["status"] == "fail" and env["message"] == "the application sent environment 'staging', expected 'production'"
    assert_no_secret(run, *secrets_of())


def test_near_miss_process_and_event_that_never_arrives(ansible, tmp_path, bugsink, make_service, api_key,
                                                        secrets_of, assert_no_secret):
    """The app was given SENTRY_DSN but reads HUNTER_SENTRY_DSN: SENTRY-DSN warns naming it, and the test
    error it raises never reaches Bugsink, so SENTRY-EVENT fails at the (short) wait timeout, not before."""
    service = make_service(env={"SENTRY_DSN": bugsink.dsn})
    run, (dsn_result, event) = ansible.run_tasks([
        dsn_check(source="process", pid=service.pid),
        event_check(bugsink, method="endpoint", app_url=service.url, api_key="{{ app_key }}", wait_timeout=4,
                    poll_interval=0.5, poll_max_interval=1),
    ], {"bs_token": bugsink.token, "app_key": api_key})
    near = item(dsn_result, "SENTRY-DSN")
    assert near["status"] == "warn" and "but SENTRY_DSN is" in near["message"]
    assert dsn_result["dsn_set"] is False
    missing = item(event, "SENTRY-EVENT")
    assert missing["status"] == "fail"
    assert "event not visible through the Bugsink API after" in missing["message"]
    assert 4 <= missing["evidence"]["waited_s"] < 10 and missing["evidence"]["lookups"] >= 3
    assert item(event, "SENTRY-DETAIL")["status"] == "fail"
    assert_no_secret(run, *secrets_of())


FAKE_DOCKER = r'''#!{python}
"""Stand-in for the docker CLI (no container engine on this machine): logs its argv, then answers
`docker exec <container> env` and `docker compose ... exec -T <service> env` like docker does, and
`docker exec -i <container> python -` by running the sample service's Python on stdin with the
"container's" environment and working directory (the sample service's)."""
import json, os, sys
args = sys.argv[1:]
with open({log!r}, "a") as log:
    log.write(json.dumps(args) + "\n")
dsn = open({dsn_file!r}).read()
env = "PATH=/usr/local/bin:/usr/bin\nHOSTNAME=abc123\nHUNTER_SENTRY_DSN=" + dsn + "\n"
if args[:2] == ["exec", "-i"] and args[2] == "hunter-api" and args[-2:] == ["python", "-"]:
    os.chdir({workdir!r})
    os.execve({python!r}, [{python!r}, "-"], {"PATH": "/usr/bin:/bin", "HUNTER_SENTRY_DSN": dsn,
                                                "HUNTER_ENVIRONMENT": "production"})
elif args[:1] == ["exec"] and args[-1] == "env":
    if args[1] != "hunter-api":
        sys.stderr.write("Error response from daemon: No such container: %s\n" % args[1])
        sys.exit(1)
    sys.stdout.write(env)
elif args[:1] == ["compose"] and args[-4:-1] == ["exec", "-T", "api"] and args[-1] == "env":
    sys.stdout.write(env)
else:
    sys.stderr.write("unknown command: %s\n" % " ".join(args))
    sys.exit(125)
'''


def test_dsn_from_a_container_through_a_stand_in_docker_cli(ansible, tmp_path, bugsink, secrets_of,
                                                            assert_no_secret, venv_python):
    """Source `container`: there is no container engine here, so a stand-in `docker` executable on PATH
    plays the CLI (it answers `exec <c> env` / `compose ... exec -T <svc> env` like docker). What is
    tested is ours: the argument lists we build, parsing the output, naming docker's error."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "docker-argv.log"
    docker = bindir / "docker"
    dsn_file = tmp_path / "container-dsn"  # the container's environment, kept out of ansible's env and argv
    dsn_file.write_text(bugsink.dsn)
    docker.write_text(FAKE_DOCKER.replace("{python}", str(venv_python)).replace("{log!r}", repr(str(log)))
                      .replace("{dsn_file!r}", repr(str(dsn_file))).replace("{python!r}", repr(str(venv_python)))
                      .replace("{workdir!r}", repr(str(REPO_ROOT))))
    docker.chmod(docker.stat().st_mode | stat.S_IEXEC)
    ansible.envvars["PATH"] = f"{bindir}:{Path(venv_python).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    run, (container, compose, missing, event) = ansible.run_tasks([
        dsn_check(source="container", container="hunter-api"),
        dsn_check(source="container", compose_service="api", compose_project_dir=str(tmp_path),
                  compose_files=["compose.yml", "compose.prod.yml"]),
        dsn_check(source="container", container="nope"),
        event_check(bugsink, method="sdk", source="container", container="hunter-api", app_module="sandbox.app"),
    ], {"bs_token": bugsink.token})
    assert item(container, "SENTRY-DSN")["status"] == "pass"
    assert item(container, "SENTRY-DSN")["evidence"]["command"] == "docker exec hunter-api env"
    assert item(compose, "SENTRY-DSN")["status"] == "pass"
    failed = item(missing, "SENTRY-DSN")
    assert failed["status"] == "fail"
    assert "docker exec nope env failed (rc 1): Error response from daemon: No such container: nope" in failed["message"]
    assert item(event, "SENTRY-EVENT")["status"] == "pass", item(event, "SENTRY-EVENT")
    assert item(event, "SENTRY-EVENT")["evidence"]["runtime"]["command"] == "docker exec -i hunter-api python -"
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert ["compose", "--project-directory", str(tmp_path), "-f", "compose.yml", "-f", "compose.prod.yml",
            "exec", "-T", "api", "env"] in calls
    assert ["exec", "hunter-api", "env"] in calls and ["exec", "-i", "hunter-api", "python", "-"] in calls
    # The DSN stays inside the module: the stand-in's output appears nowhere.
    assert_no_secret(run, *secrets_of())


def test_role_in_the_preflight_report_keeps_every_secret_out(ansible, tmp_path, bugsink, sentry_app, api_key,
                                                             secrets_of, assert_no_secret):
    """The role as preflight.yml runs it, with the report: one app host reads the DSN from the running
    service's pidfile, raises the test error in its runtime through its own client and passes 6.2; a second
    host has a rejected DSN (given as a vaulted value) and an invalid token; a third has a bad alert setting,
    which fails SENTRY-ALERTS only, named as the operator's variable. The DSNs, the token and the API key
    appear nowhere in the output, logs or reports."""
    rejected = with_key(bugsink.dsn, "1" * 32)
    common = {"hunter_expected_environment": "production", "hunter_sentry_backend": "bugsink",
              "hunter_sentry_api_url": bugsink.url, "hunter_sentry_project": str(bugsink.project_id),
              "hunter_sentry_allow_http": True, "sentry_probe_wait_timeout": 20}
    # Host vars hold the secrets as plain values (the harness keeps its input files out of argv and the scan).
    inventory = {"all": {"children": {"app": {"hosts": {
        "app-good": dict(common, hunter_sentry_dsn_source="process", hunter_sentry_pidfile=str(sentry_app.pid_path),
                         hunter_sentry_app_module="sandbox.app", hunter_sentry_api_token=bugsink.token),
        "app-bad": dict(common, hunter_sentry_dsn_source="value", hunter_sentry_dsn=rejected,
                        hunter_sentry_api_token="e" * 40),
        # bad values only some items use: those items fail, named as the operator's variables, the others run
        "app-invalid": dict(common, hunter_sentry_dsn_source="process", hunter_sentry_pidfile=str(sentry_app.pid_path),
                            hunter_sentry_app_module="sandbox.app", hunter_sentry_api_token=bugsink.token,
                            sentry_probe_alerts="maybe"),
        "app-bad-pid": dict(common, hunter_sentry_dsn_source="process", hunter_sentry_pidfile=str(sentry_app.pid_path),
                            hunter_sentry_app_module="sandbox.app", hunter_sentry_api_token=bugsink.token,
                            hunter_sentry_pid="12x"),
    }}}}}
    run = ansible.run_playbook(PLAYBOOK, inventory)
    assert run.report is not None, run.stdout[-3000:]
    items = {(i["host"], i["id"]): i for i in run.report["items"] if i["id"].startswith("SENTRY-")}
    good = {check_id: items[("app-good", check_id)]["status"] for check_id in ["SENTRY-DSN", *EVENT_IDS]}
    assert good == {"SENTRY-DSN": "pass", "SENTRY-EVENT": "pass", "SENTRY-ENV": "pass", "SENTRY-DETAIL": "pass",
                    "SENTRY-ALERTS": "skip"}, items
    assert "visible through the Bugsink API" in items[("app-good", "SENTRY-EVENT")]["message"]
    assert items[("app-bad", "SENTRY-DSN")]["status"] == "pass"  # well-formed, just rejected by the server
    assert "HTTP 403" in items[("app-bad", "SENTRY-EVENT")]["message"]
    assert items[("app-bad", "SENTRY-ALERTS")]["status"] == "fail"
    invalid = {check_id: items[("app-invalid", check_id)] for check_id in ["SENTRY-DSN", *EVENT_IDS]}
    assert {i: invalid[i]["status"] for i in invalid} == {"SENTRY-DSN": "pass", "SENTRY-EVENT": "pass",
                                                          "SENTRY-ENV": "pass", "SENTRY-DETAIL": "pass",
                                                          "SENTRY-ALERTS": "fail"}, invalid
    assert invalid["SENTRY-ALERTS"]["message"] == ("not checked, bad input: sentry_probe_alerts: must be true or "
                                                   "false, got 'maybe'")
    # hunter_sentry_pid beside a pidfile: SENTRY-DSN and method A (which use it) fail, naming every problem
    bad_pid = {check_id: items[("app-bad-pid", check_id)] for check_id in ["SENTRY-DSN", *EVENT_IDS]}
    for check_id in ("SENTRY-DSN", "SENTRY-EVENT"):
        assert bad_pid[check_id]["status"] == "fail"
        assert "hunter_sentry_pid (sentry_probe_pid): must be a whole number, got '12x'" in bad_pid[check_id]["message"]
        assert "hunter_sentry_pidfile (sentry_probe_pidfile): give only one of pid, pidfile, process_match" in \
            bad_pid[check_id]["message"]
    for check_id in ("SENTRY-ENV", "SENTRY-DETAIL"):
        assert bad_pid[check_id]["message"] == "not verified: no test error was generated (bad input, see SENTRY-EVENT)"
    assert bad_pid["SENTRY-ALERTS"]["status"] == "skip"  # it does not use the pid
    assert "_AnsibleTaggedStr" not in json.dumps([invalid, bad_pid])
    report_md = (run.report_path.parent / "report.md").read_text()
    assert "SENTRY-EVENT" in report_md
    assert_no_secret(run, *secrets_of(rejected, "1" * 32, "e" * 40))


class FakeSentryWebApi(http.server.ThreadingHTTPServer):
    """Sentry's ingestion and web API, answering with the documented response shapes.

    sentry.io and a self-hosted Sentry cannot be reached (or run) here, so this server stands in for
    them: it stores what the SDK really sends (gzip'd envelopes, key checked) and serves it back as
    `GET /api/0/projects/{org}/{project}/events/{event_id}/` (docs.sentry.io "Retrieve an Event for a
    Project": eventID, dateCreated/dateReceived, tags as key/value pairs, contexts, entries with the
    exception's stack trace), the issue search (`/projects/{org}/{project}/issues/?query=`, then
    `/organizations/{org}/issues/{id}/events/?query=&full=true`) and `/projects/{org}/{project}/rules/`.
    Project `slow` answers 404 to the first two event lookups; an unknown project 404; a wrong token 401.
    """

    def __init__(self, token, public_key):
        super().__init__(("127.0.0.1", free_port()), _FakeSentryHandler)
        self.token, self.public_key = token, public_key
        self.events, self.lookups, self.requests = {}, {}, []
        self.rules = {"found": [{"id": "7", "name": "Send a notification for new issues", "actionMatch": "all",
                                 "conditions": [{"id": "sentry.rules.conditions.first_seen_event.FirstSeenEventCondition"}],
                                 "actions": [{"id": "sentry.mail.actions.NotifyEmailAction"}]}],
                      "slow": []}
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"

    def dsn(self, project_id=4505):
        return f"http://{self.public_key}@127.0.0.1:{self.server_address[1]}/{project_id}"

    def api_event(self, event):
        """An event in the shape of Sentry's event details endpoint."""
        tags = [{"key": "environment", "value": event.get("environment")}, {"key": "level", "value": "error"}]
        tags += [{"key": k, "value": v} for k, v in sorted((event.get("tags") or {}).items())]
        return {"id": event["event_id"], "eventID": event["event_id"], "groupID": "1341191803",
                "projectID": "4505", "title": "SentryProbeError", "message": "", "platform": "python",
                "type": "error", "dateCreated": event["received"], "dateReceived": event["received"],
                "tags": tags, "contexts": event.get("contexts") or {}, "context": event.get("extra") or {},
                "entries": [{"type": "exception", "data": {"values": (event.get("exception") or {}).get("values", []),
                                                           "hasSystemFrames": False}}],
                "errors": [], "metadata": {"type": "SentryProbeError"}}


class _FakeSentryHandler(http.server.BaseHTTPRequestHandler):
    server: FakeSentryWebApi

    def log_message(self, *args):
        pass

    def _answer(self, status, body):
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self):  # noqa: N802 - ingestion: /api/<project>/envelope/
        import gzip
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        if f"sentry_key={self.server.public_key}" not in self.headers.get("X-Sentry-Auth", ""):
            return self._answer(403, {"detail": "invalid key"})
        lines = raw.split(b"\n")
        for header, payload in zip(lines[1::2], lines[2::2]):
            if json.loads(header).get("type") == "event":
                event = json.loads(payload)
                event["received"] = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
                self.server.events[event["event_id"]] = event
        return self._answer(200, {"id": json.loads(lines[0]).get("event_id")})

    def do_GET(self):  # noqa: N802 - the web API
        from urllib.parse import parse_qs, urlsplit
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        segments = [s for s in parts.path.split("/") if s]
        self.server.requests.append(parts.path)
        if self.headers.get("Authorization") != f"Bearer {self.server.token}":
            return self._answer(401, {"detail": "Invalid token"})
        if segments[:3] == ["api", "0", "projects"] and len(segments) >= 6 and segments[5] == "events":
            project, event_id = segments[4], segments[6]
            count = self.server.lookups[event_id] = self.server.lookups.get(event_id, 0) + 1
            event = self.server.events.get(event_id)
            if event is None or (project == "slow" and count <= 2):
                return self._answer(404, {"detail": "Event not found"})
            return self._answer(200, self.server.api_event(event))
        if segments[:3] == ["api", "0", "projects"] and len(segments) == 5:
            if segments[4] in self.server.rules:
                return self._answer(200, {"id": "4505", "slug": segments[4], "name": segments[4]})
            return self._answer(404, {"detail": "The requested resource does not exist"})
        if segments[:3] == ["api", "0", "projects"] and segments[5:] == ["rules"]:
            return self._answer(200, self.server.rules.get(segments[4], []))
        if segments[:3] == ["api", "0", "projects"] and segments[5:] == ["issues"]:
            key, dummy, value = query.get("query", "").partition(":")
            hit = any((e.get("tags") or {}).get(key) == value for e in self.server.events.values())
            return self._answer(200, [{"id": "1341191803", "shortId": "HUNTER-1", "title": "x"}] if hit else [])
        if segments[:3] == ["api", "0", "organizations"] and segments[4] == "issues" and segments[6:] == ["events"]:
            key, dummy, value = query.get("query", "").partition(":")
            found = [self.server.api_event(e) for e in self.server.events.values()
                     if (e.get("tags") or {}).get(key) == value]
            return self._answer(200, found)
        return self._answer(404, {"detail": "The requested resource does not exist"})


@pytest.fixture
def fake_sentry():
    server = FakeSentryWebApi(token="a" * 64, public_key=uuid.uuid4().hex)
    server.thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_sentry_backend_against_local_fake_of_sentry_web_api(ansible, tmp_path, fake_sentry, api_key,
                                                             assert_no_secret):
    """Backend `sentry` (sentry.io / self-hosted Sentry cannot be reached from here): against a local
    server answering with Sentry's documented response shapes - event found at once, 404 twice then
    found, 401 for a wrong token, an unknown project, alert rules present or absent - and the tag search
    for method B."""
    app = SampleService(tmp_path / "app", env={
        "HUNTER_SENTRY_DSN": fake_sentry.dsn(), "HUNTER_ENVIRONMENT": "production", "HUNTER_API_KEYS": api_key,
        "HUNTER_DATABASE_URL": "postgresql://unused@127.0.0.1:1/unused", "HUNTER_REDIS_URL": "redis://127.0.0.1:1/0"})
    app.start()
    try:
        def sentry(project, **args):
            base = {"environment": "production", "backend": "sentry", "api_url": fake_sentry.url,
                    "api_token": "{{ sentry_token }}", "organization": "acme", "project": project,
                    "method": "sdk", "source": "process", "pid": app.pid, "app_module": "sandbox.app",
                    "wait_timeout": 30, "poll_interval": 0.2}
            base.update(args)
            return {"hunter.ops.sentry_event": base}

        run, (found, slow, unauthorized, unknown, by_tag) = ansible.run_tasks([
            sentry("found"),
            sentry("slow"),
            sentry("found", api_token="{{ wrong_token }}"),
            sentry("nope"),
            sentry("found", method="endpoint", app_url=app.url, api_key="{{ app_key }}", event_id_key=""),
        ], {"sentry_token": fake_sentry.token, "wrong_token": "b" * 64, "app_key": api_key})
    finally:
        app.stop()

    assert {i: item(found, i)["status"] for i in EVENT_IDS} == {
        "SENTRY-EVENT": "pass", "SENTRY-ENV": "pass", "SENTRY-DETAIL": "pass", "SENTRY-ALERTS": "pass"}
    assert "visible through the Sentry API" in item(found, "SENTRY-EVENT")["message"]
    assert item(found, "SENTRY-EVENT")["evidence"]["lookups"] == 1
    assert item(found, "SENTRY-ALERTS")["message"] == "1 alert rule: Send a notification for new issues"
    assert f"/api/0/projects/acme/found/events/{found['event_id']}/" in fake_sentry.requests

    assert item(slow, "SENTRY-EVENT")["status"] == "pass"
    assert item(slow, "SENTRY-EVENT")["evidence"]["lookups"] == 3  # 404, 404, found
    assert item(slow, "SENTRY-ALERTS")["status"] == "warn"
    assert "no alert rules" in item(slow, "SENTRY-ALERTS")["message"]

    refused = item(unauthorized, "SENTRY-EVENT")
    assert refused["status"] == "fail"
    assert refused["message"].startswith("Sentry API refused the token (HTTP 401: Invalid token)")
    assert refused["evidence"]["lookups"] == 0 and refused["evidence"]["api_requests"] == 1
    assert item(unauthorized, "SENTRY-ALERTS")["status"] == "fail"

    # A wrong project slug answers 404 like a missing event would: asked once up front, it fails at once.
    wrong = item(unknown, "SENTRY-EVENT")
    assert wrong["status"] == "fail" and wrong["evidence"]["lookups"] == 0
    assert wrong["message"].startswith("Sentry API: project acme/nope not found (HTTP 404")

    assert {i: item(by_tag, i)["status"] for i in EVENT_IDS[:3]} == {
        "SENTRY-EVENT": "pass", "SENTRY-ENV": "pass", "SENTRY-DETAIL": "pass"}
    assert "/api/0/projects/acme/found/issues/" in fake_sentry.requests
    assert_no_secret(run, fake_sentry.token, fake_sentry.public_key, fake_sentry.dsn(), api_key)


# -- issue 9, items 1 and 2: what method A observes, and whose event counts -------------------------------------

def _statuses(result, ids=("SENTRY-EVENT", "SENTRY-ENV", "SENTRY-DETAIL")):
    return {check_id: item(result, check_id)["status"] for check_id in ids}


def test_method_a_app_with_sentry_off_is_not_a_pass(ansible, bugsink, make_service, secrets_of, assert_no_secret):
    """Issue 9.1: the application runs in a mode where it never initialises Sentry, with a DSN in its
    environment. Method A used to send its own event with that DSN and pass. The probe must not pass:
    with the application's own set-up (app_module) it fails, naming it; without, it cannot observe it."""
    off = make_service(env={"HUNTER_SENTRY_DSN": bugsink.dsn, "HUNTER_BREAK": "sentry-off"})
    run, (generic, with_app) = ansible.run_tasks([
        event_check(bugsink, method="sdk", source="process", pid=off.pid),
        event_check(bugsink, method="sdk", source="process", pid=off.pid, app_module="sandbox.app"),
    ], {"bs_token": bugsink.token})
    assert item(generic, "SENTRY-EVENT")["status"] != "pass", item(generic, "SENTRY-EVENT")
    assert item(with_app, "SENTRY-EVENT")["status"] == "fail", item(with_app, "SENTRY-EVENT")
    assert "did not initialise sentry-sdk" in item(with_app, "SENTRY-EVENT")["message"]
    assert item(generic, "SENTRY-EVENT")["status"] == "skip"
    assert "app_module" in item(generic, "SENTRY-EVENT")["message"]
    for result in (generic, with_app):
        assert "pass" not in _statuses(result).values(), result["checks"]
    assert_no_secret(run, *secrets_of())


def test_method_a_environment_is_the_one_the_application_sends(ansible, bugsink, make_service, secrets_of,
                                                               assert_no_secret):
    """Issue 9.1: the application's Sentry client reports as `staging` while `production` is expected.
    Method A used to stamp the expected environment on its own event, so SENTRY-ENV passed by
    construction; it must report the environment the application sends."""
    staging = make_service(env={"HUNTER_SENTRY_DSN": bugsink.dsn, "HUNTER_SENTRY_ENVIRONMENT": "staging"})
    run, (generic, with_app, by_variable) = ansible.run_tasks([
        event_check(bugsink, method="sdk", source="process", pid=staging.pid),
        event_check(bugsink, method="sdk", source="process", pid=staging.pid, app_module="sandbox.app"),
        event_check(bugsink, method="sdk", source="process", pid=staging.pid,
                    environment_variable="HUNTER_SENTRY_ENVIRONMENT"),
    ], {"bs_token": bugsink.token})
    assert item(generic, "SENTRY-ENV")["status"] != "pass", item(generic, "SENTRY-ENV")
    assert item(generic, "SENTRY-ENV")["status"] == "skip"
    env = item(with_app, "SENTRY-ENV")
    assert item(with_app, "SENTRY-EVENT")["status"] == "pass", item(with_app, "SENTRY-EVENT")
    assert env["status"] == "fail" and env["evidence"]["found"] == "staging", env
    assert env["evidence"]["client_environment"] == "staging"
    variable = item(by_variable, "SENTRY-ENV")
    assert variable["status"] == "fail" and "HUNTER_SENTRY_ENVIRONMENT" in variable["message"], variable
    assert_no_secret(run, *secrets_of())


def test_method_a_runtime_without_sentry_sdk(ansible, tmp_path, bugsink, make_service, secrets_of, assert_no_secret):
    """Issue 9.1: the application's virtualenv lacks sentry-sdk (the service runs, reporting nothing).
    Method A used to send with the probe's own sentry-sdk and pass; it must run in the application's
    interpreter and fail, naming the interpreter."""
    from sandbox.services import venv_without
    python = venv_without(tmp_path / "venv-without-sentry", ["sentry_sdk"])
    bare = make_service(env={"HUNTER_SENTRY_DSN": bugsink.dsn}, python=python)
    run, (generic, with_app) = ansible.run_tasks([
        event_check(bugsink, method="sdk", source="process", pid=bare.pid),
        event_check(bugsink, method="sdk", source="process", pid=bare.pid, app_module="sandbox.app"),
    ], {"bs_token": bugsink.token})
    for result in (generic, with_app):
        event = item(result, "SENTRY-EVENT")
        assert event["status"] == "fail", event
        assert "sentry-sdk is not installed in the application's runtime" in event["message"], event
        assert event["evidence"]["runtime"]["python"] == str(python)
    assert_no_secret(run, *secrets_of())


def test_second_run_with_reporting_off_is_no_go(ansible, bugsink, make_service, api_key, secrets_of,
                                                assert_no_secret):
    """Issue 9.2: two preflight runs back to back; the second with the application's error reporting
    switched off (it answers 500 and never calls Sentry). Matching by a tag every test error carries
    (route) used to accept the first run's event, up to 120 s old: GO with a latency of 0.1 s. Methods
    B and C must find only the event this probe caused: the second run is NO-GO."""
    service = make_service(env={"HUNTER_SENTRY_DSN": bugsink.dsn, "HUNTER_FAULTS": "scan:500"})
    common = {"hunter_expected_environment": "production", "hunter_sentry_backend": "bugsink",
              "hunter_sentry_api_url": bugsink.url, "hunter_sentry_project": str(bugsink.project_id),
              "hunter_sentry_allow_http": True, "hunter_sentry_api_token": bugsink.token,
              "hunter_app_url": service.url, "hunter_api_key": api_key,
              "hunter_sentry_dsn_source": "process", "hunter_sentry_pidfile": str(service.pid_path),
              "sentry_probe_wait_timeout": 8, "sentry_probe_poll_max_interval": 1}
    inventory = {"all": {"children": {"app": {"hosts": {
        "app-endpoint": dict(common, hunter_sentry_method="endpoint", sentry_probe_match_tags={"route": "test-error"}),
        "app-request": dict(common, hunter_sentry_method="request", sentry_probe_match_tags={"route": "scan"},
                            sentry_probe_request_path="/api/v1/scan",
                            sentry_probe_request_body={"domain": "nonexistent-test-domain-12345.invalid"}),
        # the time bound alone (an application that records no marker): the first run's event is older
        "app-time": dict(common, hunter_sentry_method="endpoint", sentry_probe_match_tags={"route": "test-error"},
                         sentry_probe_event_id_key="", hunter_sentry_event_match="time"),
    }}}}}
    required = {"hunter_ops_required_checks": ["SENTRY-EVENT", "SENTRY-ENV"]}  # the 6.2 part of 6.5
    first = ansible.run_playbook(PLAYBOOK, inventory, extravars=required)
    assert first.report is not None, first.stdout[-3000:]
    assert first.report["verdict"] == "GO", [(i["host"], i["id"], i["message"]) for i in first.report["items"]]
    service.configure(breaks="sentry-swallow")
    second = ansible.run_playbook(PLAYBOOK, inventory, extravars=required)
    assert second.report is not None, second.stdout[-3000:]
    events = {i["host"]: i for i in second.report["items"] if i["id"] == "SENTRY-EVENT"}
    assert second.report["verdict"] == "NO-GO", events
    for host in ("app-endpoint", "app-request", "app-time"):
        assert events[host]["status"] == "fail", events[host]
        assert "earlier event" in events[host]["message"], events[host]  # the first run's, seen and refused
        assert events[host]["evidence"]["time_bound"]["earliest_server_time"]
    assert second.rc != 0
    assert_no_secret(first, *secrets_of())
    assert_no_secret(second, *secrets_of())

"""The pure parts of the health checks: startup polling on a fake clock, status and body assertions,
option validation, and the HEALTH-DIAG verdict. No network: responses are built by hand."""
import json

import jmespath
import pytest

from ansible_collections.hunter.ops.plugins.module_utils import health
from ansible_collections.hunter.ops.plugins.module_utils.http import HttpResponse
from ansible_collections.hunter.ops.plugins.module_utils.redis_client import target_from_url
from ansible_collections.hunter.ops.plugins.module_utils.validate import ParameterError
from ansible_collections.hunter.ops.plugins.modules import dependency_diag, health_probe


class FakeClock:
    """time.monotonic / time.sleep stand-ins: sleeping advances the clock; each attempt costs `cost`."""

    def __init__(self, cost=0.0):
        self.now = 100.0
        self.cost = cost
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def attempts_until(clock, ready_at, cost=0.0):
    """An attempt() that answers 503 until the fake clock reaches ready_at, then 200."""
    calls = []

    def attempt():
        clock.now += cost
        calls.append(clock.now)
        return 200 if clock.now >= ready_at else 503
    return attempt, calls


# -- polling ---------------------------------------------------------------------------

def test_poll_passes_after_warmup_shorter_than_the_timeout():
    clock = FakeClock()
    attempt, calls = attempts_until(clock, ready_at=107.0)
    poll = health.poll_until(attempt, lambda s: s == 200, timeout_s=30, interval_s=2,
                             clock=clock.clock, sleep=clock.sleep)
    assert poll.result == 200 and not poll.timed_out
    assert poll.polls == 5  # t=0,2,4,6 answer 503; t=8 answers 200
    assert clock.sleeps == [2, 2, 2, 2]
    assert poll.elapsed_s == pytest.approx(8.0)


def test_poll_gives_up_at_the_timeout_when_warmup_is_longer():
    clock = FakeClock()
    attempt, calls = attempts_until(clock, ready_at=200.0)
    poll = health.poll_until(attempt, lambda s: s == 200, timeout_s=5, interval_s=2,
                             clock=clock.clock, sleep=clock.sleep)
    assert poll.timed_out and poll.result == 503
    # last attempt exactly at the deadline (t=5), never after it
    assert [c - 100.0 for c in calls] == [0, 2, 4, 5]
    assert clock.sleeps == [2, 2, 1]


def test_poll_ready_exactly_at_the_deadline_passes():
    clock = FakeClock()
    attempt, dummy = attempts_until(clock, ready_at=105.0)
    poll = health.poll_until(attempt, lambda s: s == 200, timeout_s=5, interval_s=2,
                             clock=clock.clock, sleep=clock.sleep)
    assert not poll.timed_out and poll.polls == 4


def test_poll_with_zero_timeout_asks_once():
    clock = FakeClock()
    attempt, calls = attempts_until(clock, ready_at=200.0)
    poll = health.poll_until(attempt, lambda s: s == 200, timeout_s=0, interval_s=2,
                             clock=clock.clock, sleep=clock.sleep)
    assert poll.timed_out and poll.polls == 1 and clock.sleeps == []


def test_poll_counts_slow_attempts_against_the_timeout():
    # each attempt takes 3 s (a request timing out): t=3, sleep 2, t=8, sleep 2 -> t=13 > 10: stop
    clock = FakeClock()
    attempt, calls = attempts_until(clock, ready_at=200.0, cost=3.0)
    poll = health.poll_until(attempt, lambda s: s == 200, timeout_s=10, interval_s=2,
                             clock=clock.clock, sleep=clock.sleep)
    assert poll.timed_out and poll.polls == 3
    assert poll.elapsed_s <= 10 + 3  # at most the timeout plus one attempt


# -- probe items -----------------------------------------------------------------------

def response(status=200, body='{"status": "ok"}', error=None, url="http://h:1/healthz/ready"):
    return HttpResponse("GET", url, status=status, body=body, error=error, duration_ms=4.2)


def test_probe_item_pass_fail_and_error_messages():
    ok = health.probe_item("ready", response(200), [200])
    assert ok["status"] == "pass" and "answered 200" in ok["message"]
    assert ok["evidence"]["duration_ms"] == 4.2 and ok["evidence"]["polls"] == 1

    bad = health.probe_item("ready", response(503), [200])
    assert bad["status"] == "fail"
    assert bad["message"] == "GET http://h:1/healthz/ready answered 503 (expected 200)"

    down = health.probe_item("ready", response(None, None, error="connection refused"), [200], timeout=5.0)
    assert down["status"] == "fail"
    assert "http://h:1/healthz/ready" in down["message"] and "connection refused" in down["message"]
    assert "5.0s" in down["message"]

    many = health.probe_item("startup", response(503), [200], polls=4, waited_s=6.0, note="startup timeout 6s reached")
    assert "4 polls in 6.0s" in many["message"] and "startup timeout" in many["message"]
    assert many["evidence"]["waited_s"] == 6.0


def test_probe_item_redacts_a_secret_echoed_in_the_body():
    item = health.probe_item("ready", response(200, '{"token": "s3cr3t-value", "dsn": "x"}'), [200],
                             secrets=["s3cr3t-value"])
    assert "s3cr3t-value" not in str(item)


def test_several_expected_statuses():
    assert health.probe_item("live", response(204, ""), [200, 204])["status"] == "pass"


# -- assertions ----------------------------------------------------------------------------

RUNBOOK = {"status": "ok", "environment": "production", "db": {"status": "ok"}, "redis": {"status": "ok"}}
CHECKS_SHAPE = {"status": "ready", "checks": {"database": True, "redis": False}}
RUNBOOK_TEXT = json.dumps(RUNBOOK)


def assertion(check_id, expression, body):
    compiled = jmespath.compile(expression) if expression else None
    return health.assertion_item(check_id, expression, compiled, body, "GET x (200)")


def test_runbook_shape_defaults():
    assert assertion("HEALTH-DB", "db.status == 'ok'", RUNBOOK)["status"] == "pass"
    down = dict(RUNBOOK, redis={"status": "error"})
    item = assertion("HEALTH-REDIS", "redis.status == 'ok'", down)
    assert item["status"] == "fail"
    assert 'redis.status is "error"' in item["message"]
    assert item["evidence"]["value"] == "error"


def test_alternative_shape_by_expression_only():
    assert assertion("HEALTH-DB", "checks.database == `true`", CHECKS_SHAPE)["status"] == "pass"
    assert assertion("HEALTH-REDIS", "checks.redis == `true`", CHECKS_SHAPE)["status"] == "fail"
    # the runbook default on the other shape fails, naming the missing field
    item = assertion("HEALTH-DB", "db.status == 'ok'", CHECKS_SHAPE)
    assert item["status"] == "fail" and "db.status is null" in item["message"]


def test_non_boolean_result_does_not_pass():
    item = assertion("HEALTH-DB", "db.status", RUNBOOK)  # "ok" is truthy but not true
    assert item["status"] == "fail" and "not a boolean" in item["message"]


def test_empty_expression_is_a_skip_with_the_reason():
    item = assertion("HEALTH-REDIS", None, RUNBOOK)
    assert item["status"] == "skip" and item["message"].startswith("not checked: no expression for the Redis")
    assert "does not show" not in item["message"]  # a configuration choice is not a fact about the service


def test_no_json_body_fails_with_the_source():
    item = assertion("HEALTH-DB", "db.status == 'ok'", None)
    assert item["status"] == "fail" and "no JSON body" in item["message"]


def test_environment_item():
    q = jmespath.compile("environment")
    assert health.environment_item("environment", q, "production", RUNBOOK, "s")["status"] == "pass"
    wrong = health.environment_item("environment", q, "production", dict(RUNBOOK, environment="staging"), "s")
    assert wrong["status"] == "fail" and "'staging', expected 'production'" in wrong["message"]
    missing = health.environment_item("environment", q, "production", CHECKS_SHAPE, "s")
    assert missing["status"] == "fail" and "no environment" in missing["message"]
    assert health.environment_item(None, None, "production", RUNBOOK, "s")["status"] == "skip"
    assert health.environment_item("environment", q, None, RUNBOOK, "s")["status"] == "skip"


def test_pick_body_prefers_ready_then_startup():
    responses = {"ready": response(None, None, error="timed out after 5s"),
                 "startup": response(200, '{"environment": "production"}')}
    assert health.pick_body(responses, ["ready", "startup"]) == ("startup", {"environment": "production"})
    responses["ready"] = response(503, '{"status": "degraded"}')
    assert health.pick_body(responses, ["ready", "startup"])[0] == "ready"  # a 503 body still counts
    assert health.pick_body({}, ["ready"]) == (None, None)


# -- option validation (messages name the parameter) -------------------------------------------

def params(**overrides):
    base = dict(base_url="http://127.0.0.1:8000", live_path="/healthz/live", ready_path="/healthz/ready",
                startup_path="/healthz/startup", live_status=[200], ready_status=[200], startup_status=[200],
                assertions={}, environment_query="environment", timeout=5.0, startup_timeout=60,
                startup_interval=2, headers={}, ca_path=None, client_cert=None, client_key=None,
                body_from=["ready", "startup"], validate_certs=True, secret_headers={})
    base.update(overrides)
    return base


@pytest.mark.parametrize("overrides, param", [
    (dict(base_url="htp://x"), "base_url"),
    (dict(base_url="http://"), "base_url"),
    (dict(base_url="http://h:99999"), "base_url"),
    (dict(ready_status="abc"), "ready_status"),
    (dict(live_status=[200, "2x0"]), "live_status"),
    (dict(startup_path="healthz"), "startup_path"),
    (dict(assertions={"HEALTH-DB": "db.status =="}), "assertions.HEALTH-DB"),
    (dict(assertions={"HEALTH-NOPE": "a"}), "assertions.HEALTH-NOPE"),
    (dict(assertions="db.status == 'ok'"), "assertions"),
    (dict(environment_query="[["), "environment_query"),
    (dict(environment_from="elsewhere"), "environment_from"),
    (dict(environment_from="endpoint"), "environment_path"),
    (dict(timeout=0), "timeout"),
    (dict(startup_interval=-1), "startup_interval"),
    (dict(validate_certs="maybe"), "validate_certs"),
    (dict(body_from=["redy"]), "body_from"),
    (dict(headers="X-A: b"), "headers"),
    (dict(ca_path="/nonexistent/ca.pem"), "ca_path"),
])
def test_bad_input_is_kept_under_the_parameter(overrides, param):
    opts = health_probe.parse_options(params(**overrides))
    assert list(opts["problems"].errors) == [param], opts["problems"].errors
    assert opts["problems"].message().startswith(param + ": ")


# Which items a bad value fails: exactly those that use it (issue 9.12).
@pytest.mark.parametrize("overrides, failed", [
    (dict(live_status="2OO"), {"HEALTH-LIVE"}),
    (dict(startup_timeout="soon"), {"HEALTH-STARTUP"}),
    (dict(ready_status="abc"), {"HEALTH-READY"}),
    (dict(assertions={"HEALTH-DB": "db.status =="}), {"HEALTH-DB", "HEALTH-READY"}),
    (dict(assertions={"HEALTH-REDIS": 7}), {"HEALTH-REDIS", "HEALTH-READY"}),
    (dict(assertions={"HEALTH_DB": "db.status == 'ok'"}), {"HEALTH-DB", "HEALTH-READY"}),  # a typo of an ID
    (dict(assertions={"HEALTH-LIVE": "status =="}), {"HEALTH-LIVE"}),
    (dict(environment_query="[["), {"HEALTH-ENV"}),
    (dict(timeout="abc"), {"HEALTH-LIVE", "HEALTH-READY", "HEALTH-STARTUP", "HEALTH-ENV", "HEALTH-DB",
                           "HEALTH-REDIS"}),
    (dict(body_from="live,redy"), {"HEALTH-DB", "HEALTH-REDIS", "HEALTH-ENV", "HEALTH-READY"}),
])
def test_a_bad_value_fails_exactly_the_items_that_use_it(overrides, failed):
    opts = health_probe.parse_options(params(param_labels={"live_status": "health_check_live_status"}, **overrides))
    assert {i for i in opts["uses"] if health_probe.bad_inputs(opts, i)} == failed


def test_every_bad_value_of_an_item_is_named_as_the_operator_set_it():
    opts = health_probe.parse_options(params(
        param_labels={"assertions": "health_check_assertions", "ready_status": "health_check_ready_status"},
        ready_status="2OO", assertions={"HEALTH-REDIS": "redis.status =="}))
    item = health_probe._input_item(opts, "HEALTH-READY")
    assert item["status"] == "fail"
    assert item["message"].startswith("health_check_ready_status: HTTP status codes must be numbers")
    assert "; health_check_assertions.HEALTH-REDIS: invalid JMESPath expression" in item["message"]


def test_assertion_defaults_merge_and_empty_skips():
    opts = health_probe.parse_options(params(assertions={"HEALTH-REDIS": None, "HEALTH-READY": "status == 'ok'"}))
    assert opts["assertions"]["HEALTH-DB"] == "db.status == 'ok'"
    assert opts["assertions"]["HEALTH-REDIS"] is None
    assert set(opts["compiled"]) == {"HEALTH-DB", "HEALTH-READY"}
    assert opts["urls"]["ready"] == "http://127.0.0.1:8000/healthz/ready"
    assert health_probe.parse_options(params(ready_path=""))["urls"]["ready"] is None
    assert health_probe.parse_options(params(ready_status="200|503"))["expected"]["ready"] == [200, 503]


def test_build_checks_from_outcomes_without_network():
    opts = health_probe.parse_options(params(expected_environment="production"))
    down = '{"status": "degraded", "environment": "production", "db": {"status": "ok"}, "redis": {"status": "error"}}'
    outcomes = {"live": (response(200, '{"status":"ok"}'), 1, None, None),
                "ready": (response(503, down), 1, None, None),
                "startup": (response(503, down), 3, 4.0, "startup timeout 4s reached")}
    checks, source = health_probe.build_checks(opts, outcomes)
    assert source == "ready"
    assert {k: v["status"] for k, v in checks.items()} == {
        "HEALTH-LIVE": "pass", "HEALTH-READY": "fail", "HEALTH-STARTUP": "fail",
        "HEALTH-ENV": "pass", "HEALTH-DB": "pass", "HEALTH-REDIS": "fail"}


def test_probe_body_condition_fails_a_200():
    opts = health_probe.parse_options(params(assertions={"HEALTH-READY": "status == 'ready'"}, body_from=["ready"]))
    outcomes = {"ready": (response(200, '{"status": "ok"}'), 1, None, None)}
    checks, dummy = health_probe.build_checks(opts, outcomes)
    assert checks["HEALTH-READY"]["status"] == "fail"
    assert "answered 200 but" in checks["HEALTH-READY"]["message"]
    assert checks["HEALTH-LIVE"]["status"] == "skip"  # not probed


def test_ready_includes_the_dependency_statuses():
    """Issue 9.3: a 200 whose body says a dependency is down is not ready; an expression configured
    empty is not checked and does not count; a ready body that cannot show them fails."""
    db_down = '{"status": "ok", "environment": "production", "db": {"status": "error"}, "redis": {"status": "ok"}}'
    opts = health_probe.parse_options(params())
    checks, dummy = health_probe.build_checks(opts, {"ready": (response(200, db_down), 1, None, None)})
    ready = checks["HEALTH-READY"]
    assert ready["status"] == "fail" and checks["HEALTH-DB"]["status"] == "fail"
    assert "answered 200 but the database status is not ok" in ready["message"]
    assert 'db.status is "error"' in ready["message"]
    assert ready["evidence"]["dependencies"]["HEALTH-DB"]["status"] == "fail"

    no_redis = health_probe.parse_options(params(assertions={"HEALTH-REDIS": ""}))
    checks, dummy = health_probe.build_checks(no_redis, {"ready": (response(200, RUNBOOK_TEXT), 1, None, None)})
    assert checks["HEALTH-READY"]["status"] == "pass" and checks["HEALTH-REDIS"]["status"] == "skip"
    assert "HEALTH-REDIS not checked" in checks["HEALTH-READY"]["message"]

    checks, dummy = health_probe.build_checks(opts, {"ready": (response(200, "OK"), 1, None, None)})
    assert checks["HEALTH-READY"]["status"] == "fail" and "no JSON body" in checks["HEALTH-READY"]["message"]
    assert "answered 200 but the database status could not be read" in checks["HEALTH-READY"]["message"]


# -- HEALTH-DIAG verdict ------------------------------------------------------------------------

DB_OK = {"target": "hunter@h:5432/hunter", "ok": True, "result": "SELECT 1 returned 1"}
REDIS_OK = {"target": "h:6379 db 0", "ok": True, "result": "PONG"}


def test_diag_names_the_dependency():
    db_down = dict(DB_OK, ok=False, kind="refused", error='connection failed: connection to server at "h", '
                                                          'port 5432 failed: Connection refused')
    redis_auth = dict(REDIS_OK, ok=False, kind="auth", error="authentication failed (WRONGPASS)")
    item, down = dependency_diag.diagnose(db_down, REDIS_OK)
    assert item["status"] == "fail" and down == ["database"]
    assert item["message"] == "database unreachable: Connection refused (hunter@h:5432/hunter)"
    item, down = dependency_diag.diagnose(DB_OK, redis_auth)
    assert down == ["redis"] and item["message"].startswith("redis: authentication failed")
    item, down = dependency_diag.diagnose(db_down, redis_auth)
    assert down == ["database", "redis"] and item["message"].startswith("both dependencies are down")
    item, down = dependency_diag.diagnose(DB_OK, REDIS_OK)
    assert item["status"] == "warn" and item["message"] == (
        "both dependencies answer with the application's settings (SELECT 1, PING): readiness failed for another "
        "reason")
    # the inventory's copy of the settings answering says so: the application may use others
    copied = {"settings_from": "the inventory (db_host, db_port, db_name, db_user)"}
    item, down = dependency_diag.diagnose(dict(DB_OK, **copied), dict(REDIS_OK, settings_from="the inventory (redis_url)"))
    assert item["status"] == "warn" and "with the application's settings" not in item["message"]
    assert item["message"] == ("both dependencies answer (SELECT 1, PING); database and redis checked with the "
                               "inventory's copy of the settings, not the application's own (give its pidfile or "
                               "env file)")
    item, down = dependency_diag.diagnose(dict(DB_OK, **copied), None)
    assert item["status"] == "warn" and "database checked with the inventory's copy" in item["message"]
    item, down = dependency_diag.diagnose(None, None)
    assert item["status"] == "skip"


def test_diag_reads_the_redis_url_like_redis_probe():
    """The URL goes through redis_client (as REDIS-APP-PING): target without credentials, errors
    naming the module's option."""
    assert target_from_url("redis_url", "redis://:pw@10.0.0.6:6380/2", 5).describe() == "10.0.0.6:6380 db 2"
    assert target_from_url("redis_url", "rediss://user:pw@r.example/0", 5).describe() == \
        "r.example:6379 db 0 (TLS, user user)"
    with pytest.raises(ParameterError) as err:
        target_from_url("redis_url", "redis://:pw@h:notaport/0", 5)
    assert str(err.value).startswith("redis_url: ") and "pw" not in str(err.value)


def test_diag_redis_problem_is_redis_clients_message():
    refused = dict(REDIS_OK, ok=False, kind="refused",
                   error="connection refused by h:6379 db 0 (is Redis running and listening there?)")
    item, down = dependency_diag.diagnose(DB_OK, refused)
    assert down == ["redis"]
    assert item["message"] == "redis unreachable: " + refused["error"]  # the target is not repeated
    item, dummy = dependency_diag.diagnose(DB_OK, dict(refused, kind="oom", error="server refuses writes: OOM"))
    assert item["message"] == "redis: server refuses writes: OOM (h:6379 db 0)"


def test_issue9_not_checked_is_never_down():
    """Item 7: a dependency that could not be checked (library missing, settings unknown) is reported
    as not checked, never as down."""
    no_library = dict(REDIS_OK, ok=False, kind="library",
                      error="the Python library redis (redis-py) is not installed on this host")
    item, down = dependency_diag.diagnose(DB_OK, no_library)
    assert down == [] and item["status"] != "fail", item
    assert "redis not checked" in item["message"] and "unreachable" not in item["message"]
    no_psycopg = dict(DB_OK, ok=False, kind="library", error="the Python library psycopg is not installed")
    item, down = dependency_diag.diagnose(no_psycopg, REDIS_OK)
    assert down == [] and item["status"] != "fail" and "database not checked" in item["message"]


# -- concurrency: liveness/readiness count once startup has passed (Kubernetes) ------------------

def test_ready_is_asked_again_after_startup_passes(monkeypatch):
    """Transport faked (the thing under test is run_probes' gating): the service warms up for two
    startup polls; readiness answers 503 until then."""
    import threading
    state = {"startup_polls": 0}
    lock = threading.Lock()

    def fake_request(url, **kwargs):
        with lock:
            if url.endswith("/startup"):
                state["startup_polls"] += 1
                warm = state["startup_polls"] > 2
            else:
                warm = state["startup_polls"] > 2
        return HttpResponse("GET", url, status=200 if warm else 503, body='{"status": "ok"}', duration_ms=1.0)

    monkeypatch.setattr(health_probe.http, "request", fake_request)
    opts = health_probe.parse_options(params(startup_timeout=5, startup_interval=0.05))
    outcomes = health_probe.run_probes(opts, dict(validate_certs=True))
    ready, polls, waited, note = outcomes["ready"]
    assert ready.status == 200 and polls == 2 and "asked again after the startup probe passed" in note
    assert outcomes["startup"][0].status == 200 and outcomes["startup"][1] == 3


def test_ready_keeps_its_first_answer_when_startup_never_passes(monkeypatch):
    def fake_request(url, **kwargs):
        return HttpResponse("GET", url, status=503, body='{"status": "starting"}', duration_ms=1.0)

    monkeypatch.setattr(health_probe.http, "request", fake_request)
    opts = health_probe.parse_options(params(startup_timeout=0.2, startup_interval=0.05))
    outcomes = health_probe.run_probes(opts, dict(validate_certs=True))
    assert outcomes["ready"][1] == 1 and outcomes["ready"][0].status == 503
    assert outcomes["startup"][3] == "startup timeout 0.2s reached"

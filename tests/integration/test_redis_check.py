"""CHECKLIST 6.4 (Redis) against real redis-server processes: a password-protected primary, a
read-only replica, a full server with noeviction, a port nobody listens on and a listener that
never answers; then the role with health_check and the report.

Module cases share one ansible-playbook run (the harness's `run_tasks`) to keep the suite fast.
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import redis

from sandbox.services import refused_port

PLAYBOOK = Path(__file__).parent / "playbooks" / "redis_preflight.yml"
CACHE_IDS = ["REDIS-PING", "REDIS-OPS", "REDIS-POOL"]
PREFIX = "hunter-ops:probe:"


def statuses(checks: dict) -> dict:
    return {check_id: item["status"] for check_id, item in checks.items()}


def probe(**args):
    return {"hunter.ops.redis_probe": args}


def snapshot(client: redis.Redis) -> dict:
    """Every key with its serialized value and whether it has a TTL: what 'untouched' means."""
    return {key: (client.dump(key), client.pttl(key) > 0) for key in client.scan_iter(count=1000)}


def fill_until_oom(client: redis.Redis) -> None:
    """Write 4 KiB values until the server refuses with OOM (maxmemory + noeviction)."""
    for batch in range(2000):
        pipe = client.pipeline(transaction=False)
        for i in range(50):
            pipe.set(f"filler:{batch}:{i}", b"x" * 4096)
        try:
            pipe.execute()
        except redis.exceptions.OutOfMemoryError:
            return
    raise AssertionError("the server never reached maxmemory")


@pytest.fixture
def seeded_keys(redis_server):
    """Existing data REDIS-OPS must not touch, including a key under the probe prefix itself."""
    client = redis_server.client()
    client.set("app:session:1", "alice", ex=3600)
    client.hset("app:lead:example.com", mapping={"score": 71, "segment": "smb"})
    client.rpush("app:queue", "a", "b", "c")
    client.set(PREFIX + "existing", "not ours to delete")
    yield client
    client.delete("app:session:1", "app:lead:example.com", "app:queue", PREFIX + "existing")


# -- module: every fault case in one run -------------------------------------------------------------

def test_redis_probe_cases(ansible, tmp_path, redis_server, seeded_keys, make_redis, silent_server,
                           assert_no_secret):
    primary = redis_server
    replica = make_redis(replicaof=primary)
    full = make_redis(extra_args=["--maxmemory", "4mb", "--maxmemory-policy", "noeviction"])
    fill_until_oom(full.client())
    down_port = refused_port()
    wrong_password = "wrong-" + uuid.uuid4().hex
    url_secret = "urlpw-" + uuid.uuid4().hex
    env_file = tmp_path / "app.env"
    env_file.write_text(f"# the app's settings\nHUNTER_ENVIRONMENT=production\nREDIS_URL={primary.url}\n")
    env_file.chmod(0o600)
    no_url_env = tmp_path / "other.env"
    no_url_env.write_text("HUNTER_ENVIRONMENT=production\n")
    before = snapshot(seeded_keys)

    local = dict(host=primary.host, port=primary.port, password="{{ redis_password }}")
    fast = dict(connect_timeout=1, command_timeout=1)
    ready_ok = {"status": "ok", "redis": {"status": "ok"}}
    tasks = [
        # 0: everything green through host/port/password
        probe(**local, pool_size=8, pool_rounds=5),
        # 1: check mode: the probe key is not written, the rest runs
        dict(probe(**local), check_mode=True),
        # 2: wrong password
        probe(host=primary.host, port=primary.port, password="{{ wrong_password }}"),
        # 3: nothing listens
        probe(host="127.0.0.1", port=down_port, **fast),
        # 4: accepts and never answers
        probe(host="127.0.0.1", port=silent_server.port, **fast),
        # 5: read-only replica
        probe(host=replica.host, port=replica.port),
        # 6: maxmemory reached with noeviction
        probe(host=full.host, port=full.port),
        # 7: REDIS-APP-PING from the app's environment file
        probe(checks=["ping"], ping_id="REDIS-APP-PING", env_file=str(env_file)),
        # 8: an environment file without the URL
        probe(checks=["ping"], ping_id="REDIS-APP-PING", env_file=str(no_url_env)),
        # 9: malformed URL holding a secret
        probe(url="redis://:{{ url_secret }}@127.0.0.1:notaport/0"),
        # 10: info without ping
        probe(**local, checks=["info", "ops"]),
        # 11-14: REDIS-HEALTH from a given readiness body: ok, Redis down, no body, not configured
        probe(checks=["health"], ready_body=ready_ok),
        probe(checks=["health"], ready_body=json.dumps({"status": "degraded", "redis": {"status": "error"}})),
        probe(checks=["health"], ready_body=None),
        probe(checks=["health"], ready_body=ready_ok, health_expression=""),
        # 15: URL form with the password inside, ACL user "default", pool budget impossible to meet
        probe(url="redis://default:{{ redis_password }}@127.0.0.1:%d/0" % primary.port, checks=["ping", "pool"],
              pool_p99_warn_ms=0.0001),
    ]
    run, r = ansible.run_tasks(tasks, extravars={
        "redis_password": primary.password, "wrong_password": wrong_password, "url_secret": url_secret})

    # 0: all pass; evidence says what was done; nothing changed
    assert not r[0].get("check_task_failed"), r[0].get("msg")
    assert r[0]["changed"] is False
    assert statuses(r[0]["checks"]) == dict.fromkeys(CACHE_IDS, "pass"), r[0]["checks"]
    ping, ops, pool = (r[0]["checks"][i] for i in CACHE_IDS)
    assert ping["message"].startswith(f"PONG from {primary.host}:{primary.port} db 0")
    assert ping["evidence"]["info"]["role"] == "master" and ping["evidence"]["findings"] == []
    assert ping["evidence"]["auth"] == "password (hidden)"
    assert ops["evidence"]["key"].startswith(PREFIX) and ops["evidence"]["del_count"] == 1
    assert ops["evidence"]["get"] == "value matched" and ops["evidence"]["ttl_s"] == 30
    assert pool["evidence"]["commands"] == pool["evidence"]["succeeded"] == 8 * 6
    assert pool["evidence"]["failed"] == 0 and pool["evidence"]["connections_opened"] == 8
    assert 0 < pool["evidence"]["p50_ms"] <= pool["evidence"]["p99_ms"] <= pool["evidence"]["max_ms"]
    assert "p50" in pool["message"] and "p99" in pool["message"]

    # existing keys untouched, probe keys gone (also the one from case 0)
    assert snapshot(seeded_keys) == before
    assert list(seeded_keys.scan_iter(match=PREFIX + "*")) == [(PREFIX + "existing").encode()]

    # 1: check mode
    assert statuses(r[1]["checks"]) == {"REDIS-PING": "pass", "REDIS-OPS": "skip", "REDIS-POOL": "pass"}
    assert "check mode" in r[1]["checks"]["REDIS-OPS"]["message"]

    # 2: wrong password: says authentication failed; the other items are not attempted
    assert statuses(r[2]["checks"]) == dict.fromkeys(CACHE_IDS, "fail")
    assert "authentication failed" in r[2]["checks"]["REDIS-PING"]["message"]
    assert r[2]["checks"]["REDIS-PING"]["evidence"]["error_kind"] == "auth"
    assert r[2]["checks"]["REDIS-OPS"]["message"].startswith("not attempted: authentication failed")

    # 3: Redis down
    assert statuses(r[3]["checks"]) == dict.fromkeys(CACHE_IDS, "fail")
    assert f"connection refused by 127.0.0.1:{down_port}" in r[3]["checks"]["REDIS-PING"]["message"]

    # 4: silent port: one command timeout, then the rest are not attempted (no second wait)
    item = r[4]["checks"]["REDIS-PING"]
    assert item["status"] == "fail" and "timed out" in item["message"], item["message"]
    assert 900 <= item["evidence"]["duration_ms"] < 2500
    assert r[4]["checks"]["REDIS-POOL"]["message"].startswith("not attempted: timed out")

    # 5: read-only replica: OPS says so; PING passes with a replica finding (warn)
    assert r[5]["checks"]["REDIS-OPS"]["status"] == "fail"
    assert "read-only replica" in r[5]["checks"]["REDIS-OPS"]["message"]
    assert r[5]["checks"]["REDIS-OPS"]["evidence"]["error_kind"] == "readonly"
    assert r[5]["checks"]["REDIS-PING"]["status"] == "warn"
    assert "replica" in r[5]["checks"]["REDIS-PING"]["evidence"]["finding_codes"]
    assert r[5]["checks"]["REDIS-POOL"]["status"] == "pass"

    # 6: OOM under noeviction: OPS fails clearly; INFO warns about memory and the policy
    ops_full = r[6]["checks"]["REDIS-OPS"]
    assert ops_full["status"] == "fail" and ops_full["evidence"]["error_kind"] == "oom"
    assert "OOM command not allowed when used memory > 'maxmemory'" in ops_full["message"]
    assert "server refuses writes" in ops_full["message"]
    assert r[6]["checks"]["REDIS-PING"]["status"] == "warn"
    assert {"memory_high", "noeviction"} <= set(r[6]["checks"]["REDIS-PING"]["evidence"]["finding_codes"])
    assert r[6]["checks"]["REDIS-PING"]["evidence"]["info"]["maxmemory_policy"] == "noeviction"

    # 7-8: the app's own settings from its environment file
    app = r[7]["checks"]["REDIS-APP-PING"]
    assert list(r[7]["checks"]) == ["REDIS-APP-PING"] and app["status"] == "pass"
    assert f"(settings from REDIS_URL in environment file {env_file})" in app["message"]
    # the URL is not in the app's settings: the item fails saying where it looked (never the inventory's copy)
    unknown = r[8]["checks"]["REDIS-APP-PING"]
    assert unknown["status"] == "fail" and unknown["message"] == (
        f"the application's Redis settings were not read: none of REDIS_URL, HUNTER_REDIS_URL is set in "
        f"environment file {no_url_env}")

    # 9-10: bad input names the parameter in the items that use it, no traceback
    assert statuses(r[9]["checks"]) == dict.fromkeys(CACHE_IDS, "fail")
    assert all(item["message"].startswith("url: ") for item in r[9]["checks"].values()), r[9]["checks"]
    assert statuses(r[10]["checks"]) == dict.fromkeys(CACHE_IDS, "fail")
    assert r[10]["checks"]["REDIS-OPS"]["message"] == "checks: info is reported on the PING item: select ping as well"
    for result in (r[8], r[9], r[10]):
        assert not result.get("check_task_failed"), result.get("msg")
        assert "Traceback" not in json.dumps(result) and "module_stderr" not in result

    # 11-14: REDIS-HEALTH
    assert r[11]["checks"] == {"REDIS-HEALTH": r[11]["checks"]["REDIS-HEALTH"]}
    assert r[11]["checks"]["REDIS-HEALTH"]["status"] == "pass"
    assert r[12]["checks"]["REDIS-HEALTH"]["status"] == "fail"
    assert 'redis.status is "error"' in r[12]["checks"]["REDIS-HEALTH"]["message"]
    assert r[13]["checks"]["REDIS-HEALTH"]["status"] == "fail"
    assert "no readiness body" in r[13]["checks"]["REDIS-HEALTH"]["message"]
    assert r[14]["checks"]["REDIS-HEALTH"]["status"] == "skip"

    # 15: URL with user and password; a p99 budget nobody meets is a warn, not a fail
    assert r[15]["checks"]["REDIS-PING"]["status"] == "pass"
    assert r[15]["checks"]["REDIS-PING"]["evidence"]["user"] == "default"
    assert r[15]["checks"]["REDIS-POOL"]["status"] == "warn"
    assert "over the" in r[15]["checks"]["REDIS-POOL"]["message"]

    # no password, right or wrong, anywhere in the output or artifacts
    assert_no_secret(run, primary.password, wrong_password, url_secret)


# -- role + health_check + report ----------------------------------------------------------------------

def test_role_with_health_check_and_report(ansible, tmp_path, sample_service, pg, redis_server, make_redis,
                                           assert_no_secret):
    other = make_redis(password="other-" + uuid.uuid4().hex)  # the Redis a misconfigured app points at
    other.stop()
    app_env = tmp_path / "app.env"
    app_env.write_text(f"HUNTER_REDIS_URL={redis_server.url}\n")
    wrong_env = tmp_path / "wrong.env"
    wrong_env.write_text(f"HUNTER_REDIS_URL={other.url}\n")
    app_common = {"hunter_app_url": sample_service.url, "hunter_expected_environment": "production",
                  "hunter_app_db_host": pg.host, "hunter_app_db_port": pg.port, "hunter_app_db_name": pg.database,
                  "hunter_app_db_user": pg.user, "hunter_app_db_password": pg.password,
                  "hunter_app_redis_url": redis_server.url, "health_check_startup_timeout": 2}
    inventory = {"all": {"children": {
        "cache": {"hosts": {
            "cache-ok": {"hunter_redis_host": redis_server.host, "hunter_redis_port": redis_server.port,
                         "hunter_redis_password": redis_server.password, "hunter_redis_db": 0},
            # a bad setting: every item of this host fails with a message naming it
            "cache-bad": {"hunter_redis_host": redis_server.host, "hunter_redis_port": "sixthousand",
                          "hunter_redis_password": redis_server.password},
        }},
        "app": {"hosts": {
            "app-env-file": dict(app_common, hunter_app_env_file=str(app_env)),
            "app-other-redis": dict(app_common, hunter_app_env_file=str(wrong_env),
                                    redis_check_connect_timeout=1, redis_check_command_timeout=1),
        }},
    }}}
    run = ansible.run_playbook(PLAYBOOK, inventory, extravars={"hunter_ops_required_checks": ["REDIS-PING"]})
    assert run.report is not None, run.stdout[-3000:]
    items = {(i["host"], i["id"]): i for i in run.report["items"]}

    # cache-ok: all three pass with evidence; cache-bad: named failure; both recorded
    for check_id in CACHE_IDS:
        assert items[("cache-ok", check_id)]["status"] == "pass", items[("cache-ok", check_id)]
        assert items[("cache-bad", check_id)]["status"] == "fail"
    assert items[("cache-bad", "REDIS-PING")]["message"].startswith("hunter_redis_port (redis_check_port): port must")
    assert items[("cache-ok", "REDIS-POOL")]["evidence"]["p99_ms"] > 0

    # app hosts: PING with the app's settings; the app pointing at another (dead) Redis is caught
    # while the control side's PING passes
    assert items[("app-env-file", "REDIS-APP-PING")]["status"] == "pass"
    wrong = items[("app-other-redis", "REDIS-APP-PING")]
    assert wrong["status"] == "fail" and f"127.0.0.1:{other.port}" in wrong["message"]
    assert "connection refused" in wrong["message"]

    # REDIS-HEALTH judged the readiness body health_check fetched, the same way as HEALTH-REDIS
    health = items[("app-env-file", "REDIS-HEALTH")]
    assert health["status"] == "pass" and health["evidence"]["expression"] == "redis.status == 'ok'"
    assert items[("app-env-file", "HEALTH-REDIS")]["status"] == "pass"
    # no cache items on app hosts and no app items on cache hosts
    assert ("app-env-file", "REDIS-OPS") not in items, items[("app-env-file", "REDIS-OPS")]
    assert ("cache-ok", "REDIS-APP-PING") not in items

    # REDIS-PING is required and fails on cache-bad: NO-GO after the report was written
    assert run.report["verdict"] == "NO-GO" and run.rc != 0
    assert run.stats.get("changed", {}).get("cache-ok", 0) == 0
    assert_no_secret(run, redis_server.password, other.password, pg.password)


def test_role_alone_skips_redis_health_and_honours_the_selection(ansible, redis_server):
    inventory = {"all": {"children": {
        "cache": {"hosts": {"cache-ping-only": {
            "hunter_redis_host": redis_server.host, "hunter_redis_port": redis_server.port,
            "hunter_redis_password": redis_server.password, "redis_check_checks": ["ping"]}}},
        "app": {"hosts": {"app-unconfigured": {}}},
    }}}
    run = ansible.run_playbook("playbooks/redis_check.yml", inventory)
    assert run.rc == 0, run.stdout[-3000:]
    facts = {}
    for result in run.task_results():
        facts.setdefault(result["_host"], {}).update(result.get("ansible_facts", {}).get("hunter_ops_checks", {}))
    cache, app = facts["cache-ping-only"], facts["app-unconfigured"]
    assert cache["REDIS-PING"]["status"] == "pass"
    assert cache["REDIS-OPS"]["status"] == cache["REDIS-POOL"]["status"] == "skip"
    assert "not selected" in cache["REDIS-OPS"]["message"]
    assert app["REDIS-HEALTH"] == {"status": "skip", "message": "health_check did not run",
                                   "evidence": app["REDIS-HEALTH"]["evidence"]}
    assert app["REDIS-APP-PING"]["status"] == "skip" and "not configured" in app["REDIS-APP-PING"]["message"]


def test_app_ping_and_health_in_one_call_and_without_redis_py(ansible, tmp_path, redis_server):
    """The app hosts' one redis_probe call (tasks/app.yml): both items from one module run; on a
    host without redis-py only REDIS-APP-PING fails (naming the library), REDIS-HEALTH is judged."""
    from sandbox.services import venv_without
    ready_ok = {"status": "ok", "redis": {"status": "ok"}}
    both = probe(checks=["ping", "health"], ping_id="REDIS-APP-PING", url="{{ app_redis_url }}",
                 ready_body=ready_ok)
    run, r = ansible.run_tasks([both], extravars={"app_redis_url": redis_server.url})
    assert statuses(r[0]["checks"]) == {"REDIS-APP-PING": "pass", "REDIS-HEALTH": "pass"}
    # the URL is the inventory's copy: the pass says so (the application may use another)
    assert "the inventory's copy of the application's Redis URL" in r[0]["checks"]["REDIS-APP-PING"]["message"]

    python = venv_without(tmp_path / "venv-no-redis", ["redis"])
    run, r = ansible.run_tasks([both], extravars={"app_redis_url": redis_server.url},
                               host_vars={"ansible_python_interpreter": str(python)})
    assert statuses(r[0]["checks"]) == {"REDIS-APP-PING": "fail", "REDIS-HEALTH": "pass"}
    assert "redis" in r[0]["checks"]["REDIS-APP-PING"]["message"]
    assert redis_server.password not in json.dumps(r[0])

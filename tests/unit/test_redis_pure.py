"""The pure parts of redis_check: latency percentiles, INFO summary and findings, Redis settings
from URLs/parameters, env files, and error classification of redis-py's own exception types."""
import pytest
import redis

from ansible_collections.hunter.ops.plugins.module_utils import envfile
from ansible_collections.hunter.ops.plugins.module_utils.redis_client import classify, target_from_params
from ansible_collections.hunter.ops.plugins.module_utils.redis_findings import (
    FINDING_CODES, findings, memory_pct, summary,
)
from ansible_collections.hunter.ops.plugins.module_utils.stats import latency_summary, percentile
from ansible_collections.hunter.ops.plugins.module_utils.validate import ParameterError

# -- percentiles -------------------------------------------------------------------------------


def test_percentile_is_nearest_rank_so_always_a_measured_value():
    values = list(range(1, 101))  # 1..100
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([5.0, 1.0, 3.0], 50) == 3.0  # unsorted input
    assert percentile([7.0], 99) == 7.0


def test_p99_of_few_samples_is_the_maximum():
    assert percentile([1, 2, 3, 4, 50], 99) == 50


def test_percentile_of_nothing_is_none_and_bad_pct_is_refused():
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile([1], 0)
    with pytest.raises(ValueError):
        percentile([1], 101)


def test_latency_summary_rounds_and_counts():
    stats = latency_summary([0.123, 0.456, 10.0])
    assert stats == {"count": 3, "p50_ms": 0.46, "p99_ms": 10.0, "max_ms": 10.0, "mean_ms": 3.53}
    assert latency_summary([])["p50_ms"] is None


# -- INFO ---------------------------------------------------------------------------------------

HEALTHY = {
    "redis_version": "7.0.15", "redis_mode": "standalone", "role": "master", "uptime_in_seconds": 100,
    "used_memory": 1_000_000, "maxmemory": 0, "maxmemory_policy": "noeviction", "evicted_keys": 0,
    "rejected_connections": 0, "connected_clients": 3, "maxclients": 10000, "rdb_last_bgsave_status": "ok",
    "rdb_saves": 0, "rdb_changes_since_last_save": 4, "aof_enabled": 0, "loading": 0, "connected_slaves": 0,
}


def codes(info, **kw):
    return [f["code"] for f in findings(info, **kw)]


def test_a_healthy_server_has_no_findings_and_a_readable_summary():
    assert findings(HEALTHY) == []
    s = summary(HEALTHY)
    assert s["redis_version"] == "7.0.15" and s["role"] == "master"
    assert s["maxmemory"] == "0 (no limit)" and s["used_memory"] == "976.56 KiB"
    assert s["maxmemory_policy"] == "noeviction" and s["aof_enabled"] is False
    assert "used_memory_pct_of_max" not in s  # no limit: no percentage
    assert s["connected_replicas"] == 0


def test_memory_near_maxmemory_with_noeviction_warns_twice():
    info = dict(HEALTHY, used_memory=960, maxmemory=1000)
    assert memory_pct(info) == 96.0
    found = findings(info)
    assert [f["code"] for f in found] == ["memory_high", "noeviction"]
    assert "96.0% of maxmemory" in found[0]["message"]
    assert "writes fail with OOM" in found[1]["message"]


def test_memory_threshold_is_configurable_and_findings_can_be_ignored():
    info = dict(HEALTHY, used_memory=800, maxmemory=1000, maxmemory_policy="allkeys-lru")
    assert codes(info) == []
    assert codes(info, memory_warn_pct=75) == ["memory_high"]
    info = dict(info, maxmemory_policy="noeviction")
    assert codes(info, ignore=["noeviction"]) == []


def test_evictions_rejections_and_clients():
    info = dict(HEALTHY, evicted_keys=12, rejected_connections=3, connected_clients=9000, maxclients=10000)
    found = findings(info)
    assert [f["code"] for f in found] == ["evicted_keys", "rejected_connections", "clients_high"]
    assert found[0]["message"].startswith("12 keys evicted")
    assert "maxclients 10000" in found[1]["message"]


def test_persistence_failures():
    info = dict(HEALTHY, rdb_last_bgsave_status="err", aof_enabled=1, aof_last_write_status="err",
                aof_last_bgrewrite_status="ok")
    assert codes(info) == ["rdb_bgsave_failed", "aof_write_failed"]
    s = summary(info)
    assert s["aof_enabled"] is True and s["aof_last_write_status"] == "err"
    # AOF statuses mean nothing while AOF is off
    assert codes(dict(HEALTHY, aof_last_write_status="err")) == []


def test_a_replica_is_reported_and_a_broken_link_too():
    info = dict(HEALTHY, role="slave", master_host="10.0.0.5", master_port=6379, master_link_status="down")
    found = findings(info)
    assert [f["code"] for f in found] == ["replica", "replica_link_down"]
    assert "10.0.0.5:6379" in found[0]["message"]
    assert summary(info)["master_link_status"] == "down"


def test_loading_and_every_code_is_documented():
    assert codes(dict(HEALTHY, loading=1)) == ["loading"]
    all_bad = dict(HEALTHY, used_memory=999, maxmemory=1000, evicted_keys=1, rejected_connections=1,
                   connected_clients=10000, rdb_last_bgsave_status="err", aof_enabled=1,
                   aof_last_write_status="err", aof_last_bgrewrite_status="err", role="slave",
                   master_link_status="down", loading=1)
    assert codes(all_bad) == list(FINDING_CODES)


# -- settings ---------------------------------------------------------------------------------

BASE = {"connect_timeout": 3.0, "command_timeout": 3.0, "tls_validate_certs": True}


def target(**params):
    return target_from_params(dict(BASE, **params))


def test_url_with_user_password_and_db():
    t = target(url="redis://app:s%40cret@cache.internal:6380/2")
    assert (t.host, t.port, t.db, t.username, t.password, t.tls) == ("cache.internal", 6380, 2, "app", "s@cret", False)
    assert t.describe() == "cache.internal:6380 db 2 (user app)"
    assert "s@cret" not in str(t.evidence())


def test_rediss_and_unix_urls():
    t = target(url="rediss://:pw@10.0.0.1/0")
    assert t.tls and t.port == 6379 and t.describe() == "10.0.0.1:6379 db 0 (TLS)"
    t = target(url="unix:///run/redis/redis.sock?db=3")
    assert t.unix_socket == "/run/redis/redis.sock" and t.db == 3 and t.describe() == "unix:/run/redis/redis.sock db 3"


def test_explicit_parameters_override_the_url():
    t = target(url="redis://:inurl@h:1/1", password="explicit", db=4, port=2)
    assert (t.password, t.db, t.port) == ("explicit", 4, 2)


def test_host_port_defaults():
    t = target()
    assert (t.host, t.port, t.db, t.password) == ("127.0.0.1", 6379, 0, None)


@pytest.mark.parametrize("params, param, fragment", [
    ({"url": "http://h:6379"}, "url", "scheme must be redis://"),
    ({"url": "redis://:pw@h:99999/0"}, "url", "malformed"),
    ({"url": "redis://:pw@h/notanumber"}, "url", "database number"),
    ({"url": "redis://:pw@/0"}, "url", "no host"),
    ({"url": "unix://"}, "url", "no socket path"),
    ({"port": 0}, "port", "between 1 and 65535"),
    ({"db": -1}, "db", ">= 0"),
    ({"command_timeout": 0}, "command_timeout", "greater than 0"),
    ({"unix_socket": "/x.sock", "tls": True}, "tls", "unix socket"),
])
def test_bad_settings_name_the_parameter_and_never_echo_the_url(params, param, fragment):
    with pytest.raises(ParameterError) as err:
        target(**params)
    assert err.value.param == param
    assert fragment in str(err.value)
    assert "pw" not in str(err.value)


# -- env files ----------------------------------------------------------------------------------

def test_env_file_parsing(tmp_path):
    path = tmp_path / "app.env"
    path.write_text("# comment\nexport REDIS_URL='redis://:p w@h:1/0'\nEMPTY=\nOTHER=x # note\n"
                    'QUOTED="a\\"b"\n')
    assert envfile.read("env_file", str(path)) == {
        "REDIS_URL": "redis://:p w@h:1/0", "EMPTY": "", "OTHER": "x", "QUOTED": 'a"b'}
    assert envfile.first_of("env_file", str(path), ["EMPTY", "REDIS_URL"]) == ("REDIS_URL", "redis://:p w@h:1/0")
    with pytest.raises(ParameterError, match="none of NOPE is set"):
        envfile.first_of("env_file", str(path), ["NOPE"])
    with pytest.raises(ParameterError, match="env_file: file .* does not exist"):
        envfile.read("env_file", str(tmp_path / "missing.env"))


# -- classification of redis-py's exceptions ----------------------------------------------------

T = None


def setup_module():
    global T
    T = target(host="10.0.0.9", port=6379, password="hunter2pw")


@pytest.mark.parametrize("exc, kind, fragment", [
    (redis.exceptions.AuthenticationError("invalid username-password pair or user is disabled."),
     "auth", "authentication failed at 10.0.0.9:6379 db 0: invalid username-password pair"),
    (redis.exceptions.ConnectionError("Error 111 connecting to 10.0.0.9:6379. Connection refused."),
     "refused", "connection refused by 10.0.0.9:6379"),
    (redis.exceptions.TimeoutError("Timeout reading from socket"), "timeout", "timed out talking to 10.0.0.9:6379"),
    (redis.exceptions.ReadOnlyError("You can't write against a read only replica."), "readonly",
     "server refuses writes: 10.0.0.9:6379 db 0 is a read-only replica"),
    (redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."), "oom",
     "server refuses writes: OOM command not allowed when used memory > 'maxmemory'"),
    (redis.exceptions.ResponseError("MISCONF Redis is configured to save RDB snapshots"), "misconf",
     "server refuses writes: MISCONF"),
    (redis.exceptions.NoPermissionError("this user has no permissions to run the 'info' command"), "noperm",
     "not allowed"),
    (redis.exceptions.ConnectionError("Error -2 connecting to nohost:6379. Name or service not known."), "dns",
     "cannot resolve"),
    (redis.exceptions.ConnectionError("Error 2 connecting to /x.sock. No such file or directory."), "socket",
     "does not exist"),
])
def test_classification(exc, kind, fragment):
    failure = classify(exc, T)
    assert failure.kind == kind
    assert fragment in failure.message
    assert "hunter2pw" not in failure.message


@pytest.mark.parametrize("exc,kind,fragment", [
    (redis.exceptions.ConnectionError("Error 111 connecting to 10.0.0.9:6379. Connection refused."),
     "refused", "connection refused by 10.0.0.9:6379"),
    (redis.exceptions.ResponseError("OOM command not allowed when used memory > 'maxmemory'."), "oom",
     "server refuses writes: OOM command not allowed when used memory > 'maxmemory'"),
    (redis.exceptions.TimeoutError("Timeout reading from socket"), "timeout", "timed out talking to 10.0.0.9:6379"),
])
def test_classification_with_redis_py_4_3(monkeypatch, exc, kind, fragment):
    """redis-py 4.3 (Debian 12's python3-redis, what prepare_hosts installs) has no OutOfMemoryError: its
    OOM is a ResponseError whose text starts with OOM, and every other failure must classify as with 5.x
    (an AttributeError here crashed REDIS-APP-PING and HEALTH-DIAG on such hosts)."""
    monkeypatch.delattr(redis.exceptions, "OutOfMemoryError")
    failure = classify(exc, T)
    assert failure.kind == kind
    assert fragment in failure.message and "OOM OOM" not in failure.message


def test_classification_without_a_password_says_one_is_required_and_hides_secrets_in_text():
    no_pw = target(host="h")
    assert "requires a password and none was given" in classify(
        redis.exceptions.AuthenticationError("NOAUTH Authentication required."), no_pw).message
    leaky = redis.exceptions.ResponseError("ERR something about hunter2pw")
    assert "hunter2pw" not in classify(leaky, T).message


def test_bad_values_are_kept_per_option_named_as_the_operator_set_them():
    """Issue 9.12: a bad value is kept under its own option, so it fails only the checks that use it."""
    from ansible_collections.hunter.ops.plugins.module_utils import validate
    from ansible_collections.hunter.ops.plugins.module_utils.redis_client import validate_connection
    from ansible_collections.hunter.ops.plugins.modules import redis_probe

    problems = validate.InputProblems({"port": "hunter_redis_port (redis_check_port)",
                                       "pool_size": "redis_check_pool_size"})
    params = dict(pool_size="ten", pool_rounds=10, key_ttl=-3, pool_p99_warn_ms=None, info_memory_warn_pct=90,
                  info_clients_warn_pct="lots", info_ignore=["noeviction"], key_prefix="hunter-ops:probe:",
                  health_expression="redis.status == 'ok'")
    values = redis_probe.check_values(params, problems)
    validate_connection(dict(port="sixthousand", db=0, connect_timeout=3, command_timeout="3"), problems)
    assert values["pool_rounds"] == 10 and values["info_ignore"] == ["noeviction"]
    assert problems.bad(*redis_probe.CHECK_OPTIONS["pool"]) == ["pool_size"]
    assert problems.bad(*redis_probe.CHECK_OPTIONS["ops"]) == ["key_ttl"]
    assert problems.bad(*redis_probe.CHECK_OPTIONS["ping"]) == ["info_clients_warn_pct"]
    assert problems.bad(*redis_probe.CHECK_OPTIONS["health"]) == []
    assert problems.message("port") == ("hunter_redis_port (redis_check_port): port must be a number between 1 and "
                                        "65535, got 'sixthousand'")
    assert problems.message("pool_size") == "redis_check_pool_size: must be a whole number, got 'ten'"

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: redis_probe
short_description: Redis readiness checks (PING, SET/GET/DEL, connection pool, INFO, readiness body)
version_added: 0.1.0
description:
  - Runs the Redis items of the production checklist (section 6.4) and returns them under RV(checks),
    keyed by checklist ID (V(REDIS-PING) or V(REDIS-APP-PING), V(REDIS-OPS), V(REDIS-POOL), V(REDIS-HEALTH)).
  - Never changes anything that exists on the server. V(ops) writes one new key under O(key_prefix) with a
    short TTL (C(SET NX EX), so an existing key is never overwritten) and deletes it again.
  - Every command is bounded by O(connect_timeout) and O(command_timeout). After a failure that leaves no
    connection (refused, timeout, authentication, DNS, TLS), the remaining items fail at once with that reason
    instead of waiting again.
  - Failures are classified for the operator - authentication failed, connection refused, timed out, read-only
    replica, C(OOM command not allowed) under C(maxmemory) - and never contain the password.
  - C(community.general.redis_info) is not used because it has no timeouts (a silent port would hang the
    play), no URL, unix socket or database options.
author:
  - hunter.ops contributors (@hunter-ops)
extends_documentation_fragment:
  - hunter.ops.redis
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
    details: V(ops) is the only item that writes (a probe key it deletes); in check mode it is V(skip).
options:
  checks:
    description:
      - Which items to run.
      - V(ping) reports O(ping_id). V(info) adds the INFO summary and V(warn) findings to that item,
        so it needs V(ping).
      - V(ops) reports V(REDIS-OPS), V(pool) V(REDIS-POOL), V(health) V(REDIS-HEALTH) (from O(ready_body), no
        connection needed).
    type: list
    elements: str
    choices: [ping, info, ops, pool, health]
    default: [ping, info, ops, pool]
  ping_id:
    description:
      - Checklist ID under which V(ping) is reported. V(REDIS-APP-PING) when run on the application host with
        the application's own settings.
    type: str
    choices: [REDIS-PING, REDIS-APP-PING]
    default: REDIS-PING
  env_file:
    description:
      - The application's environment file on the host running the module; the Redis URL is read from the
        first variable of O(env_file_vars) set in it. Used when O(url) is empty, so REDIS-APP-PING uses exactly
        what the application uses.
    type: path
  env_file_vars:
    description:
      - Variable names holding the Redis URL in O(env_file), tried in order.
    type: list
    elements: str
    default: [REDIS_URL, HUNTER_REDIS_URL]
  key_prefix:
    description:
      - Prefix of the probe key V(ops) writes; the key is C(<prefix><host>:<random hex>).
    type: str
    default: "hunter-ops:probe:"
  key_ttl:
    description:
      - TTL in seconds of the probe key, so it disappears even if the run dies between SET and DEL.
    type: int
    default: 30
  pool_size:
    description:
      - V(pool) runs this many clients (threads) concurrently through one connection pool of this size. Each
        sends one untimed PING that opens its connection, then O(pool_rounds) timed PINGs.
      - All commands must succeed; the evidence shows p50/p99/max latency of the timed ones.
    type: int
    default: 10
  pool_rounds:
    description:
      - How many timed PINGs each V(pool) client sends, one after another (more samples for the percentiles).
    type: int
    default: 10
  pool_p99_warn_ms:
    description:
      - V(REDIS-POOL) is V(warn) when the p99 latency exceeds this many milliseconds. No budget when unset.
    type: float
  info_memory_warn_pct:
    description:
      - INFO finding V(memory_high) when used memory reaches this percentage of C(maxmemory).
    type: float
    default: 90
  info_clients_warn_pct:
    description:
      - INFO finding V(clients_high) when connected clients reach this percentage of C(maxclients).
    type: float
    default: 80
  info_ignore:
    description:
      - INFO finding codes not to report (for example V(noeviction) for a Redis used as a queue).
    type: list
    elements: str
    choices: [memory_high, noeviction, evicted_keys, rejected_connections, clients_high, rdb_bgsave_failed,
              aof_write_failed, aof_rewrite_failed, replica, replica_link_down, loading]
    default: []
  ready_body:
    description:
      - The readiness body health_check already fetched (parsed JSON or its text), for V(health).
        No second request is made. Empty or null means the readiness probe returned no body, and V(REDIS-HEALTH) fails.
    type: raw
  ready_source:
    description:
      - Where O(ready_body) came from, shown in the evidence.
    type: str
    default: readiness body fetched by health_check
  health_expression:
    description:
      - JMESPath expression that must be true on O(ready_body) for V(REDIS-HEALTH) to pass (the same kind of
        expression HEALTH-REDIS uses). Empty means the service does not show Redis, and the item is V(skip).
    type: str
    default: "redis.status == 'ok'"
notes:
  - Needs the Python library C(redis) (redis-py) on the host running the module, and C(jmespath) for V(health).
'''

EXAMPLES = r'''
- name: PING, INFO, SET/GET/DEL and pool check from the control side
  hunter.ops.redis_probe:
    host: redis.internal
    port: 6379
    password: "{{ vault_redis_password }}"
    db: 0
    pool_size: 20
  delegate_to: localhost
  register: redis_result

- name: PING with the application's own settings, read from its environment file
  hunter.ops.redis_probe:
    checks: [ping]
    ping_id: REDIS-APP-PING
    env_file: /etc/hunter/hunter.env

- name: REDIS-HEALTH from the readiness body health_check fetched
  hunter.ops.redis_probe:
    checks: [health]
    ready_body: "{{ hunter_ops_ready_body }}"
'''

RETURN = r'''
checks:
  description: Check items keyed by checklist ID, each with C(status), C(message) and C(evidence).
  returned: always
  type: dict
  sample:
    REDIS-PING:
      status: pass
      message: PONG from 127.0.0.1:6379 db 0 in 0.4 ms
      evidence:
        server: "127.0.0.1:6379"
        db: 0
        response: PONG
        duration_ms: 0.4
        info: {redis_version: 7.0.15, role: master, maxmemory_policy: noeviction}
        findings: []
    REDIS-POOL:
      status: pass
      message: 110/110 PINGs from 10 concurrent clients through one pool (10 connections); p50 0.21 ms, p99 1.20 ms
      evidence: {concurrency: 10, rounds: 10, commands: 110, succeeded: 110, p50_ms: 0.21, p99_ms: 1.2}
'''

import json
import secrets
import socket
import threading
import time
import uuid

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.hunter.ops.plugins.module_utils import envfile, secret
from ansible_collections.hunter.ops.plugins.module_utils.health import assertion_item, parse_json
from ansible_collections.hunter.ops.plugins.module_utils.redis_client import (
    HAS_REDIS, REDIS_MUTUALLY_EXCLUSIVE, classify, redis_argument_spec, target_from_params,
)
from ansible_collections.hunter.ops.plugins.module_utils.redis_findings import FINDING_CODES, findings, summary
from ansible_collections.hunter.ops.plugins.module_utils.results import FAIL, PASS, SKIP, WARN, check_item
from ansible_collections.hunter.ops.plugins.module_utils.stats import latency_summary
from ansible_collections.hunter.ops.plugins.module_utils.validate import ParameterError, jmespath_expression

CONNECTED_CHECKS = ("ping", "info", "ops", "pool")


def _ms(started):
    return (time.monotonic() - started) * 1000.0


class RedisProbe(object):
    """Runs the selected items against one target through one connection pool."""

    def __init__(self, target, params, check_mode):
        self.target = target
        self.params = params
        self.check_mode = check_mode
        self.client = target.client(max_connections=max(params["pool_size"], 2))
        self.dead = None  # the RedisFailure after which no connection can work

    def _base(self, **extra):
        evidence = self.target.evidence()
        evidence.update(extra)
        return evidence

    def _not_attempted(self):
        return check_item(FAIL, "not attempted: %s" % self.dead.message, self._base(error=self.dead.message))

    def _failure(self, exc, started, verb, **extra):
        failure = classify(exc, self.target)
        if failure.no_connection:
            self.dead = failure
        evidence = self._base(error=failure.message, error_kind=failure.kind, **extra)
        return failure, check_item(FAIL, "%s failed: %s" % (verb, failure.message), evidence,
                                   duration_ms=_ms(started))

    def ping(self, with_info):
        started = time.monotonic()
        try:
            answer = self.client.ping()
        except Exception as exc:  # pylint: disable=broad-except
            return self._failure(exc, started, "PING")[1]
        took = _ms(started)
        if answer is not True:
            return check_item(FAIL, "PING to %s answered %r, not PONG" % (self.target.describe(), answer),
                              self._base(response=repr(answer)), duration_ms=took)
        evidence = self._base(response="PONG")
        message = "PONG from %s in %.1f ms" % (self.target.describe(), took)
        status = PASS
        if with_info:
            status, note = self._add_info(evidence)
            if note:
                message += "; " + note
        return check_item(status, message, evidence, duration_ms=took)

    def _add_info(self, evidence):
        """INFO summary and findings into evidence; (status, note for the message)."""
        try:
            info = self.client.info()
        except Exception as exc:  # pylint: disable=broad-except
            failure = classify(exc, self.target)
            evidence["info_error"] = failure.message
            if failure.kind == "noperm":  # a restricted ACL user: nothing to warn about
                return PASS, None
            return WARN, "INFO failed: %s" % failure.message
        evidence["info"] = summary(info)
        found = findings(info, memory_warn_pct=self.params["info_memory_warn_pct"],
                         clients_warn_pct=self.params["info_clients_warn_pct"],
                         ignore=self.params["info_ignore"])
        evidence["findings"] = [f["message"] for f in found]
        evidence["finding_codes"] = [f["code"] for f in found]
        if not found:
            return PASS, "INFO: Redis %s, role %s, no findings" % (info.get("redis_version"), info.get("role"))
        return WARN, "INFO: %d finding(s): %s" % (len(found), "; ".join(f["message"] for f in found))

    def ops(self):
        if self.check_mode:
            return check_item(SKIP, "check mode: the probe key is not written", self._base())
        key = "%s%s:%s" % (self.params["key_prefix"], socket.gethostname(), uuid.uuid4().hex)
        value = secrets.token_hex(16)
        ttl = self.params["key_ttl"]
        steps = {}
        evidence = self._base(key=key, ttl_s=ttl, steps=steps)
        started = time.monotonic()
        needs_cleanup = False
        try:
            step = time.monotonic()
            # NX: never overwrite a key that happens to exist; EX: gone by itself if we die here.
            written = bool(self.client.set(key, value, nx=True, ex=ttl))
            steps["set_ms"] = round(_ms(step), 2)
            needs_cleanup = written
            if not written:
                return check_item(FAIL, "SET NX %s did nothing: the key already exists (left untouched)" % key,
                                  evidence, duration_ms=_ms(started))
            step = time.monotonic()
            got = self.client.get(key)
            steps["get_ms"] = round(_ms(step), 2)
            step = time.monotonic()
            deleted = self.client.delete(key)
            needs_cleanup = False
            steps["del_ms"] = round(_ms(step), 2)
        except Exception as exc:  # pylint: disable=broad-except
            failure, item = self._failure(exc, started, "SET/GET/DEL", key=key, ttl_s=ttl, steps=steps)
            if needs_cleanup:
                self._cleanup(key)
            if failure.refuses_writes:
                item["message"] = "SET refused: %s" % failure.message
            return item
        evidence.update(get="value matched" if got == value.encode() else "value differs", del_count=deleted)
        took = _ms(started)
        if got != value.encode():
            return check_item(FAIL, "GET %s returned %s, not the value just written"
                              % (key, "nothing" if got is None else "another value"), evidence, duration_ms=took)
        if deleted != 1:
            return check_item(FAIL, "DEL %s deleted %s keys (expected 1)" % (key, deleted), evidence,
                              duration_ms=took)
        return check_item(PASS, "SET NX EX %ds / GET / DEL on a new probe key under %s: value read back, "
                                "delete count 1 (%.1f ms)" % (ttl, self.params["key_prefix"], took),
                          evidence, duration_ms=took)

    def _cleanup(self, key):
        try:
            self.client.delete(key)
        except Exception:  # pylint: disable=broad-except
            # the key's TTL removes it anyway
            pass

    def pool(self):
        size, rounds = self.params["pool_size"], self.params["pool_rounds"]
        latencies, errors = [], []
        lock = threading.Lock()
        barrier = threading.Barrier(size)

        warmup = []

        def timed_ping(into):
            begun = time.perf_counter()
            try:
                self.client.ping()
            except Exception as exc:  # pylint: disable=broad-except
                with lock:
                    errors.append(exc)
                return False
            with lock:
                into.append((time.perf_counter() - begun) * 1000.0)
            return True

        def wait_for_all():
            try:
                barrier.wait(timeout=5 + self.target.connect_timeout + self.target.command_timeout)
            except threading.BrokenBarrierError:
                pass

        def held_ping():
            """PING on a connection held until every client has one: the pool really opens `size`."""
            begun = time.perf_counter()
            conn = None
            try:
                conn = self._take_connection()
                conn.send_command("PING")
                conn.read_response()
                with lock:
                    warmup.append((time.perf_counter() - begun) * 1000.0)
                return True
            except Exception as exc:  # pylint: disable=broad-except
                with lock:
                    errors.append(exc)
                return False
            finally:
                wait_for_all()
                if conn is not None:
                    self.client.connection_pool.release(conn)

        def worker():
            # Open the pool's connections concurrently first, then time commands on established
            # connections under the same concurrency.
            wait_for_all()
            if not held_ping():
                return
            for dummy in range(rounds):
                timed_ping(latencies)

        started = time.monotonic()
        threads = [threading.Thread(target=worker, name="redis-pool-%d" % i) for i in range(size)]
        for thread in threads:
            thread.daemon = True
            thread.start()
        # Each command is bounded by the timeouts; this bounds the whole round as well.
        deadline = time.monotonic() + 5 + rounds * (self.target.connect_timeout + self.target.command_timeout)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        hung = sum(1 for t in threads if t.is_alive())
        took = _ms(started)
        total = size * (rounds + 1)
        with lock:
            ok, failed = len(latencies) + len(warmup), list(errors)
        stats = latency_summary(latencies)
        evidence = self._base(concurrency=size, rounds=rounds, commands=total, succeeded=ok,
                              failed=total - ok, connections_opened=self._connections_opened(),
                              p50_ms=stats["p50_ms"], p99_ms=stats["p99_ms"], max_ms=stats["max_ms"],
                              mean_ms=stats["mean_ms"],
                              first_command_max_ms=latency_summary(warmup)["max_ms"])
        if failed or hung or ok != total:
            first = classify(failed[0], self.target) if failed else None
            if first is not None and first.no_connection:
                self.dead = first
            evidence["first_error"] = first.message if first else "threads did not finish in time"
            first = evidence["first_error"]
            return check_item(FAIL, "%d of %d concurrent PINGs through one pool failed: %s" % (total - ok, total, first),
                              evidence, duration_ms=took)
        message = ("%d/%d PINGs from %d concurrent clients through one pool (%s connections); "
                   "p50 %.2f ms, p99 %.2f ms" % (ok, total, size, evidence["connections_opened"],
                                                 stats["p50_ms"], stats["p99_ms"]))
        budget = self.params.get("pool_p99_warn_ms")
        if budget is not None:
            evidence["p99_budget_ms"] = budget
            if stats["p99_ms"] > budget:
                return check_item(WARN, message + " (p99 over the %.1f ms budget)" % budget, evidence,
                                  duration_ms=took)
        return check_item(PASS, message, evidence, duration_ms=took)

    def _take_connection(self):
        pool = self.client.connection_pool
        try:
            return pool.get_connection()
        except TypeError:  # redis-py < 5.3 wants the command name
            return pool.get_connection("PING")

    def _connections_opened(self):
        conns = getattr(self.client.connection_pool, "_connections", None)
        return len(conns) if isinstance(conns, list) else None

    def close(self):
        try:
            self.client.connection_pool.disconnect()
        except Exception:  # pylint: disable=broad-except
            pass


def health_item(params):
    expression = params["health_expression"]
    source = params["ready_source"]
    compiled = jmespath_expression("health_expression", expression) if expression else None
    body = params["ready_body"]
    if not expression:
        return check_item(SKIP, "not configured: the service does not show Redis (health_expression is empty)",
                          {"expression": None, "source": source})
    if body is None or body == "":
        return check_item(FAIL, "no readiness body to read: the readiness probe returned none (see HEALTH-READY)",
                          {"expression": expression, "source": source})
    if not isinstance(body, (dict, list)):
        body = parse_json(str(body))
    return assertion_item("REDIS-HEALTH", expression, compiled, body, source)


def resolve_params(params):
    """Module params with the URL taken from env_file when one is given and url is empty."""
    resolved = dict(params)
    if params.get("env_file") and not params.get("url"):
        name, value = envfile.first_of("env_file", params["env_file"], params["env_file_vars"])
        resolved["url"] = value
        resolved["_url_source"] = "%s in %s" % (name, params["env_file"])
    for name in ("pool_size", "pool_rounds", "key_ttl"):
        if params[name] < 1:
            raise ParameterError(name, "must be at least 1, got %d" % params[name])
    if params["pool_size"] > 500:
        raise ParameterError("pool_size", "at most 500 concurrent clients, got %d" % params["pool_size"])
    if not params["key_prefix"]:
        raise ParameterError("key_prefix", "must not be empty: the probe key needs its own namespace")
    if "info" in params["checks"] and "ping" not in params["checks"]:
        raise ParameterError("checks", "info is reported on the PING item: select ping as well")
    return resolved


def main():
    argument_spec = redis_argument_spec()
    argument_spec.update(
        checks=dict(type="list", elements="str", choices=["ping", "info", "ops", "pool", "health"],
                    default=["ping", "info", "ops", "pool"]),
        ping_id=dict(type="str", choices=["REDIS-PING", "REDIS-APP-PING"], default="REDIS-PING"),
        env_file=dict(type="path"),
        env_file_vars=dict(type="list", elements="str", default=["REDIS_URL", "HUNTER_REDIS_URL"]),
        key_prefix=dict(type="str", default="hunter-ops:probe:", no_log=False),
        key_ttl=dict(type="int", default=30, no_log=False),
        pool_size=dict(type="int", default=10),
        pool_rounds=dict(type="int", default=10),
        pool_p99_warn_ms=dict(type="float"),
        info_memory_warn_pct=dict(type="float", default=90),
        info_clients_warn_pct=dict(type="float", default=80),
        info_ignore=dict(type="list", elements="str", choices=list(FINDING_CODES), default=[]),
        ready_body=dict(type="raw"),
        ready_source=dict(type="str", default="readiness body fetched by health_check"),
        health_expression=dict(type="str", default="redis.status == 'ok'"),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=REDIS_MUTUALLY_EXCLUSIVE + [("url", "env_file"), ("host", "env_file"),
                                                       ("unix_socket", "env_file")],
        supports_check_mode=True,
    )
    params = module.params
    secret.protect(module)
    selected = list(dict.fromkeys(params["checks"]))
    connected = [c for c in selected if c in CONNECTED_CHECKS]
    if connected and not HAS_REDIS:
        module.fail_json(msg=missing_required_lib("redis"))

    results = {}
    try:
        resolved = resolve_params(params)
        if resolved.get("_url_source"):
            secret.register(module, resolved["url"])  # read from the app's env file: its password too
        if "health" in selected:
            results["REDIS-HEALTH"] = health_item(params)
        target = target_from_params(resolved) if connected else None
    except ParameterError as err:
        module.fail_json(msg=str(err), checks=results)

    if connected:
        probe = RedisProbe(target, resolved, module.check_mode)
        try:
            plan = [("ping", params["ping_id"], lambda: probe.ping("info" in selected)),
                    ("ops", "REDIS-OPS", probe.ops), ("pool", "REDIS-POOL", probe.pool)]
            for name, check_id, run in plan:
                if name not in selected:
                    continue
                results[check_id] = probe._not_attempted() if probe.dead else run()
                if resolved.get("_url_source"):
                    results[check_id]["evidence"]["settings_from"] = resolved["_url_source"]
            if resolved.get("_url_source") and params["ping_id"] in results:
                results[params["ping_id"]]["message"] += " (settings from %s)" % resolved["_url_source"]
        finally:
            probe.close()
    module.exit_json(changed=False, checks=json.loads(json.dumps(results, default=str)))


if __name__ == "__main__":
    main()

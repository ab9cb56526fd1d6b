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
  - A bad value fails exactly the items that use it (a bad port the items that connect, a bad O(pool_size) only
    V(REDIS-POOL)), each naming every bad option it uses as O(param_labels) gives it; the other items run.
  - C(community.general.redis_info) is not used because it has no timeouts (a silent port would hang the
    play), no URL, unix socket or database options.
author:
  - hunter.ops contributors (@hunter-ops)
extends_documentation_fragment:
  - hunter.ops.redis
  - hunter.ops.param_labels
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
      - A list of V(ping), V(info), V(ops), V(pool), V(health) (or a comma-separated string); an unknown name fails
        every item this call could report, since which one was meant cannot be told.
    type: raw
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
        first variable of O(env_file_vars) set in it, so REDIS-APP-PING uses exactly what the application uses.
        Mutually exclusive with O(url), O(host) and O(unix_socket).
      - When none of the variables is set there (nor in the process environment of O(pidfile)), the item fails
        saying where it looked; the inventory's copy of the URL is never used instead.
    type: path
  pidfile:
    description:
      - Pidfile of the running application; the Redis URL is read from its process environment first
        (C(/proc/<pid>/environ), which needs the application's user or root), then from O(env_file). The lookup
        is the one M(hunter.ops.dependency_diag) uses for C(HEALTH-DIAG).
    type: path
  env_file_vars:
    description:
      - Variable names holding the Redis URL in the process environment of O(pidfile) and in O(env_file), tried in
        order.
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
      - A whole number of at least 1; a bad value fails V(REDIS-OPS) only.
    type: raw
    default: 30
  pool_size:
    description:
      - V(pool) runs this many clients (threads) concurrently through one connection pool of this size. Each
        sends one untimed PING that opens its connection, then O(pool_rounds) timed PINGs.
      - All commands must succeed; the evidence shows p50/p99/max latency of the timed ones.
      - A whole number from 1 to 500; a bad value fails V(REDIS-POOL) only.
    type: raw
    default: 10
  pool_rounds:
    description:
      - How many timed PINGs each V(pool) client sends, one after another (more samples for the percentiles).
      - A whole number of at least 1; a bad value fails V(REDIS-POOL) only.
    type: raw
    default: 10
  pool_p99_warn_ms:
    description:
      - V(REDIS-POOL) is V(warn) when the p99 latency exceeds this many milliseconds. No budget when unset.
      - A number; a bad value fails V(REDIS-POOL) only.
    type: raw
  info_memory_warn_pct:
    description:
      - INFO finding V(memory_high) when used memory reaches this percentage of C(maxmemory).
      - A number; a bad value fails the ping item only, when V(info) is selected.
    type: raw
    default: 90
  info_clients_warn_pct:
    description:
      - INFO finding V(clients_high) when connected clients reach this percentage of C(maxclients).
      - A number; a bad value fails the ping item only, when V(info) is selected.
    type: raw
    default: 80
  info_ignore:
    description:
      - INFO finding codes not to report (for example V(noeviction) for a Redis used as a queue).
      - A list of V(memory_high), V(noeviction), V(evicted_keys), V(rejected_connections), V(clients_high),
        V(rdb_bgsave_failed), V(aof_write_failed), V(aof_rewrite_failed), V(replica), V(replica_link_down),
        V(loading); an unknown code fails the ping item only, when V(info) is selected.
    type: raw
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
        expression HEALTH-REDIS uses). Empty means no expression is configured, and the item is V(skip) (not
        checked). A bad expression fails V(REDIS-HEALTH) only.
    type: str
    default: "redis.status == 'ok'"
notes:
  - Needs the Python library C(redis) (redis-py) on the host running the module, and C(jmespath) for V(health).
    Without redis-py, a call that selects V(health) too fails only its Redis items; C(REDIS-HEALTH) is judged.
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

- name: PING with the application's own settings, from its process environment, then its environment file
  hunter.ops.redis_probe:
    checks: [ping]
    ping_id: REDIS-APP-PING
    pidfile: /run/hunter/hunter.pid
    env_file: /etc/hunter/hunter.env

- name: REDIS-HEALTH from the readiness body health_check fetched
  hunter.ops.redis_probe:
    checks: [health]
    ready_body: "{{ hunter_ops_ready_body }}"
'''

RETURN = r'''
input_problems:
  description: Every bad value, named as O(param_labels) gives it (null when none); each also fails the items
    that use it.
  returned: always
  type: str
  sample: "hunter_redis_port (redis_check_port): port must be a number between 1 and 65535, got 'sixthousand'"
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

from ansible_collections.hunter.ops.plugins.module_utils import secret, validate
from ansible_collections.hunter.ops.plugins.module_utils.app_settings import AppSettings, SettingUnknown
from ansible_collections.hunter.ops.plugins.module_utils.health import assertion_item, parse_json
from ansible_collections.hunter.ops.plugins.module_utils.redis_client import (
    CONNECTION_OPTIONS, HAS_REDIS, REDIS_MUTUALLY_EXCLUSIVE, classify, redis_argument_spec, target_from_params,
    validate_connection,
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


CHECK_NAMES = ("ping", "info", "ops", "pool", "health")
CHECK_IDS = {"ops": "REDIS-OPS", "pool": "REDIS-POOL", "health": "REDIS-HEALTH"}
APP_SETTINGS_OPTIONS = ("env_file", "env_file_vars", "pidfile")
# The options each check uses besides the connection: a bad one fails that check only.
CHECK_OPTIONS = {
    "ping": ("info_memory_warn_pct", "info_clients_warn_pct", "info_ignore"),
    "ops": ("key_prefix", "key_ttl"),
    "pool": ("pool_size", "pool_rounds", "pool_p99_warn_ms"),
    "health": ("ready_body", "ready_source", "health_expression"),
}


def health_item(params, problems=None):
    expression = params["health_expression"]
    source = params["ready_source"]
    if problems is not None and problems.bad("health_expression"):
        return check_item(FAIL, problems.message("health_expression"), {"expression": expression, "source": source})
    compiled = jmespath_expression("health_expression", expression) if expression else None
    body = params["ready_body"]
    if not expression:
        return check_item(SKIP, "not checked: no expression for the Redis status in the readiness body is "
                                "configured (%s is empty)" % (problems.label("health_expression") if problems
                                                              else "health_expression"),
                          {"expression": None, "source": source})
    if body is None or body == "":
        return check_item(FAIL, "no readiness body to read: the readiness probe returned none (see HEALTH-READY)",
                          {"expression": expression, "source": source})
    if not isinstance(body, (dict, list)):
        body = parse_json(str(body))
    return assertion_item("REDIS-HEALTH", expression, compiled, body, source)


def check_values(params, problems):
    """The checks' own options, type-checked; every bad value goes to ``problems``. Returns params with
    converted values (None for a bad one)."""
    checked = dict(params)
    checked["pool_size"] = problems.check("pool_size", validate.integer, params["pool_size"], minimum=1, maximum=500)
    checked["pool_rounds"] = problems.check("pool_rounds", validate.integer, params["pool_rounds"], minimum=1)
    checked["key_ttl"] = problems.check("key_ttl", validate.integer, params["key_ttl"], minimum=1)
    if params.get("pool_p99_warn_ms") not in (None, ""):
        checked["pool_p99_warn_ms"] = problems.check("pool_p99_warn_ms", validate.positive_number,
                                                     params["pool_p99_warn_ms"], allow_zero=True)
    for name in ("info_memory_warn_pct", "info_clients_warn_pct"):
        checked[name] = problems.check(name, validate.positive_number, params[name], allow_zero=True)
    checked["info_ignore"] = problems.check("info_ignore", validate.string_list, params["info_ignore"],
                                            choices=FINDING_CODES)
    if not params["key_prefix"]:
        problems.add("key_prefix", "must not be empty: the probe key needs its own namespace")
    if params.get("health_expression"):
        problems.check("health_expression", jmespath_expression, params["health_expression"])
    return checked


def app_url(params):
    """(url, origin, evidence) of the application's Redis from its own settings (process environment, then env
    file; REDIS-APP-PING and HEALTH-DIAG share the lookup); raises SettingUnknown."""
    settings = AppSettings(params.get("pidfile"), [params["env_file"]] if params.get("env_file") else [])
    found = settings.lookup(params["env_file_vars"])
    return found.value, found.origin, found.evidence


def owned_ids(selected, ping_id):
    return ([ping_id] if "ping" in selected else []) + [CHECK_IDS[c] for c in selected if c in CHECK_IDS]


def main():
    argument_spec = redis_argument_spec()
    argument_spec.update(
        checks=dict(type="raw", default=["ping", "info", "ops", "pool"]),
        ping_id=dict(type="str", choices=["REDIS-PING", "REDIS-APP-PING"], default="REDIS-PING"),
        env_file=dict(type="path"),
        env_file_vars=dict(type="list", elements="str", default=["REDIS_URL", "HUNTER_REDIS_URL"]),
        pidfile=dict(type="path"),
        key_prefix=dict(type="str", default="hunter-ops:probe:", no_log=False),
        key_ttl=dict(type="raw", default=30, no_log=False),
        pool_size=dict(type="raw", default=10),
        pool_rounds=dict(type="raw", default=10),
        pool_p99_warn_ms=dict(type="raw"),
        info_memory_warn_pct=dict(type="raw", default=90),
        info_clients_warn_pct=dict(type="raw", default=80),
        info_ignore=dict(type="raw", default=[]),
        ready_body=dict(type="raw"),
        ready_source=dict(type="str", default="readiness body fetched by health_check"),
        health_expression=dict(type="str", default="redis.status == 'ok'"),
        param_labels=dict(type="dict", default={}),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=REDIS_MUTUALLY_EXCLUSIVE + [("url", "env_file"), ("host", "env_file"),
                                                       ("unix_socket", "env_file"), ("url", "pidfile"),
                                                       ("host", "pidfile"), ("unix_socket", "pidfile")],
        supports_check_mode=True,
    )
    params = module.params
    secret.protect(module)
    problems = validate.InputProblems(params.get("param_labels"))
    ping_id = params["ping_id"]
    selected = problems.check("checks", validate.string_list, params["checks"], choices=CHECK_NAMES)
    if selected is not None and "info" in selected and "ping" not in selected:
        problems.add("checks", "info is reported on the PING item: select ping as well")
    if selected is None or problems.bad("checks"):
        # Which items were meant cannot be told: every item this call could own fails (a control-side
        # call owns PING, OPS and POOL; an application-side one its ping ID and the names it gave).
        given = params["checks"] if isinstance(params["checks"], list) else str(params["checks"]).split(",")
        given = [str(name).strip() for name in given]
        if ping_id == "REDIS-PING" and "health" not in given:
            ids = ["REDIS-PING", "REDIS-OPS", "REDIS-POOL"]
        else:
            ids = owned_ids([name for name in given if name in CHECK_NAMES], ping_id) or [ping_id]
        module.exit_json(changed=False, checks=dict((i, check_item(FAIL, problems.message("checks"), {}))
                                                    for i in ids))
    selected = list(dict.fromkeys(selected))
    connected = [c for c in selected if c in CONNECTED_CHECKS and c != "info"]
    results = {}
    if connected and not HAS_REDIS:
        if "health" not in selected:
            module.fail_json(msg=missing_required_lib("redis"))
        # REDIS-HEALTH reads the readiness body and needs no redis-py: only the Redis items fail.
        results = dict((check_id, check_item(FAIL, missing_required_lib("redis"), {"library": "redis"}))
                       for name, check_id in (("ping", ping_id), ("ops", "REDIS-OPS"), ("pool", "REDIS-POOL"))
                       if name in selected)
        connected = []

    values = check_values(params, problems)
    if "health" in selected:
        results["REDIS-HEALTH"] = health_item(params, problems)

    # The connection: the application's own settings (REDIS-APP-PING) or the given ones.
    resolved = validate_connection(values, problems)
    settings_from, settings_evidence, unknown = None, {}, None
    if connected and (params.get("env_file") or params.get("pidfile")):
        try:
            resolved["url"], settings_from, settings_evidence = app_url(params)
            secret.register(module, resolved["url"])  # read from the app's settings: its password too
        except SettingUnknown as err:
            unknown = "the application's Redis settings were not read: %s" % err
    target, target_error = None, None
    if connected and not unknown and not problems.bad(*CONNECTION_OPTIONS):
        try:
            target = target_from_params(resolved)
        except ParameterError as err:
            if settings_from:  # the application's own URL is malformed
                target_error = "the application's %s is not a valid Redis URL: %s" % (settings_from, err.problem)
            else:
                problems.add(err.param, err.problem)

    if connected:
        if target is None:
            bad_connection = problems.bad(*CONNECTION_OPTIONS)
            for name, check_id in (("ping", ping_id), ("ops", "REDIS-OPS"), ("pool", "REDIS-POOL")):
                if name not in selected:
                    continue
                why = unknown or target_error or problems.message(*(list(bad_connection) + list(CHECK_OPTIONS[name])))
                results[check_id] = check_item(FAIL, why, dict(settings_evidence, bad_options=sorted(
                    problems.bad(*(CONNECTION_OPTIONS + CHECK_OPTIONS[name])))))
        else:
            probe = RedisProbe(target, dict(values, pool_size=values["pool_size"] or 10), module.check_mode)
            try:
                plan = [("ping", ping_id, lambda: probe.ping("info" in selected)),
                        ("ops", "REDIS-OPS", probe.ops), ("pool", "REDIS-POOL", probe.pool)]
                for name, check_id, run in plan:
                    if name not in selected:
                        continue
                    own = problems.bad(*CHECK_OPTIONS[name]) if (name != "ping" or "info" in selected) else []
                    if own:
                        results[check_id] = check_item(FAIL, problems.message(*own), dict(
                            target.evidence(), bad_options=sorted(own)))
                    else:
                        results[check_id] = probe._not_attempted() if probe.dead else run()
                    if settings_from:
                        results[check_id]["evidence"].update(settings_evidence)
                if settings_from and ping_id in results:
                    results[ping_id]["message"] += " (settings from %s)" % settings_from
                elif ping_id != "REDIS-PING" and ping_id in results:
                    # the inventory's copy of the application's URL: it may differ from what the app uses
                    results[ping_id]["message"] += (" (with the inventory's copy of the application's Redis URL, "
                                                    "not its own settings: give its pidfile or env file)")
            finally:
                probe.close()
    module.exit_json(changed=False, checks=json.loads(json.dumps(results, default=str)),
                     input_problems=problems.message() or None)


if __name__ == "__main__":
    main()

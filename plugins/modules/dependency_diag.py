#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: dependency_diag
short_description: Name the dependency that keeps a service from being ready (HEALTH-DIAG)
version_added: 0.1.0
description:
  - Run on the application host when the readiness or startup probe failed (CHECKLIST 6.1 C(HEALTH-DIAG)).
  - Concurrently runs C(SELECT 1) on the application's database and C(PING) on the application's Redis,
    with the application's own connection settings, and reports one item C(HEALTH-DIAG) naming the
    dependency that is down (C(database unreachable ...), C(redis - authentication failed ...), or both),
    or, when both answer, that the service itself is failing.
  - Read-only; every connection has a timeout. Passwords are never shown.
author:
  - hunter.ops contributors (@hunter-ops)
extends_documentation_fragment:
  - hunter.ops.postgres
options:
  redis_url:
    description:
      - The application's Redis URL, V(redis://[[user]:password@]host:port/db), V(rediss://...) for TLS, or
        V(unix:///path/to/redis.sock?db=N).
      - May hold the password; never shown (the evidence shows the server and database only).
      - Read and checked by the same code as M(hunter.ops.redis_probe), so a fault gives the same message
        as C(REDIS-APP-PING).
      - When empty, Redis is not checked.
    type: str
  redis_timeout:
    description:
      - Seconds to wait for the Redis connection and for its answer.
    type: float
    default: 5
  redis_ca_path:
    description:
      - CA certificate file to verify a V(rediss://) server.
    type: path
notes:
  - The database part is checked when any of O(db_host), O(db_name) or O(db_user) is set.
  - Uses the Python libraries psycopg and redis on the host running the module; a missing library is
    reported in the item (naming the library), not as a module failure.
  - Supports check mode (nothing is changed in either mode).
requirements:
  - redis (redis-py) >= 4 on the host running the module
seealso:
  - module: hunter.ops.health_probe
  - module: hunter.ops.redis_probe
'''

EXAMPLES = r'''
- name: Which dependency is down?
  hunter.ops.dependency_diag:
    db_host: "{{ hunter_app_db_host }}"
    db_port: "{{ hunter_app_db_port }}"
    db_name: "{{ hunter_app_db_name }}"
    db_user: "{{ hunter_app_db_user }}"
    db_password: "{{ hunter_app_db_password }}"
    redis_url: "{{ hunter_app_redis_url }}"
  register: diag
'''

RETURN = r'''
checks:
  description: The item C(HEALTH-DIAG) (C(status), C(message), C(evidence) with one entry per dependency).
  returned: always
  type: dict
  sample:
    HEALTH-DIAG:
      status: fail
      message: "redis: authentication failed at 10.0.0.6:6379 db 0: invalid username-password pair or user is disabled"
      evidence:
        database: {target: "hunter@10.0.0.5:5432/hunter", ok: true, result: "SELECT 1 returned 1", duration_ms: 8.1}
        redis: {target: "10.0.0.6:6379 db 0", ok: false, kind: auth, error: "authentication failed at ...",
                duration_ms: 1.2}
down:
  description: Names of the dependencies found down (V(database), V(redis)).
  returned: always
  type: list
  elements: str
  sample: [redis]
'''

import threading

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hunter.ops.plugins.module_utils import pg, secret, validate
from ansible_collections.hunter.ops.plugins.module_utils.redact import redact_text
from ansible_collections.hunter.ops.plugins.module_utils.redis_client import (
    CONNECTION_KINDS, HAS_REDIS, classify, target_from_url,
)
from ansible_collections.hunter.ops.plugins.module_utils.results import FAIL, SKIP, WARN, Stopwatch, check_item


def check_database(kwargs):
    """SELECT 1 with the app's settings: a dict {target, ok, result|error, kind, duration_ms}."""
    part = {"target": pg.describe(kwargs), "query": "SELECT 1"}
    with Stopwatch() as sw:
        try:
            if not pg.HAS_PSYCOPG:
                raise pg.PgError("the Python library psycopg is not installed on this host", kind="library")
            rows = pg.query(kwargs, "SELECT 1")
            part.update(ok=True, result="SELECT 1 returned %s" % (rows[0][0] if rows else None))
        except pg.PgError as err:
            part.update(ok=False, error=str(err), kind=err.kind)
    part["duration_ms"] = round(sw.ms, 1)
    return part


def check_redis(target):
    """PING with the app's Redis settings: a dict {target, ok, result|error, kind, duration_ms}.

    Through redis_client, like REDIS-APP-PING: the same connection options (ACL user, TLS,
    database, redis-py's retries off so a dead server costs one timeout) and the same error
    messages for the same fault.
    """
    part = {"target": target.describe(), "command": "PING"}
    with Stopwatch() as sw:
        if not HAS_REDIS:
            part.update(ok=False, kind="library",
                        error="the Python library redis (redis-py) is not installed on this host")
        else:
            client = target.client(max_connections=1)
            try:
                answer = client.ping()
                part.update(ok=answer is True, result="PONG" if answer is True else repr(answer))
            except Exception as err:  # pylint: disable=broad-except
                failure = classify(err, target)
                part.update(ok=False, kind=failure.kind, error=failure.message)
            finally:
                client.connection_pool.disconnect()
    part["duration_ms"] = round(sw.ms, 1)
    return part


def _database_problem(part):
    short = pg.short_error(part["error"])
    if part.get("kind") == "auth":
        return "database: authentication failed for %s (%s)" % (part["target"], short)
    if part.get("kind") == "library":
        return "database not checked: %s" % short
    if part.get("kind") in ("refused", "timeout"):
        return "database unreachable: %s (%s)" % (short, part["target"])
    return "database: %s (%s)" % (short, part["target"])


def _redis_problem(part):
    kind, error = part.get("kind"), part.get("error") or part.get("result")
    if kind == "library":
        return "redis not checked: %s" % error
    if part["target"] not in error:  # redis_client's messages mostly name the server already
        error = "%s (%s)" % (error, part["target"])
    if kind in CONNECTION_KINDS and kind != "auth":
        return "redis unreachable: %s" % error
    return "redis: %s" % error


def diagnose(database, redis_part):
    """The HEALTH-DIAG item from the two parts (None = not configured). Pure."""
    evidence = {"database": database or {"checked": False, "reason": "not configured"},
                "redis": redis_part or {"checked": False, "reason": "not configured"}}
    if database is None and redis_part is None:
        return check_item(SKIP, "not configured: no database or Redis settings for the application", evidence), []
    problems, down = [], []
    if database is not None and not database["ok"]:
        down.append("database")
        problems.append(_database_problem(database))
    if redis_part is not None and not redis_part["ok"]:
        down.append("redis")
        problems.append(_redis_problem(redis_part))
    if len(down) == 2:
        return check_item(FAIL, "both dependencies are down: %s" % "; ".join(problems), evidence), down
    if down:
        return check_item(FAIL, problems[0], evidence), down
    checked = [name for name, part in (("database", database), ("redis", redis_part)) if part is not None]
    if len(checked) == 2:
        message = "both dependencies answer: the service itself is failing"
    else:
        message = "%s answers (%s not configured): look at the service itself" % (
            checked[0], "redis" if checked[0] == "database" else "database")
    return check_item(WARN, message, evidence), down


def main():
    argument_spec = pg.pg_argument_spec()
    argument_spec.update(
        redis_url=dict(type="str", no_log=True),
        redis_timeout=dict(type="float", default=5),
        redis_ca_path=dict(type="path"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    secrets = secret.protect(module)  # db_password, redis_url and the password inside it

    try:
        db_configured = any(params.get(k) for k in ("db_host", "db_name", "db_user"))
        db_kwargs = pg.connect_kwargs(params) if db_configured else None
        redis_url = (params.get("redis_url") or "").strip() or None
        redis_timeout = validate.positive_number("redis_timeout", params["redis_timeout"])
        if params.get("redis_ca_path"):
            validate.existing_path("redis_ca_path", params["redis_ca_path"])
        redis_target = target_from_url("redis_url", redis_url, redis_timeout,
                                       params.get("redis_ca_path")) if redis_url else None
    except validate.ParameterError as err:
        module.fail_json(msg=redact_text(str(err), secrets))

    parts = {}

    def run(name, func, *args):
        parts[name] = func(*args)

    threads = []
    if db_kwargs is not None:
        threads.append(threading.Thread(target=run, args=("database", check_database, db_kwargs)))
    if redis_target is not None:
        threads.append(threading.Thread(target=run, args=("redis", check_redis, redis_target)))
    with Stopwatch() as total:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    item, down = diagnose(parts.get("database"), parts.get("redis"))
    item["evidence"]["duration_ms"] = round(total.ms, 1)
    module.exit_json(changed=False, checks={"HEALTH-DIAG": item}, down=down)


if __name__ == "__main__":
    main()

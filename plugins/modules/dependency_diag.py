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
    with the application's own settings, and reports one item C(HEALTH-DIAG) naming the dependency that is
    down (C(database unreachable ...), C(redis unreachable ...), or both). When both answer it says so, and that
    readiness failed for another reason.
  - The application's own settings are read where the application reads them - its process environment
    (O(pidfile)) and its environment files (O(env_files)), by the same lookup C(REDIS-APP-PING) uses
    (M(hunter.ops.redis_probe) with the same O(pidfile) and env file), so the two items never judge different
    servers. Only when neither source is given, the settings passed here (O(redis_url), O(db_host) ...) are used.
  - A dependency that could not be checked (its library missing, its settings unknown) is reported as not checked,
    never as down.
  - A bad value fails the item with one message naming every bad option (under the name O(param_labels)
    gives); the dependency whose settings are fine is still checked and reported.
  - Read-only; every connection has a timeout. Passwords are never shown.
author:
  - hunter.ops contributors (@hunter-ops)
extends_documentation_fragment:
  - hunter.ops.param_labels
options:
  needed:
    description:
      - Whether the diagnosis is needed this run (readiness or startup failed). When V(false), only the settings
        are validated - C(HEALTH-DIAG) is V(skip) with O(not_needed_reason), or V(fail) naming every bad value, so
        a bad setting is found before the night it is needed.
      - Such a run observes nothing on the host, so its action plugin validates the settings on the controller,
        with this module's own argument spec and checks, and the module does not run on the host; unless
        O(redis_ca_path) or O(db_sslrootcert) is set (the file must exist on the host).
    type: bool
    default: true
  not_needed_reason:
    description:
      - The skip message when O(needed=false).
    type: str
    default: "not needed: ready and startup passed"
  pidfile:
    description:
      - Pidfile of the running application; its process environment (C(/proc/<pid>/environ)) is the first place
        the application's settings are read from. Needs the application's user or root.
    type: path
  env_files:
    description:
      - The application's environment files (C(KEY=value) lines; a compose C(.env), a systemd
        C(EnvironmentFile), a C(.env) the application loads itself); later files win, a process variable wins
        over a file. A path starting with C(-) may be missing.
    type: list
    elements: path
    default: []
  redis_env_vars:
    description:
      - Variables holding the application's Redis URL in its process environment or environment files, tried in
        order. Empty to use O(redis_url) even when O(pidfile) or O(env_files) is given.
    type: list
    elements: str
    default: [REDIS_URL, HUNTER_REDIS_URL]
  db_env_vars:
    description:
      - Variables holding the application's database URL or libpq connection string (C(postgresql://...),
        C(postgresql+psycopg://...) or C(host=... dbname=...)) in its process environment or environment files,
        tried in order. Empty to use the O(db_host) ... options even when O(pidfile) or O(env_files) is given.
    type: list
    elements: str
    default: [DATABASE_URL, HUNTER_DATABASE_URL]
  redis_url:
    description:
      - The application's Redis URL when no settings source is given (the inventory's copy),
        V(redis://[[user]:password@]host:port/db), V(rediss://...) for TLS, or V(unix:///path/to/redis.sock?db=N).
      - May hold the password; never shown (the evidence shows the server and database only).
      - Read and checked by the same code as M(hunter.ops.redis_probe), so a fault gives the same message
        as C(REDIS-APP-PING).
      - When empty (and no source gives a URL), Redis is not checked.
    type: str
  redis_timeout:
    description:
      - Seconds to wait for the Redis connection and for its answer (a number greater than 0).
    type: raw
    default: 5
  redis_ca_path:
    description:
      - CA certificate file to verify a V(rediss://) server.
    type: path
  db_host:
    description:
      - The application's database host when no settings source is given (the inventory's copy).
    type: str
  db_port:
    description:
      - Its port (a number between 1 and 65535).
    type: raw
    default: 5432
  db_name:
    description:
      - Its database.
    type: str
  db_user:
    description:
      - Its role.
    type: str
  db_password:
    description:
      - Its password; never shown, passed to libpq as a connection keyword.
    type: str
  db_sslmode:
    description:
      - libpq C(sslmode) (V(disable), V(allow), V(prefer), V(require), V(verify-ca), V(verify-full)), unless the
        application's connection string sets one.
    type: str
    default: prefer
  db_sslrootcert:
    description:
      - CA certificate file for O(db_sslmode=verify-ca) or V(verify-full).
    type: path
  db_connect_timeout:
    description:
      - Seconds to wait for the database connection (a whole number; libpq counts at least 2).
    type: raw
    default: 5
  db_statement_timeout:
    description:
      - Seconds the C(SELECT 1) may run (a whole number; V(0) means no limit).
    type: raw
    default: 30
notes:
  - The database part is checked when a settings source gives the application's database URL, or any of
    O(db_host), O(db_name) or O(db_user) is set.
  - Uses the Python libraries psycopg and redis on the host running the module; a missing library is
    reported in the item as not checked (naming the library), not as a module failure.
  - Supports check mode (nothing is changed in either mode).
requirements:
  - redis (redis-py) >= 4 and psycopg >= 3.1 on the host running the module
seealso:
  - module: hunter.ops.health_probe
  - module: hunter.ops.redis_probe
'''

EXAMPLES = r'''
- name: Which dependency is down? (settings the application really uses)
  hunter.ops.dependency_diag:
    pidfile: /run/hunter/hunter.pid
    env_files: [/etc/hunter/hunter.env]
  register: diag

- name: Which dependency is down? (settings from the inventory)
  hunter.ops.dependency_diag:
    db_host: "{{ hunter_app_db_host }}"
    db_port: "{{ hunter_app_db_port }}"
    db_name: "{{ hunter_app_db_name }}"
    db_user: "{{ hunter_app_db_user }}"
    db_password: "{{ hunter_app_db_password }}"
    redis_url: "{{ hunter_app_redis_url }}"
    param_labels:
      db_port: hunter_app_db_port
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
        database: {target: "hunter@10.0.0.5:5432/hunter", ok: true, result: "SELECT 1 returned 1", duration_ms: 8.1,
                   settings_from: "environment file /etc/hunter/hunter.env", variable: DATABASE_URL}
        redis: {target: "10.0.0.6:6379 db 0", ok: false, kind: auth, error: "authentication failed at ...",
                duration_ms: 1.2, settings_from: "environment file /etc/hunter/hunter.env", variable: REDIS_URL}
down:
  description: Names of the dependencies found down (V(database), V(redis)); never one that was not checked.
  returned: always
  type: list
  elements: str
  sample: [redis]
'''

import threading

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hunter.ops.plugins.module_utils import diag_settings, pg, secret, validate
from ansible_collections.hunter.ops.plugins.module_utils.app_settings import AppSettings, SettingUnknown
from ansible_collections.hunter.ops.plugins.module_utils.redact import redact_text
from ansible_collections.hunter.ops.plugins.module_utils.results import FAIL, SKIP, WARN, Stopwatch, check_item


# redis-py and psycopg are imported only when a diagnosis runs: most runs need none, and their
# imports cost more CPU than the rest of this module on every application host (bench/README.md
# "Scale"). Ansible still ships redis_client in the module's payload (it scans function bodies).
def _redis_client():
    from ansible_collections.hunter.ops.plugins.module_utils import redis_client
    return redis_client


def _conninfo_to_dict():
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:  # reported as "database not checked" by check_database
        return None
    return conninfo_to_dict


# Kinds of a part that could not be checked: reported as not checked, never as down.
NOT_CHECKED_KINDS = ("library", "unknown")
DB_OPTIONS = ("db_host", "db_port", "db_name", "db_user", "db_password", "db_sslmode", "db_sslrootcert",
              "db_connect_timeout", "db_statement_timeout", "db_env_vars")
REDIS_OPTIONS = ("redis_url", "redis_timeout", "redis_ca_path", "redis_env_vars")


def check_database(kwargs):
    # SELECT 1 with the app's settings: a dict {target, ok, result|error, kind, duration_ms}.
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
    # PING with the app's Redis settings: a dict {target, ok, result|error, kind, duration_ms}.
    #
    # Through redis_client, like REDIS-APP-PING: the same connection options (ACL user, TLS,
    # database, redis-py's retries off so a dead server costs one timeout) and the same error
    # messages for the same fault.
    part = {"target": target.describe(), "command": "PING"}
    with Stopwatch() as sw:
        if not _redis_client().HAS_REDIS:
            part.update(ok=False, kind="library",
                        error="the Python library redis (redis-py) is not installed on this host")
        else:
            client = target.client(max_connections=1)
            try:
                answer = client.ping()
                part.update(ok=answer is True, result="PONG" if answer is True else repr(answer))
            except Exception as err:  # pylint: disable=broad-except
                failure = _redis_client().classify(err, target)
                part.update(ok=False, kind=failure.kind, error=failure.message)
            finally:
                client.connection_pool.disconnect()
    part["duration_ms"] = round(sw.ms, 1)
    return part


def not_checked(reason, **evidence):
    # A part that could not be checked, with the reason: never counted as down.
    return dict(evidence, ok=False, checked=False, kind="unknown", reason=reason)


def _checked(part):
    return part is not None and part.get("kind") not in NOT_CHECKED_KINDS


def _database_problem(part):
    short = pg.short_error(part["error"])
    if part.get("kind") == "auth":
        return "database: authentication failed for %s (%s)" % (part["target"], short)
    if part.get("kind") in ("refused", "timeout"):
        return "database unreachable: %s (%s)" % (short, part["target"])
    if part.get("kind") == "settings":
        return "database: %s" % part["error"]
    return "database: %s (%s)" % (short, part["target"])


def _redis_problem(part):
    kind, error = part.get("kind"), part.get("error") or part.get("result")
    if kind == "settings":
        return "redis: %s" % error
    if part["target"] not in error:  # redis_client's messages mostly name the server already
        error = "%s (%s)" % (error, part["target"])
    if kind in _redis_client().CONNECTION_KINDS and kind != "auth":
        return "redis unreachable: %s" % error
    return "redis: %s" % error


def _unchecked_note(name, part):
    return "%s not checked: %s" % (name, part.get("reason") or part.get("error"))


def diagnose(database, redis_part):
    # The HEALTH-DIAG item from the two parts (None = not configured). Pure.
    evidence = {"database": database or {"checked": False, "reason": "not configured"},
                "redis": redis_part or {"checked": False, "reason": "not configured"}}
    named = (("database", database), ("redis", redis_part))
    if database is None and redis_part is None:
        return check_item(SKIP, "not configured: no database or Redis settings for the application", evidence), []
    down = [name for name, part in named if _checked(part) and not part["ok"]]
    problems = [_database_problem(database) if name == "database" else _redis_problem(redis_part) for name in down]
    notes = [_unchecked_note(name, part) for name, part in named if part is not None and not _checked(part)]
    # Say whose settings were used: the inventory's copy may differ from what the application uses.
    copied = [name for name, part in named
              if _checked(part) and str(part.get("settings_from", "")).startswith("the inventory")]
    copy_note = ("%s checked with the inventory's copy of the settings, not the application's own (give its "
                 "pidfile or env file)" % " and ".join(copied)) if copied else None
    if down:
        message = problems[0] if len(down) == 1 else "both dependencies are down: %s" % "; ".join(problems)
        return check_item(FAIL, "; ".join([message] + notes + ([copy_note] if copy_note else [])), evidence), down
    answering = [name for name, part in named if _checked(part)]
    unconfigured = ["%s not configured" % name for name, part in named if part is None]
    if not answering:
        return check_item(SKIP, "; ".join(notes + unconfigured), evidence), down
    if len(answering) == 2 and not copied:
        message = ("both dependencies answer with the application's settings (SELECT 1, PING): readiness "
                   "failed for another reason")
    elif len(answering) == 2:
        message = "both dependencies answer (SELECT 1, PING); %s" % copy_note
    else:
        message = "%s answers (%s)" % (answering[0], "; ".join(notes + unconfigured + ([copy_note] if copy_note else [])))
    return check_item(WARN, message, evidence), down


def database_settings(params, problems, settings, secrets):
    # ("run", connect kwargs, evidence) for the app's database, ("part", part, None) when it cannot be
    # checked (settings unknown or malformed), (None, None, None) when not configured or a value is bad.
    names = params.get("db_env_vars") or []
    origin = {}
    if settings.configured and names:
        try:
            found = settings.lookup(names)
        except SettingUnknown as err:
            return "part", not_checked("settings unknown: %s" % err), None
        origin = found.evidence
        conninfo_to_dict = _conninfo_to_dict()
        if conninfo_to_dict is None:
            return "part", dict(origin, ok=False, kind="library", target="(from %s)" % found.origin,
                                error="the Python library psycopg is not installed on this host"), None
        secrets.add(found.value)
        dsn = found.value
        scheme, sep, rest = dsn.partition("://")
        if sep and "+" in scheme:  # SQLAlchemy style: postgresql+psycopg://
            dsn = scheme.split("+")[0] + "://" + rest
        try:
            parts = conninfo_to_dict(dsn)
        except Exception as err:  # pylint: disable=broad-except
            return "part", dict(origin, ok=False, kind="settings", target="(from %s)" % found.origin,
                                error="the application's %s cannot be parsed: %s" % (
                                    found.origin, redact_text(str(err), list(secrets)))), None
        if parts.get("password"):
            secrets.add(parts["password"])
        given = {"db_host": parts.get("host"), "db_port": parts.get("port") or 5432, "db_name": parts.get("dbname"),
                 "db_user": parts.get("user"), "db_password": parts.get("password"),
                 "db_sslmode": parts.get("sslmode") or params.get("db_sslmode")}
    elif any(params.get(k) for k in ("db_host", "db_name", "db_user")):
        given = dict((k, params.get(k)) for k in ("db_host", "db_port", "db_name", "db_user", "db_password",
                                                  "db_sslmode"))
        origin = {"settings_from": "the inventory (db_host, db_port, db_name, db_user)"}
    else:
        return None, None, None
    given.update(db_sslrootcert=params.get("db_sslrootcert"), db_connect_timeout=params["db_connect_timeout"],
                 db_statement_timeout=params["db_statement_timeout"])
    try:
        kwargs = pg.connect_kwargs(given)
    except validate.ParameterError as err:
        if origin.get("variable"):  # the application's own setting is malformed
            return "part", dict(origin, ok=False, kind="settings", target="(from %s)" % origin["settings_from"],
                                error="the application's %s has a bad %s: %s" % (
                                    origin["variable"], err.param.replace("db_", ""), err.problem)), None
        problems.add(err.param, err.problem)
        return None, None, None
    return "run", kwargs, origin


def redis_settings(params, problems, settings, timeout, secrets):
    # Like database_settings: ("run", RedisTarget, evidence), ("part", part, None) or (None, None, None).
    names = params.get("redis_env_vars") or []
    if settings.configured and names:
        try:
            found = settings.lookup(names)
        except SettingUnknown as err:
            return "part", not_checked("settings unknown: %s" % err), None
        secrets.add(found.value)  # may hold the password
        try:
            target = _redis_client().target_from_url(found.origin, found.value, timeout, params.get("redis_ca_path"))
            return "run", target, found.evidence
        except validate.ParameterError as err:
            return "part", dict(found.evidence, ok=False, kind="settings", target="(from %s)" % found.origin,
                                error="the application's %s is not a valid Redis URL: %s" % (
                                    found.origin, err.problem)), None
    url = (params.get("redis_url") or "").strip()
    if not url:
        return None, None, None
    target = problems.check("redis_url", _redis_client().target_from_url, url, timeout, params.get("redis_ca_path"))
    if target is None:
        return None, None, None
    return "run", target, {"settings_from": "the inventory (redis_url)"}


def main():
    module = AnsibleModule(argument_spec=diag_settings.argument_spec(), supports_check_mode=True)
    params = dict(module.params)
    secrets = secret.protect(module)  # db_password, redis_url and the password inside it
    problems, redis_timeout = diag_settings.check_settings(params)

    if not params["needed"]:
        module.exit_json(**diag_settings.not_needed_result(params, problems, secrets))

    settings = AppSettings(params.get("pidfile"), params.get("env_files"))
    found = set()
    database = (None, None, None)
    if not problems.bad(*DB_OPTIONS):
        database = database_settings(params, problems, settings, found)
    redis_part = (None, None, None)
    if not problems.bad(*REDIS_OPTIONS):
        redis_part = redis_settings(params, problems, settings, redis_timeout, found)
    secret.register(module, *found)  # the application's URLs and passwords, read at run time
    secrets = module.no_log_values

    parts = {}

    def run(name, func, arg, origin):
        try:
            part = func(arg)
        except Exception as err:  # pylint: disable=broad-except
            # never "not configured" or "down": the check itself broke
            part = not_checked("the check crashed: %s" % redact_text(str(err), list(secrets)))
        part.update(origin or {})
        parts[name] = part

    threads = []
    for name, (how, value, origin), func in (("database", database, check_database),
                                             ("redis", redis_part, check_redis)):
        if how == "part":  # not checked, or the application's own setting is malformed
            parts[name] = value
        elif how == "run":
            threads.append(threading.Thread(target=run, args=(name, func, value, origin)))
    with Stopwatch() as total:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    # A part whose settings were bad is not in ``parts``: the item names the bad value instead.
    item, down = diagnose(parts.get("database"), parts.get("redis"))
    if problems.errors:
        found_msg = item["message"] if parts else ""
        item = check_item(FAIL, "; ".join(m for m in (redact_text(problems.message(), secrets), found_msg) if m),
                          dict(item["evidence"], bad_options=sorted(problems.errors)))
    item["evidence"]["duration_ms"] = round(total.ms, 1)
    module.exit_json(changed=False, checks={"HEALTH-DIAG": item}, down=down)


if __name__ == "__main__":
    main()

# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HEALTH-DIAG's options and the check of its settings, shared by the dependency_diag module (on the
application host) and its action plugin, which judges a run that needs no diagnosis on the
controller: such a run observes nothing on the host (no connection, no file), so sending it there
would only cost every application host a module run (bench/README.md "Scale")."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.hunter.ops.plugins.module_utils import pg, redis_client, validate
from ansible_collections.hunter.ops.plugins.module_utils.redact import redact_text
from ansible_collections.hunter.ops.plugins.module_utils.results import FAIL, SKIP, check_item

# Options whose check reads the host's filesystem (the file must exist there): a run that sets one
# goes to the host even when no diagnosis is needed.
HOST_PATH_OPTIONS = ("redis_ca_path", "db_sslrootcert")


def argument_spec():
    spec = pg.pg_argument_spec()
    spec.update(
        needed=dict(type="bool", default=True),
        not_needed_reason=dict(type="str", default="not needed: ready and startup passed"),
        pidfile=dict(type="path"),
        env_files=dict(type="list", elements="path", default=[]),
        redis_env_vars=dict(type="list", elements="str", default=["REDIS_URL", "HUNTER_REDIS_URL"]),
        db_env_vars=dict(type="list", elements="str", default=["DATABASE_URL", "HUNTER_DATABASE_URL"]),
        redis_url=dict(type="str", no_log=True),
        redis_timeout=dict(type="raw", default=5),
        redis_ca_path=dict(type="path"),
        param_labels=dict(type="dict", default={}),
        # Validated here, so a bad value is named as the operator set it (param_labels).
        db_port=dict(type="raw", default=5432),
        db_sslmode=dict(type="str", default="prefer"),
        db_connect_timeout=dict(type="raw", default=5),
        db_statement_timeout=dict(type="raw", default=30),
    )
    return spec


def check_settings(params):
    """Validate the settings in ``params`` (converted in place); returns (problems, redis timeout)."""
    problems = validate.InputProblems(params.get("param_labels"))
    redis_timeout = problems.check("redis_timeout", validate.positive_number, params["redis_timeout"])
    params["db_port"] = problems.check("db_port", validate.port, params["db_port"])
    params["db_connect_timeout"] = problems.check("db_connect_timeout", validate.integer, params["db_connect_timeout"],
                                                  minimum=1)
    params["db_statement_timeout"] = problems.check("db_statement_timeout", validate.integer,
                                                    params["db_statement_timeout"], minimum=0)
    if params.get("db_sslmode") not in pg.SSLMODES:
        problems.add("db_sslmode", "must be one of %s, got %r" % (", ".join(pg.SSLMODES), params.get("db_sslmode")))
    for name in HOST_PATH_OPTIONS:
        if params.get(name):
            problems.check(name, validate.existing_path, params[name])
    url = (params.get("redis_url") or "").strip()
    app_settings_used = (params.get("pidfile") or params.get("env_files")) and params.get("redis_env_vars")
    if url and not params.get("needed", True) and not app_settings_used:
        # A diagnosis parses it where it uses it (dependency_diag.redis_settings); a run that needs
        # none must still name a malformed URL now, not on the night it is needed. Not when the
        # application's own settings are read instead: the inventory's copy is never used then.
        problems.check("redis_url", redis_client.target_from_url, url, redis_timeout or 1)
    return problems, redis_timeout


def not_needed_result(params, problems, secrets):
    """The module's result when no diagnosis is needed: skip with the reason, or fail naming every
    bad setting (found before the night it is needed)."""
    if problems.errors:
        message = "%s (HEALTH-DIAG could not run with these settings; %s)" % (
            redact_text(problems.message(), secrets), params["not_needed_reason"])
        item = check_item(FAIL, message, {"bad_options": sorted(problems.errors)})
    else:
        item = check_item(SKIP, params["not_needed_reason"], {"needed": False})
    return dict(changed=False, down=[], checks={"HEALTH-DIAG": item})

# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL connections for hunter.ops modules (psycopg 3), shared by every module that talks to a database.

Use it like this::

    from ansible_collections.hunter.ops.plugins.module_utils import pg

    argument_spec = dict(pg.pg_argument_spec(), ...)      # options db_host ... db_connect_timeout
    module = AnsibleModule(argument_spec, supports_check_mode=True)
    pg.require_psycopg(module)                             # fail_json(missing_required_lib) when absent
    try:
        kwargs = pg.connect_kwargs(module.params)          # validated; ParameterError names the option
    except ParameterError as err:
        module.fail_json(msg=str(err))
    try:
        with pg.connect(kwargs) as conn: ...               # raises pg.PgError, str() is safe to show
    except pg.PgError as err:
        ...  err.kind is "refused" | "timeout" | "auth" | "database" | "other"

    env = pg.libpq_env(kwargs)   # PGHOST/PGPORT/PGUSER/PGPASSWORD/... for pg_dump, psql, pg_restore:
                                 # a subprocess gets the password through its environment, never argv.

Documented for modules by the doc fragment ``hunter.ops.postgres``.

Rules kept here so callers cannot get them wrong:
- the password only ever travels inside the kwargs dict / environment, never in a DSN string
  that could end up in evidence;
- every error text is one line with the password (and any URL userinfo) redacted;
- every connection has a connect timeout and a statement timeout.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.hunter.ops.plugins.module_utils.redact import redact_text
from ansible_collections.hunter.ops.plugins.module_utils.validate import ParameterError, port as valid_port

# psycopg is imported on first use, not with this file: its import costs more CPU than a whole
# health probe, and dependency_diag (HEALTH-DIAG) loads this file on every run but connects only
# when a diagnosis is needed (bench/README.md "Scale"). pg.psycopg, pg.HAS_PSYCOPG and
# pg.PSYCOPG_IMPORT_ERROR still read as before (module __getattr__).
_PSYCOPG = {}


def _load_psycopg():
    if not _PSYCOPG:
        try:
            import psycopg
            _PSYCOPG.update(module=psycopg, error=None)
        except ImportError as err:  # reported through require_psycopg()
            _PSYCOPG.update(module=None, error=err)
    return _PSYCOPG["module"]


def __getattr__(name):
    if name == "psycopg":
        return _load_psycopg()
    if name == "HAS_PSYCOPG":
        return _load_psycopg() is not None
    if name == "PSYCOPG_IMPORT_ERROR":
        _load_psycopg()
        return _PSYCOPG["error"]
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


class PgError(Exception):
    """A connection or query failure; str() is one line, safe to show (no password)."""

    def __init__(self, message, kind="other"):
        super(PgError, self).__init__(message)
        self.kind = kind


def pg_argument_spec():
    """Connection options (document them with ``extends_documentation_fragment: hunter.ops.postgres``)."""
    return dict(
        db_host=dict(type="str"),
        db_port=dict(type="int", default=5432),
        db_name=dict(type="str"),
        db_user=dict(type="str"),
        db_password=dict(type="str", no_log=True),
        db_sslmode=dict(type="str", default="prefer", choices=list(SSLMODES)),
        db_sslrootcert=dict(type="path"),
        db_connect_timeout=dict(type="int", default=5),
        db_statement_timeout=dict(type="int", default=30),
    )


def require_psycopg(module):
    """Fail the module with Ansible's standard message when psycopg is not installed."""
    if _load_psycopg() is None:
        module.fail_json(msg=missing_required_lib("psycopg (psycopg[binary]>=3.1)"),
                         exception=str(_PSYCOPG["error"]))


def connect_kwargs(params, dbname=None):
    """Validated keyword arguments for ``psycopg.connect`` from module params.

    ``dbname`` overrides ``db_name`` (e.g. connect to ``postgres`` to create a scratch database).
    Raises ParameterError naming the option.
    """
    timeout = params.get("db_connect_timeout", 5)
    if timeout is None or int(timeout) < 1:
        raise ParameterError("db_connect_timeout", "must be at least 1 second, got %r" % (timeout,))
    statement_timeout = params.get("db_statement_timeout", 30)
    if statement_timeout is not None and int(statement_timeout) < 0:
        raise ParameterError("db_statement_timeout", "must be 0 (no limit) or more seconds, got %r"
                             % (statement_timeout,))
    host = params.get("db_host")
    if host is not None and (not str(host).strip() or any(c.isspace() for c in str(host))):
        raise ParameterError("db_host", "must be a host name, an IP address or a socket directory, got %r" % (host,))
    kwargs = dict(
        host=host or None,
        port=valid_port("db_port", params.get("db_port", 5432)),
        dbname=dbname or params.get("db_name") or None,
        user=params.get("db_user") or None,
        password=params.get("db_password") or None,
        sslmode=params.get("db_sslmode") or "prefer",
        sslrootcert=params.get("db_sslrootcert") or None,
        # libpq counts connect_timeout per host and ignores values below 2.
        connect_timeout=max(2, int(timeout)),
        application_name="hunter.ops",
        # Text as str whatever the server's encoding: on a SQL_ASCII cluster psycopg would hand back
        # bytes (database names among them) and the drill's name checks would crash.
        client_encoding="UTF8",
    )
    if statement_timeout:
        kwargs["options"] = "-c statement_timeout=%d" % (int(statement_timeout) * 1000)
    return dict((k, v) for k, v in kwargs.items() if v is not None)


def describe(kwargs):
    """``user@host:port/dbname`` for evidence (never the password)."""
    return "%s@%s:%s/%s" % (kwargs.get("user", "(default user)"), kwargs.get("host", "(default host)"),
                            kwargs.get("port", 5432), kwargs.get("dbname", "(default database)"))


def error_text(err, kwargs=None):
    """One line describing a psycopg error, the password redacted."""
    secrets = [kwargs.get("password")] if kwargs else []
    text = " ".join(str(err).split()) or type(err).__name__
    return redact_text(text, secrets)


_NOISE = re.compile(r'^(?:connection failed: )?(?:connection to server (?:at|on) .*? failed: )?(?:FATAL:\s*)?')


def short_error(text):
    """The essential part of a libpq error for a one-line message (the server/port prefix and hints cut)."""
    text = _NOISE.sub("", str(text))
    return text.split(" Is the server running")[0].strip() or str(text)


def _kind(text):
    low = text.lower()
    if "password authentication failed" in low or "no password supplied" in low or "authentication" in low:
        return "auth"
    if "timeout expired" in low or "timed out" in low or "canceling statement due to statement timeout" in low:
        return "timeout"
    if "connection refused" in low or "no such file or directory" in low:
        return "refused"
    if "does not exist" in low and "database" in low:
        return "database"
    return "other"


def connect(kwargs, autocommit=True):
    """Open a connection (a context manager closing it); raises PgError with a safe message."""
    psycopg = _load_psycopg()
    if psycopg is None:
        raise PgError("psycopg is not installed", kind="other")
    try:
        return psycopg.connect(autocommit=autocommit, **kwargs)
    except Exception as err:  # pylint: disable=broad-except
        text = error_text(err, kwargs)
        raise PgError(text, kind=_kind(text))


def query(kwargs, sql, params=None):
    """Connect, run one statement, return all rows (list of tuples) or None; raises PgError."""
    conn = connect(kwargs)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else None
    except Exception as err:  # pylint: disable=broad-except
        text = error_text(err, kwargs)
        raise PgError(text, kind=_kind(text))
    finally:
        conn.close()


def conninfo(**parts):
    """A libpq connection string from parts (``dbname=x``, quoted when not a plain word), for a
    client's ``--dbname``: a value inside it is never itself expanded as a connection string, as a
    bare ``-d 'dbname=other'`` would be. Pass no password here: it travels in the environment."""
    if "password" in parts:
        raise ValueError("conninfo: pass the password through the environment, not the connection string")
    return " ".join("%s=%s" % (key, _conninfo_value(value)) for key, value in sorted(parts.items())
                    if value is not None)


def _conninfo_value(value):
    """A plain word as it is (readable in evidence), anything else single-quoted with escapes."""
    text = str(value)
    if re.match(r"^[A-Za-z0-9_.-]+$", text):
        return text
    return "'%s'" % text.replace("\\", "\\\\").replace("'", "\\'")


def libpq_env(kwargs, base=None):
    """Environment for libpq tools (pg_dump, psql, pg_restore): credentials never go on argv."""
    env = dict(base or {})
    mapping = (("host", "PGHOST"), ("port", "PGPORT"), ("dbname", "PGDATABASE"), ("user", "PGUSER"),
               ("password", "PGPASSWORD"), ("sslmode", "PGSSLMODE"), ("sslrootcert", "PGSSLROOTCERT"),
               ("connect_timeout", "PGCONNECT_TIMEOUT"), ("application_name", "PGAPPNAME"))
    # The statement timeout (kwargs["options"]) is left out on purpose: it would cut a long
    # pg_dump/psql restore; bound those with the subprocess timeout instead.
    for key, var in mapping:
        if kwargs.get(key) is not None:
            env[var] = str(kwargs[key])
    return env

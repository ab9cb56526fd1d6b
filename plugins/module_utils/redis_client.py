# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Redis connections for check modules: settings from a URL or parameters, and errors an operator reads.

``target_from_params`` turns module parameters (``url`` or ``host``/``port``/``unix_socket``,
``username``/``password``, ``db``, TLS options, timeouts) into a ``RedisTarget`` (``target_from_url``
does the same for an application's Redis URL alone);
``RedisTarget.client()`` builds a redis-py client on one blocking connection pool with the
timeouts applied and redis-py's own retries off, so a dead or silent server costs one timeout,
not four. ``classify`` maps any exception to a ``RedisFailure`` (kind + one-line message without
secrets): auth, refused, timeout, readonly, oom, misconf, noperm, loading, dns, tls, socket,
connection, error.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket
import ssl

from ansible.module_utils.six.moves.urllib.parse import parse_qs, unquote, urlsplit

from ansible_collections.hunter.ops.plugins.module_utils.redact import redact_text
from ansible_collections.hunter.ops.plugins.module_utils.validate import (
    ParameterError, boolean, integer, port as valid_port, positive_number,
)

try:
    import redis
    from redis import exceptions as rexc
    from redis.backoff import NoBackoff
    from redis.retry import Retry
    HAS_REDIS = True
    REDIS_IMPORT_ERROR = None
except ImportError as _err:  # pragma: no cover - reported by the module through missing_required_lib
    HAS_REDIS = False
    REDIS_IMPORT_ERROR = _err

URL_SCHEMES = ("redis", "rediss", "unix")
DEFAULT_PORT = 6379

# Failure kinds after which nothing else can work on this target (no connection at all).
CONNECTION_KINDS = frozenset(("auth", "refused", "timeout", "dns", "tls", "socket", "connection"))
# Failure kinds meaning "the server is up but refuses writes".
WRITE_REFUSED_KINDS = frozenset(("readonly", "oom", "misconf"))


def redis_argument_spec():
    """Connection options shared by Redis modules (documented in doc fragment hunter.ops.redis)."""
    return dict(
        url=dict(type="str", no_log=True),
        host=dict(type="str"),
        # raw: validated by validate_connection(), so a bad value is named as the operator set it
        # and fails only the items that connect.
        port=dict(type="raw"),
        unix_socket=dict(type="path"),
        username=dict(type="str"),
        password=dict(type="str", no_log=True),
        db=dict(type="raw"),
        tls=dict(type="raw"),
        tls_validate_certs=dict(type="raw", default=True),
        tls_ca_path=dict(type="path"),
        tls_client_cert=dict(type="path"),
        tls_client_key=dict(type="path", no_log=False),
        connect_timeout=dict(type="raw", default=3.0),
        command_timeout=dict(type="raw", default=3.0),
    )


REDIS_MUTUALLY_EXCLUSIVE = [("url", "host"), ("url", "unix_socket"), ("host", "unix_socket")]
CONNECTION_OPTIONS = ("url", "host", "port", "unix_socket", "username", "password", "db", "tls",
                      "tls_validate_certs", "tls_ca_path", "tls_client_cert", "tls_client_key", "connect_timeout",
                      "command_timeout")


def validate_connection(params, problems):
    """The connection options of ``redis_argument_spec`` with their types checked; every bad value goes
    to ``problems`` (validate.InputProblems). Returns the params with converted values."""
    checked = dict(params)
    if params.get("port") not in (None, ""):
        checked["port"] = problems.check("port", valid_port, params["port"])
    if params.get("db") not in (None, ""):
        checked["db"] = problems.check("db", integer, params["db"], minimum=0)
    for name in ("tls", "tls_validate_certs"):
        if params.get(name) not in (None, ""):
            checked[name] = problems.check(name, boolean, params[name])
    for name in ("connect_timeout", "command_timeout"):
        checked[name] = problems.check(name, positive_number, params.get(name))
    return checked


class RedisTarget(object):
    """Where and how to connect; ``describe()`` never contains credentials."""

    def __init__(self, host=None, port=DEFAULT_PORT, unix_socket=None, username=None, password=None,
                 db=0, tls=False, tls_validate_certs=True, tls_ca_path=None, tls_client_cert=None,
                 tls_client_key=None, connect_timeout=3.0, command_timeout=3.0):
        self.host = host
        self.port = port
        self.unix_socket = unix_socket
        self.username = username
        self.password = password
        self.db = db
        self.tls = tls
        self.tls_validate_certs = tls_validate_certs
        self.tls_ca_path = tls_ca_path
        self.tls_client_cert = tls_client_cert
        self.tls_client_key = tls_client_key
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout

    @property
    def secrets(self):
        return [s for s in (self.password,) if s]

    @property
    def address(self):
        if self.unix_socket:
            return "unix:%s" % self.unix_socket
        host = self.host
        if ":" in host:  # IPv6 literal
            host = "[%s]" % host
        return "%s:%d" % (host, self.port)

    def describe(self):
        """'127.0.0.1:6379 db 0 (TLS, user app)': for messages and evidence."""
        extras = []
        if self.tls:
            extras.append("TLS")
        if self.username:
            extras.append("user %s" % self.username)
        text = "%s db %d" % (self.address, self.db)
        return text + (" (%s)" % ", ".join(extras) if extras else "")

    def evidence(self):
        ev = {"server": self.address, "db": self.db, "tls": bool(self.tls),
              "auth": "password (hidden)" if self.password else "none",
              "connect_timeout_s": self.connect_timeout, "command_timeout_s": self.command_timeout}
        if self.username:
            ev["user"] = self.username
        return ev

    def pool_kwargs(self):
        """Keyword arguments for a redis-py connection pool."""
        kwargs = dict(
            db=self.db, username=self.username or None, password=self.password or None,
            socket_timeout=self.command_timeout, socket_connect_timeout=self.connect_timeout,
            # One attempt only: the check's own timeout is the bound an operator configured.
            retry=Retry(NoBackoff(), 0),
        )
        if self.unix_socket:
            kwargs.update(connection_class=redis.UnixDomainSocketConnection, path=self.unix_socket)
        else:
            kwargs.update(host=self.host, port=self.port)
            if self.tls:
                kwargs.update(
                    connection_class=redis.SSLConnection,
                    ssl_cert_reqs="required" if self.tls_validate_certs else "none",
                    ssl_check_hostname=bool(self.tls_validate_certs),
                    ssl_ca_certs=self.tls_ca_path, ssl_certfile=self.tls_client_cert,
                    ssl_keyfile=self.tls_client_key,
                )
        return kwargs

    def client(self, max_connections=4):
        """A redis-py client on one blocking pool of ``max_connections`` connections."""
        pool = redis.BlockingConnectionPool(max_connections=max_connections,
                                            timeout=self.connect_timeout + self.command_timeout,
                                            **self.pool_kwargs())
        return redis.Redis(connection_pool=pool)


def _parse_url(url):
    """Split a redis://, rediss:// or unix:// URL; ParameterError naming `url` when malformed."""
    text = str(url or "").strip()
    # The URL may hold a password: messages below never quote it.
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ParameterError("url", "malformed Redis URL (bad port or brackets)")
    scheme = parts.scheme.lower()
    if scheme not in URL_SCHEMES:
        raise ParameterError("url", "Redis URL scheme must be redis://, rediss:// or unix://, got %r"
                             % (scheme + "://" if scheme else "(none)"))
    query = parse_qs(parts.query)
    out = {"tls": scheme == "rediss"}
    if parts.username:
        out["username"] = unquote(parts.username)
    if parts.password:
        out["password"] = unquote(parts.password)
    db_text = None
    if "db" in query:
        db_text = query["db"][0]
    if scheme == "unix":
        if not parts.path:
            raise ParameterError("url", "unix:// URL has no socket path")
        out["unix_socket"] = unquote(parts.path)
    else:
        if not parts.hostname:
            raise ParameterError("url", "Redis URL has no host")
        out["host"] = unquote(parts.hostname)
        if port is not None:
            if not 1 <= port <= 65535:
                raise ParameterError("url", "port must be between 1 and 65535")
            out["port"] = port
        path = parts.path.strip("/")
        if path and db_text is None:
            db_text = path
    if db_text is not None:
        if not str(db_text).isdigit():
            raise ParameterError("url", "database number must be a non-negative integer, got %r" % (db_text,))
        out["db"] = int(db_text)
    return out


def target_from_params(params):
    """RedisTarget from module params; explicit parameters override what the URL says."""
    settings = {}
    if params.get("url"):
        settings.update(_parse_url(params["url"]))
    for key in ("host", "port", "unix_socket", "username", "password", "db", "tls"):
        if params.get(key) not in (None, ""):
            settings[key] = params[key]
    if not settings.get("unix_socket") and not settings.get("host"):
        settings["host"] = "127.0.0.1"
    port = settings.get("port", DEFAULT_PORT)
    if not 1 <= int(port) <= 65535:
        raise ParameterError("port", "port must be between 1 and 65535, got %s" % port)
    db = settings.get("db", 0)
    if int(db) < 0:
        raise ParameterError("db", "database number must be >= 0, got %s" % db)
    for name in ("connect_timeout", "command_timeout"):
        if params.get(name) is None or float(params[name]) <= 0:
            raise ParameterError(name, "must be a number of seconds greater than 0")
    if settings.get("unix_socket") and settings.get("tls"):
        raise ParameterError("tls", "TLS is not available over a unix socket")
    return RedisTarget(
        host=settings.get("host"), port=int(port), unix_socket=settings.get("unix_socket"),
        username=settings.get("username"), password=settings.get("password"), db=int(db),
        tls=bool(settings.get("tls")), tls_validate_certs=params.get("tls_validate_certs", True),
        tls_ca_path=params.get("tls_ca_path"), tls_client_cert=params.get("tls_client_cert"),
        tls_client_key=params.get("tls_client_key"),
        connect_timeout=float(params["connect_timeout"]), command_timeout=float(params["command_timeout"]),
    )


def target_from_url(param, url, timeout, ca_path=None):
    """RedisTarget from an application's Redis URL alone, ``timeout`` for connecting and for each
    command; a ParameterError names ``param`` (the module's option holding the URL)."""
    try:
        return target_from_params({"url": url, "connect_timeout": timeout, "command_timeout": timeout,
                                   "tls_ca_path": ca_path})
    except ParameterError as err:
        raise ParameterError(param, err.problem)


class RedisFailure(object):
    """A classified error: ``kind`` for logic, ``message`` (one line, no secrets) for people."""

    def __init__(self, kind, message, server_text=None):
        self.kind = kind
        self.message = message
        self.server_text = server_text

    @property
    def refuses_writes(self):
        return self.kind in WRITE_REFUSED_KINDS

    @property
    def no_connection(self):
        return self.kind in CONNECTION_KINDS

    def __str__(self):
        return self.message


def _root_cause(exc):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (socket.timeout, ssl.SSLError, socket.gaierror, ConnectionRefusedError)):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def classify(exc, target):
    """RedisFailure for any exception raised while talking to ``target``."""
    where = target.describe()
    text = " ".join(redact_text(str(exc), target.secrets).split())
    cause = _root_cause(exc)
    if HAS_REDIS:
        if isinstance(exc, rexc.AuthenticationError) or (
                isinstance(exc, rexc.ResponseError) and text.startswith(("WRONGPASS", "NOAUTH"))):
            if not target.password:
                why = "the server requires a password and none was given"
            else:
                why = "invalid username-password pair or user is disabled"
            return RedisFailure("auth", "authentication failed at %s: %s" % (where, why), text)
        if isinstance(exc, rexc.ReadOnlyError):
            return RedisFailure("readonly", "server refuses writes: %s is a read-only replica (READONLY %s)"
                                % (where, text), text)
        # OutOfMemoryError is redis-py 4.4+; Debian 12's 4.3.4 raises a plain ResponseError("OOM ...").
        if isinstance(exc, getattr(rexc, "OutOfMemoryError", ())) or (
                isinstance(exc, rexc.ResponseError) and text.startswith("OOM")):
            detail = text[len("OOM "):] if text.startswith("OOM ") else text
            return RedisFailure("oom", "server refuses writes: OOM %s (maxmemory reached and the eviction "
                                       "policy frees nothing, e.g. noeviction)" % detail, text)
        if isinstance(exc, rexc.ResponseError) and text.startswith("MISCONF"):
            return RedisFailure("misconf", "server refuses writes: %s (stop-writes-on-bgsave-error)" % text, text)
        if isinstance(exc, rexc.NoPermissionError):
            return RedisFailure("noperm", "the ACL user is not allowed to run this command: %s" % text, text)
        if isinstance(exc, rexc.BusyLoadingError):
            return RedisFailure("loading", "%s is still loading its dataset into memory" % where, text)
        if isinstance(exc, rexc.TimeoutError) or isinstance(cause, socket.timeout):
            return RedisFailure("timeout", "timed out talking to %s (connect timeout %ss, command timeout %ss): %s"
                                % (where, target.connect_timeout, target.command_timeout, text), text)
        if isinstance(exc, rexc.ConnectionError):
            return _classify_connection_error(text, where, cause)
        if isinstance(exc, rexc.ResponseError):
            return RedisFailure("error", "server answered an error: %s" % text, text)
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return RedisFailure("timeout", "timed out talking to %s" % where, text)
    if isinstance(exc, ssl.SSLError):
        return RedisFailure("tls", "TLS error with %s: %s" % (where, text), text)
    return RedisFailure("error", "%s: %s" % (type(exc).__name__, text), text)


def _classify_connection_error(text, where, cause):
    lowered = text.lower()
    if "connection refused" in lowered or "error 111 " in lowered or isinstance(cause, ConnectionRefusedError):
        return RedisFailure("refused", "connection refused by %s (is Redis running and listening there?)" % where,
                            text)
    if isinstance(cause, socket.gaierror) or "name or service not known" in lowered \
            or "temporary failure in name resolution" in lowered or "error -2 " in lowered:
        return RedisFailure("dns", "cannot resolve the Redis host of %s: %s" % (where, text), text)
    if isinstance(cause, ssl.SSLError) or "ssl" in lowered or "certificate" in lowered:
        return RedisFailure("tls", "TLS error with %s: %s" % (where, text), text)
    if "no such file or directory" in lowered or "error 2 " in lowered:
        return RedisFailure("socket", "unix socket of %s does not exist" % where, text)
    if "permission denied" in lowered or "error 13 " in lowered:
        return RedisFailure("socket", "permission denied on the unix socket of %s" % where, text)
    if "max number of clients reached" in lowered:
        return RedisFailure("connection", "%s refused the connection: max number of clients reached" % where, text)
    if "timeout" in lowered or "timed out" in lowered:
        return RedisFailure("timeout", "timed out connecting to %s: %s" % (where, text), text)
    return RedisFailure("connection", "cannot connect to %s: %s" % (where, text), text)

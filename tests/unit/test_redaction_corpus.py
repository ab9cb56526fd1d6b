"""The redaction corpus: secret shapes that must be masked, and look-alikes that must be kept.

Both directions are tested on the real redactor (module_utils/redact.py) and the real registry
helper (module_utils/secret.py). Each shape is one row; a new leak found in the field becomes a
new row here, and so does every over-masking (a path or a message that lost its text).
"""
import json

import pytest

from ansible_collections.hunter.ops.plugins.module_utils import secret
from ansible_collections.hunter.ops.plugins.module_utils.redact import (
    REDACTED, is_secret_key, redact_data, redact_headers, redact_text, redact_url, split_url,
)

TOKEN = "tok_9f8e7d6c5b4a39281706"          # a bearer/API token
PASSWORD = "Zx9-pw-7hQ2"                     # a plain password
SPACED = "correct horse battery"             # a passphrase with spaces
B64 = "q8Zr/4Kp+Lm2=="                       # base64 with '/' and '+'
AT_SLASH = "p@ss/w:rd#1?"                    # every URL delimiter a password can hold
DSN_KEY = "0123456789abcdef0123456789abcdef"

# -- secrets in free text: (shape, text, what must vanish) ---------------------------------------
TEXT_SECRETS = [
    ("url userinfo", "redis://:%s@10.0.0.5:6379/0" % PASSWORD, [PASSWORD]),
    ("url user:password", "postgresql://hunter:%s@db.internal:5432/hunter" % PASSWORD, [PASSWORD]),
    ("url password with @", "redis://:p@ss@word9@cache:6379", ["p@ss@word9", "ss@word9"]),
    ("url password with /", "redis://:%s@cache:6379/0" % B64, [B64, "4Kp+Lm2"]),
    ("url password with @ / : # ?", "redis://app:%s@cache:6379/0" % AT_SLASH, [AT_SLASH, "rd#1", "w:rd"]),
    ("url password percent-encoded", "redis://:q8Zr%2F4Kp%2BLm2%3D%3D@cache:6379", ["q8Zr%2F4Kp"]),
    ("url in a sentence", "cannot connect to postgresql://u:%s@h:5432/db." % PASSWORD, [PASSWORD]),
    ("sentry dsn", "https://%s@o1.ingest.sentry.io/42" % DSN_KEY, [DSN_KEY]),
    ("sentry dsn with secret key", "https://%s:sk-77aa99@sentry.internal/3" % DSN_KEY, [DSN_KEY, "sk-77aa99"]),
    ("authorization bearer line", "Authorization: Bearer %s" % TOKEN, [TOKEN]),
    ("authorization basic mid-text", "request failed; Authorization: Basic dXNlcjpwYXNzd29yZA==",
     ["dXNlcjpwYXNzd29yZA=="]),
    ("bearer token in prose", "retried with Bearer %s twice" % TOKEN, [TOKEN]),
    ("x-api-key header line", "X-API-Key: hk_%s" % TOKEN, [TOKEN]),
    ("cookie header", "Cookie: session=a1b2c3d4; csrftoken=e5f6g7h8", ["a1b2c3d4", "e5f6g7h8"]),
    ("x-sentry-auth header", "X-Sentry-Auth: Sentry sentry_key=%s, sentry_version=7" % DSN_KEY, [DSN_KEY]),
    ("json password with spaces", '{"password": "%s"}' % SPACED, ["correct", "horse", "battery"]),
    ("json password, escaped quote", '{"password": "a\\"b %s"}' % PASSWORD, [PASSWORD]),
    ("json number under secret key", '{"pin_password": 8675309}', ["8675309"]),
    ("json list under secret key", '{"tokens": ["%s", "tk-2-abcdef"]}' % TOKEN, [TOKEN, "tk-2-abcdef"]),
    ("json nested under credentials", '{"credentials": {"aws": "AKIA%s"}}' % TOKEN, [TOKEN]),
    ("json auth key", '{"auth": "admin:%s"}' % PASSWORD, [PASSWORD]),
    ("truncated json", '{"detail": "x", "api_key": "%s", "more": "...' % TOKEN, [TOKEN]),
    ("python repr", "{'password': '%s', 'user': 'u'}" % SPACED, ["horse", "battery"]),
    ("yaml line", "host: db\npassword: %s\nport: 5432" % SPACED, ["horse battery"]),
    ("env line", "HUNTER_SENTRY_DSN=https://%s@sentry.internal/1" % DSN_KEY, [DSN_KEY]),
    ("env line quoted with spaces", 'DB_PASSWORD="%s" # prod' % SPACED, ["horse battery"]),
    ("env line export", "export REDIS_PASSWORD=%s" % PASSWORD, [PASSWORD]),
    ("query string", "GET /x?api_key=%s&page=2" % TOKEN, [TOKEN]),
    ("logfmt pair", "level=error password=%s host=db" % PASSWORD, [PASSWORD]),
    ("cli option, space", "uvicorn app:app --ssl-keyfile-password %s --port 8443" % PASSWORD, [PASSWORD]),
    ("cli option, equals", "pg_dump --password=%s -d hunter" % PASSWORD, [PASSWORD]),
    ("camelCase key", '{"apiKey": "%s"}' % TOKEN, [TOKEN]),
    ("client secret", "client_secret=%s" % TOKEN, [TOKEN]),
    ("aws secret env", "AWS_SECRET_ACCESS_KEY=%s" % B64, [B64]),
    ("pgpassword env", "PGPASSWORD=%s" % PASSWORD, [PASSWORD]),
]

# -- secrets in data: (shape, data, what must vanish) --------------------------------------------
DATA_SECRETS = [
    ("string under password", {"password": SPACED}, [SPACED]),
    ("number under password", {"password": 8675309}, ["8675309"]),
    ("float under secret", {"secret": 3.14159265}, ["3.14159265"]),
    ("list under tokens", {"tokens": [TOKEN, "tk-2-abcdef"]}, [TOKEN, "tk-2-abcdef"]),
    ("nested under credentials", {"credentials": {"aws": "AKIA" + TOKEN, "user": "deploy"}}, [TOKEN]),
    ("dict under auth", {"auth": {"token": TOKEN}}, [TOKEN]),
    ("list of dicts under secret_headers", {"secret_headers": [{"X-Custom": TOKEN}]}, [TOKEN]),
    ("authorization key", {"Authorization": "Bearer " + TOKEN}, [TOKEN]),
    ("header-named key", {"X-Vault-Token": TOKEN}, [TOKEN]),
    ("env-style key", {"HUNTER_API_KEYS": "k1-%s,k2-%s" % (TOKEN, PASSWORD)}, [TOKEN, PASSWORD]),
    ("url in a plain string", {"target": "redis://:%s@cache:6379/0" % AT_SLASH}, [AT_SLASH]),
    ("json text in a plain string", {"response": '{"session_token": "%s"}' % TOKEN}, [TOKEN]),
    ("bytes under password", {"password": PASSWORD.encode()}, [PASSWORD]),
]

# -- values registered at run time: (shape, registered value, text holding one of its forms) -----
REGISTERED = [
    ("raw value in prose", PASSWORD, "FATAL: role rejected %s" % PASSWORD),
    ("percent-encoded form", AT_SLASH, "redis://x:%s@h/0" % "p%40ss%2Fw%3Ard%231%3F"),
    ("lower-case percent-encoding", AT_SLASH, "p%40ss%2fw%3ard%231%3f echoed"),
    ("plus-encoded spaces", SPACED, "q=correct+horse+battery"),
    ("decoded form of an encoded value", "ab%2Fcd%40ef12", "password ab/cd@ef12 refused"),
    ("json-escaped form", 'pa"ss\\w0rd', 'body {"echo": "pa\\"ss\\\\w0rd"}'),
    ("password inside a registered url", "redis://:%s@cache:6379/0" % B64, "AUTH %s failed" % B64),
    ("dsn key from a registered dsn", "https://%s@sentry.internal/1" % DSN_KEY, "key=%s" % DSN_KEY),
    ("token of a registered header value", "Bearer " + TOKEN, "token %s expired" % TOKEN),
    ("numeric value", 86753091, "pin 86753091 rejected"),
]

# -- look-alikes that must be kept as they are ----------------------------------------------------
TEXT_KEPT = [
    ("path after 'DSN:' in prose", "cannot read the DSN: /etc/hunter/hunter.env"),
    ("path after 'password file'", "cannot read the password file /run/secrets/db: permission denied"),
    ("auth failure message", 'password authentication failed for user "hunter"'),
    ("no password supplied", "fe_sendauth: no password supplied"),
    ("our hidden marker", "HUNTER_SENTRY_DSN is SET (hidden) and valid (https, host sentry.internal, project 1)"),
    ("plain url", "GET http://127.0.0.1:8000/api/v1/scan?domain=example.com answered 200"),
    ("url without credentials", "redis://127.0.0.1:6379/0"),
    ("e-mail in a query", "https://api.example.com/users?email=ops@example.com"),
    ("e-mail in a query, with port", "https://api.example.com:8443/users?email=ops@example.com"),
    ("e-mail in a path", "https://git.example.com/~ops@example.com/repo"),
    ("e-mail address", "contact ops@example.com for access"),
    ("bearer in prose", "the Bearer token is missing"),
    ("bearer scheme word", "Bearer authentication required"),
    ("probe key message", "SET NX EX 30 / GET / DEL on a new probe key under hunter-ops:probe:"),
    ("password-file option", "pg_dump --password-file /etc/pw --port 5432"),
    ("token ttl pair", "token_ttl=30 key_prefix=hunter-ops:probe:"),
    ("header name without value", "the Authorization header is required"),
    ("marker value", "X-API-Key: sent (hidden)"),
    ("status words", "pass fail warn skip"),
    ("variable not set message", "HUNTER_SENTRY_DSN is not set in the environment of process 42 (pidfile /run/hunter.pid)"),
    ("sha256", "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
    ("checklist id line", "REDIS-PING: PONG from 127.0.0.1:6379 db 0"),
]

DATA_KEPT = [
    ("redis auth descriptor", {"auth": "password (hidden)"}),
    ("redis auth none", {"auth": "none"}),
    ("api key descriptor", {"api_key": "sent in X-API-Key (hidden)"}),
    ("api key not sent", {"api_key": "not sent"}),
    ("dsn parts", {"dsn": {"scheme": "https", "host": "sentry.internal", "port": None, "project_id": "42",
                           "public_key": "SET (hidden)"}}),
    ("header name option", {"api_key_header": "X-API-Key"}),
    ("password file path", {"password_file": "/run/secrets/db"}),
    ("dsn source", {"hunter_sentry_dsn_source": "process", "hunter_sentry_dsn_variable": "HUNTER_SENTRY_DSN"}),
    ("auth url", {"auth_url": "https://login.example.com/oauth"}),
    ("secret vars list", {"preflight_report_secret_vars": ["hunter_api_key", "hunter_db_password"]}),
    ("shell pwd", {"PWD": "/srv/hunter", "OLDPWD": "/root"}),
    ("counts", {"counts": {"pass": 20, "fail": 1, "warn": 2, "skip": 6}}),
    ("booleans and null under secret keys", {"password": None, "dsn_set": True, "token": False}),
    ("probe key", {"key": "hunter-ops:probe:host:9f8e", "ttl_s": 30}),
    ("request headers without credentials", {"request_headers": {"Accept": "application/json"}}),
    ("numbers", {"duration_ms": 12.3, "status": 200, "port": 5432}),
    ("checklist id as key", {"SENTRY-DSN": {"status": "pass", "message": "HUNTER_SENTRY_DSN is SET (hidden) and valid",
                                            "evidence": {"variable": "HUNTER_SENTRY_DSN", "value": "SET (hidden)"}}}),
]


def _rows(rows):
    return pytest.mark.parametrize("shape,value,expect", rows, ids=[r[0] for r in rows])


@_rows(TEXT_SECRETS)
def test_text_secret_is_masked(shape, value, expect):
    out = redact_text(value)
    assert REDACTED in out
    for leaked in expect:
        assert leaked not in out, "%s leaked %r: %s" % (shape, leaked, out)


@_rows(DATA_SECRETS)
def test_data_secret_is_masked(shape, value, expect):
    out = json.dumps(redact_data(value), default=str)
    assert REDACTED in out
    for leaked in expect:
        assert leaked not in out, "%s leaked %r: %s" % (shape, leaked, out)


class _Module(object):
    """What secret.register needs of an AnsibleModule: its no_log_values set."""

    def __init__(self):
        self.no_log_values = set()


@_rows(REGISTERED)
def test_registered_value_is_masked_in_every_shape(shape, value, expect):
    module = _Module()
    registry = secret.register(module, value)
    assert registry is module.no_log_values
    out = redact_text(expect, registry)
    assert REDACTED in out
    leftovers = [form for form in secret.forms(value) if len(form) >= 6 and form in out]
    assert not leftovers, "%s: %s" % (shape, out)


@pytest.mark.parametrize("shape,value", TEXT_KEPT, ids=[r[0] for r in TEXT_KEPT])
def test_text_look_alike_is_kept(shape, value):
    assert redact_text(value) == value


@pytest.mark.parametrize("shape,value", DATA_KEPT, ids=[r[0] for r in DATA_KEPT])
def test_data_look_alike_is_kept(shape, value):
    assert redact_data(value) == value


def test_corpus_names_are_unique_and_counted():
    names = [row[0] for row in TEXT_SECRETS + DATA_SECRETS + REGISTERED]
    kept = [row[0] for row in TEXT_KEPT + DATA_KEPT]
    assert len(set(names)) == len(names) and len(set(kept)) == len(kept)
    assert len(names) >= 55 and len(kept) >= 35


# -- the parts the corpus relies on -----------------------------------------------------------

@pytest.mark.parametrize("key,expected", [
    ("password", True), ("db_password", True), ("PGPASSWORD", True), ("ssl-keyfile-password", True),
    ("apiKey", True), ("X-API-Key", True), ("api_keys", True), ("s3_secret_key", True), ("sentry_key", True),
    ("X-Sentry-Auth", True), ("auth", True), ("credentials", True), ("HUNTER_SENTRY_DSN", True),
    ("secret_headers", True), ("session_token", True), ("set-cookie", True),
    ("key", False), ("key_prefix", False), ("password_file", False), ("api_key_header", False),
    ("hunter_sentry_dsn_source", False), ("author", False), ("authentication", False), ("PWD", False),
    ("token_ttl", False), ("public_key", False), ("passing", False), ("SENTRY-DSN", False),
])
def test_secret_key_names(key, expected):
    assert is_secret_key(key) is expected


def test_url_userinfo_split_keeps_the_host():
    assert split_url("redis://:%s@cache:6379/0" % AT_SLASH) == ("redis://", ":" + AT_SLASH, "cache:6379/0")
    assert split_url("https://api.example.com/u?email=ops@example.com")[1] is None
    assert split_url("not a url") is None
    assert redact_url("redis://:%s@cache:6379/0" % B64) == "redis://%s@cache:6379/0" % REDACTED


def test_headers_mapping():
    out = redact_headers({"Authorization": "Bearer " + TOKEN, "X-Request-Id": "r-1", "X-Vault-Token": "v",
                          "Accept": "application/json"})
    assert out == {"Authorization": REDACTED, "X-Request-Id": "r-1", "X-Vault-Token": REDACTED,
                   "Accept": "application/json"}


def test_register_environment_takes_secret_names_and_url_passwords_only():
    module = _Module()
    env = {"HUNTER_SENTRY_DSN": "https://%s@sentry.internal/1" % DSN_KEY,
           "HUNTER_REDIS_URL": "redis://:%s@cache:6379/0" % B64,
           "HUNTER_API_KEYS": "hk_first_key_1,hk_second_key_2",
           "HUNTER_ENVIRONMENT": "production", "PWD": "/srv/hunter", "HUNTER_WORKERS": "4"}
    secret.register_environment(module, env, names=["HUNTER_SENTRY_DSN"])
    registry = module.no_log_values
    assert env["HUNTER_SENTRY_DSN"] in registry and DSN_KEY in registry
    assert B64 in registry and "q8Zr%2F4Kp%2BLm2%3D%3D" in registry
    assert env["HUNTER_REDIS_URL"] not in registry  # the URL's host is no secret, its password is
    assert {"hk_first_key_1", "hk_second_key_2"} <= registry
    assert not {"production", "/srv/hunter", "4"} & registry


def test_short_values_are_not_registered_or_replaced():
    module = _Module()
    secret.register(module, "ab", None, True, "")
    assert module.no_log_values == set()
    assert redact_text("tab stop", ["ab"]) == "tab stop"


def test_later_registrations_reach_a_redactor_holding_the_registry():
    module = _Module()
    registry = secret.register(module, PASSWORD)
    secret.register(module, TOKEN)  # discovered after the registry was handed out
    assert redact_text("%s and %s" % (PASSWORD, TOKEN), registry) == "%s and %s" % (REDACTED, REDACTED)


def test_longer_secret_wins_over_a_shorter_one_inside_it():
    assert redact_text("xx-secretvalue-yy", ["secret", "xx-secretvalue"]) == REDACTED + "-yy"

"""SENTRY-DSN's pure parts: DSN validation (each problem named, the value never repeated), near-miss
variable names, the assessment's messages, and reading env output / env files / container argv.
No processes and no network."""
import pytest

from ansible_collections.hunter.ops.plugins.module_utils import app_env, sentry_inputs
from ansible_collections.hunter.ops.plugins.module_utils.sentry import assess, near_misses, validate_dsn
from ansible_collections.hunter.ops.plugins.module_utils.validate import InputProblems

KEY = "0123456789abcdef0123456789abcdef"
GOOD = f"https://{KEY}@o123.ingest.sentry.io/4505"


def test_valid_dsns_parse_into_their_parts():
    check = validate_dsn(GOOD)
    assert check.ok and not check.notes
    assert check.parsed.describe() == {"scheme": "https", "host": "o123.ingest.sentry.io", "port": None,
                                       "project_id": "4505", "public_key": "SET (hidden)"}
    prefixed = validate_dsn(f"https://{KEY}@sentry.example.com:9000/sentry/42")
    assert prefixed.ok and prefixed.parsed.port == 9000 and prefixed.parsed.path_prefix == "sentry"
    assert prefixed.parsed.project_id == "42"


@pytest.mark.parametrize("dsn, problem", [
    ("", "empty"),
    ("   ", "empty"),
    (f" {GOOD}", "whitespace"),
    (f"https://{KEY}@sentry.io/4505 extra", "whitespace"),
    ("sentry.io/4505", "not a URL"),
    (f"http://{KEY}@sentry.io/4505", "scheme is http, expected https"),
    (f"ftp://{KEY}@sentry.io/4505", "scheme 'ftp' is not https"),
    ("https://sentry.io/4505", "no public key"),
    ("https://@sentry.io/4505", "public key is empty"),
    ("https://ab$cd@sentry.io/4505", "public key contains characters"),
    (f"https://{KEY}@/4505", "host is missing"),
    (f"https://{KEY}@sentry.io:abc/4505", "invalid port (not a number)"),
    (f"https://{KEY}@sentry.io:99999/4505", "invalid port (out of range)"),
    (f"https://{KEY}@sentry.io", "project id is missing"),
    (f"https://{KEY}@sentry.io/", "project id is missing"),
    (f"https://{KEY}@sentry.io/4505/", "path ends with '/'"),
    (f"https://{KEY}@sentry.io/abc", "project id 'abc' is not numeric"),
    (f"https://{KEY}@sentry.io/4505?x=1", "query string"),
])
def test_each_malformed_dsn_names_its_problem_without_the_value(dsn, problem):
    check = validate_dsn(dsn)
    assert not check.ok and check.parsed is None
    text = "; ".join(check.problems)
    assert problem in text
    assert KEY not in text and "ab$cd" not in text


def test_http_only_where_allowed_and_unusual_keys_are_notes():
    allowed = validate_dsn(f"http://{KEY}@127.0.0.1:8001/1", allow_http=True)
    assert allowed.ok and allowed.notes == ["plain http DSN (allowed by configuration)"]
    short = validate_dsn("https://abc123@sentry.io/1")
    assert short.ok and "not the usual 32 hex characters (length 6)" in short.notes[0]
    legacy = validate_dsn(f"https://{KEY}:{KEY[::-1]}@sentry.io/1")
    assert legacy.ok and any("secret key" in n for n in legacy.notes)
    several = validate_dsn("ftp://sentry.io/abc")
    assert len(several.problems) == 3  # scheme, public key, project id: all named at once


@pytest.mark.parametrize("name", [
    "SENTRY_DSN", "hunter_sentry_dsn", "HUNTER-SENTRY-DSN", "HUNTER_SENTRY_DNS", "HUNTER_SENTRY_DSN_PROD",
    "APP_SENTRY_DSN", "NEXT_PUBLIC_SENTRY_DSN",
])
def test_near_misses_catch_real_world_mistakes(name):
    assert near_misses("HUNTER_SENTRY_DSN", ["PATH", "HOME", name]) == [name]


def test_near_misses_leave_unrelated_and_the_exact_name_alone():
    names = ["HUNTER_SENTRY_DSN", "HUNTER_DATABASE_URL", "HUNTER_REDIS_URL", "PATH", "DSN", "SENTRY_RELEASE"]
    assert near_misses("HUNTER_SENTRY_DSN", names) == []


def test_assess_messages_never_hold_the_value():
    ok = assess({"HUNTER_SENTRY_DSN": GOOD}, "HUNTER_SENTRY_DSN", "env file /x")
    assert ok.status == "pass" and ok.dsn == GOOD
    assert ok.message == "HUNTER_SENTRY_DSN is SET (hidden) and valid (https, host o123.ingest.sentry.io, project 4505)"
    assert ok.evidence["value"] == "SET (hidden)"

    bad = assess({"HUNTER_SENTRY_DSN": GOOD.replace("https", "http")}, "HUNTER_SENTRY_DSN", "env file /x")
    assert bad.status == "fail" and bad.dsn is None
    assert "invalid: scheme is http" in bad.message
    for result in (ok, bad):
        assert KEY not in result.message and KEY not in repr(result.evidence)

    empty = assess({"HUNTER_SENTRY_DSN": ""}, "HUNTER_SENTRY_DSN", "process 1")
    assert empty.status == "fail" and "set but empty" in empty.message and empty.evidence["value"] == "SET but empty"


def test_assess_near_miss_is_a_warning_naming_the_variable():
    miss = assess({"SENTRY_DSN": GOOD, "PATH": "/bin"}, "HUNTER_SENTRY_DSN", "process 7")
    assert miss.status == "warn"
    assert miss.message.startswith("HUNTER_SENTRY_DSN is not set in process 7, but SENTRY_DSN is")
    assert miss.evidence["similar_variables"] == ["SENTRY_DSN"] and miss.dsn is None
    missing = assess({"PATH": "/bin"}, "HUNTER_SENTRY_DSN", "process 7")
    assert missing.status == "fail" and missing.evidence["value"] == "NOT SET"
    both = assess({"HUNTER_SENTRY_DSN": GOOD, "SENTRY_DSN": GOOD}, "HUNTER_SENTRY_DSN", "p")
    assert both.status == "pass" and both.message.endswith("also set: SENTRY_DSN")
    # An empty look-alike is not a near miss: nothing reads an empty value.
    assert assess({"SENTRY_DSN": ""}, "HUNTER_SENTRY_DSN", "p").status == "fail"


def test_env_output_and_nul_environ_parsing():
    out = "PATH=/bin\nHUNTER_SENTRY_DSN=https://k@h/1\nMULTI=line1\nline2\nEMPTY=\n"
    assert app_env.parse_env_output(out) == {"PATH": "/bin", "HUNTER_SENTRY_DSN": "https://k@h/1",
                                             "MULTI": "line1\nline2", "EMPTY": ""}
    assert app_env.parse_nul_environ(b"A=1\0B=x=y\0\0") == {"A": "1", "B": "x=y"}


def test_env_files_later_wins_and_optional_missing_file(tmp_path):
    first = tmp_path / "a.env"
    first.write_text("# comment\nexport HUNTER_SENTRY_DSN='https://k@h/1'\nOTHER=1\n")
    second = tmp_path / "b.env"
    second.write_text('HUNTER_SENTRY_DSN="https://k2@h/2"  \n; systemd comment\n')
    params = {"source": "envfile", "env_files": [str(first), str(second), "-" + str(tmp_path / "missing.env")]}
    snap = app_env.load(params)
    assert snap.variables["HUNTER_SENTRY_DSN"] == "https://k2@h/2" and snap.variables["OTHER"] == "1"
    assert snap.evidence["files"] == [str(first), str(second)]
    with pytest.raises(app_env.EnvSourceError, match="missing.env does not exist"):
        app_env.load({"source": "envfile", "env_files": [str(tmp_path / "missing.env")]})


def test_container_argv_is_an_argument_list_without_shell():
    base = {"docker_command": ["docker"], "compose_command": ["docker", "compose"], "compose_files": []}
    argv, what = app_env.container_argv(dict(base, container="api"))
    assert argv == ["docker", "exec", "api", "env"] and what == "container api"
    argv, dummy = app_env.container_argv(dict(base, compose_service="api", compose_project_dir="/srv/h",
                                              compose_files=["a.yml", "b.yml"]))
    assert argv == ["docker", "compose", "--project-directory", "/srv/h", "-f", "a.yml", "-f", "b.yml",
                    "exec", "-T", "api", "env"]


@pytest.mark.parametrize("params, message", [
    ({"variable": "1BAD"}, "variable: '1BAD' is not an environment variable name"),
    ({"pid": None, "process_match": "(unclosed"}, "process_match: invalid regular expression"),
    ({"pid": -3}, "pid: must be at least 1, got -3"),
    ({"pid": "abc"}, "pid: must be a whole number, got 'abc'"),
    ({"docker_command": []}, "docker_command: must name the CLI as an argument list"),
    ({"source": "proc"}, "source: must be one of process, envfile, container, value, got 'proc'"),
    ({"source": "envfile", "pid": None}, "env_files: required with source envfile"),
    ({"pid": 4, "pidfile": "/run/app.pid"}, "pidfile: give only one of pid, pidfile, process_match"),
    ({"command_timeout": "soon"}, "command_timeout: must be a number, got 'soon'"),
])
def test_source_parameter_problems_name_the_parameter(params, message):
    full = {"source": "process", "pid": 4242, "variable": "HUNTER_SENTRY_DSN", "docker_command": ["docker"],
            "compose_command": ["docker", "compose"], "command_timeout": 30.0}
    full.update(params)
    problems = InputProblems()
    sentry_inputs.source_settings(full, problems)
    assert message in problems.message(), problems.message()


def test_every_bad_source_value_is_reported_under_the_operators_name():
    problems = InputProblems({"pid": "hunter_sentry_pid (sentry_probe_pid)", "variable": "hunter_sentry_dsn_variable"})
    settings = sentry_inputs.source_settings({"source": "process", "pid": "x1", "variable": "a b",
                                              "docker_command": ["docker"], "compose_command": ["docker", "compose"],
                                              "command_timeout": 30}, problems)
    assert settings["pid"] is None and settings["variable"] is None
    assert sorted(problems.errors) == ["pid", "variable"]
    assert "hunter_sentry_pid (sentry_probe_pid): must be a whole number, got 'x1'" in problems.message()
    assert "hunter_sentry_dsn_variable: 'a b' is not an environment variable name" in problems.message()

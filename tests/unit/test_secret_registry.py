"""secret.register/protect on a real AnsibleModule, the credential filters, and the report's fallback folders."""
import json
import os
import tempfile
import urllib.parse

import pytest
from ansible.errors import AnsibleFilterError
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.hunter.ops.plugins.filter.credentials import secret_values, url_credential
from ansible_collections.hunter.ops.plugins.module_utils import secret
from ansible_collections.hunter.ops.plugins.module_utils.redact import redact_text
from ansible_collections.hunter.ops.plugins.modules import preflight_report as pr

NASTY = ["a/b", "p@ss", "u:s", "50%", "x#y", "what?", "sp ace", "pl+us", "b64/Zm9v+YmFy==", "é-ünïcode",
         "all/@:%#?&=+ "]


def _module(args, spec):
    with patch_module_args(args):
        return AnsibleModule(argument_spec=spec)


def _exit(module, capsys, **result):
    with pytest.raises(SystemExit):
        module.exit_json(**result)
    return capsys.readouterr().out


def test_protect_and_register_reach_ansibles_own_scrubbing(capsys):
    """Registered values (and their encodings) leave the module's result, whatever field they sit in."""
    with patch_module_args({"db_password": "HOPS/pw@1", "name": "x"}):
        module = AnsibleModule(argument_spec=dict(db_password=dict(type="str", no_log=True), name=dict(type="str")))
        registry = secret.protect(module)
        assert registry is module.no_log_values and "HOPS%2Fpw%401" in registry
        secret.register(module, "https://0123abcd0123abcd@sentry.example/1")  # discovered at run time
        out = _exit(module, capsys, msg="echo HOPS%2Fpw%401 and 0123abcd0123abcd",
                    nested={"deep": ["HOPS/pw@1"]})
    assert "HOPS" not in out and "0123abcd0123abcd" not in out
    assert json.loads(out)["msg"] == "echo ******** and ********"


def test_the_redactor_and_ansible_share_one_registry(capsys):
    module = _module({}, {})
    registry = secret.protect(module)
    text_before = redact_text("token=abc connect failed for k3y-found-late", registry)
    secret.register(module, "k3y-found-late")
    assert "k3y-found-late" in text_before  # unknown at that time, and not a secret shape
    assert redact_text("connect failed for k3y-found-late", registry) == "connect failed for ********"


@pytest.mark.parametrize("password", NASTY)
def test_url_credential_round_trips_through_a_url(password):
    url = "redis://:%s@cache.internal:6379/0" % url_credential(password)
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname == "cache.internal" and parts.port == 6379 and parts.path == "/0"
    assert urllib.parse.unquote(parts.password) == password


@pytest.mark.parametrize("bad", [None, True, {"a": 1}, ["a"]])
def test_url_credential_refuses_what_is_not_a_string(bad):
    with pytest.raises(AnsibleFilterError, match="url_credential expects a string"):
        url_credential(bad)


def test_secret_values_by_name_prefix_and_shape():
    hostvars = {
        "app1": {"hunter_api_key": "key-0001", "vault_x": "vault-02", "my_db_password": "pw-00003",
                 "api_key_header": "X-API-Key", "hunter_sentry_dsn_source": "process",
                 "secret_headers": {"X-T": "hdr-0004"}, "port": 5432, "db_password_timeout": 120,
                 "hunter_app_redis_url": "redis://:p%2F5@h:6379/0", "ansible_become_pass": "b-6",
                 "short_token": "none"},
        "db1": {"hunter_db_password": "pw-00003", "tokens": ["tok-0007", "tok-0008"], "empty_token": ""},
    }
    assert secret_values(hostvars, ["app1", "db1", "missing"], ["hunter_app_redis_url", "ansible_become_pass"]) == \
        ["b-6", "hdr-0004", "key-0001", "pw-00003", "redis://:p%2F5@h:6379/0", "tok-0007", "tok-0008", "vault-02"]


def test_secret_values_never_takes_a_registered_result_or_a_private_variable():
    """`register: _sentry_probe_dsn` holds a task result: scrubbing its "pass" would garble the report."""
    result = {"changed": False, "checks": {"SENTRY-DSN": {"status": "pass", "message": "HUNTER_SENTRY_DSN is SET"}}}
    hostvars = {"app1": {"_sentry_probe_dsn": result, "sentry_probe_dsn_check": result,
                         "_role_private_token": "private-value-1", "hunter_sentry_api_token": "api-token-1"}}
    assert secret_values(hostvars, ["app1"]) == ["api-token-1"]


def test_secret_values_skips_what_cannot_be_templated():
    class Broken(dict):
        def __getitem__(self, key):
            if key == "bad_password":
                raise ValueError("'undefined_thing' is undefined")
            return dict.__getitem__(self, key)

    assert secret_values({"h": Broken(bad_password="x", good_password="good-pw-1")}, ["h"]) == ["good-pw-1"]
    with pytest.raises(AnsibleFilterError, match="hosts must be a list"):
        secret_values({}, "h")


def _render():
    return {"report.json": "{}\n", "report.md": "# r\n", "junit.xml": "<x/>\n"}


def test_report_goes_to_the_first_writable_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    fallback = tmp_path / "fallback"
    outcome = pr.write_report(str(blocker / "reports"), [str(blocker / "also"), str(fallback)], True, "preflight_t_1",
                              _render)
    assert outcome["fallback"] and outcome["report_dir"] == str(fallback / "preflight_t_1")
    assert sorted(os.listdir(outcome["report_dir"])) == ["junit.xml", "report.json", "report.md"]
    assert os.readlink(fallback / "latest") == "preflight_t_1"
    assert [e.split(": ")[0] for e in outcome["errors"]] == [str(blocker / "reports"), str(blocker / "also")]
    message = pr.where_message(str(blocker / "reports"), outcome)
    assert message.startswith("report NOT written to %s (" % (blocker / "reports"))
    assert message.endswith("written to %s instead" % outcome["report_dir"])
    again = pr.write_report(str(fallback), [], True, "preflight_t_1", _render)
    assert again["report_dir"] == str(fallback / "preflight_t_1_2") and not again["fallback"]


def test_no_folder_at_all_says_so_and_names_every_folder(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setattr(tempfile, "tempdir", str(blocker))  # even the temporary directory fails
    outcome = pr.write_report(str(blocker / "a"), [str(blocker / "b")], True, "preflight_t_1", _render)
    assert outcome["report_dir"] is None and len(outcome["errors"]) == 3
    message = pr.where_message(str(blocker / "a"), outcome)
    assert message.startswith("NO REPORT WRITTEN: ") and str(blocker / "b") in message
    assert "temporary directory" in message


def test_a_report_that_cannot_be_rendered_is_an_error_not_a_traceback(tmp_path):
    def broken():
        raise TypeError("Object of type set is not JSON serializable")
    outcome = pr.write_report(str(tmp_path), [], True, "preflight_t_1", broken)
    assert outcome["report_dir"] is None and "could not be rendered" in outcome["errors"][0]
    assert os.listdir(tmp_path) == []

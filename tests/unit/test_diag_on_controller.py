"""HEALTH-DIAG when no diagnosis is needed is judged on the controller (plugins/action/dependency_diag.py)
instead of by a module run on the host. Both must give the same result: this runs the real module (a
python process reading its arguments on stdin, as on a host) and the action's controller path on the
same arguments and compares them, and checks when the run must go to the host after all."""
import json
import os
import subprocess
import sys

import pytest

from ansible_collections.hunter.ops.plugins.action.dependency_diag import ActionModule

COLLECTIONS = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".ansible", "collections"))
SECRET = "diag-secret-7c1f0e"
BASE = {"needed": False, "db_host": "db.internal", "db_name": "hunter", "db_user": "hunter",
        "db_password": SECRET, "redis_url": "redis://:%s@cache.internal:6379/0" % SECRET}


def on_host(args):
    """The module's own result for `args`, run as Ansible runs it on a host."""
    proc = subprocess.run([sys.executable, "-m", "ansible_collections.hunter.ops.plugins.modules.dependency_diag"],
                          input=json.dumps({"ANSIBLE_MODULE_ARGS": args}), capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=COLLECTIONS), timeout=60, check=False)
    return json.loads(proc.stdout)


def on_controller(args):
    return ActionModule.outcome_on_controller(object.__new__(ActionModule), dict(args))


@pytest.mark.parametrize("overrides", [
    {},
    {"db_port": "notaport"},
    {"db_sslmode": "bogus"},
    {"redis_timeout": -1, "db_connect_timeout": "x"},
    {"not_needed_reason": "not run: HEALTH-READY fail"},
    {"redis_url": "redis://:%s@cache.internal:99999/0" % SECRET},
    {"redis_url": "http://:%s@cache.internal/0" % SECRET},
], ids=["valid", "bad-db-port", "bad-sslmode", "bad-timeouts", "reason", "bad-redis-port", "bad-redis-scheme"])
def test_the_controller_gives_what_the_module_gives(overrides):
    args = dict(BASE, **overrides)
    host, controller = on_host(args), on_controller(args)
    assert controller is not None
    assert controller["checks"] == host["checks"]
    bad = set(overrides) - {"not_needed_reason"}
    assert controller["checks"]["HEALTH-DIAG"]["status"] == ("fail" if bad else "skip")
    if bad:  # every bad value named, as the operator set it
        assert all(name in controller["checks"]["HEALTH-DIAG"]["message"] for name in bad)
    assert SECRET not in json.dumps(controller) and SECRET not in json.dumps(host)


@pytest.mark.parametrize("overrides", [
    {"needed": True},                       # a diagnosis connects from the host
    {"redis_ca_path": "/etc/ssl/redis-ca.pem"},  # the file must exist on the host
    {"db_sslrootcert": "/etc/ssl/pg-ca.pem"},
    {"no_such_option": 1},                  # the module reports what its spec rejects, as always
], ids=["needed", "redis-ca-path", "db-sslrootcert", "unknown-option"])
def test_runs_that_need_the_host_go_there(overrides):
    assert on_controller(dict(BASE, **overrides)) is None


def test_an_unused_inventory_redis_url_is_not_judged():
    # the application's own settings are read (env file): the inventory's copy is never used
    args = dict(BASE, redis_url="redis://:%s@cache.internal:99999/0" % SECRET, env_files=["/srv/hunter/.env"])
    host, controller = on_host(args), on_controller(args)
    assert controller["checks"] == host["checks"]
    assert controller["checks"]["HEALTH-DIAG"]["status"] == "skip"

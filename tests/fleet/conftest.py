"""The fleet test bed (sandbox/fleet.py) for tests/fleet: one fleet per session, shared by every
test (it takes ~20 s to start), prepared once with playbooks/prepare_hosts.yml.

`fleet` is the started fleet, bare (what the image has); `prepared_fleet` the same fleet after
prepare_hosts ran on it (`.prepare_run`: that run; `.bare_imports`: what the app host's Python
could import before). Bugsink runs on the controller (tests/conftest.py's `bugsink`): the sample
service in the app host sends its events there, over the machine's loopback.
Tests that break a host (stop it, remove a library) restore it before they end.
"""
from __future__ import annotations

import pytest

from sandbox.fleet import Fleet, missing_images
from tests.harness import AnsibleHarness

INVENTORY = "inventories/examples/fleet"
IMPORT_PROBE = ("import importlib.util as u; "
                "print(' '.join(m for m in ('jmespath', 'psycopg', 'redis') if u.find_spec(m)))")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/fleet/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.fleet)


@pytest.fixture(scope="session")
def fleet(tmp_path_factory, bugsink):
    missing = missing_images()
    if missing:
        pytest.fail(f"fleet images missing ({', '.join(missing)}): run scripts/setup.sh", pytrace=False)
    fleet = Fleet(tmp_path_factory.mktemp("fleet"))
    fleet.start(app_env={"HUNTER_SENTRY_DSN": bugsink.dsn})
    yield fleet
    fleet.stop()


@pytest.fixture(scope="session")
def fleet_vars(fleet, bugsink) -> dict:
    """Extra vars for the example inventory: the fleet's SSH key and secrets, Bugsink's settings."""
    return dict(fleet.extravars(), **bugsink.inventory_vars())


@pytest.fixture(scope="session")
def fleet_ansible(tmp_path_factory) -> AnsibleHarness:
    # ansible-runner turns host key checking off unless told: the fleet's known_hosts is checked.
    return AnsibleHarness(base_dir=tmp_path_factory.mktemp("fleet-ansible"),
                          envvars={"ANSIBLE_HOST_KEY_CHECKING": "True"})


@pytest.fixture(scope="session")
def prepared_fleet(fleet, fleet_vars, fleet_ansible):
    fleet.bare_imports = fleet.exec("app", f'python3 -c "{IMPORT_PROBE}"').stdout.split()
    fleet.prepare_run = fleet_ansible.run_playbook("playbooks/prepare_hosts.yml", INVENTORY,
                                                   extravars=fleet_vars)
    assert fleet.prepare_run.rc == 0, fleet.prepare_run.stdout[-4000:]
    return fleet


@pytest.fixture(scope="session")
def go_run(prepared_fleet, fleet_vars, fleet_ansible):
    """The full preflight over SSH on the prepared fleet (shared by the tests that read it)."""
    return fleet_ansible.run_playbook("preflight.yml", INVENTORY, extravars=fleet_vars)

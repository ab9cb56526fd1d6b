"""The preflight over real SSH against a fleet of containers (sandbox/fleet.py, issue 12).

One fleet for the whole module (tests/fleet/conftest.py): bare hosts, prepared by
playbooks/prepare_hosts.yml, then the full preflight through inventories/examples/fleet with an
unprivileged login and `become` where a role needs it. The tests that break a host (a library
removed, a container stopped) come after the ones that read the GO run, and put the host back.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from sandbox.fleet import REDIS_PORT
from tests.fleet.conftest import IMPORT_PROBE, INVENTORY

pytestmark = pytest.mark.slow

HOSTS = {"app": "fleet-app", "db": "fleet-db", "cache": "fleet-cache", "backup": "fleet-backup"}


def items_by_id(report: dict) -> dict:
    return {(i["id"], i["host"]): i for i in report["items"]}


def test_prepare_hosts_installs_what_the_modules_need(prepared_fleet):
    fleet = prepared_fleet
    # Bare hosts: the image has Python and nothing the modules import.
    assert fleet.bare_imports == [], fleet.bare_imports
    run = fleet.prepare_run
    installed = {r["_host"] for r in run.task_results(task="Install the missing ones with apt-get") if r.get("changed")}
    assert installed == set(HOSTS.values()), installed
    assert fleet.exec("app", f'python3 -c "{IMPORT_PROBE}"').stdout.split() == ["jmespath", "psycopg", "redis"]
    tools = fleet.exec("db", "command -v pg_dump pg_restore psql gzip zstd lz4 rsync").stdout.split()
    assert len(tools) == 7, tools
    assert len(fleet.exec("backup", "command -v rsync zstd lz4 ssh").stdout.split()) == 4
    # The backup directory belongs to the login user, on the db and the backup host.
    for host in ("db", "backup"):
        assert fleet.exec(host, "stat -c %U /var/backups/hunter").stdout.strip() == "hunter"


def test_preflight_over_ssh_is_go_and_names_the_real_hosts(go_run, prepared_fleet):
    fleet, report = prepared_fleet, go_run.report
    assert report is not None, go_run.stdout[-3000:]
    failing = [(i["id"], i["host"], i["message"]) for i in report["items"] if i["status"] == "fail"]
    assert report["verdict"] == "GO" and go_run.rc == 0, failing
    # Every item belongs to a real host of the inventory, and the evidence says where it looked.
    assert {i["host"] for i in report["items"]} == {HOSTS["app"], HOSTS["db"], HOSTS["cache"]}
    items = items_by_id(report)
    app, cache, staging = (fleet.address(n) for n in ("app", "cache", "staging-db"))
    assert app in items["HEALTH-LIVE", "fleet-app"]["message"]
    assert f"{cache}:" in items["REDIS-PING", "fleet-cache"]["message"]
    assert f"{cache}:" in items["REDIS-APP-PING", "fleet-app"]["message"]
    assert "fleet-backup:/var/backups/hunter" in items["BACKUP-LOCATION", "fleet-db"]["message"]
    assert staging in items["RESTORE-DRYRUN", "fleet-db"]["message"] or staging in str(
        items["RESTORE-DRYRUN", "fleet-db"].get("evidence")), items["RESTORE-DRYRUN", "fleet-db"]
    # The sample service's process was found on the app host, as root, through `become`.
    assert items["SENTRY-DSN", "fleet-app"]["status"] == "pass"


def test_backup_copy_lands_on_the_backup_host_never_on_the_controller(go_run, prepared_fleet):
    fleet = prepared_fleet
    message = items_by_id(go_run.report)["BACKUP-CMD", "fleet-db"]["message"]
    path = next(word for word in message.split() if word.startswith("/var/backups/hunter/backup_"))
    name = Path(path).name
    on_db = fleet.exec("db", "ls /var/backups/hunter").stdout.split()
    on_backup = fleet.exec("backup", "ls -a /var/backups/hunter").stdout.split()
    assert name in on_db and name in on_backup, (on_db, on_backup)
    assert not any(n.startswith(".incoming") for n in on_backup), on_backup  # verified, then renamed
    # Same bytes on the backup host as on the db host.
    digest = "cd /var/backups/hunter/{0} && find . -type f | sort | xargs sha256sum".format(name)
    assert fleet.exec("backup", digest).stdout == fleet.exec("db", digest).stdout
    # Nowhere on the controller: not in the default backup dir, the temp dirs, Ansible's dirs or the run.
    roots = [Path("/var/backups"), Path("/tmp"), Path("/var/tmp"), Path.home() / ".ansible",
             go_run.private_data_dir]
    found = [str(p) for root in roots if root.exists() for p in _walk_named(root, name)]
    assert found == []


def _walk_named(root: Path, name: str):
    for dirpath, dirnames, filenames in os.walk(root, onerror=lambda e: None):
        if "pytest-of-" in dirpath and "fleet" not in dirpath:
            continue  # other sessions' files: not this run's
        for entry in dirnames + filenames:
            if entry == name:
                yield Path(dirpath) / entry


def test_become_over_ssh_pipelines_and_leaves_no_module_file(go_run, prepared_fleet, bugsink):
    fleet = prepared_fleet
    # The sentry_probe tasks ran with become (sudo) on the app host over SSH, pipelined.
    sentry = [r for r in go_run.task_results(host="fleet-app") if "sentry" in (r["_task"] or "").lower()]
    assert sentry, "no Sentry task ran on fleet-app"
    # The report saw pipelining on (its warning about module files on disk did not fire).
    warned = go_run.task_results(task="Warn when this run wrote module arguments (secrets) to disk")
    assert warned and all(r["_event"] == "runner_on_skipped" for r in warned), warned
    # the tracker's API token reaches the app host only as a module argument of the become tasks
    secrets = fleet.secrets() + [bugsink.token]
    for host in ("app", "db", "cache", "backup"):
        # No AnsiballZ module (code and arguments) and no Ansible temp dir stayed on the host.
        assert fleet.find(host, "AnsiballZ_*") == [], host
        assert fleet.find(host, "ansible-tmp-*") == [], host
        # No file in the users' homes or temp dirs holds a secret of the run.
        assert fleet.files_containing(host, secrets) == [], host
    # The search finds a secret where one is on purpose (Redis's own configuration).
    assert fleet.files_containing("cache", [fleet.redis_password], paths=("/etc/redis",)) == ["/etc/redis/fleet.conf"]


def _module_files_seen_while(fleet, host: str, run) -> set:
    """Ansible temp dirs and AnsiballZ files seen on `host` while run() runs (polled)."""
    seen, done = set(), threading.Event()

    def poll():
        while not done.is_set():
            seen.update(fleet.find(host, "ansible-tmp-*") + fleet.find(host, "AnsiballZ_*"))
            time.sleep(0.3)
    watcher = threading.Thread(target=poll)
    watcher.start()
    try:
        result = run()
    finally:
        done.set()
        watcher.join()
    assert result.rc == 0, result.stdout[-2000:]
    return seen


def test_pipelining_with_become_writes_no_module_file_while_it_runs(prepared_fleet, fleet_vars, fleet_ansible):
    fleet = prepared_fleet
    play = "tests/fleet/playbooks/become_sleep.yml"
    assert _module_files_seen_while(
        fleet, "app", lambda: fleet_ansible.run_playbook(play, INVENTORY, extravars=fleet_vars)) == set()
    # Control: without pipelining the same task's module file appears, so the watch can see one.
    fleet_ansible.envvars["ANSIBLE_PIPELINING"] = "False"
    try:
        seen = _module_files_seen_while(
            fleet, "app", lambda: fleet_ansible.run_playbook(play, INVENTORY, extravars=fleet_vars))
    finally:
        del fleet_ansible.envvars["ANSIBLE_PIPELINING"]
    assert any("AnsiballZ_command.py" in path for path in seen), seen


def test_missing_library_on_a_managed_host_is_named(prepared_fleet, fleet_vars, fleet_ansible):
    fleet = prepared_fleet
    fleet.exec("app", "dpkg -r python3-jmespath >/dev/null")
    try:
        run = fleet_ansible.run_playbook("tests/fleet/playbooks/health_and_report.yml", INVENTORY,
                                         extravars=fleet_vars)
    finally:
        fleet.exec("app", "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-download "
                          "python3-jmespath >/dev/null")
    health = [i for i in run.report["items"] if i["id"].startswith("HEALTH-")]
    assert health and all(i["host"] == "fleet-app" for i in health)
    failed = [i for i in health if i["status"] == "fail"]
    assert failed, health
    for item in failed:
        assert "jmespath" in item["message"] and "fleet-app" in item["message"], item
    assert run.report["verdict"] == "NO-GO"


def test_missing_driver_on_the_db_host_is_named(prepared_fleet, fleet_vars, fleet_ansible):
    # psycopg hidden from the db host's Python (not removed: the package stays for the next tests).
    # The backup reads the database through psql and needs no driver; the drill does.
    fleet = prepared_fleet
    hide = "import os, psycopg; d = os.path.dirname(psycopg.__file__); os.rename(d, d + '.hidden'); print(d)"
    where = fleet.exec("db", "python3 -c \"%s\"" % hide).stdout.strip()
    assert where.endswith("/psycopg"), where
    try:
        run = fleet_ansible.run_playbook("tests/fleet/playbooks/backup_drill_and_report.yml", INVENTORY,
                                         extravars=fleet_vars)
    finally:
        fleet.exec("db", "mv %s.hidden %s" % (where, where))
    items = {i["id"]: i for i in run.report["items"] if i["host"] == "fleet-db"}
    assert items["BACKUP-CMD"]["status"] == "pass", items["BACKUP-CMD"]
    for item_id in ("RESTORE-DRYRUN", "RESTORE-RTO"):
        item = items[item_id]
        assert item["status"] == "fail", item
        assert "psycopg" in item["message"] and "fleet-db" in item["message"], item
    assert run.report["verdict"] == "NO-GO"


def test_unreachable_host_fails_its_items_and_every_other_item_is_reported(
        go_run, prepared_fleet, fleet_vars, fleet_ansible):
    fleet = prepared_fleet
    fleet.stop_host("app")
    try:
        run = fleet_ansible.run_playbook("preflight.yml", INVENTORY, extravars=fleet_vars)
    finally:
        fleet.start_host("app")
    assert run.rc != 0 and run.report["verdict"] == "NO-GO"
    go, down = items_by_id(go_run.report), items_by_id(run.report)
    assert set(down) == set(go)  # every item of every host is still reported
    for (check_id, host), item in down.items():
        if host == "fleet-app":
            assert item["status"] == "fail", item
            assert "unreachable" in item["message"] and fleet.address("app") in item["message"], item
        else:  # the other hosts' items are what they were
            assert item["status"] == go[check_id, host]["status"], (item, go[check_id, host])
    new_blocking = [b for b in run.report["blocking"] if b not in go_run.report["blocking"]]
    assert new_blocking and all(b["host"] == "fleet-app" for b in new_blocking), new_blocking


def test_redis_down_is_named_with_the_hosts_own_redis_py(prepared_fleet, fleet_vars, fleet_ansible):
    """The cache's Redis stopped: REDIS-APP-PING (a module run on the app host, with the redis-py
    prepare_hosts installed there: Debian 12's 4.3) and REDIS-PING must fail saying the connection was
    refused. Before the fix, redis-py 4.3's missing OutOfMemoryError crashed the classification and the
    items said 'the check module crashed'."""
    fleet = prepared_fleet
    version = fleet.exec("app", "python3 -c 'import redis; print(redis.__version__)'").stdout.strip()
    assert version.startswith("4."), version  # the test is about the redis-py without OutOfMemoryError
    # daemonized Redis writes /var/run/redis.pid; it is down once its port refuses connections
    fleet.exec("cache", "kill \"$(cat /var/run/redis.pid)\"; for i in $(seq 100); do "
                        f"(exec 3<>/dev/tcp/{fleet.address('cache')}/{REDIS_PORT}) 2>/dev/null || exit 0; sleep 0.1; "
                        "done; exit 1")
    try:
        run = fleet_ansible.run_playbook("tests/fleet/playbooks/redis_and_report.yml", INVENTORY,
                                         extravars=fleet_vars)
    finally:
        fleet.start_host("cache")  # already running: starts its Redis again
    items = items_by_id(run.report)
    for check_id, host in (("REDIS-APP-PING", "fleet-app"), ("REDIS-PING", "fleet-cache")):
        item = items[check_id, host]
        assert item["status"] == "fail", item
        assert "connection refused" in item["message"] and "crashed" not in item["message"], (version, item)
    assert run.report["verdict"] == "NO-GO"
    print(f"app host redis-py {version}: {items['REDIS-APP-PING', 'fleet-app']['message']}")

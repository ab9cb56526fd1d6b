"""The recording mechanism (plugins/plugin_utils/recording.py): every ID a task owns becomes an item,
whatever happened, and only this run's items are ever read back."""
from pathlib import Path

from ansible_collections.hunter.ops.plugins.action import api_probe as api_action
from ansible_collections.hunter.ops.plugins.action import redis_probe as redis_action
from ansible_collections.hunter.ops.plugins.module_utils.checklist import BY_ID, CHECK_IDS, MODULE_IDS
from ansible_collections.hunter.ops.plugins.plugin_utils import recording

REPO = Path(__file__).resolve().parents[2]


class Task:
    def __init__(self, uuid):
        self._uuid = uuid


RUN = "0242ac11-0002-1a2b-3c4d"
TASK = Task(RUN + "-000000000042")


def item(status="pass", message="ok"):
    return {"status": status, "message": message, "evidence": {}}


def test_a_modules_items_are_kept_and_an_id_it_left_out_fails():
    items = recording.items_of({"checks": {"HEALTH-LIVE": item()}}, ["HEALTH-LIVE", "HEALTH-READY"])
    assert items["HEALTH-LIVE"] == item()
    assert items["HEALTH-READY"]["status"] == "fail"
    assert "returned no result for this item" in items["HEALTH-READY"]["message"]


def test_a_failed_module_fails_every_id_with_its_message_on_one_line():
    items = recording.items_of({"failed": True, "msg": "db_port: 'abc'\nis not a port"}, ["A", "B"])
    assert items == {i: {"status": "fail", "message": "db_port: 'abc' is not a port",
                         "evidence": {"error": "db_port: 'abc' is not a port"}} for i in ("A", "B")}


def test_partial_items_of_a_failed_module_are_kept():
    items = recording.items_of({"failed": True, "msg": "boom", "checks": {"A": item("warn")}}, ["A", "B"])
    assert items["A"]["status"] == "warn"
    assert items["B"] == {"status": "fail", "message": "boom", "evidence": {"error": "boom"}}


def test_unreachable_crashed_and_skipped_modules_say_so():
    assert recording.items_of({"unreachable": True, "msg": "ssh: timed out"}, ["A"])["A"]["message"] == \
        "host unreachable: ssh: timed out"
    crash = recording.items_of({"failed": True, "msg": "MODULE FAILURE\nSee stdout/stderr for the exact error",
                                "module_stderr": "Traceback...\nModuleNotFoundError: No module named 'jmespath'\n"},
                               ["A"])
    assert crash["A"]["message"] == "the check module crashed: ModuleNotFoundError: No module named 'jmespath'"
    skipped = recording.items_of({"skipped": True, "msg": "remote module does not support check mode"}, ["A"])
    assert skipped["A"] == {"status": "fail", "evidence": {"error": skipped["A"]["message"]},
                            "message": "the check module was skipped: remote module does not support check mode"}


def test_a_malformed_item_fails():
    items = recording.items_of({"checks": {"A": {"status": "great"}}}, ["A"])
    assert items["A"]["status"] == "fail" and "malformed" in items["A"]["message"]


def test_record_merges_into_this_runs_items_only():
    facts = {"ansible_facts": {"hunter_ops_run": RUN, "hunter_ops_checks": {"A": item()}}}
    result = recording.record({}, TASK, facts, {"B": item("fail")})
    assert result["ansible_facts"] == {"hunter_ops_run": RUN, "hunter_ops_checks": {"A": item(), "B": item("fail")}}
    assert result["checks"] == {"B": item("fail")}
    assert result["recorded"] == {"A": item(), "B": item("fail")}


def test_items_another_run_left_in_a_fact_cache_are_dropped_never_merged():
    stale = {"ansible_facts": {"hunter_ops_run": "another-run", "hunter_ops_checks": {"A": item()}}}
    result = recording.record({}, TASK, stale, {"B": item()})
    assert result["ansible_facts"]["hunter_ops_checks"] == {"B": item()}
    no_run = {"ansible_facts": {"hunter_ops_checks": {"A": item()}}}
    assert recording.record({}, TASK, no_run, {})["recorded"] == {}


def test_keep_existing_fills_only_the_missing_ids():
    facts = {"ansible_facts": {"hunter_ops_run": RUN, "hunter_ops_checks": {"A": item()}}}
    result = recording.record({}, TASK, facts, {"A": item("fail"), "B": item("fail")}, keep_existing=True)
    assert result["recorded"] == {"A": item(), "B": item("fail")}


def test_run_id_is_the_per_process_part_of_ansibles_object_ids():
    assert recording.run_id(Task(RUN + "-000000000001")) == recording.run_id(Task(RUN + "-0000000000ff")) == RUN
    assert recording.run_id(Task("0242ac11-0002-9999-3c4d-000000000001")) != RUN


def test_every_id_has_one_reporting_module_and_every_check_module_an_action_plugin():
    owners = {}
    for module, ids in MODULE_IDS.items():
        assert (REPO / "plugins" / "modules" / (module + ".py")).exists()
        assert (REPO / "plugins" / "action" / (module + ".py")).exists(), module
        for check_id in ids:
            assert check_id in BY_ID
            owners.setdefault(check_id, []).append(module)
    # REDIS-APP-PING and REDIS-HEALTH come from redis_probe through its arguments.
    missing = set(CHECK_IDS) - set(owners) - {"REDIS-APP-PING", "REDIS-HEALTH"}
    assert not missing
    # HEALTH-ENV: health_probe reads it from the service, app_environment from the application's
    # configuration (health_check_environment_from: config), which then replaces health_probe's skip.
    shared = {"HEALTH-ENV": ["health_probe", "app_environment"]}
    assert all(len(mods) == 1 or shared.get(check_id) == mods for check_id, mods in owners.items()), owners


def test_redis_probe_ids_follow_its_arguments():
    action = redis_action.ActionModule.__new__(redis_action.ActionModule)
    assert action.checklist_ids({}) == ["REDIS-PING", "REDIS-OPS", "REDIS-POOL"]
    assert action.checklist_ids({"checks": ["ping"], "ping_id": "REDIS-APP-PING"}) == ["REDIS-APP-PING"]
    assert action.unselected_ids({"checks": ["ping"], "ping_id": "REDIS-APP-PING"}) == {}
    assert action.checklist_ids({"checks": ["health"]}) == ["REDIS-HEALTH"]
    assert action.unselected_ids({"checks": ["health"]}) == {}
    assert set(action.unselected_ids({"checks": ["ping", "info"]})) == {"REDIS-OPS", "REDIS-POOL"}


def test_api_probe_ids_follow_its_endpoints():
    action = api_action.ActionModule.__new__(api_action.ActionModule)
    assert action.checklist_ids({}) == ["API-V1-LEADS", "API-V1-SCAN", "API-V1-SALES", "API-LEGACY", "API-COMPAT"]
    two = {"endpoints": [{"id": "API-V1-LEADS"}, {"id": "API-V1-SCAN"}, {"id": "API-V1-SCAN"}]}
    assert action.checklist_ids(two) == ["API-V1-LEADS", "API-V1-SCAN", "API-LEGACY", "API-COMPAT"]
    assert list(action.unselected_ids(two)) == ["API-V1-SALES"]


def test_items_are_scrubbed_of_the_hosts_secrets_before_they_become_facts():
    """Facts land in ansible-runner's (and AWX's) fact cache, whatever the task's no_log says."""
    from ansible.template import Templar
    from ansible.parsing.dataloader import DataLoader

    task_vars = {"vault_api_key": "HOPSMARK/k3y@x", "hunter_db_password": "{{ vault_db }}",
                 "vault_db": "pw-HOPSMARK-1", "hunter_sentry_dsn_source": "process", "_private_token": "notme-123"}
    secrets = recording.host_secrets(Templar(loader=DataLoader(), variables=task_vars), task_vars)
    assert "HOPSMARK/k3y@x" in secrets and "HOPSMARK%2Fk3y%40x" in secrets and "pw-HOPSMARK-1" in secrets
    assert "process" not in secrets and "notme-123" not in secrets
    leaky = {"A": item("warn", "upstream said HOPSMARK%2Fk3y%40x and pw-HOPSMARK-1 via process")}
    result = recording.record({}, TASK, {}, leaky, secrets=secrets)
    text = str(result["ansible_facts"]) + str(result["checks"])
    assert "HOPSMARK" not in text and "via process" in text


def test_a_module_killed_outright_leaves_its_notices_in_the_items():
    """The drill prints where its scratch database is before it creates it: the item names it."""
    died = {"failed": True, "rc": -9, "msg": "MODULE FAILURE: No start of json char found\nSee stdout/stderr",
            "module_stdout": "", "module_stderr": "warning: something\nhunter.ops notice: restore drill run 3f9a0c12 "
                                                  "(pid 42) creates scratch database restore_drill_x on db:5432; if "
                                                  "this run dies, the database may remain\n"}
    item = recording.items_of(died, ["RESTORE-DRYRUN"])["RESTORE-DRYRUN"]
    assert item["status"] == "fail"
    assert item["message"].startswith("the check module crashed: warning: something; hunter.ops notice: restore drill")
    assert "scratch database restore_drill_x on db:5432" in item["message"]
    silent = dict(died, module_stderr="hunter.ops notice: run x creates scratch database d\n")
    assert recording.items_of(silent, ["A"])["A"]["message"] == (
        "the check module crashed: it died without an error message (rc -9); "
        "hunter.ops notice: run x creates scratch database d")
    assert recording.items_of({"failed": True, "msg": "x", "module_stderr": None}, ["A"])["A"]["message"] == "x"

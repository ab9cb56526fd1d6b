"""The report's rules: checklist order, unreported IDs, the 6.5 verdict, and the written formats."""
import json
import xml.etree.ElementTree as ET

from ansible_collections.hunter.ops.plugins.module_utils.checklist import CHECK_IDS, DEFAULT_REQUIRED
from ansible_collections.hunter.ops.plugins.modules import preflight_report as pr


def item(status, message="m", **evidence):
    return {"status": status, "message": message, "evidence": evidence}


GROUPS = {"app1": ["app"], "db1": ["db"], "cache1": ["cache"]}


def all_pass():
    results = {"app1": {}, "db1": {}, "cache1": {}}
    for check_id in CHECK_IDS:
        host = {"app": "app1", "db": "db1", "cache": "cache1"}[pr.BY_ID[check_id].group]
        results[host][check_id] = item("pass")
    return results


def test_every_checklist_id_appears_in_order_even_when_nobody_reported_it():
    rows = pr.collect_rows({"app1": {"HEALTH-LIVE": item("pass")}}, GROUPS, list(DEFAULT_REQUIRED))
    assert [r["id"] for r in rows] == list(CHECK_IDS)
    by_id = {r["id"]: r for r in rows}
    assert by_id["HEALTH-LIVE"]["status"] == "pass"
    assert by_id["BACKUP-CMD"]["status"] == "fail"  # db1 is in the group and said nothing at all
    assert "db1" in by_id["BACKUP-CMD"]["message"]
    assert by_id["HEALTH-READY"]["status"] == "skip"  # app1 reported, but not this ID: role not run
    assert "health_check" in by_id["HEALTH-READY"]["message"]


def test_missing_group_is_a_skip_with_the_reason_and_blocks_go():
    rows = pr.collect_rows({"app1": {"HEALTH-LIVE": item("pass")}}, {"app1": ["app"]}, ["REDIS-PING"])
    ping = [r for r in rows if r["id"] == "REDIS-PING"][0]
    assert ping["status"] == "skip" and "cache" in ping["message"]
    verdict, blocking = pr.decide(rows, ["REDIS-PING"])
    assert verdict == "NO-GO" and blocking[0]["id"] == "REDIS-PING"


def test_all_required_pass_is_go_and_warn_does_not_block():
    results = all_pass()
    results["app1"]["API-V1-LEADS"] = item("warn", "slow")
    rows = pr.collect_rows(results, GROUPS, list(DEFAULT_REQUIRED))
    assert pr.decide(rows, list(DEFAULT_REQUIRED)) == ("GO", [])


def test_one_failing_host_of_several_blocks_go():
    results = all_pass()
    results["app2"] = dict(results["app1"], **{"HEALTH-READY": item("fail", "503")})
    rows = pr.collect_rows(results, dict(GROUPS, app2=["app"]), list(DEFAULT_REQUIRED))
    verdict, blocking = pr.decide(rows, list(DEFAULT_REQUIRED))
    assert verdict == "NO-GO"
    assert blocking == [{"id": "HEALTH-READY", "host": "app2", "status": "fail", "message": "503"}]


def test_a_silent_host_fails_the_ids_a_sibling_reported():
    """Issue 9.6: app2 said nothing about HEALTH-READY while app1 passed it: a NO-GO, never a skip."""
    results = all_pass()
    results["app2"] = dict((k, v) for k, v in results["app1"].items() if k != "HEALTH-READY")
    rows = pr.collect_rows(results, dict(GROUPS, app2=["app"]), list(DEFAULT_REQUIRED))
    ready = dict((r["host"], r) for r in rows if r["id"] == "HEALTH-READY")
    assert ready["app1"]["status"] == "pass"
    assert ready["app2"]["status"] == "fail" and "no result from this host" in ready["app2"]["message"]
    verdict, blocking = pr.decide(rows, list(DEFAULT_REQUIRED))
    assert verdict == "NO-GO"
    assert [(b["id"], b["host"]) for b in blocking] == [("HEALTH-READY", "app2")]


def test_a_host_whose_items_belong_to_another_run_is_silent_and_says_so():
    results = all_pass()
    results["app2"] = {}
    stale = {"app2": "results recorded by another run (x) were ignored"}
    rows = pr.collect_rows(results, dict(GROUPS, app2=["app"]), list(DEFAULT_REQUIRED), stale)
    live = [r for r in rows if r["id"] == "HEALTH-LIVE" and r["host"] == "app2"][0]
    assert live["status"] == "fail" and "another run" in live["message"]
    assert pr.decide(rows, list(DEFAULT_REQUIRED))[0] == "NO-GO"


def test_non_required_failure_does_not_block():
    results = all_pass()
    results["app1"]["SENTRY-ALERTS"] = item("fail")
    rows = pr.collect_rows(results, GROUPS, list(DEFAULT_REQUIRED))
    assert pr.decide(rows, list(DEFAULT_REQUIRED))[0] == "GO"


def test_malformed_item_becomes_fail():
    rows = pr.collect_rows({"app1": {"HEALTH-LIVE": {"status": "great"}}}, GROUPS, [])
    assert rows[0]["status"] == "fail" and "malformed" in rows[0]["message"]


def test_markdown_and_junit_carry_every_row_and_the_verdict():
    results = all_pass()
    results["app1"]["HEALTH-READY"] = item("fail", "answered 503", request="GET /healthz/ready")
    required = list(DEFAULT_REQUIRED)
    rows = pr.collect_rows(results, GROUPS, required)
    verdict, blocking = pr.decide(rows, required)
    counts = {s: sum(1 for r in rows if r["status"] == s) for s in ("pass", "fail", "warn", "skip")}
    meta = {"title": "T", "environment": "staging", "inventory": "staging", "generated_at": "now"}
    md = pr.markdown(meta, rows, verdict, blocking, counts, {"Legacy endpoints": "removed"}, required)
    assert "**Verdict: NO-GO**" in md and "Legacy endpoints: **removed**" in md
    assert all(check_id in md for check_id in CHECK_IDS)
    assert "GET /healthz/ready" in md
    suite = ET.fromstring(pr.junit(meta, rows)).find("testsuite")
    assert int(suite.get("tests")) == len(CHECK_IDS) and int(suite.get("failures")) == 1
    failed = [c for c in suite.findall("testcase") if c.find("failure") is not None]
    assert failed[0].get("name") == "HEALTH-READY [app1]"
    table = pr.compact_table(rows, verdict, 40)
    assert table[-1].startswith("VERDICT: NO-GO") and any("HEALTH-READY*" in line for line in table)
    json.dumps(rows)  # report.json must serialise


def test_secret_values_are_scrubbed_from_rows():
    results = {"app1": {"HEALTH-LIVE": item("pass", "key s3cr3t-value used", header="s3cr3t-value",
                                            url="redis://:pw123@h:6379/0")}}
    scrubbed = pr._scrub(results, ["s3cr3t-value"])
    text = json.dumps(pr.collect_rows(scrubbed, GROUPS, []))
    assert "s3cr3t-value" not in text and "pw123" not in text


def test_a_host_named_like_a_secret_keeps_its_items_readable():
    """Host names and IDs are keys of the results, not secret names: only real secrets are masked."""
    results = {"mf-sentry-dsn-missing": {"SENTRY-DSN": item("fail", "not set in the process", variable="HUNTER_SENTRY_DSN"),
                                         "API-V1-LEADS": item("pass", "answered 200 with key s3cr3t-value")}}
    rows = pr.collect_rows(pr._scrub_results(results, ["s3cr3t-value"]), {"mf-sentry-dsn-missing": ["app"]}, [])
    by_id = {r["id"]: r for r in rows if r["host"] == "mf-sentry-dsn-missing"}
    assert by_id["SENTRY-DSN"]["message"] == "not set in the process"
    assert by_id["SENTRY-DSN"]["evidence"]["variable"] == "HUNTER_SENTRY_DSN"
    assert "s3cr3t-value" not in by_id["API-V1-LEADS"]["message"] and "answered 200" in by_id["API-V1-LEADS"]["message"]

"""Timings for CHECKLIST 6.4 (redis_check, api_versioning):

1. REDIS-POOL latency: redis_probe's own pool check (same code the module runs) against a
   private password-protected redis-server, R repetitions of pool_size x pool_rounds PINGs;
   prints p50/p99/max of each repetition and the median over repetitions.
2. preflight.yml wall time on a private copy of the local sandbox (`python -m sandbox start`
   with its own state dir and vars file), alternating runs of preflight.yml as it is ("after")
   and preflight.yml without the Redis and API plays ("before"); median over M runs each.

    .venv/bin/python bench/redis_api.py [R repetitions] [M preflight runs] [pool_size] [pool_rounds]
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / ".ansible" / "collections"))

from sandbox.services import RedisServer, random_secret  # noqa: E402
from ansible_collections.hunter.ops.plugins.module_utils.redis_client import target_from_params  # noqa: E402
from ansible_collections.hunter.ops.plugins.modules.redis_probe import RedisProbe  # noqa: E402

OUR_PLAYS = ("playbooks/redis_check.yml", "playbooks/api_versioning.yml")


def pool_latency(reps, size, rounds):
    base = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    server = RedisServer(base, password=random_secret()).start()
    try:
        params = dict(host=server.host, port=server.port, password=server.password, connect_timeout=3.0,
                      command_timeout=3.0, tls_validate_certs=True, pool_size=size, pool_rounds=rounds,
                      pool_p99_warn_ms=None)
        rows = []
        for dummy in range(reps):
            probe = RedisProbe(target_from_params(params), params, check_mode=False)
            try:
                item = probe.pool()
            finally:
                probe.close()
            assert item["status"] == "pass", item["message"]
            ev = item["evidence"]
            rows.append((ev["p50_ms"], ev["p99_ms"], ev["max_ms"], ev["duration_ms"]))
        return rows
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def without_our_plays(text):
    """preflight.yml with the Redis and API imports removed (what it was before those plays)."""
    out, skip = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith("- name:"):
            skip = False
        if any(play in line for play in OUR_PLAYS):
            if out and out[-1].startswith("- name:"):
                out.pop()
            skip = True
            continue
        if not skip:
            out.append(line)
    return "".join(out)


def preflight_runs(runs):
    work = Path(tempfile.mkdtemp(prefix="bench-preflight-"))
    inventory = work / "inventory"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    shutil.copy(ROOT / "inventories" / "local" / "hosts.yml", inventory / "hosts.yml")
    shutil.copy(ROOT / "inventories" / "local" / "group_vars" / "all" / "main.yml",
                inventory / "group_vars" / "all" / "main.yml")
    env = dict(os.environ, HUNTER_SANDBOX_DIR=str(work / "sandbox"),
               HUNTER_SANDBOX_VARS_FILE=str(inventory / "group_vars" / "all" / "zz_sandbox.yml"))
    python = str(ROOT / ".venv" / "bin" / "python")
    # Both variants outside the tree, importing the real plays by absolute path.
    after = (ROOT / "preflight.yml").read_text()
    after = after.replace("import_playbook: playbooks/", "import_playbook: %s/playbooks/" % ROOT)
    variants = {"after": work / "preflight_after.yml", "before": work / "preflight_before.yml"}
    variants["after"].write_text(after)
    variants["before"].write_text(without_our_plays(after))
    # Our two plays alone, and a one-task play for ansible-playbook's own start-up cost.
    variants["ours"] = work / "ours.yml"
    variants["ours"].write_text("".join("- name: %s\n  ansible.builtin.import_playbook: %s/%s\n" % (p, ROOT, p)
                                        for p in OUR_PLAYS))
    variants["baseline"] = work / "baseline.yml"
    variants["baseline"].write_text("- name: baseline\n  hosts: cache:app\n  gather_facts: false\n  tasks:\n"
                                    "    - name: nothing\n      ansible.builtin.debug:\n        msg: hi\n")
    subprocess.run([python, "-m", "sandbox", "start"], cwd=ROOT, env=env, check=True, capture_output=True)
    times = {"before": [], "after": [], "ours": [], "baseline": []}
    statuses = {}
    try:
        for dummy in range(runs):
            for name in ("before", "after", "baseline", "ours", "baseline", "ours"):
                began = time.monotonic()
                result = subprocess.run(
                    [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(inventory), str(variants[name]),
                     "-e", json.dumps({"hunter_ops_report_dir": str(work / "reports" / name)})],
                    cwd=ROOT, capture_output=True, text=True, check=False)
                times[name].append(time.monotonic() - began)
                if name == "after":
                    report = json.loads((work / "reports" / name / "latest" / "report.json").read_text())
                    statuses = {i["id"]: (i["status"], i["message"]) for i in report["items"]
                                if i["id"].startswith(("REDIS-", "API-"))}
                    pool = [i for i in report["items"] if i["id"] == "REDIS-POOL"][0]["evidence"]
                    statuses["_pool"] = (pool.get("p50_ms"), pool.get("p99_ms"))
                    statuses["_rc"] = result.returncode
    finally:
        subprocess.run([python, "-m", "sandbox", "stop"], cwd=ROOT, env=env, capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)
    return times, statuses


def main():
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 10
    rows = pool_latency(reps, size, rounds)
    print(f"REDIS-POOL: {reps} repetitions of {size} concurrent clients x {rounds} timed PINGs (one pool)")
    for p50, p99, mx, took in rows:
        print(f"  p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   max {mx:7.2f} ms   item {took:7.1f} ms")
    print(f"  median over repetitions: p50 {statistics.median(r[0] for r in rows):.2f} ms, "
          f"p99 {statistics.median(r[1] for r in rows):.2f} ms")
    if runs:
        times, statuses = preflight_runs(runs)
        for name in ("before", "after"):
            print(f"preflight.yml {name:6}: median {statistics.median(times[name]):.2f} s "
                  f"over {runs} runs ({', '.join(f'{t:.2f}' for t in times[name])})")
        delta = statistics.median(times["after"]) - statistics.median(times["before"])
        print(f"  Redis + API plays add {delta:.2f} s (median difference; the machine is shared, so noisy)")
        ours, base = statistics.median(times["ours"]), statistics.median(times["baseline"])
        print(f"  Redis + API plays alone: median {ours:.2f} s, a one-task playbook {base:.2f} s: "
              f"the plays cost about {ours - base:.2f} s ({len(times['ours'])} runs each)")
        print(f"  last 'after' run: rc={statuses.pop('_rc')}, REDIS-POOL p50/p99 {statuses.pop('_pool')} ms")
        for check_id, (status, message) in statuses.items():
            print(f"    {status:4} {check_id:15} {message[:110]}")


if __name__ == "__main__":
    main()

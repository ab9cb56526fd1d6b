"""Health check timings on a private stack (PostgreSQL, Redis, the sample service):

1. probe latency: the three probes sent concurrently by health_probe's own code
   (module_utils/http through run_probes), per probe and for the whole concurrent round,
   median and p95 over N rounds;
2. wall time of the health play + report (tests/integration/playbooks/health_preflight.yml)
   with ansible-playbook, GO path and Redis-down path (HEALTH-DIAG runs), median over M runs.

    .venv/bin/python bench/health_check.py [N rounds] [M playbook runs]
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / ".ansible" / "collections"))

from sandbox.services import PostgresServer, RedisServer, SampleService  # noqa: E402
from ansible_collections.hunter.ops.plugins.modules import health_probe  # noqa: E402


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def probe_rounds(url, rounds):
    params = dict(base_url=url, live_path="/healthz/live", ready_path="/healthz/ready",
                  startup_path="/healthz/startup", live_status=[200], ready_status=[200], startup_status=[200],
                  assertions={}, environment_query="environment", timeout=5.0, startup_timeout=0,
                  startup_interval=1, headers={}, secret_headers={}, validate_certs=True)
    opts = health_probe.parse_options(params)
    per_probe = {"live": [], "ready": [], "startup": []}
    rounds_ms = []
    for _ in range(rounds):
        began = time.monotonic()
        outcomes = health_probe.run_probes(opts, params)
        rounds_ms.append((time.monotonic() - began) * 1000)
        for name, (response, _, _, _) in outcomes.items():
            assert response.status == 200, (name, response.status, response.error)
            per_probe[name].append(response.duration_ms)
    return per_probe, rounds_ms


def playbook_runs(inventory, runs, report_dir):
    times = []
    for _ in range(runs):
        began = time.monotonic()
        result = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(inventory),
             str(ROOT / "tests" / "integration" / "playbooks" / "health_preflight.yml"),
             "-e", json.dumps({"hunter_ops_report_dir": str(report_dir),
                               "hunter_ops_required_checks": ["HEALTH-LIVE", "HEALTH-READY", "HEALTH-STARTUP"]})],
            cwd=ROOT, capture_output=True, text=True,
            env=dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg")))
        times.append(time.monotonic() - began)
    return times, result.returncode


def main(rounds, runs):
    with tempfile.TemporaryDirectory() as base:
        pg = PostgresServer(base).start()
        redis = RedisServer(base, password="bench-" + os.urandom(6).hex()).start()
        service = SampleService(base, env={"HUNTER_DATABASE_URL": pg.dsn, "HUNTER_REDIS_URL": redis.url,
                                           "HUNTER_ENVIRONMENT": "production"}).start()
        try:
            probe_rounds(service.url, 3)  # warm-up: first DB connections
            per_probe, rounds_ms = probe_rounds(service.url, rounds)
            for name, values in per_probe.items():
                print(f"probe {name:<8} median {statistics.median(values):7.1f} ms   p95 {pct(values, 0.95):7.1f} ms")
            print(f"concurrent round (3 probes) median {statistics.median(rounds_ms):7.1f} ms   "
                  f"p95 {pct(rounds_ms, 0.95):7.1f} ms   (n={rounds})")

            inventory = Path(base) / "inventory.json"
            host = {"ansible_connection": "local", "ansible_python_interpreter": str(ROOT / ".venv/bin/python"),
                    "hunter_app_url": service.url, "hunter_expected_environment": "production",
                    "hunter_app_db_host": pg.host, "hunter_app_db_port": pg.port, "hunter_app_db_name": pg.database,
                    "hunter_app_db_user": pg.user, "hunter_app_db_password": pg.password,
                    "hunter_app_redis_url": redis.url, "health_check_startup_timeout": 0}
            fd = os.open(inventory, os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump({"all": {"children": {"app": {"hosts": {"bench-app": host}}}}}, handle)
            go, rc = playbook_runs(inventory, runs, Path(base) / "reports")
            print(f"health play + report, GO        median {statistics.median(go):5.2f} s   max {max(go):5.2f} s"
                  f"   rc={rc} (n={runs})")
            redis.stop()
            nogo, rc = playbook_runs(inventory, runs, Path(base) / "reports")
            print(f"health play + report, Redis down (DIAG runs, startup_timeout 0) median "
                  f"{statistics.median(nogo):5.2f} s   max {max(nogo):5.2f} s   rc={rc} (n={runs})")
        finally:
            service.stop()
            redis.stop()
            pg.destroy()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50, int(sys.argv[2]) if len(sys.argv) > 2 else 3)

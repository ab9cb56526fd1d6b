"""Bugsink start-up (cold: migrating the template; warm: copying it) and the latency of a test
event (sentry-sdk capture + flush -> visible through Bugsink's API), median and max over N runs.

    .venv/bin/python bench/bugsink_startup.py [N]
"""
import os
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sentry_sdk  # noqa: E402

from sandbox.bugsink import BugsinkServer, template_dir  # noqa: E402


def event_latency(server: BugsinkServer) -> float:
    """Seconds from capture_exception to the first 200 of events/lookup (polled every 20 ms)."""
    sentry_sdk.init(dsn=server.dsn, environment="bench", default_integrations=False)
    began = time.monotonic()
    try:
        raise RuntimeError("bench event")
    except RuntimeError as exc:
        event_id = sentry_sdk.capture_exception(exc)
    sentry_sdk.flush(5)
    while True:
        status, _ = server.api("GET", f"events/lookup/?project={server.project_id}&event_id={event_id}")
        if status == 200:
            return time.monotonic() - began
        if time.monotonic() - began > 30:
            raise RuntimeError("event not visible after 30 s")
        time.sleep(0.02)


def main(runs: int) -> None:
    times = {"cold start (migrate template + start + provision)": [],
             "warm start (template copy + start + provision)": [], "event latency (sdk -> API)": []}
    real_cache = os.environ.get("HUNTER_OPS_CACHE")
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as base:
            os.environ["HUNTER_OPS_CACHE"] = cache  # an empty cache: the template is migrated again
            began = time.monotonic()
            BugsinkServer(Path(base) / "cold").start().destroy()
            times["cold start (migrate template + start + provision)"].append(time.monotonic() - began)
    if real_cache is None:
        os.environ.pop("HUNTER_OPS_CACHE", None)
    else:
        os.environ["HUNTER_OPS_CACHE"] = real_cache
    template_dir()  # the real cache's template, built once outside the measurement
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as base:
            began = time.monotonic()
            server = BugsinkServer(base).start()
            times["warm start (template copy + start + provision)"].append(time.monotonic() - began)
            try:
                times["event latency (sdk -> API)"].append(event_latency(server))
            finally:
                server.destroy()
    for name, values in times.items():
        print(f"{name:<52} median {statistics.median(values):6.2f}s   max {max(values):6.2f}s   (n={runs})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)

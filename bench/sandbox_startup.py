"""Start-up time of the sandbox servers (PostgreSQL from the cached template, Redis,
the sample service), median and max over N runs.

    .venv/bin/python bench/sandbox_startup.py [N]
"""
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox.services import PostgresServer, RedisServer, SampleService, pg_bindir, pg_template, seed  # noqa: E402


def timed(fn):
    began = time.monotonic()
    result = fn()
    return time.monotonic() - began, result


def main(runs: int) -> None:
    pg_template(pg_bindir())  # build the template once, outside the measurement
    times = {"postgres start (template copy + roles)": [], "postgres seed": [],
             "redis start": [], "sample service start": []}
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as base:
            pg = PostgresServer(base)
            times["postgres start (template copy + roles)"].append(timed(pg.start)[0])
            times["postgres seed"].append(timed(lambda: seed(pg))[0])
            redis = RedisServer(base, password="bench")
            times["redis start"].append(timed(redis.start)[0])
            service = SampleService(base, env={"HUNTER_DATABASE_URL": pg.dsn,
                                               "HUNTER_REDIS_URL": redis.url})
            times["sample service start"].append(timed(service.start)[0])
            service.stop()
            redis.stop()
            pg.destroy()
    for name, values in times.items():
        print(f"{name:<42} median {statistics.median(values):6.2f}s   max {max(values):6.2f}s   (n={runs})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)

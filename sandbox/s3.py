"""S3 for tests and the demo sandbox: moto in server mode on a loopback port.

moto keeps everything in memory and accepts any credentials; the sandbox still generates
an access key and a secret per server so tests can prove the secret never leaks.
"""
from __future__ import annotations

import urllib.error
import urllib.request

from sandbox.cli import SandboxPlugin
from sandbox.services import ManagedProcess, random_secret, venv_python

REGION = "us-east-1"


class MotoServer(ManagedProcess):
    """`python -m moto.server` bound to 127.0.0.1."""

    name = "moto"
    cmdline_marker = "moto.server"
    ready_timeout = 60.0

    def __init__(self, base_dir, port=None, access_key: str | None = None, secret_key: str | None = None,
                 region: str = REGION):
        super().__init__(base_dir, port)
        self.access_key = access_key or "AKIA" + random_secret(12).upper().replace("-", "X").replace("_", "Y")[:16]
        self.secret_key = secret_key or random_secret(30)
        self.region = region

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [str(venv_python()), "-m", "moto.server", "-H", self.host, "-p", str(self.port)]

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env.update(PYTHONUNBUFFERED="1", MOTO_ALLOW_NONEXISTENT_REGION="true")
        return env

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.endpoint_url + "/moto-api/", timeout=1) as resp:
                return resp.status == 200
        except urllib.error.HTTPError as err:
            return err.code < 500
        except OSError:
            return False

    def client(self):
        import boto3
        import botocore.config
        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=self.region,
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
                            config=botocore.config.Config(connect_timeout=5, read_timeout=30,
                                                          retries={"max_attempts": 2},
                                                          s3={"addressing_style": "path"}))

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def objects(self, bucket: str, prefix: str = "") -> dict[str, int]:
        """{key: size} under prefix."""
        found = {}
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                found[obj["Key"]] = obj["Size"]
        return found

    def reset(self) -> None:
        """Forget every bucket and object (moto's reset endpoint)."""
        req = urllib.request.Request(self.endpoint_url + "/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=10):
            pass


class S3Plugin(SandboxPlugin):
    """`python -m sandbox start` plugin: moto S3 with a bucket, and where backups go locally.

    Writes hunter_backup_dir and hunter_backup_s3_* (docs/INVENTORY.md) for pg_backup and the
    restore drill, and keeps pg_backup's scheduled job (wrapper, cron file) inside the sandbox."""

    name = "s3"
    bucket = "hunter-backups"
    prefix = "local/"

    def server(self, ctx, rec) -> MotoServer:
        return MotoServer(ctx.service_dir(self.name), port=rec["port"], access_key=rec["access_key"],
                          secret_key=rec["secret_key"])

    def start(self, ctx) -> None:
        server = MotoServer(ctx.service_dir(self.name))
        self.launch(ctx, server, {"port": server.port, "access_key": server.access_key,
                                  "secret_key": server.secret_key})
        server.create_bucket(self.bucket)
        (ctx.service_dir("backup-schedule") / "cron.d").mkdir(parents=True, exist_ok=True)
        schedule_dir = ctx.service_dir("backup-schedule")
        ctx.vars.update({
            "hunter_backup_dir": str(ctx.state_dir / "backups"),
            # The demo's scheduled backup stays inside the sandbox: a cron file here instead of the
            # machine's crontab (BACKUP-SCHEDULE reads it; playbooks/install_backup_schedule.yml
            # writes it).
            "pg_backup_schedule_dir": str(schedule_dir),
            "pg_backup_schedule_cron_file": str(schedule_dir / "cron.d" / "hunter-backup"),
            # Metrics of the backup, the drill and the preflight for node_exporter (docs/METRICS.md).
            "hunter_ops_metrics_dir": str(ctx.state_dir / "metrics"),
            "hunter_backup_s3_endpoint_url": server.endpoint_url,
            "hunter_backup_s3_region": server.region,
            "hunter_backup_s3_bucket": self.bucket,
            "hunter_backup_s3_prefix": self.prefix,
            "hunter_backup_s3_access_key": server.access_key,
            "hunter_backup_s3_secret_key": server.secret_key,
        })

    def detail(self, server, rec) -> str:
        return f"{server.endpoint_url} bucket={self.bucket} prefix={self.prefix} pid={server.pid}"

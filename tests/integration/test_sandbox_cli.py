"""`python -m sandbox start|stop` (what scripts/demo.sh calls), on real services.

Two of the sandbox's plugins (PostgreSQL, Redis) are enough to check what stop leaves behind:
every plugin's files live in the state dir, which stop deletes.
"""
from __future__ import annotations

import pytest

from sandbox import cli


@pytest.fixture
def small_sandbox(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "PLUGINS", ["sandbox.cli:PostgresPlugin", "sandbox.cli:RedisPlugin"])
    monkeypatch.setattr(cli, "VARS_FILE", tmp_path / "zz_sandbox.yml")
    return tmp_path / "state"


def test_stop_leaves_nothing_behind(small_sandbox, capsys):
    ctx = cli.Context(small_sandbox)
    assert cli.cmd_start(ctx) == 0
    pg_root = cli.PostgresPlugin().server(ctx, ctx.state["services"]["postgres"]).root
    redis_conf = next(small_sandbox.glob("redis/*.conf"))
    assert "requirepass" in redis_conf.read_text()  # a generated secret on disk while it runs
    servers = [plugin.server(ctx, ctx.state["services"][plugin.name]) for plugin in cli.load_plugins()]
    assert all(server.is_running() for server in servers)

    assert cli.cmd_stop(cli.Context(small_sandbox)) == 0
    assert not small_sandbox.exists() and not pg_root.exists() and not cli.VARS_FILE.exists()
    assert not any(server.is_running() for server in servers)
    assert "removed" in capsys.readouterr().out
    # and the next start needs none of it
    ctx = cli.Context(small_sandbox)
    assert cli.cmd_start(ctx) == 0
    assert cli.cmd_stop(ctx) == 0 and not small_sandbox.exists()


def test_a_failed_start_keeps_the_logs(small_sandbox, monkeypatch, capsys):
    def refuse(self, ctx):
        raise RuntimeError("port taken")
    monkeypatch.setattr(cli.RedisPlugin, "start", refuse)
    assert cli.cmd_start(cli.Context(small_sandbox)) == 1
    assert "logs kept in" in capsys.readouterr().err
    assert (small_sandbox / "postgres").is_dir() and not (small_sandbox / "state.json").exists()

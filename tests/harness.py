"""Test harness: run playbooks and modules through ansible-runner, check for leaks.

Secrets never reach argv: extra vars go to the runner's `env/extravars` file and
module arguments into a generated playbook, both inside the private data dir
(mode 0600). RunResult.all_text() is what a leak assertion scans: the output,
every artifact (events, stdout, facts) and the report dir, but not the input
files we wrote ourselves (they hold the secrets on purpose).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from sandbox.services import write_private as _write_private

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"
INPUT_DIRS = ("env", "inventory", "project")  # what the harness writes, holding secrets


class Unsafe(dict):
    """A mapping dumped as `!unsafe`: Ansible never templates what is inside.

    (Tagging the mapping, not each string: Ansible re-resolves a tagged scalar
    implicitly, so `!unsafe "false"` would turn into a boolean.)
    """


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    Unsafe, lambda dumper, value: dumper.represent_mapping("!unsafe", dict(value)))


@dataclass
class RunResult:
    rc: int
    status: str
    stdout: str
    events: list[dict]
    stats: dict
    artifact_data: dict
    private_data_dir: Path
    report_dir: Path
    report: dict | None = None
    report_path: Path | None = None

    def all_text(self) -> str:
        """Output plus every produced file, for secret-leak assertions."""
        parts = [self.stdout]
        for root in (self.private_data_dir, self.report_dir):
            for path in sorted(Path(root).rglob("*")):
                rel = path.relative_to(root).parts
                if root == self.private_data_dir and rel and rel[0] in INPUT_DIRS:
                    continue
                if path.is_file() and not path.is_symlink():
                    parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)

    def task_results(self, task: str | None = None, host: str | None = None,
                     events: Iterable[str] = ("runner_on_ok", "runner_on_failed",
                                              "runner_on_skipped", "runner_on_unreachable")
                     ) -> list[dict]:
        """`res` of every finished task (optionally filtered by task name / host)."""
        found = []
        for event in self.events:
            data = event.get("event_data", {})
            if event.get("event") not in events:
                continue
            if task is not None and data.get("task") != task:
                continue
            if host is not None and data.get("host") != host:
                continue
            found.append(dict(data.get("res", {}), _host=data.get("host"), _task=data.get("task"),
                              _event=event.get("event")))
        return found

    def failed_tasks(self) -> list[dict]:
        return self.task_results(events=("runner_on_failed", "runner_on_unreachable"))


@dataclass
class AnsibleHarness:
    """ansible-runner with the project's config, the venv interpreter and quiet output."""

    base_dir: Path
    repo_root: Path = REPO_ROOT
    python: Path = VENV_PYTHON
    envvars: dict = field(default_factory=dict)
    # Extra ansible-runner settings, e.g. {"fact_cache": "/abs/dir"}: runner (like AWX) always uses a
    # jsonfile fact cache, by default per run under its artifacts.
    settings: dict = field(default_factory=dict)
    last_run: RunResult | None = None
    _count: int = 0

    def _private_dir(self, kind: str) -> Path:
        self._count += 1
        path = Path(self.base_dir) / f"{kind}-{self._count}"
        path.mkdir(parents=True)
        return path

    def _env(self, private: Path) -> dict:
        bindir = str(self.python.parent)
        env = {
            "ANSIBLE_CONFIG": str(self.repo_root / "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": str(self.repo_root / ".ansible" / "collections"),
            "ANSIBLE_ROLES_PATH": str(self.repo_root / "roles"),
            "ANSIBLE_LOCAL_TEMP": str(private / "tmp"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_DEPRECATION_WARNINGS": "0",
            "PATH": f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        }
        env.update(self.envvars)
        return env

    def _inventory(self, private: Path, inventory: dict | str | os.PathLike) -> str:
        if not isinstance(inventory, dict):
            path = Path(inventory)
            return str(path if path.is_absolute() else self.repo_root / path)
        inv = json.loads(json.dumps(inventory))  # deep copy
        group_vars = inv.setdefault("all", {}).setdefault("vars", {}) or {}
        inv["all"]["vars"] = group_vars
        group_vars.setdefault("ansible_connection", "local")
        group_vars.setdefault("ansible_python_interpreter", str(self.python))
        path = private / "inventory" / "hosts.yml"
        _write_private(path, yaml.dump(inv, Dumper=_Dumper, sort_keys=False))
        return str(path)

    def _run(self, private: Path, playbook: str, inventory: str, extravars: dict | None,
             limit: str | None, report_dir: Path, cmdline: str | None = None) -> RunResult:
        import ansible_runner

        extravars = dict(extravars or {})
        extravars.setdefault("hunter_ops_report_dir", str(report_dir))
        _write_private(private / "env" / "extravars",
                       yaml.dump(Unsafe(extravars), Dumper=_Dumper, sort_keys=False))
        runner = ansible_runner.run(
            private_data_dir=str(private), project_dir=str(self.repo_root), playbook=playbook,
            inventory=inventory, limit=limit, envvars=self._env(private), quiet=True, cmdline=cmdline,
            settings=dict(self.settings, suppress_ansible_output=True))
        stdout = runner.stdout.read() if runner.stdout else ""
        events = list(runner.events)
        artifact_data = {}
        for event in events:
            if event.get("event") == "playbook_on_stats":
                artifact_data = event.get("event_data", {}).get("artifact_data", {}) or {}
        report, report_path = find_report(report_dir)
        self.last_run = RunResult(rc=runner.rc, status=runner.status, stdout=stdout, events=events,
                                  stats=runner.stats or {}, artifact_data=artifact_data,
                                  private_data_dir=private, report_dir=report_dir,
                                  report=report, report_path=report_path)
        return self.last_run

    def run_playbook(self, playbook: str | os.PathLike, inventory: dict | str | os.PathLike,
                     extravars: dict | None = None, limit: str | None = None,
                     cmdline: str | None = None) -> RunResult:
        """Run a playbook (absolute, or relative to the repo root); cmdline: extra options (--check)."""
        private = self._private_dir("run")
        report_dir = private.parent / f"{private.name}-reports"
        report_dir.mkdir()
        path = Path(playbook)
        return self._run(private, str(path if path.is_absolute() else self.repo_root / path),
                         self._inventory(private, inventory), extravars, limit, report_dir, cmdline)

    def run_module(self, fqcn: str, args: dict, check: bool = False,
                   host_vars: dict | None = None) -> dict:
        """Run one module on localhost (local connection, venv python); return its result."""
        private = self._private_dir("module")
        report_dir = private.parent / f"{private.name}-reports"
        report_dir.mkdir()
        host = {"ansible_connection": "local", "ansible_python_interpreter": str(self.python)}
        host.update(host_vars or {})
        inventory = self._inventory(private, {"all": {"hosts": {"localhost": host}}})
        play = [{"name": "harness", "hosts": "localhost", "gather_facts": False,
                 "tasks": [{"name": "module under test", fqcn: Unsafe(args), "check_mode": bool(check),
                            "ignore_errors": True}]}]
        playbook = _write_private(private / "project" / "module.yml",
                                  yaml.dump(play, Dumper=_Dumper, sort_keys=False))
        run = self._run(private, str(playbook), inventory, None, None, report_dir)
        results = run.task_results(task="module under test")
        if not results:
            raise AssertionError(f"module {fqcn} produced no result (rc={run.rc}):\n{run.stdout}")
        result = results[-1]
        event = result.pop("_event")
        result.pop("_host", None)
        result.pop("_task", None)
        # the callback strips these flags from `res`; put back what the event says
        result.setdefault("failed", event == "runner_on_failed")
        if event == "runner_on_unreachable":
            result["unreachable"] = True
        if event == "runner_on_skipped":
            result["skipped"] = True
        return result

    def run_tasks(self, tasks: list[dict], extravars: dict | None = None,
                  host_vars: dict | None = None) -> tuple[RunResult, list[dict]]:
        """Several tasks in one ansible-playbook run on localhost: (run, [result of each task]).

        Each task runs with ignore_errors, so a failing case does not stop the next one; each
        result carries `failed` as the event says. Secrets belong in extravars (kept out of argv
        and out of the leak scan), referenced from the tasks as "{{ var }}".
        """
        named = [dict(name=f"case {i}", ignore_errors=True, **task) for i, task in enumerate(tasks)]
        play = [{"name": "cases", "hosts": "localhost", "gather_facts": False, "tasks": named}]
        private = self._private_dir("tasks")
        playbook = _write_private(private / "cases.yml", yaml.safe_dump(play, sort_keys=False))
        run = self.run_playbook(playbook, {"all": {"hosts": {"localhost": dict(host_vars or {})}}},
                                extravars=extravars)
        results = []
        for i in range(len(tasks)):
            found = run.task_results(task=f"case {i}")
            assert found, f"case {i} produced no result (rc={run.rc}):\n{run.stdout[-3000:]}"
            result = dict(found[-1])
            result.setdefault("failed", result.pop("_event") == "runner_on_failed")
            results.append(result)
        return run, results


def find_report(report_dir: Path) -> tuple[dict | None, Path | None]:
    """The newest report.json under report_dir (via `latest` when present)."""
    report_dir = Path(report_dir)
    latest = report_dir / "latest" / "report.json"
    candidates = [latest] if latest.exists() else sorted(
        report_dir.glob("*/report.json"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        return None, None
    path = candidates[-1]
    return json.loads(path.read_text()), path


def assert_no_secret(text_or_result: Any, *secrets: str) -> None:
    """Fail when any secret appears in text, a RunResult, or a (nested) result dict."""
    if isinstance(text_or_result, RunResult):
        text = text_or_result.all_text()
    elif isinstance(text_or_result, (dict, list, tuple)):
        text = json.dumps(text_or_result, default=str)
    else:
        text = str(text_or_result)
    for secret in secrets:
        assert secret, "assert_no_secret needs non-empty secrets"
        if secret in text:
            at = text.index(secret)
            context = text[max(0, at - 60):at].replace(secret, "<SECRET>")
            raise AssertionError(f"secret leaked (…{context}<SECRET>…)")

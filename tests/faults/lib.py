"""Shared equipment of the fault matrix (tests/faults): seeded marker secrets, disk and process-list
searches for them, leftovers, and background ansible-playbook runs that can be signalled.

Every credential of the matrix's services carries a distinctive marker (``HOPSMARK-...``), so a search
for every shape of every marker (secret.forms: as written, percent-encoded, JSON-escaped) over the
output, the runner's artifacts, the report, the temp directories and the process list finds a leak
wherever it went. The input files the tests write themselves (inventory, extra vars, playbook) hold
the secrets on purpose, as a vault would, and are left out.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg
import yaml

from sandbox.services import pid_alive, write_private
from tests.harness import REPO_ROOT, Unsafe, _Dumper

sys.path.insert(0, str(REPO_ROOT / ".ansible" / "collections"))
from ansible_collections.hunter.ops.plugins.module_utils import secret  # noqa: E402

SCAN_ROOTS = [Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"), Path.home() / ".ansible" / "tmp"]
MAX_SCANNED_FILE = 64 * 1024 * 1024
INPUT_DIRS = ("env", "inventory", "project")  # what the harness writes, holding secrets on purpose


def wait_for(condition, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def activity(pg, where: str) -> list:
    with psycopg.connect(pg.superuser_dsn, autocommit=True, connect_timeout=5) as conn:
        return conn.execute(f"SELECT pid, application_name, wait_event_type, query FROM pg_stat_activity "
                            f"WHERE pid <> pg_backend_pid() AND {where}").fetchall()


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def _ppid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def descendants(pid: int) -> set[int]:
    """Every process below `pid` now, whatever its session: ansible-core's workers call setsid()
    (WorkerProcess._detach), so ansible-playbook's process group holds neither them nor the modules
    they run."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = _ppid(int(entry))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def all_gone(pids) -> bool:
    """No process of `pids` runs any more (a zombie waiting for its parent counts as gone)."""
    return not any(pid_alive(pid) for pid in pids)


def needles(markers: dict[str, str]) -> dict[bytes, str]:
    """Every shape of every marker (as written, percent-encoded, JSON-escaped...) -> its name."""
    found = {}
    for name, value in markers.items():
        for form in secret.forms(value):
            if len(form) >= 12:
                found[form.encode()] = name
    return found


def text_hits(text: str, markers: dict[str, str]) -> list[str]:
    """Names of the markers any of whose shapes appear in text."""
    data = text.encode(errors="replace")
    return sorted({name for needle, name in needles(markers).items() if needle in data})


def input_files(private_data_dir: Path) -> set[Path]:
    """The files a harness run was given (they hold the secrets on purpose)."""
    return {p for d in INPUT_DIRS for p in (Path(private_data_dir) / d).rglob("*") if p.is_file()}


def scan(roots, since: float, markers: dict[str, str], skip: set[Path]) -> tuple[list[str], int]:
    """(files holding a marker, files read) among the files under roots changed since `since`."""
    wanted = needles(markers)
    hits, read, seen = [], 0, set()
    skip = {p.resolve() for p in skip}
    for root in roots:
        if not Path(root).exists():
            continue
        for dirpath, _dirnames, filenames in os.walk(root, onerror=lambda err: None):
            for filename in filenames:
                path = Path(dirpath, filename)
                try:
                    info = path.lstat()
                except OSError:
                    continue
                if not path.is_file() or path.is_symlink() or max(info.st_mtime, info.st_ctime) < since:
                    continue
                if info.st_size > MAX_SCANNED_FILE or path.resolve() in skip or path.resolve() in seen:
                    continue
                seen.add(path.resolve())
                try:
                    data = path.read_bytes()
                except OSError:
                    continue
                read += 1
                for needle, name in wanted.items():
                    if needle in data:
                        hits.append(f"{path}: {name}")
                        break
    return hits, read


class PsWatcher(threading.Thread):
    """Samples every process's command line and environment-free argv (`ps -eo args`) while it runs."""

    def __init__(self, interval: float = 0.1):
        super().__init__(daemon=True)
        self.lines: set[str] = set()
        self.samples = 0
        self.interval = interval
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            out = subprocess.run(["ps", "-ww", "-eo", "args", "--no-headers"], capture_output=True, text=True,
                                 check=False).stdout
            self.lines.update(line.strip() for line in out.splitlines())
            self.samples += 1
            self._halt.wait(self.interval)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self._halt.set()
        self.join(5)


def leftovers(directory) -> list[str]:
    """Anything a failed backup could leave behind: partials, temp manifests."""
    directory = Path(directory)
    if not directory.exists():
        return []
    return sorted(n for n in os.listdir(directory) if n.endswith(".partial") or n.startswith(".manifest-"))


def backups_in(directory) -> list[str]:
    directory = Path(directory)
    if not directory.exists():
        return []
    return sorted(n for n in os.listdir(directory) if n.startswith("backup_") and not n.endswith(".manifest.json"))


def scratch_databases(pg, prefix: str = "restore_drill") -> list[str]:
    like = prefix.replace("_", "\\_") + "%"
    return pg.psql(f"SELECT datname FROM pg_database WHERE datname LIKE '{like}'", superuser=True).split()


def files_under(*roots) -> list[str]:
    return sorted(str(p) for root in roots if Path(root).exists() for p in Path(root).rglob("*") if not p.is_dir())


class Run:
    """One ansible-playbook run through ansible-runner, with its own temp dirs, started in the background."""

    def __init__(self, base: Path, tasks: list[dict], extravars: dict, env: dict | None = None):
        self.base = base
        self.private = base / "runner"
        self.remote_tmp = base / "remote_tmp"
        self.local_tmp = base / "local_tmp"
        self.report_dir = base / "reports"
        for path in (self.private, self.remote_tmp, self.local_tmp, self.report_dir):
            path.mkdir(parents=True)
        play = [{"name": "interrupted", "hosts": "localhost", "gather_facts": False, "tasks": tasks}]
        self.playbook = write_private(self.private / "project" / f"interrupted-{uuid.uuid4().hex[:8]}.yml",
                                      yaml.dump(play, Dumper=_Dumper, sort_keys=False))
        python = str(REPO_ROOT / ".venv" / "bin" / "python")
        inventory = {"all": {"hosts": {"localhost": {"ansible_connection": "local",
                                                     "ansible_python_interpreter": python}}}}
        self.inventory = write_private(self.private / "inventory" / "hosts.yml", yaml.safe_dump(inventory))
        self.extravars = write_private(self.private / "env" / "extravars",
                                       yaml.dump(Unsafe(extravars), Dumper=_Dumper, sort_keys=False))
        bindir = str(REPO_ROOT / ".venv" / "bin")
        self.env = {"ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
                    "ANSIBLE_COLLECTIONS_PATH": str(REPO_ROOT / ".ansible" / "collections"),
                    "ANSIBLE_LOCAL_TEMP": str(self.local_tmp), "ANSIBLE_REMOTE_TEMP": str(self.remote_tmp),
                    "ANSIBLE_NOCOLOR": "1", "PATH": f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        self.env.update(env or {})
        self.thread = self.runner = None

    @property
    def inputs(self) -> set[Path]:
        return {self.playbook, self.inventory, self.extravars}

    def start(self) -> "Run":
        import ansible_runner
        self.thread, self.runner = ansible_runner.run_async(
            private_data_dir=str(self.private), playbook=str(self.playbook), inventory=str(self.inventory),
            project_dir=str(REPO_ROOT), envvars=self.env, quiet=True, settings={"suppress_ansible_output": True})
        return self

    def playbook_pid(self, timeout: float = 30) -> int:
        """ansible-playbook's pid (runner starts it in its own session: its pid is the process group)."""
        def find():
            for pid, argv in processes():
                if any(arg.endswith(b"ansible-playbook") for arg in argv[:2]) and str(self.playbook).encode() in argv:
                    return pid
            return None
        return wait_for(find, timeout, "ansible-playbook to start")

    def finish(self, timeout: float = 120) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "ansible-runner did not return"

    def results(self) -> dict[str, dict]:
        """Each finished task's result by task name."""
        found = {}
        for event in self.runner.events:
            data = event.get("event_data", {})
            if event.get("event") in ("runner_on_ok", "runner_on_failed"):
                found[data.get("task")] = dict(data.get("res", {}), failed=event["event"] == "runner_on_failed")
        return found

    def stdout(self) -> str:
        return self.runner.stdout.read() if self.runner and self.runner.stdout else ""

    def all_text(self) -> str:
        """Output plus every artifact the run produced (its inputs left out)."""
        parts = [self.stdout()]
        for path in sorted(self.base.rglob("*")):
            if path.is_file() and not path.is_symlink() and path not in self.inputs:
                try:
                    parts.append(path.read_text(errors="replace"))
                except OSError:
                    pass
        return "\n".join(parts)


def processes():
    """(pid, argv) of every process now."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        yield int(entry), argv

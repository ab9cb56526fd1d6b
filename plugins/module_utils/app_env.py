# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read the environment an application really runs with, from where it really lives.

Sources (option ``source``):
  - ``process``: ``/proc/<pid>/environ`` of the running process, found by pid, pidfile
    or a regular expression on its command line;
  - ``envfile``: ``.env`` files and systemd ``EnvironmentFile=`` files (later files win),
    parsed by module_utils/envfile.py;
  - ``container``: ``docker exec <container> env`` or
    ``docker compose exec -T <service> env`` (argument lists, never a shell);
  - ``value``: the value given directly (from a vault).

Values are returned to the caller only; descriptions and evidence name the
source and the variable, never a value.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import subprocess

from ansible_collections.hunter.ops.plugins.module_utils import envfile
from ansible_collections.hunter.ops.plugins.module_utils.redact import redact_text

SOURCES = ("process", "envfile", "container", "value")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


class EnvSourceError(Exception):
    """The environment could not be read; str() says why, for the check's message."""


class EnvSnapshot(object):
    """Variables read from one source, with a description fit for evidence."""

    def __init__(self, variables, description, evidence=None):
        self.variables = variables
        self.description = description
        self.evidence = dict(evidence or {})


def source_argument_spec(default_variable):
    """Options shared by modules that read an application's environment (doc fragment hunter.ops.sentry_dsn_source).

    Permissive types where a role passes an operator's value: the modules check them with
    module_utils/sentry_inputs.py (source_settings), so a bad one is named as the operator set it
    and fails only the items that use it.
    """
    return dict(
        source=dict(type="str"),
        variable=dict(type="str", default=default_variable),
        pid=dict(type="raw"),
        pidfile=dict(type="path"),
        process_match=dict(type="str"),
        env_files=dict(type="raw", aliases=["env_file"]),
        container=dict(type="str"),
        compose_service=dict(type="str"),
        compose_project_dir=dict(type="path"),
        compose_files=dict(type="raw", default=[]),
        docker_command=dict(type="raw", default=["docker"]),
        compose_command=dict(type="raw", default=["docker", "compose"]),
        command_timeout=dict(type="raw", default=30.0),
        dsn=dict(type="str", no_log=True),
    )


def load(params, secrets=()):
    """Read the environment from the configured source. Raises EnvSourceError."""
    source = params["source"]
    if source == "value":
        return EnvSnapshot({params["variable"]: params.get("dsn") or ""}, "the value given directly (dsn)",
                           {"source": "value"})
    if source == "process":
        return _from_process(params, secrets)
    if source == "envfile":
        return _from_env_files(params["env_files"])
    return _from_container(params, secrets)


# -- processes ----------------------------------------------------------------------

def read_process_environ(pid):
    """The environment of a running process (needs root or the process's user)."""
    try:
        raw = envfile.read_bytes("/proc/%d/environ" % pid, missing="process %d is not running" % pid)
    except envfile.EnvFileError as err:
        raise EnvSourceError(str(err))
    return parse_nul_environ(raw)


def parse_nul_environ(raw):
    variables = {}
    for entry in raw.split(b"\0"):
        if b"=" in entry:
            key, dummy, value = entry.partition(b"=")
            variables[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return variables


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return None


def executable_name(pid):
    """The name of a process's executable and how many arguments it has; never the arguments themselves
    (a command line may carry a secret: --ssl-keyfile-password, a DSN)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            argv = [arg for arg in handle.read().split(b"\0") if arg]
    except OSError:
        argv = []
    name = os.path.basename(argv[0].decode("utf-8", "replace")) if argv else ""
    if not name:  # kernel threads, or a process that rewrote its argv
        try:
            with open("/proc/%d/comm" % pid) as handle:
                name = handle.read().strip()
        except OSError:
            name = "unknown"
    return name, max(0, len(argv) - 1)


def _start_time(pid):
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _ancestors(pid):
    """pid and every parent up to init: the module and Ansible's own processes."""
    seen = set()
    while pid and pid not in seen:
        seen.add(pid)
        try:
            with open("/proc/%d/stat" % pid) as handle:
                pid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return seen


def find_processes(pattern):
    """(pid, cmdline) of processes whose command line matches, oldest first; Ansible's own excluded."""
    regex = re.compile(pattern)
    mine = _ancestors(os.getpid())
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid in mine:
            continue
        cmdline = _cmdline(pid)
        if not cmdline or "AnsiballZ_" in cmdline or "ansible-playbook" in cmdline:
            continue
        if regex.search(cmdline):
            found.append((_start_time(pid) or 0, pid, cmdline))
    return [(pid, cmdline) for dummy, pid, cmdline in sorted(found)]


def _from_process(params, secrets):
    if params.get("pid"):
        pid, how = params["pid"], "pid %d" % params["pid"]
    elif params.get("pidfile"):
        pid, how = _pid_from_file(params["pidfile"]), "pidfile %s" % params["pidfile"]
    else:
        matches = find_processes(params["process_match"])
        if not matches:
            raise EnvSourceError("no running process matches %r" % params["process_match"])
        pid, how = matches[0][0], "process matching %r" % params["process_match"]
        return _process_snapshot(pid, how, secrets, matches)
    return _process_snapshot(pid, how, secrets, [(pid, _cmdline(pid))])


def _process_snapshot(pid, how, secrets, matches):
    variables = read_process_environ(pid)
    name, arguments = executable_name(pid)
    evidence = {"source": "process", "pid": pid, "found_by": how, "executable": name,
                "arguments": "%d, not shown" % arguments}
    if len(matches) > 1:
        # Workers inherit the master's environment; the oldest process is the master.
        evidence["matched_pids"] = [match[0] for match in matches][:20]
        evidence["disagreeing_pids"] = _disagreeing(pid, variables, matches)
    return EnvSnapshot(variables, "the environment of process %d (%s)" % (pid, how), evidence)


def _disagreeing(chosen, variables, matches):
    """Other matches whose environment differs from the chosen one's (names only are compared later)."""
    differing = []
    for pid, dummy in matches:
        if pid == chosen:
            continue
        try:
            if read_process_environ(pid) != variables:
                differing.append(pid)
        except EnvSourceError:
            continue
    return differing[:20]


def _pid_from_file(path):
    try:
        with open(path) as handle:
            text = handle.read().strip()
    except FileNotFoundError:
        raise EnvSourceError("pidfile %s does not exist" % path)
    except OSError as err:
        raise EnvSourceError("cannot read pidfile %s: %s" % (path, err.strerror or err))
    if not text.split() or not text.split()[0].isdigit():
        raise EnvSourceError("pidfile %s does not hold a process id" % path)
    return int(text.split()[0])


# -- environment files ------------------------------------------------------------------

def _from_env_files(paths):
    variables, read = {}, []
    for raw_path in paths:
        optional = raw_path.startswith("-")  # systemd: EnvironmentFile=-/path may be missing
        path = raw_path[1:] if optional else raw_path
        if optional and not os.path.exists(path):
            continue
        try:
            variables.update(envfile.load(path))
        except envfile.EnvFileError as err:
            raise EnvSourceError(str(err))
        read.append(path)
    if not read:
        raise EnvSourceError("none of the environment files exist (%s)" % ", ".join(paths))
    evidence = {"source": "envfile", "files": read}
    return EnvSnapshot(variables, "environment file%s %s" % ("s" if len(read) > 1 else "", ", ".join(read)),
                       evidence)


# -- containers ----------------------------------------------------------------------------

def container_argv(params):
    """docker exec / docker compose exec -T argument list (no shell, no secrets)."""
    if params.get("container"):
        return (list(params["docker_command"]) + ["exec", params["container"], "env"],
                "container %s" % params["container"])
    argv = list(params["compose_command"])
    if params.get("compose_project_dir"):
        argv += ["--project-directory", params["compose_project_dir"]]
    for compose_file in params.get("compose_files") or []:
        argv += ["-f", compose_file]
    argv += ["exec", "-T", params["compose_service"], "env"]
    return argv, "compose service %s" % params["compose_service"]


def parse_env_output(text):
    """`env` output; a line without '=' continues the previous value (multi-line values)."""
    variables, last = {}, None
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and _NAME.match(key):
            variables[key] = value
            last = key
        elif last is not None:
            variables[last] += "\n" + line
    return variables


def _from_container(params, secrets):
    argv, what = container_argv(params)
    shown = " ".join(argv)
    try:
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, check=False,
                                stderr=subprocess.PIPE, timeout=params["command_timeout"],
                                cwd=params.get("compose_project_dir") or None)
    except FileNotFoundError:
        raise EnvSourceError("%s: command not found (%s)" % (
            argv[0], "docker_command" if params.get("container") else "compose_command"))
    except subprocess.TimeoutExpired:
        raise EnvSourceError("%s timed out after %ss" % (shown, params["command_timeout"]))
    except OSError as err:
        raise EnvSourceError("%s failed to start: %s" % (shown, err.strerror or err))
    if result.returncode != 0:
        stderr = result.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = redact_text(stderr[-1] if stderr else "no error output", secrets)
        raise EnvSourceError("%s failed (rc %d): %s" % (shown, result.returncode, reason))
    variables = parse_env_output(result.stdout.decode("utf-8", "replace"))
    return EnvSnapshot(variables, "the environment of %s (%s)" % (what, shown),
                       {"source": "container", "command": shown})

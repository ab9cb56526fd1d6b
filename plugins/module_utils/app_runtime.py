# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a small Python script inside an application's own runtime: its interpreter (virtualenv
included), its working directory, its environment as it runs, and its user.

Runtimes (``AppRuntime.kind``):
  - ``process``: the running application's process. Its interpreter is argv[0] of the process when
    that path resolves to the process's executable (``/proc/<pid>/exe`` alone names the base Python
    of a virtualenv, whose packages it does not see), else ``$VIRTUAL_ENV/bin/python`` of its
    environment when that does, else the configured one (``app_python``); working directory
    ``/proc/<pid>/cwd``; environment ``/proc/<pid>/environ``; the process's user when run as root.
  - ``command``: a configured interpreter (``app_python``) and directory with the environment of the
    application's environment files, as a service manager would start it.
  - ``container``: ``docker exec -i <container> <python> -`` or ``docker compose exec -T <service>
    <python> -`` (the container's own environment and user).
  - ``probe``: the probe's own interpreter (no application runtime at all: a DSN given as a value).

The script travels on stdin (``python -``), never in argv; the environment is the application's,
with ``PYTHONDONTWRITEBYTECODE=1`` added so importing the application's code leaves no cache files
behind. Every run has a timeout.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import signal
import subprocess
import sys
import time

from ansible_collections.hunter.ops.plugins.module_utils.redact import redact_text
from ansible_collections.hunter.ops.plugins.module_utils.results import trim

RESULT_MARK = "HUNTER_OPS_PROBE_RESULT "
# What a service manager gives a service besides its environment files (systemd: PATH and LANG).
_BASE_VARIABLES = ("PATH", "LANG", "LC_ALL")


class RuntimeUnknown(Exception):
    """The application's runtime cannot be determined from the configuration; str() says what to set."""


class ScriptOutcome(object):
    """What the script printed after RESULT_MARK (a dict), or why there is nothing."""

    def __init__(self, result=None, failure=None, stderr=None, duration_s=None):
        self.result = result
        self.failure = failure
        self.stderr = stderr
        self.duration_s = duration_s


class AppRuntime(object):
    def __init__(self, kind, argv, env=None, cwd=None, user=None, evidence=None):
        self.kind = kind
        self.argv = argv            # interpreter (or container CLI) + "-": no secret in it
        self.env = env              # None: inherit the module's (container CLIs)
        self.cwd = cwd
        self.user = user            # (uid, gid) to run as, or None
        self.evidence = dict(evidence or {})

    def run(self, script, timeout, secrets=()):
        """Run `script` on stdin; a ScriptOutcome. Never raises for the script's own trouble."""
        env = None
        if self.env is not None:
            env = dict(self.env)
            env["PYTHONDONTWRITEBYTECODE"] = "1"
            env.pop("PYTHONSTARTUP", None)
        kwargs = {}
        if self.user is not None:
            kwargs["preexec_fn"] = _as_user(*self.user)
        started = time.monotonic()
        try:
            # Its own session: on timeout the whole group goes, including anything the application's
            # code started that would hold the pipes open.
            proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env=env, cwd=self.cwd, start_new_session=True, **kwargs)
        except FileNotFoundError:
            return ScriptOutcome(failure="%s does not exist" % self.argv[0])
        except (OSError, ValueError, subprocess.SubprocessError) as err:
            return ScriptOutcome(failure="cannot start %s: %s" % (self.argv[0], getattr(err, "strerror", None) or err))
        try:
            stdout, stderr = proc.communicate(script.encode("utf-8"), timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            return ScriptOutcome(failure="the probe script did not finish within %g s (command_timeout)" % timeout,
                                 duration_s=round(time.monotonic() - started, 2))
        _kill_group(proc)  # what the application's code left behind
        duration = round(time.monotonic() - started, 2)
        done = subprocess.CompletedProcess(self.argv, proc.returncode, stdout, stderr)
        stderr = done.stderr.decode("utf-8", "replace").strip()
        stderr_tail = trim(redact_text(" | ".join(stderr.splitlines()[-3:]), secrets), 300) if stderr else None
        result = None
        for line in done.stdout.decode("utf-8", "replace").splitlines():
            if line.startswith(RESULT_MARK):
                result = line[len(RESULT_MARK):]
        if result is not None:
            try:
                return ScriptOutcome(result=json.loads(result), stderr=stderr_tail, duration_s=duration)
            except ValueError:
                pass
        return ScriptOutcome(failure="the probe script ended without a result (exit code %d)%s" % (
            done.returncode, ": %s" % stderr_tail if stderr_tail else ""), stderr=stderr_tail, duration_s=duration)


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        proc.communicate(timeout=5)
    except (subprocess.TimeoutExpired, ValueError, OSError):
        pass


def _as_user(uid, gid):
    """Run the child as the application's user (as root, the application's code could leave files
    the application cannot write)."""
    def drop():
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    return drop


# -- processes -----------------------------------------------------------------------------

def _readlink(path):
    try:
        return os.readlink(path)
    except OSError:
        return None


def _argv0(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            first = handle.read().split(b"\0", 1)[0]
    except OSError:
        return None
    return first.decode("utf-8", "replace") or None


def _same_file(path, exe):
    try:
        return os.path.realpath(path) == os.path.realpath(exe) or os.path.samefile(path, exe)
    except OSError:
        return False


def _owner(pid):
    try:
        st = os.stat("/proc/%d" % pid)
    except OSError:
        return None
    return st.st_uid, st.st_gid


def process_python(pid, variables, cwd):
    """(interpreter path, how it was found) for a running Python process; RuntimeUnknown otherwise."""
    exe = _readlink("/proc/%d/exe" % pid)
    if exe is None:
        raise RuntimeUnknown("cannot read /proc/%d/exe (the application's interpreter): run with become, or set "
                             "app_python" % pid)
    if exe.endswith(" (deleted)"):
        raise RuntimeUnknown("the executable of process %d was replaced on disk since it started (%s): set "
                             "app_python" % (pid, exe))
    candidates = []
    argv0 = _argv0(pid)
    if argv0:
        if os.path.isabs(argv0):
            candidates.append((argv0, "argv[0] of process %d" % pid))
        elif "/" in argv0 and cwd:
            candidates.append((os.path.normpath(os.path.join(cwd, argv0)), "argv[0] of process %d" % pid))
        elif "/" not in argv0:
            for folder in (variables.get("PATH") or "").split(os.pathsep):
                if folder:
                    candidates.append((os.path.join(folder, argv0), "argv[0] of process %d on its PATH" % pid))
    if variables.get("VIRTUAL_ENV"):
        candidates.append((os.path.join(variables["VIRTUAL_ENV"], "bin", "python"),
                           "VIRTUAL_ENV of process %d" % pid))
    for path, how in candidates:
        if os.path.exists(path) and _same_file(path, exe):
            return path, how
    name = os.path.basename(exe)
    if not name.startswith("python"):
        raise RuntimeUnknown("process %d runs %s, not a Python interpreter: set app_python to the application's "
                             "interpreter" % (pid, name))
    raise RuntimeUnknown("cannot tell which Python environment process %d runs (its argv[0] does not name its "
                         "interpreter %s, which alone would miss a virtualenv): set app_python" % (pid, exe))


def for_process(pid, variables, app_python=None, app_workdir=None, described_as=None):
    """The runtime of running process `pid` whose environment is `variables`."""
    cwd = app_workdir or _readlink("/proc/%d/cwd" % pid)
    if cwd is None:
        raise RuntimeUnknown("cannot read the working directory of process %d: run with become, or set "
                             "app_workdir" % pid)
    if app_python:
        python, how = app_python, "app_python"
    else:
        python, how = process_python(pid, variables, cwd)
    owner = _owner(pid)
    user = owner if (owner and os.geteuid() == 0 and owner != (os.geteuid(), os.getegid())) else None
    evidence = {"kind": "process", "pid": pid, "python": python, "python_found_by": how, "cwd": cwd,
                "environment": described_as or "the environment of process %d" % pid}
    if owner:
        evidence["uid"] = owner[0]
    return AppRuntime("process", [python, "-"], env=dict(variables), cwd=cwd, user=user, evidence=evidence)


def for_command(app_python, variables, app_workdir, described_as):
    """A configured interpreter with the environment of the application's environment files."""
    env = dict((k, os.environ[k]) for k in _BASE_VARIABLES if k in os.environ)
    env.update(variables)
    return AppRuntime("command", [app_python, "-"], env=env, cwd=app_workdir or None, evidence={
        "kind": "command", "python": app_python, "cwd": app_workdir or os.getcwd(), "environment": described_as})


def for_container(params, app_python=None, app_workdir=None):
    """docker exec -i / docker compose exec -T, running `python -` inside."""
    python = app_python or "python"
    if params.get("container"):
        argv = list(params["docker_command"]) + ["exec", "-i"]
        if app_workdir:
            argv += ["-w", app_workdir]
        argv += [params["container"], python, "-"]
        what = "container %s" % params["container"]
    else:
        argv = list(params["compose_command"])
        if params.get("compose_project_dir"):
            argv += ["--project-directory", params["compose_project_dir"]]
        for compose_file in params.get("compose_files") or []:
            argv += ["-f", compose_file]
        argv += ["exec", "-T"]
        if app_workdir:
            argv += ["-w", app_workdir]
        argv += [params["compose_service"], python, "-"]
        what = "compose service %s" % params["compose_service"]
    return AppRuntime("container", argv, env=None, cwd=params.get("compose_project_dir") or None, evidence={
        "kind": "container", "python": python, "in": what, "command": " ".join(argv)})


def for_probe(variables):
    """The probe's own interpreter: no application runtime (a DSN given as a value)."""
    env = dict((k, os.environ[k]) for k in _BASE_VARIABLES if k in os.environ)
    env.update(variables)
    return AppRuntime("probe", [sys.executable, "-"], env=env, evidence={
        "kind": "probe", "python": sys.executable, "environment": "the DSN given directly (source value)"})

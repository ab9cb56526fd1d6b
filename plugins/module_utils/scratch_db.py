# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scratch databases of the restore drill: safe names, ownership, the leftover sweep, and the
state file that outlives a killed run.

Ownership, so that a sweep never drops a drill that is still running:

- every run has a run id; a generated scratch name carries it
  (``<prefix>_<YYYYmmdd_HHMMSS>_<run id>``), and the database's COMMENT holds the owner tag
  (run id, prefix, host, PID and the PID's start time, the backup);
- the run keeps a session open on the server (the guard), from before CREATE DATABASE until
  after the drop, whose application_name is ``hunter.ops drill <run id>``; pg_stat_activity
  shows application names to every role. The guard is idle, so it ends the moment its process
  dies, even when a killed restore's backend still runs (a CREATE INDEX notices its client is
  gone only when it finishes); the restore and verification sessions are named
  ``hunter.ops drill <run id> restore|verify`` and do not count as the owner;
- a scratch database is a leftover only when its owner is gone: no guard of its run id on the
  server, and no live process with that PID and start time when the tag names this host. When
  it names another host, whose processes cannot be seen from here, sessions of that run still
  connected to the database also keep it (a guard lost to a network blip must not get a running
  restore dropped); a later run drops it once they are gone.
  Untagged names of older versions (``<prefix>_<YYYYmmdd_HHMMSS>``) fall back to their age and
  to having no session at all.

A run killed outright (SIGKILL, the OOM killer) cannot clean up or report; before it creates
its scratch database it writes a state file (``.hunter_ops_drill-<run id>.json``) and prints a
``hunter.ops notice:`` line on stderr, so the failed task and the next run can say which
database may remain.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import os
import re
import socket
import tempfile
import uuid

from ansible_collections.hunter.ops.plugins.module_utils.results import NOTICE_PREFIX
from ansible_collections.hunter.ops.plugins.module_utils.validate import ParameterError

SCRATCH_TS_FORMAT = "%Y%m%d_%H%M%S"
# PostgreSQL truncates identifiers at 63 bytes; the name must survive intact to be found again.
MAX_IDENTIFIER = 63
RUN_ID_LENGTH = 8
# "_YYYYmmdd_HHMMSS" and "_<run id>"
_SUFFIX_LEN = 16 + 1 + RUN_ID_LENGTH
# Never restored into, never dropped, whatever the configuration says.
ALWAYS_PROTECTED = ("postgres", "template0", "template1")
TAG_KEY = "hunter.ops restore drill"
APPLICATION_PREFIX = "hunter.ops drill "
STATE_PREFIX = ".hunter_ops_drill-"
# A plain lower-case identifier: nothing a client could read as a connection string
# (no '=', no spaces, no URI), nothing that needs quoting.
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


# -- names -------------------------------------------------------------------------------

def validate_prefix(param, prefix):
    """A lower-case identifier short enough to carry the timestamp and the run id."""
    text = str(prefix or "")
    if not _IDENTIFIER.match(text):
        raise ParameterError(param, "must be a lower-case identifier (letters, digits, _), got %r" % (prefix,))
    if len(text) + _SUFFIX_LEN > MAX_IDENTIFIER:
        raise ParameterError(param, "must be at most %d characters, got %d" % (MAX_IDENTIFIER - _SUFFIX_LEN, len(text)))
    return text


def validate_name(param, name):
    """A scratch database name given by the user: a lower-case identifier of at most 63 bytes.

    Refuses anything else, e.g. ``dbname=hunter``, which psql/pg_restore would expand as a
    connection string and restore into another database."""
    text = str(name or "")
    if not _IDENTIFIER.match(text):
        raise ParameterError(param, "must be a lower-case identifier (letters, digits, _; no '=', spaces or "
                                    "quotes: a name, never a connection string), got %r" % (name,))
    if len(text) > MAX_IDENTIFIER:
        raise ParameterError(param, "must be at most %d characters, got %d" % (MAX_IDENTIFIER, len(text)))
    return text


def new_run_id():
    return uuid.uuid4().hex[:RUN_ID_LENGTH]


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def scratch_name(prefix, now, run_id):
    """``<prefix>_<YYYYmmdd_HHMMSS>_<run id>`` (UTC)."""
    return "%s_%s_%s" % (prefix, now.strftime(SCRATCH_TS_FORMAT), run_id)


def parse_scratch_name(name, prefix):
    """dict(created=UTC datetime, run_id=str or None) for a scratch name of this prefix, else None.

    Names of older versions (no run id, maybe ``_N``) parse with run_id None."""
    match = re.match(r"^%s_(\d{8}_\d{6})(?:_([0-9a-f]{%d})|_\d{1,2})?$" % (re.escape(prefix), RUN_ID_LENGTH),
                     name or "")
    if not match:
        return None
    try:
        stamp = datetime.datetime.strptime(match.group(1), SCRATCH_TS_FORMAT)
    except ValueError:
        return None
    return dict(created=stamp.replace(tzinfo=datetime.timezone.utc), run_id=match.group(2))


def protected_set(protected_names, source_database):
    """Names the drill never restores into nor drops."""
    names = set(ALWAYS_PROTECTED)
    names.update(n for n in (protected_names or []) if n)
    if source_database:
        names.add(source_database)
    return names


def refuse_name(name, source_database, protected_names):
    """Why the drill must not use this scratch name, or None."""
    if source_database and name == source_database:
        return ("scratch database %r is the backup's source database; the drill restores into a "
                "new database only" % name)
    if name in protected_set(protected_names, None):
        return "scratch database %r is a protected name (%s)" % (
            name, ", ".join(sorted(protected_set(protected_names, None))))
    if len(name.encode("utf-8")) > MAX_IDENTIFIER:
        return "scratch database name %r is longer than %d bytes" % (name, MAX_IDENTIFIER)
    return None


# -- ownership ---------------------------------------------------------------------------

def application_name(run_id):
    """The application_name of a run's guard session: its owner's sign of life."""
    return APPLICATION_PREFIX + run_id


def process_start(pid):
    """The start time of a process (clock ticks since boot, /proc/<pid>/stat), or None."""
    try:
        with open("/proc/%d/stat" % int(pid)) as handle:
            text = handle.read()
    except (IOError, OSError, ValueError):
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its last ')'
    fields = text.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def owner_tag(run_id, prefix, backup=None, now=None):
    """Who owns a scratch database (its COMMENT, and the state file)."""
    pid = os.getpid()
    return {TAG_KEY: 1, "run_id": run_id, "prefix": prefix, "host": socket.gethostname(), "pid": pid,
            "pid_start": process_start(pid), "started_at": (now or utcnow()).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "backup": backup}


def tag_text(tag):
    return json.dumps(tag, sort_keys=True)


def parse_tag(comment):
    """The owner tag of a scratch database's comment, or None."""
    try:
        data = json.loads(comment or "")
    except ValueError:
        return None
    return data if isinstance(data, dict) and data.get(TAG_KEY) and data.get("run_id") else None


def owner_alive_here(tag, this_host=None):
    """True/False when the tag names a process of this host (PID and start time), None when it names
    another host (its liveness can only be seen through its sessions)."""
    if not tag or tag.get("host") != (this_host or socket.gethostname()):
        return None
    pid = tag.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    start = process_start(pid)
    return start is not None and (tag.get("pid_start") is None or start == tag.get("pid_start"))


def owner_text(tag):
    if not tag:
        return "no owner tag"
    return "run %s, pid %s on %s, started %s" % (tag.get("run_id"), tag.get("pid"), tag.get("host"),
                                                 tag.get("started_at"))


def classify(databases, prefix, now, live_applications, protected, legacy_max_age, this_host=None):
    """Scratch databases of this prefix on the server, each with what the sweep does with it.

    databases: dicts name, comment, sessions (backends connected to it), applications (their names);
    live_applications: application names of the server's sessions.
    Returns dicts name, run_id, owner (tag or None), age_s, drop (bool), reason; oldest first.
    """
    found = []
    for db in databases:
        name = db["name"]
        if name in protected:
            continue
        parsed = parse_scratch_name(name, prefix)
        tag = parse_tag(db.get("comment"))
        if parsed is None and not (tag and tag.get("prefix") == prefix):
            continue
        run_id = (tag or {}).get("run_id") or (parsed or {}).get("run_id")
        created = (parsed or {}).get("created")
        age = int((now - created).total_seconds()) if created else None
        entry = dict(name=name, run_id=run_id, owner=tag, age_s=age, sessions=db.get("sessions", 0))
        if run_id:
            alive_here = owner_alive_here(tag, this_host)
            run_sessions = [a for a in db.get("applications") or [] if str(a).startswith(application_name(run_id))]
            if application_name(run_id) in live_applications:
                entry.update(drop=False, reason="its drill is running (the session of run %s is connected)" % run_id)
            elif alive_here:
                entry.update(drop=False, reason="its drill is running (pid %s on this host is alive)" % tag["pid"])
            elif alive_here is None and run_sessions:
                entry.update(drop=False, reason="%d session(s) of run %s still connected; its drill (%s) may be "
                                                "running: dropped once they are gone" % (
                                                    len(run_sessions), run_id, owner_text(tag)))
            else:
                entry.update(drop=True, reason="its drill is gone (%s; no session of that run%s)" % (
                    owner_text(tag) if tag else "run %s" % run_id,
                    ", no such process on this host" if alive_here is False else ""))
        elif db.get("sessions"):
            entry.update(drop=False, reason="untagged and %d session(s) connected: may be a running drill"
                         % db["sessions"])
        elif age is not None and age >= legacy_max_age:
            entry.update(drop=True, reason="untagged, no session, %d s old (leftover_max_age %d s)"
                         % (age, legacy_max_age))
        else:
            entry.update(drop=False, reason="untagged and younger than leftover_max_age (%s s)" % legacy_max_age)
        found.append(entry)
    return sorted(found, key=lambda e: -(e["age_s"] or 0))


# -- the state file ------------------------------------------------------------------------

def state_path(state_dir, run_id):
    return os.path.join(state_dir, "%s%s.json" % (STATE_PREFIX, run_id))


def write_state(path, data):
    """Write the run's state atomically (0600) and durably: it must survive a SIGKILL right after."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=STATE_PREFIX, suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_states(state_dir):
    """[(path, data)] of the state files in a directory (unreadable ones skipped)."""
    found = []
    try:
        names = sorted(os.listdir(state_dir))
    except OSError:
        return found
    for name in names:
        if not (name.startswith(STATE_PREFIX) and name.endswith(".json")):
            continue
        path = os.path.join(state_dir, name)
        try:
            with open(path) as handle:
                data = json.load(handle)
        except (IOError, OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("run_id"):
            found.append((path, data))
    return found


def remove_state(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def notice(scratch, server, run_id):
    """The stderr line a run prints before it creates its scratch database (survives its death)."""
    return ("%srestore drill run %s (pid %d) creates scratch database %s on %s; if this run dies, the database "
            "may remain until the next drill drops it\n" % (NOTICE_PREFIX, run_id, os.getpid(), scratch, server))

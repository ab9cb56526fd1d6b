# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running PostgreSQL client tools for a backup: where they run (this host or inside a
container), the snapshot-holding session, the checked pg_dump pipeline and the content checks.

No shell anywhere: every command is an argv list, every stage's exit status is checked, and
credentials reach the tools only through the environment (``docker exec -e PGPASSWORD``
forwards the variable by name, never its value).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import ctypes.util
import gzip
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

from ansible_collections.hunter.ops.plugins.module_utils.redact import redact_text
from ansible_collections.hunter.ops.plugins.module_utils.schema_inventory import (
    SEARCH_PATH_SQL, inventory_sql, parse as parse_inventory)

PG_ENV_VARS = ("PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD", "PGSSLMODE", "PGSSLROOTCERT",
               "PGCONNECT_TIMEOUT", "PGAPPNAME")


class DumpError(RuntimeError):
    """A backup step failed; str() is one line, safe to show (secrets redacted by the caller's secrets)."""


def one_line(text, secrets=(), limit=400):
    text = redact_text(" ".join(str(text or "").split()), secrets)
    return text if len(text) <= limit else text[:limit] + "..."


def parse_version(text):
    """'15.20' from 'pg_dump (PostgreSQL) 15.20 (Debian ...)' / '16beta1' -> '16beta1'; None if absent."""
    text = str(text or "")
    match = (re.search(r"\(PostgreSQL\)\s+(\d+(?:\.\d+)*(?:devel|beta\d*|rc\d*)?)", text)
             or re.search(r"(\d+(?:\.\d+)+|\d+(?:devel|beta\d*|rc\d*))", text))
    return match.group(1) if match else None


def major_of(version):
    """Major version as a number: '15.20' -> 15, '9.6.24' -> 9.6, '16beta1' -> 16."""
    match = re.match(r"(\d+)(?:\.(\d+))?", str(version or ""))
    if not match:
        return None
    first = int(match.group(1))
    if first >= 10 or match.group(2) is None:
        return first
    return float("%d.%s" % (first, match.group(2)))


def major_of_num(version_num):
    """Major version from server_version_num: 150019 -> 15, 90624 -> 9.6."""
    num = int(version_num)
    return num // 10000 if num >= 100000 else float("%d.%d" % (num // 10000, (num // 100) % 100))


class ClientTools(object):
    """Where pg_dump, psql and pg_restore run: on this host (mode 'direct') or inside a container
    on this host ('docker': ``docker exec -i``; 'compose': ``docker compose exec -T``)."""

    def __init__(self, mode="direct", bin_dir=None, container=None, container_cli="docker",
                 compose_files=(), compose_project_dir=None, libpq_env=None):
        self.mode = mode
        self.bin_dir = bin_dir
        self.container = container
        self.container_cli = container_cli or "docker"
        self.compose_files = list(compose_files or ())
        self.compose_project_dir = compose_project_dir
        self.libpq_env = dict(libpq_env or {})
        self.secrets = [v for k, v in self.libpq_env.items() if k == "PGPASSWORD" and v]

    @property
    def in_container(self):
        return self.mode in ("docker", "compose")

    def env(self):
        """Environment of every subprocess: ours (minus stray PG* settings) plus the libpq settings."""
        env = dict((k, v) for k, v in os.environ.items() if k not in PG_ENV_VARS and k != "PGPASSFILE")
        env.update(self.libpq_env)
        env.setdefault("LC_ALL", "C")
        return env

    def tool_path(self, name):
        """The tool to call on this host (direct mode); raises DumpError when it is missing."""
        if self.bin_dir:
            path = os.path.join(self.bin_dir, name)
            if not (os.path.isfile(path) and os.access(path, os.X_OK)):
                raise DumpError("%s not found in pg_bin_dir %s" % (name, self.bin_dir))
            return path
        found = shutil.which(name)
        if not found:
            raise DumpError("%s not found on PATH (install the PostgreSQL client tools or set pg_bin_dir)" % name)
        return found

    def container_prefix(self):
        cli = self.container_cli
        forwarded = []
        for var in PG_ENV_VARS:
            if var in self.libpq_env:
                forwarded += ["-e", var]  # name only: the value comes from our environment
        if self.mode == "docker":
            return [cli, "exec", "-i"] + forwarded + [self.container]
        head = [cli] if os.path.basename(cli) == "docker-compose" else [cli, "compose"]
        for path in self.compose_files:
            head += ["-f", path]
        if self.compose_project_dir:
            head += ["--project-directory", self.compose_project_dir]
        return head + ["exec", "-T"] + forwarded + [self.container]

    def argv(self, tool, args):
        """argv that runs a client tool with args, here or in the container."""
        if self.in_container:
            inner = os.path.join(self.bin_dir, tool) if self.bin_dir else tool
            return self.container_prefix() + [inner] + list(args)
        return [self.tool_path(tool)] + list(args)

    def run(self, tool, args, timeout, stdin=None):
        """Run a tool to completion; returns (rc, stdout, stderr) as text. stdin: a file object or None."""
        argv = self.argv(tool, args)
        try:
            proc = subprocess.run(argv, check=False, stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env(),
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DumpError("%s did not finish within %s s" % (describe(argv), timeout))
        except OSError as err:
            raise DumpError("cannot run %s: %s" % (argv[0], err.strerror or err))
        return (proc.returncode, proc.stdout.decode("utf-8", "replace"),
                proc.stderr.decode("utf-8", "replace"))

    def version(self, tool, timeout=30):
        rc, out, err = self.run(tool, ["--version"], timeout)
        if rc != 0:
            raise DumpError("%s --version failed (exit %d): %s" % (tool, rc, one_line(err or out, self.secrets)))
        version = parse_version(out)
        if not version:
            raise DumpError("cannot read the version of %s from %r" % (tool, one_line(out)))
        return version


def describe(argv):
    """A command line for evidence (arguments never hold secrets; quoted for copy-paste)."""
    return " ".join(shlex.quote(str(a)) for a in argv)


# -- the session that holds the snapshot ---------------------------------------------------------

# Every table whose rows pg_dump dumps (ordinary and partitioned; not system or extension-owned
# tables). The restore drill lists a restored database with TABLES_SQL, so both sides agree.
_DUMPED_TABLES = r"""
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
"""

# (schema, table) of every dumped table.
TABLES_SQL = "SELECT n.nspname, c.relname" + _DUMPED_TABLES + "ORDER BY 1, 2;"

# 'schema.table' and its exact row count, in one statement so the counts come from one snapshot.
COUNT_SQL = r"""
SELECT format('%s.%s', n.nspname, c.relname),
       (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname),
                                            false, true, '')))[1]::text""" + _DUMPED_TABLES + "ORDER BY 1;\n"


class SnapshotSession(object):
    """A psql session (here or in the container) holding a REPEATABLE READ transaction whose
    exported snapshot pg_dump uses (--snapshot); row counts are taken in the same transaction.

    psql is driven through stdin; each request ends with an \\echo of a unique marker so the
    reader knows where the answer ends. The transaction stays open until close()."""

    def __init__(self, tools, timeout=60, lock_timeout_s=0):
        self.tools = tools
        self.timeout = timeout
        self.lock_timeout_s = lock_timeout_s
        self.proc = None
        self._buf = b""
        self._stderr = None
        self.snapshot = None
        self.server_version = None
        self.server_version_num = None
        self.database_size = None

    def _error_text(self):
        try:
            self._stderr.seek(0)
            text = self._stderr.read().decode("utf-8", "replace")
        except (OSError, ValueError, AttributeError):
            text = ""
        lines = [ln for ln in text.splitlines() if ln.strip()]
        # The error and the statement it names (a lock timeout's QUERY line names the table);
        # psql's LINE/caret lines only repeat it.
        wanted = [ln for ln in lines if re.search(r"\b(ERROR|FATAL|QUERY|CONTEXT|DETAIL):", ln)]
        return one_line(" ".join(wanted[-4:] or lines[-3:]) or "psql ended without a message", self.tools.secrets)

    def open(self):
        self._stderr = tempfile.TemporaryFile()
        argv = self.tools.argv("psql", ["-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-f", "-"])
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                         env=self.tools.env())
        except OSError as err:
            raise DumpError("cannot run %s: %s" % (argv[0], err.strerror or err))
        # No statement time limit on a session that must outlive the dump, but a bounded wait for a
        # table lock (a count behind another session's ACCESS EXCLUSIVE lock fails instead of
        # waiting for it); no parallel workers or JIT for the counts, which run beside pg_dump and
        # would only take CPU from it; catalog names printed schema-qualified (schema inventory).
        self.query("SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0; "
                   "SET lock_timeout = %d; SET max_parallel_workers_per_gather = 0; SET jit = off; %s;"
                   % (int(self.lock_timeout_s * 1000), SEARCH_PATH_SQL))
        self.query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;")
        row = self.query("SELECT pg_export_snapshot(), current_setting('server_version'), "
                         "current_setting('server_version_num'), pg_database_size(current_database());")[0]
        self.snapshot, self.server_version, self.server_version_num = row[0], row[1].split()[0], int(row[2])
        self.database_size = int(row[3])  # the restore drill projects its RTO from it
        return self

    def query(self, sql, timeout=None):
        """Rows (lists of strings) printed by sql; raises DumpError when psql fails or times out."""
        marker = "__hunter_ops_%s__" % uuid.uuid4().hex
        try:
            self.proc.stdin.write(("%s\n\\echo %s\n" % (sql.strip(), marker)).encode("utf-8"))
            self.proc.stdin.flush()
        except (OSError, ValueError):
            self.proc.wait()
            raise DumpError("database session failed: %s" % self._error_text())
        deadline = time.monotonic() + (timeout or self.timeout)
        fd = self.proc.stdout.fileno()
        lines = []
        while True:
            while b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                text = line.decode("utf-8", "replace")
                if text == marker:
                    return [row.split("\t") for row in lines if row != ""]
                lines.append(text)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.abort()
                raise DumpError("database session did not answer within %s s" % (timeout or self.timeout))
            ready = select.select([fd], [], [], min(remaining, 1.0))[0]
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                self.proc.wait()
                raise DumpError("database session failed: %s" % self._error_text())
            self._buf += chunk

    def count_tables(self, timeout):
        """{'schema.table': rows} for every dumped table, in the exported snapshot."""
        return dict((row[0], int(row[1])) for row in self.query(COUNT_SQL, timeout=timeout))

    def inventory(self, kinds, timeout):
        """The schema inventory of these kinds (module_utils/schema_inventory), in the exported snapshot."""
        rows = self.query(inventory_sql(kinds), timeout=timeout)
        try:
            return parse_inventory(rows[0][0], kinds)
        except (ValueError, IndexError) as err:
            raise DumpError("cannot read the schema inventory: %s" % err)

    def close(self):
        """End the transaction and the session (after pg_dump has finished)."""
        if self.proc is None:
            return
        try:
            self.query("COMMIT;", timeout=30)
            self.proc.stdin.close()
            self.proc.wait(30)
        finally:
            self.abort()

    def abort(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


# -- bounded lock waits ----------------------------------------------------------------------------

# Texts of a wait for a table lock that ran out: the counts' lock_timeout, pg_dump's
# --lock-wait-timeout (a statement timeout on its LOCK TABLE), a parallel worker's NOWAIT lock.
_LOCK_WAIT = re.compile(r"canceling statement due to lock timeout|could not obtain lock on relation|"
                        r"canceling statement due to statement timeout.*LOCK TABLE")
_LOCKED_RELATION = (re.compile(r"LOCK TABLE (\S+) IN "), re.compile(r"QUERY:\s+SELECT count\(\*\) AS c FROM (\S+)"),
                    re.compile(r'could not obtain lock on relation "([^"]+)"'))

# Sessions holding or awaiting an ACCESS EXCLUSIVE lock (the only mode that blocks pg_dump's ACCESS
# SHARE) on a relation of this database; :'rel' narrows to one relation when it is known. Columns
# of other users' sessions that the role may not see come back empty; never the query text.
LOCK_HOLDERS_SQL = r"""
SELECT l.pid, l.granted, coalesce(format('%s.%s', n.nspname, c.relname), l.relation::text),
       coalesce(a.application_name, ''), coalesce(a.usename::text, ''), coalesce(a.state, ''),
       coalesce((extract(epoch FROM now() - a.xact_start))::bigint::text, '')
FROM pg_catalog.pg_locks l
LEFT JOIN pg_catalog.pg_class c ON c.oid = l.relation
LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock' AND l.pid <> pg_catalog.pg_backend_pid()
  AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
  AND (:'rel' = '' OR l.relation = pg_catalog.to_regclass(:'rel'))
ORDER BY l.granted DESC, l.pid
LIMIT 5;
"""


def is_lock_wait(text):
    """True when an error says a wait for a table lock ran out."""
    return bool(_LOCK_WAIT.search(str(text or "")))


def locked_relation(text):
    """The relation an error says it waited for ('public.companies'), or None."""
    for pattern in _LOCKED_RELATION:
        match = pattern.search(str(text or ""))
        if match:
            return match.group(1)
    return None


def lock_holders(tools, relation=None, timeout=15):
    """Sessions holding (granted) or awaiting an ACCESS EXCLUSIVE lock on `relation` (or on any
    relation of the database): dicts pid, granted, relation, application, user, state, xact_s."""
    with tempfile.TemporaryFile() as sql:
        sql.write(LOCK_HOLDERS_SQL.encode("utf-8"))
        sql.seek(0)
        rc, out, err = tools.run("psql", ["-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                                          "-v", "rel=%s" % (relation or ""), "-f", "-"], timeout, stdin=sql)
    if rc != 0:
        raise DumpError("cannot list the sessions holding locks: %s" % one_line(err, tools.secrets))
    holders = []
    for line in out.splitlines():
        cols = line.split("\t")
        if len(cols) < 7:
            continue
        holders.append(dict(pid=int(cols[0]), granted=cols[1] == "t", relation=cols[2], application=cols[3],
                            user=cols[4], state=cols[5], xact_s=int(cols[6]) if cols[6] else None))
    return holders


def describe_holder(holder):
    """'pid 4242 (application "migrate", user app, idle in transaction, transaction open 75 s)'."""
    details = []
    if holder.get("application"):
        details.append('application "%s"' % holder["application"])
    if holder.get("user"):
        details.append("user %s" % holder["user"])
    if holder.get("state"):
        details.append(holder["state"])
    if holder.get("xact_s") is not None:
        details.append("transaction open %d s" % holder["xact_s"])
    how = "holds" if holder.get("granted") else "awaits"
    return "pid %d %s ACCESS EXCLUSIVE on %s%s" % (holder["pid"], how, holder.get("relation"),
                                                   " (%s)" % ", ".join(details) if details else "")


def explain_lock_wait(tools, text, waited_s):
    """(message, evidence) for an error that is a lock wait running out, else (None, None):
    which table, and who holds or awaits the lock that blocked it, when the server shows it."""
    if not is_lock_wait(text):
        return None, None
    relation = locked_relation(text)
    try:
        holders = lock_holders(tools, relation)
        if not holders and relation:
            holders = lock_holders(tools, None)
    except DumpError as err:
        holders, note = [], str(err)
    else:
        note = None
    what = "a lock on %s" % relation if relation else "a table lock"
    message = "waited %s s for %s, held by another session: %s" % (
        ("%g" % waited_s) if waited_s else "the lock timeout", what,
        "; ".join(describe_holder(h) for h in holders) if holders
        else (note or "the holder is gone or not visible to this role"))
    return message, dict(relation=relation, lock_wait_s=waited_s, lock_holders=holders)


# -- the pipeline ------------------------------------------------------------------------------------

def _die_with_parent():
    """In a child before exec (Linux): get SIGTERM when the parent dies, even by SIGKILL."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the caller's kill() still applies
        pass


class Pipeline(object):
    """Stages connected stdout->stdin, the last one writing to out_path (or to its own -f file).
    Every stage's exit status and stderr are kept; nothing goes through a shell.

    die_with_parent=True: the stages are stopped when the module process dies, even by SIGKILL
    (a killed restore drill must not go on writing into its scratch database)."""

    def __init__(self, stages, env, out_path=None, secrets=(), die_with_parent=False):
        self.stages = [list(s) for s in stages]
        self.env = env
        self.out_path = out_path
        self.secrets = list(secrets)
        self.die_with_parent = die_with_parent
        self.procs = []
        self._errs = []

    def start(self):
        out = None
        if self.out_path:
            fd = os.open(self.out_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            out = os.fdopen(fd, "wb")
        try:
            prev = None
            for index, argv in enumerate(self.stages):
                last = index == len(self.stages) - 1
                err = tempfile.TemporaryFile()
                self._errs.append(err)
                proc = subprocess.Popen(
                    argv, stdin=prev.stdout if prev else subprocess.DEVNULL,
                    stdout=(out if out else subprocess.DEVNULL) if last else subprocess.PIPE,
                    stderr=err, env=self.env, preexec_fn=_die_with_parent if self.die_with_parent else None)
                if prev is not None:
                    prev.stdout.close()  # the next stage owns the read end; SIGPIPE reaches prev
                self.procs.append(proc)
                prev = proc
        except OSError as err:
            self.kill()
            raise DumpError("cannot run %s: %s" % (argv[0], err.strerror or err))
        finally:
            if out:
                out.close()
        return self

    def wait(self, timeout, reader_may_stop_early=False):
        """Wait for every stage; raises DumpError naming the first stage that failed.

        reader_may_stop_early: the last stage may legitimately stop reading (pg_restore --list reads
        only the archive's table of contents), so earlier stages ending by SIGPIPE are not failures."""
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                proc.wait(remaining)
            except subprocess.TimeoutExpired:
                self.kill()
                name = os.path.basename(self.stages[0][0])
                raise DumpError("%s did not finish within %s s (killed)" % (name, timeout))
        failures = []
        for argv, proc, err in zip(self.stages, self.procs, self._errs):
            if proc.returncode != 0:
                failures.append((argv, proc.returncode, self._read(err)))
        if failures and reader_may_stop_early and self.procs[-1].returncode == 0 \
                and all(f[1] == -13 for f in failures):
            failures = []
        if failures:
            # The first real error: a stage killed by SIGPIPE only failed because a later one did.
            real = [f for f in failures if f[1] != -13] or failures
            argv, rc, text = real[0]
            how = "killed by signal %d" % -rc if rc < 0 else "exit %d" % rc
            raise DumpError("%s failed (%s): %s" % (_tool_name(argv), how, text or "no message"))
        return [self._read(err) for err in self._errs]

    def _read(self, err):
        try:
            err.seek(0)
            text = err.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""
        lines = [ln for ln in text.splitlines() if ln.strip()]
        return one_line(" ".join(lines[-4:]), self.secrets)

    def kill(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass

    def close(self):
        self.kill()
        for err in self._errs:
            err.close()


def _tool_name(argv):
    """pg_dump rather than docker for a container stage; the basename otherwise."""
    names = [os.path.basename(a) for a in argv]
    for name in names:
        if name in ("pg_dump", "pg_restore", "psql"):
            return name
    return names[0]


# -- content checks (BACKUP-VALID) ---------------------------------------------------------------------

PLAIN_HEADER = b"PostgreSQL database dump"
PLAIN_FOOTER = b"PostgreSQL database dump complete"


def _head_and_tail_of_stream(read, head_bytes=8192, tail_bytes=8192):
    head, tail, total = b"", b"", 0
    while True:
        chunk = read(1024 * 1024)
        if not chunk:
            break
        total += len(chunk)
        if len(head) < head_bytes:
            head += chunk[:head_bytes - len(head)]
        tail = (tail + chunk)[-tail_bytes:]
    return head, tail, total


def check_plain(path, method, timeout=3600):
    """(ok, detail) for a plain SQL dump, decompressing gzip/zstd/lz4 as a stream."""
    if method in (None, "none"):
        with open(path, "rb") as handle:
            head, tail, total = _head_and_tail_of_stream(handle.read)
    elif method == "gzip":
        try:
            with gzip.open(path, "rb") as handle:
                head, tail, total = _head_and_tail_of_stream(handle.read)
        except (OSError, EOFError) as err:
            return False, "gzip stream is damaged (%s)" % err
    else:
        tool = {"zstd": ["zstd", "-dcq", "--"], "lz4": ["lz4", "-dcq", "--"]}[method]
        if not shutil.which(tool[0]):
            return False, "%s is needed to check this backup and is not installed" % tool[0]
        proc = subprocess.Popen(tool + [path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        head, tail, total = _head_and_tail_of_stream(proc.stdout.read)
        err = proc.stderr.read().decode("utf-8", "replace")
        rc = proc.wait(timeout)
        if rc != 0:
            return False, "%s stream is damaged (%s -d exit %d: %s)" % (method, tool[0], rc, one_line(err))
    if PLAIN_HEADER not in head:
        return False, "no 'PostgreSQL database dump' header in the first lines"
    if PLAIN_FOOTER not in tail:
        return False, "no 'PostgreSQL database dump complete' footer: the dump is truncated"
    return True, "header and 'dump complete' footer present (%d bytes of SQL)" % total


def check_archive(tools, path, external_method=None, timeout=3600):
    """(ok, detail) for custom/directory archives: `pg_restore --list` must succeed.

    A custom archive wrapped by an external compressor is decompressed into pg_restore's
    stdin (a checked two-stage pipeline); in a container pg_restore reads the archive on stdin."""
    if external_method:
        decomp = {"zstd": ["zstd", "-dcq", "--"], "lz4": ["lz4", "-dcq", "--"], "gzip": ["gzip", "-dc", "--"]}
        stages = [decomp[external_method] + [path], tools.argv("pg_restore", ["--list"])]
        pipe = Pipeline(stages, tools.env(), secrets=tools.secrets)  # listing itself discarded
        try:
            pipe.start()
            pipe.wait(timeout, reader_may_stop_early=True)
        except DumpError as err:
            return False, "pg_restore --list failed: %s" % err
        finally:
            pipe.close()
        # pg_restore --list stops after the table of contents: test the whole compressed stream too
        test = subprocess.run([decomp[external_method][0], "-tq", path], check=False, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE,
                              timeout=timeout)
        if test.returncode != 0:
            return False, "%s stream is damaged (%s -t exit %d: %s)" % (
                external_method, decomp[external_method][0], test.returncode,
                one_line(test.stderr.decode("utf-8", "replace")))
        return True, "pg_restore --list succeeded on the decompressed archive; %s -t passed" % external_method
    if tools.in_container:
        with open(path, "rb") as handle:
            rc, out, err = tools.run("pg_restore", ["--list"], timeout, stdin=handle)
    else:
        rc, out, err = tools.run("pg_restore", ["--list", path], timeout)
    if rc != 0:
        return False, "pg_restore --list failed (exit %d): %s" % (rc, one_line(err, tools.secrets))
    entries = [ln for ln in out.splitlines() if ln.strip() and not ln.startswith(";")]
    table_data = [ln for ln in entries if " TABLE DATA " in ln]
    return True, "pg_restore --list succeeded (%d TOC entries, %d with table data)" % (len(entries), len(table_data))

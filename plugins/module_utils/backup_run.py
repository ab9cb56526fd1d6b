# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup engine of hunter.ops.pg_backup: plan, dump, verify, manifest.

``take_backup(params, tools, plan)`` runs one backup under the per-database lock and returns
its outcome, or raises BackupFailed; whatever happens (an error, SIGTERM/SIGINT/SIGHUP) the
partial output is removed in ``finally`` and earlier backups are never touched. The module
keeps its argument spec and maps the outcome to BACKUP-CMD / BACKUP-VALID.

Inside one exported snapshot (pg_dump.SnapshotSession): the sequences of the schema
inventory are read before pg_dump starts, the rest of the inventory and the exact row counts
while it runs. Every wait for a table lock is bounded (``table_lock_timeout``) and, when it
runs out, the failure names the table and the session holding the lock.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time
from datetime import datetime

from ansible_collections.hunter.ops.plugins.module_utils import backup as bk
from ansible_collections.hunter.ops.plugins.module_utils.pg_dump import (
    DumpError, Pipeline, SnapshotSession, check_archive, check_plain, describe, explain_lock_wait, major_of,
    major_of_num)
from ansible_collections.hunter.ops.plugins.module_utils.schema_inventory import EARLY_KINDS, KINDS, LATE_KINDS
from ansible_collections.hunter.ops.plugins.module_utils.signals import (
    Interrupted, ignoring_signals, raising_on_signals)
from ansible_collections.hunter.ops.plugins.module_utils.validate import ParameterError


class BackupFailed(Exception):
    """The backup failed (partial output removed); str() is one line, evidence a dict."""

    def __init__(self, message, evidence=None):
        super(BackupFailed, self).__init__(message)
        self.evidence = evidence or {}


DEFAULT_LEVEL = {"gzip": 1, "zstd": 3, "lz4": 1, "none": 0}
LEVEL_RANGE = {"gzip": (1, 9), "zstd": (1, 19), "lz4": (1, 12), "none": (0, 0)}
FORMAT_FLAG = {"plain": "p", "plain-gzip": "p", "custom": "c", "directory": "d"}
# pg_dump options the module sets itself (short letters, long names)
MANAGED_SHORT = set("fFZjdhpUW")
MANAGED_LONG = set(["--file", "--format", "--compress", "--jobs", "--snapshot", "--dbname", "--host", "--port",
                    "--username", "--password", "--lock-wait-timeout"])


def auto_jobs():
    return max(1, min(os.cpu_count() or 1, 4))


def validate_plan(params):
    """Normalised (format, method, level, compressor, jobs); raises ParameterError."""
    fmt = params["format"]
    method = params["compression"]
    if fmt == "plain-gzip":
        if method not in (None, "gzip"):
            raise ParameterError("compression", "format plain-gzip is gzip'd SQL; got compression %s" % method)
        method = "gzip"
    if method is None:
        method = "none" if fmt == "plain" else "gzip"
    if fmt == "plain" and method == "gzip":
        fmt = "plain-gzip"
    level = params["compression_level"]
    if level is None:
        level = DEFAULT_LEVEL[method]
    low, high = LEVEL_RANGE[method]
    if method != "none" and not low <= level <= high:
        raise ParameterError("compression_level", "%s levels are %d..%d, got %d" % (method, low, high, level))
    jobs = params["jobs"]
    if jobs is None or jobs < 0:
        raise ParameterError("jobs", "must be 0 (auto) or a positive number, got %r" % (jobs,))
    if jobs > 1 and fmt != "directory":
        raise ParameterError("jobs", "parallel jobs need format directory (got %s)" % fmt)
    jobs = jobs or auto_jobs()
    compressor = params["compressor"]
    if compressor == "external" and fmt == "directory":
        raise ParameterError("compressor", "format directory compresses inside pg_dump; an external compressor "
                                           "is for plain and custom")
    if compressor == "external" and method == "none":
        raise ParameterError("compressor", "external needs a compression method (gzip, zstd or lz4)")
    if compressor == "external" and fmt == "custom" and method == "gzip":
        raise ParameterError("compressor", "custom format compresses gzip itself; use compressor internal or auto")
    if params["mode"] != "direct":
        if not params["container"]:
            raise ParameterError("container", "required with mode %s (container or compose service name)"
                                 % params["mode"])
        if fmt == "directory":
            raise ParameterError("format", "directory format cannot stream out of a container; use custom, plain "
                                           "or plain-gzip with mode %s" % params["mode"])
    for index, arg in enumerate(params["extra_options"]):
        text = str(arg)
        if "password" in text.lower() and "=" in text:
            raise ParameterError("extra_options", "element %d looks like a password: pass it as db_password" % index)
        if text.startswith("--"):
            if text.split("=", 1)[0] in MANAGED_LONG:
                raise ParameterError("extra_options", "%s is set by the module (element %d)"
                                     % (text.split("=", 1)[0], index))
        elif text.startswith("-") and len(text) > 1 and text[1] in MANAGED_SHORT:
            raise ParameterError("extra_options", "-%s is set by the module (element %d)" % (text[1], index))
    if not bk.valid_label(params["label"]):
        raise ParameterError("label", "use letters, digits, '.', '_' and '-' only (e.g. pre_v1.0), got %r"
                             % (params["label"],))
    if not params["db_name"]:
        raise ParameterError("db_name", "the database to back up is required")
    if not os.path.isabs(params["backup_dir"]):
        raise ParameterError("backup_dir", "must be an absolute path (where a module runs is not the project), "
                                           "got %r" % (params["backup_dir"],))
    if params["timeout"] < 1:
        raise ParameterError("timeout", "must be at least 1 second")
    if params["lock_timeout"] < 0:
        raise ParameterError("lock_timeout", "must be 0 or more seconds")
    if params["table_lock_timeout"] < 0:
        raise ParameterError("table_lock_timeout", "must be 0 (no limit but timeout) or more seconds")
    return fmt, method, level, compressor, jobs


def compression_plan(fmt, method, level, compressor, jobs, pg_dump_major):
    """(internal pg_dump --compress value or None, external argv or None)."""
    if method == "none":
        return ("0" if fmt in ("custom", "directory") else None), None
    internal_ok = method == "gzip" or (pg_dump_major is not None and pg_dump_major >= 16)
    if compressor == "internal" and not internal_ok:
        raise DumpError("pg_dump %s cannot compress with %s (pg_dump 16 or newer can); use compressor external "
                        "or auto" % (pg_dump_major, method))
    use_external = compressor == "external" or (compressor == "auto" and not internal_ok)
    if not use_external:
        return ("%d" % level if method == "gzip" else "%s:%d" % (method, level)), None
    if fmt == "directory":
        raise DumpError("pg_dump %s cannot compress a directory archive with %s (needs pg_dump 16 or newer); use "
                        "gzip, or format custom/plain" % (pg_dump_major, method))
    if method == "gzip":
        pigz = _which("pigz")
        argv = [pigz, "-%d" % level, "-p", str(jobs), "-c"] if pigz else [_which("gzip") or "gzip", "-%d" % level,
                                                                          "-c"]
    elif method == "zstd":
        argv = [_which("zstd") or "zstd", "-q", "-%d" % level, "-T%d" % jobs, "-c"]
    else:
        argv = [_which("lz4") or "lz4", "-q", "-%d" % level, "-c"]
    if not os.path.isabs(argv[0]):
        raise DumpError("%s is not installed on this host (needed for external %s compression)" % (argv[0], method))
    return ("0" if fmt == "custom" else None), argv


def _which(name):
    for directory in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep):
        path = os.path.join(directory, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def prepare_dir(path):
    """Create the backup directory 0700; return a warning when an existing one is open to others."""
    if not os.path.isdir(path):
        os.makedirs(path, 0o700)
        os.chmod(path, 0o700)
        return None
    mode = os.stat(path).st_mode & 0o777
    if mode & 0o077:
        return "backup_dir %s has mode %04o: others can list it (backups inside are 0600)" % (path, mode)
    return None


def remove_stale_partials(directory, database):
    """Partial outputs of earlier runs of this database that were killed (we hold the lock now)."""
    prefix = partial_prefix(database)
    removed = []
    for name in os.listdir(directory):
        if name.startswith(prefix) and name.endswith(".partial"):
            bk.remove_path(os.path.join(directory, name))
            removed.append(name)
    return removed


def partial_prefix(database):
    return ".pg_backup-%s-" % "".join(c if c.isalnum() or c in "._-" else "_" for c in database)


def final_name(directory, label, fmt, method, external):
    for attempt in range(3):  # pylint: disable=unused-variable
        name = bk.backup_name(label, fmt, method, datetime.now(), external=external)
        if not os.path.lexists(os.path.join(directory, name)):
            return name
        time.sleep(1.0)
    raise DumpError("a backup named %s already exists" % name)


def secure_tree(path):
    """0600 files and 0700 directories, whatever the tool's umask was."""
    if os.path.isdir(path):
        os.chmod(path, 0o700)
        for root, dirs, files in os.walk(path):
            for name in dirs:
                os.chmod(os.path.join(root, name), 0o700)
            for name in files:
                os.chmod(os.path.join(root, name), 0o600)
    else:
        os.chmod(path, 0o600)


class BackupRun(object):
    """One backup, start to finish; every failure ends in DumpError (cleanup() removes the output)."""

    def __init__(self, params, tools, plan):
        self.params = params
        self.tools = tools
        self.fmt, self.method, self.level, self.compressor, self.jobs = plan
        self.directory = os.path.abspath(self.params["backup_dir"])
        self.database = self.params["db_name"]
        self.stages = []
        self.partial = None
        self.final = None
        self.evidence = {}
        self.external = None
        self.done = False
        self.timings = {}

    # -- pieces -------------------------------------------------------------------------------
    def dump_stages(self, snapshot, pg_dump_major):
        internal, external = compression_plan(self.fmt, self.method, self.level, self.compressor, self.jobs,
                                              pg_dump_major)
        args = ["--format=%s" % FORMAT_FLAG[self.fmt]]
        if self.params["no_owner"]:
            args.append("--no-owner")
        if self.params["no_acl"]:
            args.append("--no-acl")
        if internal is not None:
            args.append("--compress=%s" % internal)
        if self.fmt == "directory":
            args.append("--jobs=%d" % self.jobs)
        if snapshot:
            args.append("--snapshot=%s" % snapshot)
        if self.params["table_lock_timeout"]:
            args.append("--lock-wait-timeout=%d" % (self.params["table_lock_timeout"] * 1000))
        writes_itself = not self.tools.in_container and external is None
        if writes_itself:
            args.append("--file=%s" % self.partial)
        args += [str(a) for a in self.params["extra_options"]]
        stages = [self.tools.argv("pg_dump", args)]
        if external:
            stages.append(external)
        self.external = external
        return stages, (None if writes_itself else self.partial)

    def content_check(self, path, timeout):
        if self.fmt in ("plain", "plain-gzip"):
            return check_plain(path, "gzip" if self.fmt == "plain-gzip" else self.method, timeout)
        return check_archive(self.tools, path, external_method=self.method if self.external else None,
                             timeout=timeout)

    def cleanup(self):
        """Remove this run's output: the partial, or a renamed backup that did not pass its re-check."""
        paths = [self.partial]
        if self.final and not self.done:
            paths += [self.final, bk.manifest_path(self.final)]
        for path in paths:
            if path and os.path.lexists(path):
                try:
                    bk.remove_path(path)
                except OSError:
                    pass

    # -- the run --------------------------------------------------------------------------------
    def run(self, check_mode=False):
        p = self.params
        clock = time.monotonic()
        deadline = clock + p["timeout"]
        pg_dump_version = self.tools.version("pg_dump")
        pg_dump_major = major_of(pg_dump_version)
        session = SnapshotSession(self.tools, timeout=max(30, p["db_connect_timeout"] * 3),
                                  lock_timeout_s=p["table_lock_timeout"])
        began = time.time()
        session.open()
        try:
            server_major = major_of_num(session.server_version_num)
            if pg_dump_major is None or pg_dump_major < server_major:
                raise DumpError("pg_dump %s is older than the server (PostgreSQL %s): an older pg_dump cannot dump a "
                                "newer server reliably. Install the PostgreSQL %s client tools or set pg_bin_dir"
                                % (pg_dump_version, session.server_version, server_major))
            self.final = os.path.join(self.directory, final_name(
                self.directory, p["label"], self.fmt, self.method,
                external=self._would_be_external(pg_dump_major)))
            self.partial = os.path.join(self.directory, partial_prefix(self.database) + os.path.basename(self.final)
                                        + ".partial")
            self.stages, out_path = self.dump_stages(session.snapshot, pg_dump_major)
            self.evidence.update(server_version=session.server_version, pg_dump_version=pg_dump_version)
            if check_mode:
                return None
            pipeline = Pipeline(self.stages, self.tools.env(), out_path=out_path, secrets=self.tools.secrets)
            schema = {}
            try:
                inventory_began = time.monotonic()
                # sequences first: pg_dump reads them later, so the dump's values are the same or ahead
                schema.update(session.inventory(EARLY_KINDS, timeout=max(1, deadline - time.monotonic())))
                inventory_s = time.monotonic() - inventory_began
                clock = self._lap("prepare_s", clock)
                pipeline.start()
                inventory_began = time.monotonic()
                schema.update(session.inventory(LATE_KINDS, timeout=max(1, deadline - time.monotonic())))
                self.timings["inventory_s"] = round(inventory_s + time.monotonic() - inventory_began, 3)
                tables = {}
                if p["count_rows"]:
                    tables = session.count_tables(timeout=max(1, deadline - time.monotonic()))
                    self.timings["count_s"] = round(time.monotonic() - clock, 3)  # beside the dump
                pipeline.wait(max(1, deadline - time.monotonic()))
                clock = self._lap("dump_s", clock)
            except DumpError as err:
                pipeline.kill()
                raise self._lock_wait_explained(err)
            except BaseException:
                pipeline.kill()
                raise
            finally:
                pipeline.close()
            dumped_at = time.time()
            snapshot = session.snapshot
            server_version, server_num = session.server_version, session.server_version_num
            database_size = session.database_size
        finally:
            try:
                session.close()
            except DumpError:
                pass  # pg_dump has finished with the snapshot; its own exit status decides
        if not os.path.exists(self.partial):
            raise DumpError("pg_dump reported success but wrote no output")
        secure_tree(self.partial)
        bk.fsync_path(self.partial)
        bk.fsync_dir(self.directory)
        clock = self._lap("fsync_s", clock)
        size = bk.backup_size(self.partial)
        if size <= 0:
            raise DumpError("the backup is empty")
        ok, detail = self.content_check(self.partial, max(1, deadline - time.monotonic()))
        if not ok:
            raise DumpError("verification failed: %s" % detail)
        clock = self._lap("check_s", clock)
        digest = bk.backup_sha256(self.partial)
        clock = self._lap("sha256_s", clock)
        finished = time.time()
        manifest = dict(
            manifest_version=bk.MANIFEST_VERSION,
            backup=os.path.basename(self.final),
            label=p["label"],
            database=self.database,
            host=p["db_host"] or "(local socket)",
            mode=p["mode"],
            server_version=server_version, server_version_num=server_num,
            pg_dump_version=pg_dump_version,
            format=self.fmt,
            compression=dict(method=self.method, level=self.level if self.method != "none" else 0,
                             external=" ".join(os.path.basename(a) if i == 0 else a
                                               for i, a in enumerate(self.external)) if self.external else None),
            jobs=self.jobs if self.fmt == "directory" else 1,
            size_bytes=size,
            database_size_bytes=database_size,
            sha256=digest,
            started_at=bk.iso_utc(began), dumped_at=bk.iso_utc(dumped_at), finished_at=bk.iso_utc(finished),
            duration_s=round(finished - began, 3),
            snapshot=snapshot,
            tables=tables,
            schema=dict((kind, schema[kind]) for kind in KINDS),
            rows_counted=bool(p["count_rows"]),
            verified=True,
            verification=detail,
            timings=dict(self.timings),
        )
        if os.path.lexists(self.final):
            raise DumpError("%s appeared while the dump ran; not overwriting it" % self.final)
        os.rename(self.partial, self.final)
        self.partial = None
        try:
            mpath = bk.write_manifest(self.final, manifest)
        except BaseException:
            bk.remove_path(self.final)  # a backup without its manifest is not valid: leave nothing
            raise
        bk.fsync_dir(self.directory)
        problems = bk.verify_backup(self.final, manifest)  # the sha256 re-checked on the final name
        self._lap("recheck_s", clock)
        if problems:
            raise DumpError("re-check after rename failed: %s" % "; ".join(problems))
        self.done = True
        return dict(manifest=manifest, manifest_path=mpath, detail=detail)

    def _lock_wait_explained(self, err):
        """err, or a DumpError naming the table and the session holding its lock when err is a lock wait."""
        message, evidence = explain_lock_wait(self.tools, str(err), self.params["table_lock_timeout"])
        if message is None:
            return err
        self.evidence["lock_wait"] = evidence
        return DumpError("%s (table_lock_timeout %d s). %s" % (message, self.params["table_lock_timeout"], err))

    def _lap(self, name, since):
        now = time.monotonic()
        self.timings[name] = round(now - since, 3)
        return now

    def _would_be_external(self, pg_dump_major):
        try:
            return compression_plan(self.fmt, self.method, self.level, self.compressor, self.jobs,
                                    pg_dump_major)[1] is not None
        except DumpError:
            return False


def plan_evidence(params, run):
    """What every BACKUP-CMD item shows about the run's configuration."""
    evidence = dict(database=params["db_name"], host=params["db_host"] or "(local socket)", mode=params["mode"],
                    format=run.fmt, compression=run.method, level=run.level,
                    jobs=run.jobs if run.fmt == "directory" else 1,
                    table_lock_timeout_s=params["table_lock_timeout"])
    if params["mode"] != "direct":
        evidence["container"] = params["container"]
    return evidence


def take_backup(params, tools, plan, check_mode=False, warn=None):
    """One backup under the per-database lock, with the cleanup contract.

    Returns dict(run, outcome, evidence, duration_s, warnings): outcome is None in check mode
    (run.final and run.stages say what would be done), else dict(manifest, manifest_path, detail).
    Raises BackupFailed (one line, evidence) on any failure, the partial output removed; an
    interruption by SIGTERM/SIGINT/SIGHUP is a failure too (cleanup first, in ``finally``).
    """
    warn = warn or (lambda text: None)
    run = BackupRun(params, tools, plan)
    evidence = plan_evidence(params, run)

    def failed(text, err_evidence=None):
        evidence.update(run.evidence, command=[describe(s) for s in run.stages])
        evidence.update(err_evidence or {})
        return BackupFailed(text, evidence)

    try:
        note = prepare_dir(run.directory) if not check_mode else None
    except OSError as err:
        raise failed("backup_dir: cannot create %s (%s)" % (run.directory, err.strerror or err))
    if note:
        warn(note)
    if check_mode:
        try:
            run.run(check_mode=True)
        except DumpError as err:
            raise failed(str(err))
        evidence.update(run.evidence, path=run.final, command=[describe(s) for s in run.stages])
        return dict(run=run, outcome=None, evidence=evidence, duration_s=0.0)

    began = time.monotonic()
    lock = bk.BackupLock(bk.lock_path(run.directory, run.database), timeout=params["lock_timeout"])
    with raising_on_signals():
        try:
            lock.acquire()
        except bk.LockTimeout as err:
            raise failed(str(err))
        except OSError as err:
            raise failed("cannot take the backup lock in %s: %s" % (run.directory, err.strerror or err))
        except Interrupted as err:
            raise failed("backup of %s %s while waiting for the backup lock" % (run.database, err))
        try:
            stale = remove_stale_partials(run.directory, run.database)
            if stale:
                warn("removed partial output of an interrupted earlier run: %s" % ", ".join(stale))
            outcome = run.run()
        except (DumpError, Interrupted, OSError) as err:
            text = "%s (%s)" % (err.strerror, err.filename) if isinstance(err, OSError) and err.strerror else str(err)
            raise failed("backup of %s failed: %s (partial output removed; earlier backups untouched)"
                         % (run.database, text), dict(lock_waited_s=round(lock.waited_s, 1)))
        finally:
            with ignoring_signals():   # a second signal must not cut the cleanup
                run.cleanup()          # removes nothing once the backup is complete and re-checked
                lock.release()
    evidence.update(run.evidence, command=[describe(s) for s in run.stages], path=run.final,
                    lock_waited_s=round(lock.waited_s, 1), timings=run.timings)
    return dict(run=run, outcome=outcome, evidence=evidence, duration_s=time.monotonic() - began)

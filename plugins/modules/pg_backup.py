#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: pg_backup
short_description: Take a verified PostgreSQL backup with a manifest (BACKUP-CMD, BACKUP-VALID)
version_added: 0.1.0
description:
  - Runs C(pg_dump) on this host, against a server over the network, or inside a container on this
    host (C(docker exec) / C(docker compose exec -T)), with C(--no-owner --no-acl) as in the runbook.
  - "Writes C(backup_<label>_<YYYYmmdd_HHMMSS>.<ext>) atomically: under a temporary name in the backup
    directory, every pipeline stage's exit status checked, fsync'd, verified, then renamed. On any
    failure the partial output is removed; earlier backups are never touched."
  - "Beside the backup it writes C(<backup>.manifest.json) (docs/ARCHITECTURE.md): versions, format,
    compression, size, sha256, timing and the exact row count of every table, counted inside the
    snapshot the dump used (a REPEATABLE READ transaction exports it and C(pg_dump --snapshot) uses it)."
  - Refuses when C(pg_dump) is older than the server's major version.
  - One backup per database at a time (a lock file in O(backup_dir)); a second run waits up to
    O(lock_timeout) seconds, then fails.
  - This is an action, not a check - it reports C(changed=true) when it writes a backup. In check mode it
    connects, compares versions and reports the command and file it would write.
  - The password reaches the client tools only through their environment (C(PGPASSWORD)); in a container
    it is forwarded by name (C(-e PGPASSWORD)), never on a command line.
author:
  - hunter.ops contributors (@hunter-ops)
extends_documentation_fragment:
  - hunter.ops.postgres
options:
  backup_dir:
    description:
      - Directory for backups on the host running the module, an absolute path; created with mode C(0700) when
        missing. Backup files are C(0600).
    type: path
    required: true
  label:
    description:
      - Label in the file name, e.g. V(pre_v1.0). Letters, digits, C(.), C(_) and C(-).
    type: str
    required: true
  format:
    description:
      - V(plain) SQL (C(.sql), or C(.sql.zst)/C(.sql.lz4) with O(compression)), V(plain-gzip) gzip'd SQL (C(.sql.gz)),
        V(custom) (C(pg_dump -Fc), C(.dump)) or V(directory) (C(pg_dump -Fd) with parallel jobs, C(.dir)).
      - The default, V(directory) with gzip level 1 and O(jobs) parallel jobs, is the fastest configuration whose size
        stays within 1.2x of the runbook's C(pg_dump | gzip) (see bench/README.md).
    type: str
    default: directory
    choices: [plain, plain-gzip, custom, directory]
  compression:
    description:
      - Compression method. Default V(none) for V(plain), V(gzip) otherwise. V(plain) with V(gzip) is V(plain-gzip).
      - V(zstd) and V(lz4) are done by C(pg_dump) 16 and newer; with an older C(pg_dump) they run as an external
        compressor in a checked pipeline (formats V(plain) and V(custom) only).
    type: str
    choices: [none, gzip, zstd, lz4]
  compression_level:
    description:
      - Compression level. Default 1 for V(gzip) and V(lz4), 3 for V(zstd).
    type: int
  compressor:
    description:
      - V(internal) compresses inside C(pg_dump); V(external) pipes the output through C(gzip) (C(pigz) when present),
        C(zstd) or C(lz4) on this host; V(auto) uses internal compression when C(pg_dump) supports the method.
    type: str
    default: auto
    choices: [auto, internal, external]
  jobs:
    description:
      - Parallel C(pg_dump) jobs for V(directory) format (and threads of an external C(zstd)). V(0) means the number
        of CPUs of this host, at most 4.
    type: int
    default: 0
  no_owner:
    description:
      - Pass C(--no-owner) (as in the runbook).
    type: bool
    default: true
  no_acl:
    description:
      - Pass C(--no-acl) (as in the runbook).
    type: bool
    default: true
  extra_options:
    description:
      - Further C(pg_dump) arguments, one list element per argument (never a shell string), e.g.
        C(["--exclude-table-data", "audit_log"]).
      - Options the module manages (file, format, compression, jobs, snapshot, connection, password prompt) are refused.
    type: list
    elements: str
    default: []
  count_rows:
    description:
      - Count the rows of every table inside the dump's snapshot for the manifest. Turning it off leaves
        C(tables) empty, and a restore test can then only check that tables exist.
    type: bool
    default: true
  mode:
    description:
      - V(direct) runs the client tools on this host (the DB host itself or any host that reaches the server);
        V(docker) runs them with C(docker exec -i <container>); V(compose) with C(docker compose exec -T <service>).
      - In a container the dump streams to this host, so V(directory) format is not available there.
    type: str
    default: direct
    choices: [direct, docker, compose]
  container:
    description:
      - Container name (V(docker)) or service name (V(compose)). Required for those modes.
    type: str
  container_cli:
    description:
      - The container CLI. A path ending in C(docker-compose) is called without the C(compose) subcommand.
    type: str
    default: docker
  compose_files:
    description:
      - Compose files (C(-f)) for V(compose) mode.
    type: list
    elements: path
    default: []
  compose_project_dir:
    description:
      - C(--project-directory) for V(compose) mode.
    type: path
  pg_bin_dir:
    description:
      - Directory holding C(pg_dump), C(psql) and C(pg_restore) (on this host, or inside the container).
        Default is the PATH.
    type: path
  timeout:
    description:
      - Seconds the dump plus its verification may take before it is stopped and removed.
    type: int
    default: 3600
  lock_timeout:
    description:
      - Seconds to wait for another backup of the same database to finish before failing.
    type: int
    default: 60
notes:
  - O(db_statement_timeout) is not applied to the dump or to the row counts (they are bounded by O(timeout)).
  - With table filters in O(extra_options) (C(-t), C(-n), C(--exclude-table)), the manifest still counts every table.
requirements:
  - PostgreSQL client tools (C(pg_dump), C(psql), C(pg_restore)) on this host or in the container.
  - C(zstd) or C(lz4) on this host for external compression with those methods.
'''

EXAMPLES = r'''
- name: Take the default backup (directory format, gzip 1, parallel)
  hunter.ops.pg_backup:
    db_host: db.internal
    db_name: hunter
    db_user: hunter
    db_password: "{{ vault_db_password }}"
    backup_dir: /var/backups/hunter
    label: pre_v1.0

- name: Runbook option B, inside the compose service, gzip'd SQL
  hunter.ops.pg_backup:
    mode: compose
    container: postgres
    compose_project_dir: /srv/hunter
    db_name: dyn365hunter
    db_user: dyn365hunter
    db_password: "{{ vault_db_password }}"
    format: plain-gzip
    backup_dir: /srv/hunter/backups
    label: pre_v1.0

- name: Custom format compressed by zstd through a checked pipeline
  hunter.ops.pg_backup:
    db_host: 127.0.0.1
    db_name: hunter
    db_user: hunter
    db_password: "{{ vault_db_password }}"
    format: custom
    compression: zstd
    compression_level: 3
    backup_dir: /var/backups/hunter
    label: nightly
'''

RETURN = r'''
backup:
  description: Path of the backup written (or that would be written in check mode).
  returned: always
  type: str
  sample: /var/backups/hunter/backup_pre_v1.0_20261128_020000.dir
manifest_path:
  description: Path of the manifest beside it (not written in check mode).
  returned: success
  type: str
manifest:
  description: The manifest written (docs/ARCHITECTURE.md).
  returned: success, not in check mode
  type: dict
command:
  description: The dump pipeline, one command line per stage (no secrets).
  returned: always
  type: list
  elements: str
checks:
  description: Check items BACKUP-CMD and BACKUP-VALID (status, message, evidence).
  returned: always
  type: dict
'''

import os
import signal
import time
from datetime import datetime

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hunter.ops.plugins.module_utils import backup as bk
from ansible_collections.hunter.ops.plugins.module_utils import pg, secret
from ansible_collections.hunter.ops.plugins.module_utils.pg_dump import (
    ClientTools, DumpError, Pipeline, SnapshotSession, check_archive, check_plain, describe, major_of,
    major_of_num, one_line,
)
from ansible_collections.hunter.ops.plugins.module_utils.results import FAIL, PASS, SKIP, check_item
from ansible_collections.hunter.ops.plugins.module_utils.validate import ParameterError

DEFAULT_LEVEL = {"gzip": 1, "zstd": 3, "lz4": 1, "none": 0}
LEVEL_RANGE = {"gzip": (1, 9), "zstd": (1, 19), "lz4": (1, 12), "none": (0, 0)}
FORMAT_FLAG = {"plain": "p", "plain-gzip": "p", "custom": "c", "directory": "d"}
# pg_dump options the module sets itself (short letters, long names)
MANAGED_SHORT = set("fFZjdhpUW")
MANAGED_LONG = set(["--file", "--format", "--compress", "--jobs", "--snapshot", "--dbname", "--host", "--port",
                    "--username", "--password"])


class Terminated(Exception):
    pass


def _on_sigterm(signum, frame):
    raise Terminated("stopped by signal %d" % signum)


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
    """One backup, start to finish; every failure ends in DumpError with the partial output removed."""

    def __init__(self, module, tools, plan):
        self.module = module
        self.params = module.params
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
        session = SnapshotSession(self.tools, timeout=max(30, p["db_connect_timeout"] * 3))
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
            clock = self._lap("prepare_s", clock)
            pipeline.start()
            try:
                tables = {}
                if p["count_rows"]:
                    tables = session.count_tables(timeout=max(1, deadline - time.monotonic()))
                    self.timings["count_s"] = round(time.monotonic() - clock, 3)  # beside the dump
                pipeline.wait(max(1, deadline - time.monotonic()))
                clock = self._lap("dump_s", clock)
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


def main():
    argument_spec = pg.pg_argument_spec()
    argument_spec.update(
        backup_dir=dict(type="path", required=True),
        label=dict(type="str", required=True),
        format=dict(type="str", default="directory", choices=["plain", "plain-gzip", "custom", "directory"]),
        compression=dict(type="str", choices=["none", "gzip", "zstd", "lz4"]),
        compression_level=dict(type="int"),
        compressor=dict(type="str", default="auto", choices=["auto", "internal", "external"]),
        jobs=dict(type="int", default=0),
        no_owner=dict(type="bool", default=True),
        no_acl=dict(type="bool", default=True),
        extra_options=dict(type="list", elements="str", default=[]),
        count_rows=dict(type="bool", default=True),
        mode=dict(type="str", default="direct", choices=["direct", "docker", "compose"]),
        container=dict(type="str"),
        container_cli=dict(type="str", default="docker"),
        compose_files=dict(type="list", elements="path", default=[]),
        compose_project_dir=dict(type="path"),
        pg_bin_dir=dict(type="path"),
        timeout=dict(type="int", default=3600),
        lock_timeout=dict(type="int", default=60),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    secrets = secret.protect(module)
    result = dict(changed=False, backup=None, command=[], checks={})

    def fail(msg, cmd_status=FAIL, evidence=None):
        msg = one_line(msg, secrets, limit=1000)
        ev = dict(evidence or {})
        result["checks"] = {
            "BACKUP-CMD": check_item(cmd_status, msg, ev),
            "BACKUP-VALID": check_item(FAIL if cmd_status == FAIL else SKIP,
                                       "no valid backup from this run: %s" % msg, ev),
        }
        module.fail_json(msg=msg, **result)

    try:
        plan = validate_plan(p)
        kwargs = pg.connect_kwargs(p)
    except ParameterError as err:
        fail(str(err))
    os.umask(0o077)  # whatever pg_dump creates is private
    tools = ClientTools(mode=p["mode"], bin_dir=p["pg_bin_dir"], container=p["container"],
                        container_cli=p["container_cli"], compose_files=p["compose_files"],
                        compose_project_dir=p["compose_project_dir"], libpq_env=pg.libpq_env(kwargs))
    run = BackupRun(module, tools, plan)
    evidence = dict(database=p["db_name"], host=p["db_host"] or "(local socket)", mode=p["mode"],
                    format=run.fmt, compression=run.method, level=run.level,
                    jobs=run.jobs if run.fmt == "directory" else 1)
    if p["mode"] != "direct":
        evidence["container"] = p["container"]

    try:
        warning = prepare_dir(run.directory) if not module.check_mode else None
    except OSError as err:
        fail("backup_dir: cannot create %s (%s)" % (run.directory, err.strerror or err), evidence=evidence)
    if warning:
        module.warn(warning)
    if module.check_mode:
        try:
            run.run(check_mode=True)
        except DumpError as err:
            fail(str(err), evidence=evidence)
        result.update(changed=True, backup=run.final, command=[describe(s) for s in run.stages])
        evidence.update(run.evidence, path=run.final, command=result["command"])
        msg = "check mode: would write %s" % run.final
        result["checks"] = {"BACKUP-CMD": check_item(SKIP, msg, evidence),
                            "BACKUP-VALID": check_item(SKIP, "check mode: no backup written", evidence)}
        module.exit_json(msg=msg, **result)

    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    lock = bk.BackupLock(bk.lock_path(run.directory, run.database), timeout=p["lock_timeout"])
    began = time.monotonic()
    try:
        lock.acquire()
    except bk.LockTimeout as err:
        fail(str(err), evidence=evidence)
    except OSError as err:
        fail("cannot take the backup lock in %s: %s" % (run.directory, err.strerror or err), evidence=evidence)
    try:
        stale = remove_stale_partials(run.directory, run.database)
        if stale:
            module.warn("removed partial output of an interrupted earlier run: %s" % ", ".join(stale))
        outcome = run.run()
    except (DumpError, Terminated, OSError) as err:
        run.cleanup()
        text = "%s (%s)" % (err.strerror, err.filename) if isinstance(err, OSError) and err.strerror else str(err)
        evidence.update(run.evidence, command=[describe(s) for s in run.stages], lock_waited_s=round(lock.waited_s, 1))
        result["command"] = evidence["command"]
        fail("backup of %s failed: %s (partial output removed; earlier backups untouched)" % (run.database, text),
             evidence=evidence)
    except BaseException:
        run.cleanup()
        raise
    finally:
        lock.release()
        signal.signal(signal.SIGTERM, previous)
    manifest = outcome["manifest"]
    result.update(changed=True, backup=run.final, manifest_path=outcome["manifest_path"], manifest=manifest,
                  command=[describe(s) for s in run.stages])
    duration = time.monotonic() - began
    evidence.update(run.evidence, command=result["command"], path=run.final, lock_waited_s=round(lock.waited_s, 1),
                    timings=run.timings)
    valid_ev = dict(path=run.final, manifest=outcome["manifest_path"], size_bytes=manifest["size_bytes"],
                    sha256=manifest["sha256"], sha256_rechecked=True, content=outcome["detail"],
                    tables=manifest["tables"], snapshot=manifest["snapshot"])
    result["checks"] = {
        "BACKUP-CMD": check_item(PASS, "%s backup of %s written to %s in %.1f s"
                                 % (run.fmt, run.database, run.final, manifest["duration_s"]),
                                 evidence, duration_ms=duration * 1000),
        "BACKUP-VALID": check_item(PASS, "%s bytes, sha256 %s... recorded and re-checked; %s"
                                   % (manifest["size_bytes"], manifest["sha256"][:12], outcome["detail"]), valid_ev),
    }
    module.exit_json(msg="backup written: %s" % run.final, **result)


if __name__ == "__main__":
    main()

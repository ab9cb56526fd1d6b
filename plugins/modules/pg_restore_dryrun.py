#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: pg_restore_dryrun
short_description: Restore drill - restore the newest valid backup into a scratch database, verify it, drop it
version_added: 0.1.0
description:
  - Picks a backup (O(backup_path), the newest valid one in O(backup_dir), or the newest valid one
    under an S3 prefix, downloaded and checked against its manifest's sha256).
  - Creates a scratch database C(<scratch_prefix>_<YYYYmmdd_HHMMSS>) (UTC) on the server given by the
    C(db_*) options, restores into it (plain SQL with C(psql -v ON_ERROR_STOP=1 --single-transaction),
    compressed SQL streamed through its decompressor, custom/directory archives with
    C(pg_restore -j N --no-owner --no-acl --exit-on-error)), and verifies it against the manifest,
    comparing the set of tables and the exact row counts of O(tables) (default all).
  - Always drops the scratch database, also when the restore or the verification fails or the module
    is interrupted (SIGTERM, SIGINT, SIGHUP). Scratch databases of this prefix left by an earlier
    crashed run and older than O(leftover_max_age) are dropped first and reported.
  - Refuses a scratch name equal to the backup's source database or in O(protected_names), an existing
    database, and a server of the production group unless O(allow_production=true).
  - Returns the items C(RESTORE-DRYRUN) and C(RESTORE-RTO) under RV(checks). RESTORE-RTO measures the
    restore, compares it with O(rto_target_minutes), and projects the restore time of the production
    database from the measured throughput.
  - Reports C(changed=false) when the server ends as it was found (the scratch database is created
    and dropped within the run); C(changed=true) only when it dropped a leftover of an earlier run or
    could not drop its own scratch database.
author:
  - hunter.ops contributors (@hunter-ops)
extends_documentation_fragment:
  - hunter.ops.postgres
  - hunter.ops.s3
options:
  db_name:
    description:
      - Maintenance database the drill connects to in order to create and drop the scratch database.
      - Never restored into, never dropped.
    type: str
    default: postgres
  backup_path:
    description:
      - Restore this backup (a file, or a C(.dir) directory). Its manifest must lie beside it.
      - Mutually exclusive with O(backup_dir) and O(s3_bucket).
    type: path
  backup_dir:
    description:
      - Restore the newest valid backup in this directory (manifest present, size and sha256 matching).
    type: path
  backup_label:
    description:
      - Only consider backups with this label (C(backup_<label>_<timestamp>)).
    type: str
  source_database:
    description:
      - Only consider backups of this database (the manifest's C(database)).
    type: str
  s3_bucket:
    description:
      - Restore the newest valid backup stored in this bucket under O(s3_prefix). It is downloaded,
        and its size and sha256 must match its manifest (a mismatching copy is refused).
    type: str
  download_dir:
    description:
      - Where a backup from S3 is downloaded. Default a temporary directory, removed afterwards.
    type: path
  scratch_prefix:
    description:
      - Prefix of the scratch database name; also how leftovers of earlier runs are recognised.
    type: str
    default: restore_drill
  scratch_name:
    description:
      - Use this scratch database name instead of C(<scratch_prefix>_<timestamp>). It must not exist.
    type: str
  protected_names:
    description:
      - Databases never used as scratch and never dropped, besides C(postgres), C(template0),
        C(template1) and the backup's source database.
    type: list
    elements: str
    default: []
  leftover_max_age:
    description:
      - Seconds after which a scratch database of this prefix (its age read from its name) counts as
        the leftover of a crashed run and is dropped. Younger ones may belong to a drill running now.
    type: int
    default: 3600
  tables:
    description:
      - Tables whose row counts must equal the manifest's (C(companies) means C(public.companies)).
        Empty means every table of the manifest. The set of tables is always compared.
    type: list
    elements: str
    default: []
  jobs:
    description:
      - Parallel jobs of C(pg_restore -j) for custom and directory archives, and connections used to
        count rows. V(0) means the number of CPUs of the host running the module (at most 8).
    type: int
    default: 0
  restore_timeout:
    description:
      - Seconds the restore, and each verification or drop statement, may take before it is stopped.
    type: int
    default: 3600
  rto_target_minutes:
    description:
      - Restore time target of the rollback plan.
    type: float
    default: 15
  production_size:
    description:
      - On-disk size of the production database (C(pg_database_size)), as bytes or with a unit
        (V(40GB)), for the RESTORE-RTO projection.
      - Default the manifest's C(database_size_bytes) when present, else the backup's own size
        (projected from the backup bytes restored per second).
    type: str
  production_hosts:
    description:
      - Addresses of the production group's hosts (inventory names, C(ansible_host)). A O(db_host) equal
        to one of them is refused unless O(allow_production=true).
    type: list
    elements: str
    default: []
  host_in_production:
    description:
      - The host running the module belongs to the production group, so a local O(db_host)
        (loopback, a socket directory, or unset) is a production server.
    type: bool
    default: false
  allow_production:
    description:
      - Allow the drill against a production server.
    type: bool
    default: false
  pg_bin_dir:
    description:
      - Directory of C(psql) and C(pg_restore). Default C(PATH), then the newest C(/usr/lib/postgresql/*/bin).
    type: path
notes:
  - Check mode selects and verifies the backup, connects, and reports what would be done (scratch name,
    leftovers to drop, restore command) with both items V(skip); it creates and drops nothing.
  - Passwords go to C(psql)/C(pg_restore) through the environment, never on the command line, and never
    appear in the result.
  - A plain SQL dump must have been taken with C(--no-owner --no-acl) (as the runbook does) when the
    staging server lacks the production roles.
  - The server must be PostgreSQL 13 or newer (C(DROP DATABASE ... WITH (FORCE))).
seealso:
  - module: hunter.ops.pg_backup
'''

EXAMPLES = r'''
- name: Restore drill of the newest local backup on the staging server
  hunter.ops.pg_restore_dryrun:
    backup_dir: /var/backups/hunter
    source_database: hunter
    db_host: staging-db.internal
    db_user: postgres
    db_password: "{{ vault_staging_postgres_password }}"
    tables: [companies, domain_signals]
    production_size: 40GB
  register: drill

- name: Drill from S3 (newest valid backup under the prefix)
  hunter.ops.pg_restore_dryrun:
    s3_bucket: hunter-backups
    s3_prefix: prod/
    db_host: 127.0.0.1
    db_user: postgres
    db_password: "{{ vault_staging_postgres_password }}"
'''

RETURN = r'''
checks:
  description: Items C(RESTORE-DRYRUN) and C(RESTORE-RTO), each C({status, message, evidence}).
  returned: always
  type: dict
  sample:
    RESTORE-DRYRUN:
      status: pass
      message: "backup_pre_v1.0_20261128_020000.dump restored into restore_drill_20261128_021500: 2 tables, 2 row counts equal the manifest; scratch dropped"
      evidence: {scratch_database: restore_drill_20261128_021500, counts: {public.companies: {expected: 50, restored: 50}}}
    RESTORE-RTO:
      status: pass
      message: "restore took 2.1 s, projected 4 min 10 s for the production size; target 15 min 00 s"
      evidence: {restore_s: 2.1, target_s: 900, projected_s: 250.0}
backup:
  description: The backup restored (name, path, source, format, size_bytes, sha256, database).
  returned: when a backup was selected
  type: dict
scratch_database:
  description: Name of the scratch database (created and dropped, or that would be in check mode).
  returned: when a backup was selected
  type: str
scratch_dropped:
  description: Whether the scratch database is gone at the end of the run.
  returned: always
  type: bool
leftovers_dropped:
  description: Scratch databases of earlier runs dropped (or to drop, in check mode), with their age.
  returned: always
  type: list
  elements: dict
verification:
  description: Tables missing or unexpected, row counts compared, mismatches by table.
  returned: when the restore finished
  type: dict
rto:
  description: Restore duration, target, sizes, throughput and the projection for the production size.
  returned: when the restore finished
  type: dict
'''

import os
import shutil
import signal
import tempfile
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.text.formatters import human_to_bytes

from ansible_collections.hunter.ops.plugins.module_utils import backup, backup_s3, pg, s3, secret
from ansible_collections.hunter.ops.plugins.module_utils import restore_drill as rules
from ansible_collections.hunter.ops.plugins.module_utils.pg_dump import TABLES_SQL, ClientTools, describe
from ansible_collections.hunter.ops.plugins.module_utils.redact import redact_text
from ansible_collections.hunter.ops.plugins.module_utils.restore_exec import (
    RestoreError, restore_stages, run_restore)
from ansible_collections.hunter.ops.plugins.module_utils.results import FAIL, PASS, SKIP, WARN, Stopwatch, check_item
from ansible_collections.hunter.ops.plugins.module_utils.validate import ParameterError

DRYRUN = "RESTORE-DRYRUN"
RTO = "RESTORE-RTO"
MAX_LISTED_TABLES = 50


class Interrupted(Exception):
    """The module received SIGTERM/SIGINT/SIGHUP; cleanup runs, then the module fails."""

    def __init__(self, signum):
        super(Interrupted, self).__init__("interrupted by signal %d" % signum)
        self.signum = signum


class DrillRefused(Exception):
    """A safety rule refuses the run (a configuration error); str() names the rule."""


class NoValidBackup(Exception):
    """No backup to restore: a check finding, reported as RESTORE-DRYRUN fail."""


def _quote_ident(name):
    return '"%s"' % name.replace('"', '""')


def _settings(params):
    """Validated settings; raises ParameterError naming the option."""
    out = {}
    sources = [k for k in ("backup_path", "backup_dir", "s3_bucket") if params.get(k)]
    if len(sources) != 1:
        raise ParameterError("backup_path", "give exactly one of backup_path, backup_dir, s3_bucket (got %s)"
                             % (", ".join(sources) or "none"))
    out["source"] = {"backup_path": "path", "backup_dir": "local", "s3_bucket": "s3"}[sources[0]]
    if params.get("backup_path") and not os.path.exists(params["backup_path"]):
        raise ParameterError("backup_path", "%s does not exist" % params["backup_path"])
    if params.get("backup_dir") and not os.path.isdir(params["backup_dir"]):
        raise ParameterError("backup_dir", "directory %s does not exist" % params["backup_dir"])
    out["prefix"] = rules.validate_prefix("scratch_prefix", params["scratch_prefix"])
    if params.get("scratch_name") is not None and not str(params["scratch_name"]).strip():
        raise ParameterError("scratch_name", "must not be empty")
    if params["restore_timeout"] < 1:
        raise ParameterError("restore_timeout", "must be at least 1 second, got %d" % params["restore_timeout"])
    if params["leftover_max_age"] < 0:
        raise ParameterError("leftover_max_age", "must be 0 or more seconds, got %d" % params["leftover_max_age"])
    if params["jobs"] < 0:
        raise ParameterError("jobs", "must be 0 (auto) or more, got %d" % params["jobs"])
    out["jobs"] = params["jobs"] or max(1, min(8, os.cpu_count() or 1))
    if params["rto_target_minutes"] <= 0:
        raise ParameterError("rto_target_minutes", "must be greater than 0, got %s" % params["rto_target_minutes"])
    out["rto_target_s"] = float(params["rto_target_minutes"]) * 60.0
    out["production_size"] = None
    if params.get("production_size") not in (None, ""):
        try:
            out["production_size"] = int(human_to_bytes(str(params["production_size"]).replace(" ", "")))
        except (ValueError, TypeError):
            raise ParameterError("production_size", "must be bytes or a size like 40GB, got %r"
                                 % (params["production_size"],))
    if params.get("pg_bin_dir") and not os.path.isdir(params["pg_bin_dir"]):
        raise ParameterError("pg_bin_dir", "directory %s does not exist" % params["pg_bin_dir"])
    out["admin"] = pg.connect_kwargs(params, dbname=params.get("db_name") or "postgres")
    return out


class Drill(object):
    """One run: select, refuse or proceed, restore, verify, always drop."""

    def __init__(self, module, settings):
        self.module = module
        self.params = module.params
        self.s = settings
        self.admin = settings["admin"]
        self.secrets = secret.protect(module)
        self.selected = None          # dict(path, name, manifest, source, ...)
        self.scratch = None           # name chosen
        self.created = False          # we created it: only then may we drop it
        self.dropped = False
        self.drop_error = None
        self.leftovers = []
        self.pipeline = None
        self.tmpdir = None
        self.evidence = {}
        self.result = {"changed": False, "scratch_dropped": True, "leftovers_dropped": []}

    # -- helpers ---------------------------------------------------------------------------
    def _redact(self, text):
        return redact_text(text, self.secrets)

    def _long_kwargs(self, dbname):
        """Connection for counting and dropping: bounded by restore_timeout, not db_statement_timeout."""
        kwargs = dict(self.admin, dbname=dbname)
        kwargs["options"] = "-c statement_timeout=%d" % (self.params["restore_timeout"] * 1000)
        return kwargs

    def _server(self):
        return "%s:%s" % (self.admin.get("host", "(local socket)"), self.admin.get("port", 5432))

    # -- 1. the backup -------------------------------------------------------------------------
    def select_backup(self):
        source = self.s["source"]
        if source == "path":
            path = backup.backup_path_of(self.params["backup_path"])
            try:
                manifest = backup.load_manifest(path)
            except backup.ManifestError as err:
                raise NoValidBackup("backup %s is not valid: %s" % (os.path.basename(path), err))
            problems = backup.verify_backup(path, manifest)
            if problems:
                raise NoValidBackup("backup %s is not valid: %s" % (os.path.basename(path), "; ".join(problems)))
            self.selected = dict(path=path, name=os.path.basename(path), manifest=manifest)
        elif source == "local":
            skipped = []
            found = backup.newest_valid_backup(self.params["backup_dir"], database=self.params.get("source_database"),
                                               label=self.params.get("backup_label"), skipped=skipped)
            if found is None:
                raise self._no_valid_backup(self.params["backup_dir"], skipped)
            found["skipped"] = skipped
            self.selected = found
        else:
            self.selected = self._fetch_from_s3()
        self.selected["source"] = source
        if self.selected.get("skipped"):
            # newer backups that are not valid: BACKUP-VALID owns them, the drill shows them
            self.evidence["backups_skipped"] = self.selected["skipped"][:10]
        manifest = self.selected["manifest"]
        info = dict(name=self.selected["name"], path=self.selected["path"], source=source,
                    format=manifest.get("format"), compression=(manifest.get("compression") or {}).get("method"),
                    size_bytes=manifest.get("size_bytes"), sha256=manifest.get("sha256"),
                    sha256_verified=not (source == "s3" and self.module.check_mode),
                    database=manifest.get("database"), started_at=manifest.get("started_at"),
                    server_version=manifest.get("server_version"))
        if self.selected.get("s3_key"):
            info["s3"] = "s3://%s/%s" % (self.params["s3_bucket"], self.selected["s3_key"])
        self.result["backup"] = info
        self.evidence["backup"] = info

    def _fetch_from_s3(self):
        """The newest backup under the S3 prefix whose download matches its manifest (size, sha256)."""
        p = self.params
        try:
            client, bucket, prefix = backup_s3.s3_client_from_params(p)
            items = backup_s3.stored_backups(client, bucket, prefix, database=p.get("source_database"))
            where = "s3://%s/%s" % (bucket, prefix)
            skipped = []
            for item in items:
                if p.get("backup_label") and backup.parse_backup_name(item["name"])["label"] != p["backup_label"]:
                    continue
                manifest = item["manifest"]
                problems = [item["manifest_error"]] if manifest is None else []
                if not problems and item["size_bytes"] != manifest.get("size_bytes"):
                    problems = ["%d bytes stored, manifest says %s" % (item["size_bytes"], manifest.get("size_bytes"))]
                if not problems and self.module.check_mode:
                    # no download in check mode: the sha256 is checked when the drill runs
                    return dict(path=os.path.join(p.get("download_dir") or "<temporary directory>", item["name"]),
                                name=item["name"], manifest=manifest, s3_key=item["key"], skipped=skipped)
                if not problems:
                    path = s3.download(client, bucket, item, self._download_dir())
                    problems = backup.verify_backup(path, manifest)   # the bytes we got, not S3's metadata
                    if not problems:
                        return dict(path=path, name=item["name"], manifest=manifest, s3_key=item["key"],
                                    skipped=skipped)
                    backup.remove_path(path)
                skipped.append(dict(name=item["name"], problem="; ".join(problems)))
        except s3.S3Error as err:
            raise NoValidBackup(self._redact(str(err)))
        raise self._no_valid_backup(where, skipped)

    def _no_valid_backup(self, where, skipped):
        self.evidence["backups_skipped"] = skipped[:10]
        if not skipped:
            return NoValidBackup("no backup found in %s" % where)
        return NoValidBackup("no valid backup in %s (%d found, none matching its manifest): %s" % (
            where, len(skipped), "; ".join("%s: %s" % (i["name"], i["problem"]) for i in skipped[:3])))

    def _download_dir(self):
        """A private directory for downloads (under download_dir when set), removed by cleanup()."""
        if self.tmpdir is None:
            parent = self.params.get("download_dir")
            if parent and not os.path.isdir(parent):
                os.makedirs(parent, 0o700)
            self.tmpdir = tempfile.mkdtemp(prefix="restore_drill_", dir=parent or None)
        return self.tmpdir

    # -- 2. server, leftovers, name --------------------------------------------------------------
    def inspect_server(self):
        """Refusals that need the server (names), the leftovers to drop, the scratch name."""
        manifest = self.selected["manifest"]
        source_db = manifest.get("database")
        protected = rules.protected_set(self.params["protected_names"], source_db)
        rows = pg.query(self.admin, "SELECT datname FROM pg_catalog.pg_database")
        existing = set(r[0] for r in rows)
        now = rules.utcnow()
        self.leftovers = rules.leftovers(existing, self.s["prefix"], now, self.params["leftover_max_age"], protected)
        if self.params.get("scratch_name"):
            name = self.params["scratch_name"]
        else:
            name = rules.scratch_name(self.s["prefix"], now)
            attempt = 0
            while name in existing and attempt < 20:   # a drill started within the same second
                attempt += 1
                name = rules.scratch_name(self.s["prefix"], now, attempt)
        why = rules.refuse_name(name, source_db, self.params["protected_names"])
        if why:
            raise DrillRefused(why)
        if name in existing and name not in [leftover[0] for leftover in self.leftovers]:
            raise DrillRefused("scratch database %r already exists on %s; the drill only drops databases it "
                               "created" % (name, self._server()))
        self.scratch = name
        self.result["scratch_database"] = name
        self.evidence.update(server=pg.describe(self.admin), scratch_database=name)

    def sweep_leftovers(self):
        for name, age in self.leftovers:
            entry = dict(name=name, age_s=age)
            if self.module.check_mode:
                self.result["changed"] = True   # what the run would do
            else:
                try:
                    self._drop(name)
                    entry["dropped"] = True
                    self.result["changed"] = True
                except pg.PgError as err:
                    entry["dropped"] = False
                    entry["error"] = self._redact(str(err))
            self.result["leftovers_dropped"].append(entry)
        if self.leftovers:
            self.evidence["leftovers"] = self.result["leftovers_dropped"]

    def _drop(self, name):
        # WITH (FORCE) ends sessions still attached (a killed restore's backends); PostgreSQL 13+.
        pg.query(self._long_kwargs(self.admin.get("dbname")),
                 "DROP DATABASE IF EXISTS %s WITH (FORCE)" % _quote_ident(name))

    # -- 3. create, restore -----------------------------------------------------------------------
    def create_scratch(self):
        """CREATE DATABASE; a generated name taken meanwhile by a concurrent drill gets the next suffix."""
        for attempt in range(1, 21):
            try:
                pg.query(self.admin, "CREATE DATABASE %s TEMPLATE template0" % _quote_ident(self.scratch))
                self.created = True
                return
            except pg.PgError as err:
                if self.params.get("scratch_name") or "already exists" not in str(err):
                    raise
            base = rules.scratch_created_at(self.scratch, self.s["prefix"])
            self.scratch = rules.scratch_name(self.s["prefix"], base, attempt)
            self.result["scratch_database"] = self.evidence["scratch_database"] = self.scratch
        raise pg.PgError("no free scratch database name after 20 attempts")

    def stages(self):
        """The restore pipeline into the scratch database (recorded as evidence); raises RestoreError."""
        stages = restore_stages(self.selected["path"], self.selected["manifest"], self.scratch,
                                jobs=self.s["jobs"], bin_dir=self.params.get("pg_bin_dir"))
        self.evidence["restore_command"] = " | ".join(describe(stage) for stage in stages)
        return stages

    def restore(self, stages):
        env = ClientTools(libpq_env=pg.libpq_env(dict(self.admin, dbname=self.scratch))).env()

        def keep(pipeline):
            self.pipeline = pipeline
        try:
            return run_restore(stages, env, self.params["restore_timeout"], on_start=keep, secrets=self.secrets)
        finally:
            self.pipeline = None

    # -- 4. verify ------------------------------------------------------------------------------------
    def verify(self):
        manifest_tables = self.selected["manifest"].get("tables") or {}
        kwargs = self._long_kwargs(self.scratch)
        rows = pg.query(kwargs, TABLES_SQL)
        restored = dict(("%s.%s" % (s, t), (s, t)) for s, t in rows)
        counted = rules.tables_to_count(manifest_tables, self.params["tables"])
        counts = self._count(kwargs, [(name, restored[name]) for name in counted if name in restored])
        size = pg.query(kwargs, "SELECT pg_catalog.pg_database_size(current_database())")[0][0]
        rows_counted = self.selected["manifest"].get("rows_counted", True) is not False and bool(manifest_tables)
        return rules.verify(manifest_tables, restored, counts, counted, rows_counted), int(size or 0)

    def _count(self, kwargs, tables):
        """Exact row counts, over up to `jobs` connections at once."""
        if not tables:
            return {}
        workers = max(1, min(self.s["jobs"], len(tables)))
        chunks = [tables[i::workers] for i in range(workers)]

        def count_chunk(chunk):
            out = {}
            conn = pg.connect(kwargs)
            try:
                with conn.cursor() as cur:
                    for name, (schema, table) in chunk:
                        cur.execute("SELECT count(*) FROM %s.%s" % (_quote_ident(schema), _quote_ident(table)))
                        out[name] = cur.fetchone()[0]
            except Exception as err:  # pylint: disable=broad-except
                raise pg.PgError(pg.error_text(err, kwargs))
            finally:
                conn.close()
            return out
        counts = {}
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for part in pool.map(count_chunk, chunks):
                counts.update(part)
        return counts

    # -- 5. always: drop --------------------------------------------------------------------------------
    def cleanup(self):
        """Stop a running restore, drop the scratch database if we created it, remove downloads.

        Never raises; safe to call more than once."""
        previous = {}
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            previous[sig] = signal.signal(sig, signal.SIG_IGN)   # a second signal must not cut the drop
        try:
            if self.pipeline is not None:
                self.pipeline.kill()
            if self.created and not self.dropped:
                try:
                    self._drop(self.scratch)
                    self.dropped = True
                except pg.PgError as err:
                    self.drop_error = self._redact(str(err))
            if self.tmpdir:
                shutil.rmtree(self.tmpdir, ignore_errors=True)
                self.tmpdir = None
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        gone = not self.created or self.dropped
        self.result["scratch_dropped"] = gone
        if not gone:
            self.result["changed"] = True   # we leave a database behind: the server changed
        self.evidence["scratch_dropped"] = gone


def _rto_item(drill, restore_s, db_bytes):
    manifest = drill.selected["manifest"]
    target = drill.s["rto_target_s"]
    backup_bytes = manifest.get("size_bytes")
    if drill.s["production_size"] is not None:
        prod, basis, measured = drill.s["production_size"], "production_size (database size)", db_bytes
    elif manifest.get("database_size_bytes"):
        prod, basis, measured = manifest["database_size_bytes"], "manifest database_size_bytes", db_bytes
    else:
        prod, basis, measured = backup_bytes, "manifest size_bytes (backup size)", backup_bytes
    projection = rules.project_rto(restore_s, measured, prod)
    status, message = rules.rto_verdict(restore_s, projection["projected_s"], target)
    if projection["throughput_bytes_per_s"]:
        message += " (backup %s, %s restored at %s/s; production %s from %s)" % (
            rules.format_bytes(backup_bytes), rules.format_bytes(db_bytes),
            rules.format_bytes(projection["throughput_bytes_per_s"]), rules.format_bytes(prod), basis)
    rto = dict(restore_s=round(restore_s, 2), target_s=target, backup_size_bytes=backup_bytes,
               backup_size=rules.format_bytes(backup_bytes), restored_database_bytes=db_bytes,
               restored_database_size=rules.format_bytes(db_bytes), jobs=drill.s["jobs"],
               format=manifest.get("format"), production_size_bytes=prod,
               production_size=rules.format_bytes(prod), projection_basis=basis,
               throughput_bytes_per_s=projection["throughput_bytes_per_s"],
               throughput=(rules.format_bytes(projection["throughput_bytes_per_s"]) + "/s")
               if projection["throughput_bytes_per_s"] else None,
               projected_s=projection["projected_s"],
               projected=rules.format_duration(projection["projected_s"]))
    return check_item(status, message, rto), rto


def _summary(drill, outcome):
    """RESTORE-DRYRUN status and message once the restore finished."""
    manifest_tables = drill.selected["manifest"].get("tables") or {}
    compared = outcome["compared"]
    drill.evidence.update(
        tables={"expected": len(manifest_tables), "restored": outcome["restored_tables"],
                "missing": outcome["missing"], "unexpected": outcome["unexpected"]},
        counts=dict((t, compared[t]) for t in sorted(compared)[:MAX_LISTED_TABLES]),
        counts_compared=len(compared))
    if outcome["mismatches"]:
        drill.evidence["mismatches"] = outcome["mismatches"]
    if not outcome["ok"]:
        return FAIL, "%s restored into %s but differs from its manifest: %s" % (
            drill.selected["name"], drill.scratch, "; ".join(outcome["problems"]))
    message = "%s restored into %s: %d tables as in the manifest, exact row counts equal for %d (%s)" % (
        drill.selected["name"], drill.scratch, len(manifest_tables), len(compared),
        ", ".join(sorted(compared)[:5]) + (", ..." if len(compared) > 5 else ""))
    # Newer backups were invalid: the drill passed, but not on the latest backup.
    return (WARN if drill.evidence.get("backups_skipped") else PASS), message


def _notes(drill):
    """Trailing facts every RESTORE-DRYRUN message carries: the cleanup, leftovers, skipped backups."""
    notes = []
    if drill.created:
        notes.append("scratch dropped" if drill.dropped else "scratch NOT dropped: %s" % drill.drop_error)
    dropped = [e["name"] for e in drill.result["leftovers_dropped"] if e.get("dropped")]
    if dropped:
        notes.append("dropped %d leftover(s) of earlier runs: %s" % (len(dropped), ", ".join(dropped)))
    failed = [e["name"] for e in drill.result["leftovers_dropped"] if e.get("dropped") is False]
    if failed:
        notes.append("could not drop leftover(s) %s" % ", ".join(failed))
    skipped = drill.evidence.get("backups_skipped") or []
    if skipped and drill.selected:
        notes.append("%d newer backup(s) skipped as invalid (%s)" % (len(skipped), skipped[0]["name"]))
    return "".join("; " + n for n in notes)


def run(module, settings):
    drill = Drill(module, settings)
    result = drill.result
    watch = Stopwatch().__enter__()

    def finish(dry_status, dry_message, rto_item=None, failed_msg=None):
        drill.cleanup()   # idempotent: the scratch database, a running restore, downloads
        if drill.created and not drill.dropped:
            dry_status = FAIL
        dry_message += _notes(drill)
        if dry_status == SKIP:
            rto_item = check_item(SKIP, dry_message, {"target_s": settings["rto_target_s"]})
        elif rto_item is None:
            rto_item = check_item(FAIL, "no restore time: the drill did not complete a restore (see RESTORE-DRYRUN)",
                                  {"target_s": settings["rto_target_s"]})
        result["checks"] = {DRYRUN: check_item(dry_status, dry_message, drill.evidence,
                                               duration_ms=watch.elapsed_ms()),
                            RTO: rto_item}
        if failed_msg:
            module.fail_json(msg=failed_msg, **result)
        module.exit_json(**result)

    why = rules.refuse_server(settings["admin"].get("host"), module.params["production_hosts"],
                              module.params["host_in_production"], module.params["allow_production"])
    if why:
        module.fail_json(msg=why, **result)

    def on_signal(signum, frame):
        raise Interrupted(signum)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)

    try:
        try:
            drill.select_backup()
            drill.inspect_server()
        except DrillRefused as err:
            drill.cleanup()
            module.fail_json(msg=str(err), **result)
        except NoValidBackup as err:
            finish(FAIL, str(err))
        except pg.PgError as err:
            finish(FAIL, "server %s: %s" % (drill._server(), drill._redact(str(err))))

        try:
            drill.stages()   # tools present, command known, before anything is created
        except RestoreError as err:
            finish(FAIL, "cannot restore %s: %s" % (drill.selected["name"], err))

        drill.sweep_leftovers()
        if module.check_mode:
            finish(SKIP, "check mode: would restore %s into %s on %s, verify, and drop it%s" % (
                drill.selected["name"], drill.scratch, drill._server(),
                " (after dropping leftovers %s)" % ", ".join(leftover[0] for leftover in drill.leftovers) if drill.leftovers else ""))

        restore_s = None
        try:
            drill.create_scratch()
            restore_s = drill.restore(drill.stages())
            drill.evidence["restore_s"] = round(restore_s, 2)
            with Stopwatch() as verify_watch:
                outcome, data_bytes = drill.verify()
            drill.evidence["verify_s"] = round(verify_watch.ms / 1000.0, 2)
        except RestoreError as err:
            finish(FAIL, "restore of %s into %s failed: %s" % (drill.selected["name"], drill.scratch,
                                                               drill._redact(str(err))))
        except pg.PgError as err:
            step = "restore" if restore_s is None else "verification"
            finish(FAIL, "%s of %s into %s failed: %s" % (step, drill.selected["name"], drill.scratch or "scratch",
                                                          drill._redact(str(err))))
        drill.cleanup()
        result["verification"] = outcome
        rto_item, result["rto"] = _rto_item(drill, restore_s, data_bytes)
        status, message = _summary(drill, outcome)
        finish(status, message, rto_item=rto_item)
    except Interrupted as err:
        drill.cleanup()
        note = _notes(drill)
        finish(FAIL, "drill %s" % err, failed_msg="restore drill %s%s" % (err, note))


def main():
    argument_spec = pg.pg_argument_spec()
    argument_spec.update(backup_s3.s3_argument_spec())
    argument_spec.update(
        db_name=dict(type="str", default="postgres"),
        backup_path=dict(type="path"),
        backup_dir=dict(type="path"),
        backup_label=dict(type="str"),
        source_database=dict(type="str"),
        download_dir=dict(type="path"),
        scratch_prefix=dict(type="str", default="restore_drill"),
        scratch_name=dict(type="str"),
        protected_names=dict(type="list", elements="str", default=[]),
        leftover_max_age=dict(type="int", default=3600),
        tables=dict(type="list", elements="str", default=[]),
        jobs=dict(type="int", default=0),
        restore_timeout=dict(type="int", default=3600),
        rto_target_minutes=dict(type="float", default=15),
        production_size=dict(type="str"),
        production_hosts=dict(type="list", elements="str", default=[]),
        host_in_production=dict(type="bool", default=False),
        allow_production=dict(type="bool", default=False),
        pg_bin_dir=dict(type="path"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    pg.require_psycopg(module)
    if module.params.get("s3_bucket") and not s3.HAS_BOTO3:
        module.fail_json(msg=missing_required_lib("boto3"))
    try:
        settings = _settings(module.params)
    except ParameterError as err:
        module.fail_json(msg=str(err), changed=False)
    run(module, settings)


if __name__ == "__main__":
    main()

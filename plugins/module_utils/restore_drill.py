# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The restore drill engine of hunter.ops.pg_restore_dryrun.

``Drill(params, settings).run()`` tests the newest backup: its checksum, a restore into a new
scratch database, the tables with their exact row counts and the schema inventory of the
manifest, then the drop. It records what it observed on the Drill (``outcome()``); the module
maps that to RESTORE-DRYRUN and RESTORE-RTO.

The cleanup contract: once run() has created its scratch database, the database is dropped in
``finally``, whatever ends the run (a finding, an error, an unexpected exception, SIGTERM /
SIGINT / SIGHUP, which raise inside run()). A second signal cannot cut the drop. What a SIGKILL
leaves is found by the next run (module_utils/scratch_db.py: ownership tag, live sessions,
state file) and dropped.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.common.text.formatters import human_to_bytes

try:
    from psycopg import sql
except ImportError:  # the module reports the missing library (pg.require_psycopg)
    sql = None

from ansible_collections.hunter.ops.plugins.module_utils import backup, backup_s3, pg, s3
from ansible_collections.hunter.ops.plugins.module_utils import restore_rules as rules
from ansible_collections.hunter.ops.plugins.module_utils import scratch_db
from ansible_collections.hunter.ops.plugins.module_utils import schema_inventory
from ansible_collections.hunter.ops.plugins.module_utils.pg_dump import TABLES_SQL, ClientTools, describe
from ansible_collections.hunter.ops.plugins.module_utils.redact import redact_text
from ansible_collections.hunter.ops.plugins.module_utils.restore_exec import (
    RestoreError, restore_stages, run_restore)
from ansible_collections.hunter.ops.plugins.module_utils.signals import (
    Interrupted, deferring_signals, ignoring_signals, raising_on_signals)
from ansible_collections.hunter.ops.plugins.module_utils.validate import ParameterError

MIN_SERVER_VERSION_NUM = 130000   # DROP DATABASE ... WITH (FORCE)


class DrillRefused(Exception):
    """A safety rule refuses the run (a configuration error); str() names the rule."""


class NoBackupToTest(Exception):
    """The newest backup is missing or invalid: a finding, RESTORE-DRYRUN fails with it."""


def _absolute(params, name):
    value = params.get(name)
    if value and not os.path.isabs(value):
        raise ParameterError(name, "must be an absolute path (where a module runs is not the project), got %r"
                             % (value,))
    return value


def validate_settings(params):
    """Validated settings from the module's params; raises ParameterError naming the option."""
    out = {}
    sources = [k for k in ("backup_path", "backup_dir", "s3_bucket") if params.get(k)]
    if len(sources) != 1:
        raise ParameterError("backup_path", "give exactly one of backup_path, backup_dir, s3_bucket (got %s)"
                             % (", ".join(sources) or "none"))
    out["source"] = {"backup_path": "path", "backup_dir": "local", "s3_bucket": "s3"}[sources[0]]
    for name in ("backup_path", "backup_dir", "download_dir", "state_dir"):
        _absolute(params, name)
    if params.get("backup_path") and not os.path.exists(params["backup_path"]):
        raise ParameterError("backup_path", "%s does not exist" % params["backup_path"])
    if params.get("backup_dir") and not os.path.isdir(params["backup_dir"]):
        raise ParameterError("backup_dir", "directory %s does not exist" % params["backup_dir"])
    out["prefix"] = scratch_db.validate_prefix("scratch_prefix", params["scratch_prefix"])
    out["scratch_name"] = None
    if params.get("scratch_name") is not None:
        out["scratch_name"] = scratch_db.validate_name("scratch_name", params["scratch_name"])
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
    out["state_dir"] = (params.get("state_dir") or params.get("backup_dir")
                        or (os.path.dirname(os.path.abspath(params["backup_path"])) if params.get("backup_path")
                            else None)
                        or params.get("download_dir") or tempfile.gettempdir())
    return out


class Drill(object):
    """One run: select the newest backup, refuse or proceed, restore, verify, always drop.

    After run(): ``error`` (dict step, message) or None, ``refused`` (str) or None,
    ``verification`` (tables and counts), ``schema`` (the schema comparison, None when the
    manifest has no inventory), ``timings`` (seconds by phase, end_to_end_s), ``evidence``.
    """

    def __init__(self, params, settings, check_mode=False, notify=None, secrets=None):
        self.params = params
        self.s = settings
        self.check_mode = check_mode
        self.notify = notify or (lambda text: None)
        self.run_id = scratch_db.new_run_id()
        self.admin = dict(settings["admin"], application_name=scratch_db.application_name(self.run_id))
        # The module's registry (module_utils/secret.py: every form of every secret); the raw values otherwise.
        self.secrets = list(secrets) if secrets is not None else [
            v for v in [params.get("db_password")] + backup_s3.s3_secrets(params) if v]
        self.selected = None          # dict(path, name, manifest, source, ...)
        self.scratch = None
        self.created = False          # we created it: only then may we drop it
        self.dropped = False
        self.drop_error = None
        self.guard = None             # our session on the server for the whole run (ownership)
        self.pipeline = None
        self.tmpdir = None
        self.state_file = None
        self.server_version_num = None
        self.step = "select"
        self.error = None
        self.refused = None
        self.interrupted = None
        self.verification = None
        self.schema = None
        self.restored_bytes = None
        self.sweep = []               # classify() entries, with dropped / error / size_bytes once acted on
        self.died = []                # earlier runs of this state_dir that died, and what became of their scratch
        self.timings = {}
        self.evidence = {"run_id": self.run_id}
        self.changed = False
        self._began = None

    # -- helpers ---------------------------------------------------------------------------
    def _redact(self, text):
        return redact_text(str(text), self.secrets)

    def server(self):
        return "%s:%s" % (self.admin.get("host", "(local socket)"), self.admin.get("port", 5432))

    def _kwargs(self, dbname, role="worker"):
        """Connection for the guard, counting and the inventory: bounded by restore_timeout, not
        db_statement_timeout. Only the guard bears the run's own application_name (its sign of life,
        gone as soon as this process is); the others are named after it with their role."""
        kwargs = dict(self.admin, dbname=dbname)
        kwargs["options"] = "-c statement_timeout=%d" % (self.params["restore_timeout"] * 1000)
        if role == "guard":
            # an idle guard must not be ended by the server while the restore runs
            kwargs["options"] += " -c idle_session_timeout=0 -c idle_in_transaction_session_timeout=0"
        else:
            kwargs["application_name"] = "%s %s" % (self.admin["application_name"], role)
        return kwargs

    def _lap(self, name, since):
        now = time.monotonic()
        self.timings[name] = round(self.timings.get(name, 0.0) + now - since, 3)
        return now

    def _admin_query(self, sql, params=None):
        # A signal waits for the statement: the guard stays usable for the cleanup's DROP, and
        # what the server did (CREATE DATABASE) is known.
        try:
            with deferring_signals(), self.guard.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else None
        except Exception as err:  # pylint: disable=broad-except
            raise pg.PgError(pg.error_text(err, self.admin))

    # -- the run ----------------------------------------------------------------------------------
    def run(self):
        """Run the drill; returns self. Findings and errors end up in ``error``/``refused``; an
        unexpected exception propagates, after the cleanup."""
        self._began = time.monotonic()
        try:
            with raising_on_signals():
                try:
                    self._run()
                except DrillRefused as err:
                    self.refused = str(err)
                except NoBackupToTest as err:
                    self.error = dict(step="select", message=str(err))
                except RestoreError as err:
                    self.error = dict(step=self.step, message=self._redact(err))
                except pg.PgError as err:
                    self.error = dict(step=self.step, message=self._redact(err))
                except Interrupted as err:
                    self._interrupted(err)
                finally:
                    with ignoring_signals():   # a second signal must not cut the drop
                        self.cleanup()
        except Interrupted as err:
            # a signal in a narrow window outside the handler above (an except clause running, the
            # finally before it ignores signals, after the cleanup): still an interrupted run, cleaned up
            self._interrupted(err)
            with ignoring_signals():
                self.cleanup()   # does nothing when it already ran
        self.timings["end_to_end_s"] = round(time.monotonic() - self._began, 3)
        return self

    def _interrupted(self, err):
        if not self.interrupted:
            self.interrupted = err.signum
            self.error = dict(step=self.step, message="%s during the %s step" % (err, self.step))

    def _run(self):
        clock = time.monotonic()
        self.select_backup()
        self.step = "server"
        self.connect()
        self.inspect_server()
        self.step = "prepare"
        self.stages()   # tools present, command known, before anything is created
        if self.check_mode:
            return
        self.sweep_leftovers()
        clock = time.monotonic()
        self.step = "create"
        self.create_scratch()
        clock = self._lap("create_s", clock)
        self.step = "restore"
        self.timings["restore_s"] = round(self.restore(self.stages()), 3)
        clock = time.monotonic()
        self.step = "verify"
        self.verify()
        self._lap("verify_s", clock)

    # -- 1. the backup: the newest one, valid or not --------------------------------------------
    def select_backup(self):
        source = self.s["source"]
        began = time.monotonic()
        if source == "path":
            path = backup.backup_path_of(self.params["backup_path"])
            self.selected = self._checked(dict(path=path, name=os.path.basename(path)), "backup %s" % path)
        elif source == "local":
            directory = self.params["backup_dir"]
            found = backup.list_backups(directory, database=self.params.get("source_database"),
                                        label=self.params.get("backup_label"))
            self.evidence["backups_found"] = len(found)
            if not found:
                raise NoBackupToTest("no backup found in %s%s" % (directory, self._filters()))
            self.selected = self._checked(found[0], "the newest backup in %s, %s," % (directory, found[0]["name"]),
                                          found[1:])
        else:
            self.selected = self._fetch_from_s3()
        # listing, manifests and the sha256 (a download has its own phase)
        self.timings["sha256_s"] = round(time.monotonic() - began - self.timings.get("download_s", 0.0), 3)
        self.selected["source"] = source
        manifest = self.selected["manifest"]
        info = dict(name=self.selected["name"], path=self.selected["path"], source=source,
                    format=manifest.get("format"), compression=(manifest.get("compression") or {}).get("method"),
                    size_bytes=manifest.get("size_bytes"), sha256=manifest.get("sha256"),
                    sha256_verified=not (source == "s3" and self.check_mode),
                    database=manifest.get("database"), started_at=manifest.get("started_at"),
                    server_version=manifest.get("server_version"), manifest_version=manifest.get("manifest_version"))
        if self.selected.get("s3_key"):
            info["s3"] = "s3://%s/%s" % (self.params["s3_bucket"], self.selected["s3_key"])
        self.evidence["backup"] = info

    def _filters(self):
        parts = []
        if self.params.get("source_database"):
            parts.append("database %s" % self.params["source_database"])
        if self.params.get("backup_label"):
            parts.append("label %s" % self.params["backup_label"])
        return " (%s)" % ", ".join(parts) if parts else ""

    def _checked(self, item, what, older=()):
        """The item with its manifest when the backup matches it, else NoBackupToTest saying why
        (`what` names the backup in the message)."""
        manifest = item.get("manifest")
        problems = []
        if manifest is None:
            try:
                manifest = backup.load_manifest(item["path"])
            except backup.ManifestError as err:
                problems = [str(err)]
        if not problems:
            problems = backup.verify_backup(item["path"], manifest)
        if problems:
            valid_older = next((o["name"] for o in older if o.get("manifest") is not None
                                and not backup.verify_backup(o["path"], o["manifest"], checksum=False)), None)
            raise NoBackupToTest("%s is not valid: %s%s" % (
                what, "; ".join(problems),
                " (the drill tests the newest backup; an older one, %s, is not tested instead)" % valid_older
                if valid_older else ""))
        return dict(item, manifest=manifest)

    def _fetch_from_s3(self):
        """The newest backup under the S3 prefix, downloaded and checked against its manifest."""
        p = self.params
        clock = time.monotonic()
        try:
            client, bucket, prefix = backup_s3.s3_client_from_params(p)
            items = backup_s3.stored_backups(client, bucket, prefix, database=p.get("source_database"))
            if p.get("backup_label"):
                items = [i for i in items if backup.parse_backup_name(i["name"])["label"] == p["backup_label"]]
            where = "s3://%s/%s" % (bucket, prefix)
            self.evidence["backups_found"] = len(items)
            if not items:
                raise NoBackupToTest("no backup found in %s%s" % (where, self._filters()))
            item = items[0]
            manifest = item["manifest"]
            if manifest is None:
                raise NoBackupToTest("the newest backup in %s, %s, is not valid: %s"
                                     % (where, item["name"], item["manifest_error"]))
            if item["size_bytes"] != manifest.get("size_bytes"):
                raise NoBackupToTest("the newest backup in %s, %s, is not valid: %d bytes stored, manifest says %s"
                                     % (where, item["name"], item["size_bytes"], manifest.get("size_bytes")))
            if self.check_mode:   # no download in check mode: the sha256 is checked when the drill runs
                return dict(path=os.path.join(p.get("download_dir") or "<temporary directory>", item["name"]),
                            name=item["name"], manifest=manifest, s3_key=item["key"])
            path = s3.download(client, bucket, item, self._download_dir())
        except s3.S3Error as err:
            raise NoBackupToTest(self._redact(err))
        self._lap("download_s", clock)
        return self._checked(dict(path=path, name=item["name"], manifest=manifest, s3_key=item["key"]),
                             "the newest backup in %s (downloaded), %s," % (where, item["name"]))

    def _download_dir(self):
        """A private directory for downloads (under download_dir when set), removed by cleanup()."""
        if self.tmpdir is None:
            parent = self.params.get("download_dir")
            if parent and not os.path.isdir(parent):
                os.makedirs(parent, 0o700)
            self.tmpdir = tempfile.mkdtemp(prefix="restore_drill_", dir=parent or None)
        return self.tmpdir

    # -- 2. the server: our session, refusals, leftovers, the name ----------------------------------
    def connect(self):
        """The run's own session (the guard): CREATE/DROP go through it, and while it is connected
        other drills' sweeps know this run is alive."""
        self.guard = pg.connect(self._kwargs(self.admin.get("dbname"), role="guard"))

    def inspect_server(self):
        manifest = self.selected["manifest"]
        source_db = manifest.get("database")
        self.server_version_num = int(self._admin_query("SHOW server_version_num")[0][0])
        if self.server_version_num < MIN_SERVER_VERSION_NUM:
            raise DrillRefused("server %s runs PostgreSQL %s; the drill needs 13 or newer (DROP DATABASE ... "
                               "WITH (FORCE) ends a killed restore's sessions)" % (self.server(),
                                                                                   self.server_version_num))
        rows = self._admin_query(
            "SELECT d.datname, pg_catalog.shobj_description(d.oid, 'pg_database'), "
            "(SELECT count(*) FROM pg_catalog.pg_stat_activity a WHERE a.datid = d.oid), "
            "(SELECT coalesce(array_agg(DISTINCT a.application_name), '{}') FROM pg_catalog.pg_stat_activity a "
            "WHERE a.datid = d.oid) FROM pg_catalog.pg_database d")
        existing = dict((r[0], dict(name=r[0], comment=r[1], sessions=int(r[2]), applications=list(r[3] or [])))
                        for r in rows)
        live = set(r[0] for r in self._admin_query(
            "SELECT DISTINCT application_name FROM pg_catalog.pg_stat_activity WHERE application_name LIKE %s",
            (scratch_db.APPLICATION_PREFIX + "%",)))
        protected = scratch_db.protected_set(self.params["protected_names"], source_db)
        self.sweep = scratch_db.classify(existing.values(), self.s["prefix"], scratch_db.utcnow(), live, protected,
                                         self.params["leftover_max_age"])
        self._died_runs(existing, live)
        name = self.s["scratch_name"] or scratch_db.scratch_name(self.s["prefix"], scratch_db.utcnow(), self.run_id)
        why = scratch_db.refuse_name(name, source_db, self.params["protected_names"])
        if why:
            raise DrillRefused(why)
        dropping = [e["name"] for e in self.sweep if e["drop"]]
        if name in existing and name not in dropping:
            raise DrillRefused("scratch database %r already exists on %s; the drill only drops databases it "
                               "created" % (name, self.server()))
        self.scratch = name
        self.evidence.update(server=pg.describe(self.admin), scratch_database=name)

    def _died_runs(self, existing, live):
        """Earlier runs of this state directory whose process is gone: what their scratch became."""
        for path, state in scratch_db.read_states(self.s["state_dir"]):
            if state.get("run_id") == self.run_id or scratch_db.owner_alive_here(state) is not False:
                continue   # this run, a running one, or another host's
            entry = dict(run_id=state.get("run_id"), pid=state.get("pid"), started_at=state.get("started_at"),
                         scratch=state.get("scratch"), server=state.get("server"), state_file=path)
            if state.get("server") != self.server():
                entry["outcome"] = "on another server (%s): not checked from here" % state.get("server")
            elif state.get("scratch") not in existing:
                entry["outcome"] = "gone"
                entry["remove_state"] = True
            elif scratch_db.application_name(state.get("run_id") or "") in live:
                entry["outcome"] = "still has sessions of that run: left alone"
            else:
                entry["outcome"] = "remains, its owner gone"
                entry["remove_state"] = True
                if not any(e["name"] == state["scratch"] for e in self.sweep):
                    # a custom scratch_name (not of the prefix): ours by its tag, or left alone
                    tag = scratch_db.parse_tag(existing[state["scratch"]].get("comment"))
                    if tag and tag.get("run_id") == state.get("run_id"):
                        self.sweep.append(dict(name=state["scratch"], run_id=tag["run_id"], owner=tag, age_s=None,
                                               sessions=existing[state["scratch"]]["sessions"], drop=True,
                                               reason="its drill died (state file %s)" % os.path.basename(path)))
                    else:
                        entry["outcome"] = "exists without that run's tag: left alone"
                        entry["remove_state"] = False
            self.died.append(entry)

    def sweep_leftovers(self):
        """Drop the scratch databases whose owner is gone (module_utils/scratch_db.classify)."""
        for entry in self.sweep:
            if not entry["drop"]:
                continue
            try:
                size = self._admin_query("SELECT pg_catalog.pg_database_size(%s)", (entry["name"],))[0][0]
                entry["size_bytes"] = int(size)
            except pg.PgError:
                entry["size_bytes"] = None
            try:
                with deferring_signals():   # an interruption comes after the result says it was dropped
                    self._drop(entry["name"])
                    entry["dropped"] = True
                    self.changed = True
            except pg.PgError as err:
                entry["dropped"] = False
                entry["error"] = self._redact(err)
        for entry in self.died:
            dropped = any(e.get("dropped") for e in self.sweep if e["name"] == entry.get("scratch"))
            if entry["outcome"] == "remains, its owner gone":
                entry["outcome"] = "dropped now" if dropped else "could not be dropped"
            if entry.get("remove_state") and (dropped or entry["outcome"] == "gone"):
                scratch_db.remove_state(entry.pop("state_file"))
            entry.pop("remove_state", None)

    def _drop(self, name):
        # WITH (FORCE) ends sessions still attached (a killed restore's backends); PostgreSQL 13+.
        self._admin_query(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    # -- 3. create, restore -----------------------------------------------------------------------
    def create_scratch(self):
        """Write down the scratch name where a SIGKILL cannot erase it, then CREATE and tag it."""
        tag = scratch_db.owner_tag(self.run_id, self.s["prefix"], backup=self.selected["name"])
        state = dict(tag, scratch=self.scratch, server=self.server())
        path = scratch_db.state_path(self.s["state_dir"], self.run_id)
        try:
            scratch_db.write_state(path, state)
            self.state_file = path
            self.evidence["state_file"] = path
        except (IOError, OSError) as err:
            self.evidence["state_file_error"] = "cannot write %s: %s" % (path, err.strerror or err)
        self.notify(scratch_db.notice(self.scratch, self.server(), self.run_id))
        with deferring_signals():   # an interruption comes after `created` says what the server did
            self._admin_query(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(self.scratch)))
            self.created = True
            self._admin_query(sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(self.scratch), sql.Literal(scratch_db.tag_text(tag))))

    def stages(self):
        """The restore pipeline into the scratch database (recorded as evidence); raises RestoreError."""
        stages = restore_stages(self.selected["path"], self.selected["manifest"], self.scratch,
                                jobs=self.s["jobs"], bin_dir=self.params.get("pg_bin_dir"))
        self.evidence["restore_command"] = " | ".join(describe(stage) for stage in stages)
        return stages

    def restore(self, stages):
        env = ClientTools(libpq_env=pg.libpq_env(self._kwargs(self.scratch, role="restore"))).env()

        def keep(pipeline):
            self.pipeline = pipeline
        try:
            return run_restore(stages, env, self.params["restore_timeout"], on_start=keep, secrets=self.secrets)
        finally:
            self.pipeline = None

    # -- 4. verify ------------------------------------------------------------------------------------
    def verify(self):
        manifest = self.selected["manifest"]
        manifest_tables = manifest.get("tables") or {}
        kwargs = self._kwargs(self.scratch, role="verify")
        rows = pg.query(kwargs, TABLES_SQL)
        restored = dict(("%s.%s" % (s, t), (s, t)) for s, t in rows)
        counted = rules.tables_to_count(manifest_tables, self.params["tables"])
        counts = self._count(kwargs, [(name, restored[name]) for name in counted if name in restored])
        rows_counted = manifest.get("rows_counted", True) is not False and bool(manifest_tables)
        self.verification = rules.verify(manifest_tables, restored, counts, counted, rows_counted)
        clock = time.monotonic()
        conn = pg.connect(kwargs)
        try:
            with conn.cursor() as cur:
                cur.execute(schema_inventory.SEARCH_PATH_SQL)

                def fetch_one(statement):
                    cur.execute(statement)
                    return cur.fetchone()[0]
                inventory = schema_inventory.collect(fetch_one)
                cur.execute("SELECT pg_catalog.pg_database_size(current_database())")
                self.restored_bytes = int(cur.fetchone()[0] or 0)
        except Exception as err:  # pylint: disable=broad-except
            raise pg.PgError(pg.error_text(err, kwargs))
        finally:
            conn.close()
        self._lap("verify_schema_s", clock)   # part of verify_s: the inventory and its comparison's input
        self.evidence["schema_objects_restored"] = schema_inventory.counts(inventory)
        if isinstance(manifest.get("schema"), dict):
            same_major = (manifest.get("server_version_num") or 0) // 10000 == self.server_version_num // 10000
            self.schema = schema_inventory.compare(manifest["schema"], inventory, definitions=same_major)
            self.schema["definitions_compared"] = same_major
            self.schema["restored"] = inventory

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
                        cur.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(
                            sql.Identifier(schema), sql.Identifier(table)))
                        out[name] = cur.fetchone()[0]
            except Exception as err:  # pylint: disable=broad-except
                raise pg.PgError(pg.error_text(err, kwargs))
            finally:
                conn.close()
            return out
        counts = {}
        pool = ThreadPoolExecutor(max_workers=workers)
        try:
            for part in pool.map(count_chunk, chunks):
                counts.update(part)
        except BaseException:
            # Interrupted: no waiting for counts that may run for restore_timeout; the cleanup's
            # DROP ... WITH (FORCE) ends their sessions
            pool.shutdown(wait=False)
            raise
        pool.shutdown(wait=True)
        return counts

    # -- 5. always: drop --------------------------------------------------------------------------------
    def cleanup(self):
        """Stop a running restore, drop the scratch database if we created it, close our session,
        remove downloads. Never raises; safe to call more than once."""
        clock = time.monotonic()
        if self.pipeline is not None:
            self.pipeline.kill()
        if self.created and not self.dropped:
            try:
                if self.guard is None or self.guard.closed:
                    self.connect()
                self._drop(self.scratch)
                self.dropped = True
            except pg.PgError as err:
                self.drop_error = self._redact(err)
            self._lap("drop_s", clock)
        if self.state_file and (self.dropped or not self.created):
            scratch_db.remove_state(self.state_file)   # kept when the database remains: the next run reports it
            self.state_file = None
        if self.guard is not None:
            try:
                self.guard.close()
            except Exception:  # pylint: disable=broad-except
                pass
            self.guard = None
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None
        gone = not self.created or self.dropped
        if not gone:
            self.changed = True   # we leave a database behind: the server changed
        self.evidence["scratch_dropped"] = gone

    # -- what the run observed ------------------------------------------------------------------------
    def leftovers_report(self):
        """The sweep's entries for the result (no owner tag internals)."""
        out = []
        for entry in self.sweep:
            if not entry["drop"]:
                continue
            item = dict(name=entry["name"], reason=entry["reason"], age_s=entry.get("age_s"))
            for key in ("dropped", "error", "size_bytes"):
                if key in entry:
                    item[key] = entry[key]
            out.append(item)
        return out

    def left_alone(self):
        return [dict(name=e["name"], reason=e["reason"]) for e in self.sweep if not e["drop"]]

    def died_report(self):
        return [dict((k, v) for k, v in e.items() if k not in ("state_file", "remove_state")) for e in self.died]

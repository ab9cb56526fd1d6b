#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: pg_restore_dryrun
short_description: Restore drill - restore the newest backup into a scratch database, verify it, drop it
version_added: 0.1.0
description:
  - Tests the newest backup (O(backup_path), the newest in O(backup_dir), or the newest under an S3 prefix,
    downloaded). When it does not match its manifest (missing manifest, size or sha256 mismatch) RESTORE-DRYRUN
    fails saying why; an older backup is never tested in its place.
  - Creates a scratch database C(<scratch_prefix>_<YYYYmmdd_HHMMSS>_<run id>) (UTC) on the server given by the
    C(db_*) options, restores into it (plain SQL with C(psql -v ON_ERROR_STOP=1 --single-transaction),
    compressed SQL streamed through its decompressor, custom/directory archives with
    C(pg_restore -j N --no-owner --no-acl --exit-on-error)); the clients get the database as
    C(--dbname=dbname=<name>), never as a bare name they could expand into a connection string.
  - Verifies the restored database against the manifest - the set of tables, the exact row counts of O(tables)
    (default all) and, for manifest_version 2, the schema inventory (views, materialized views, indexes,
    constraints, sequences and their values, functions and procedures, triggers, extensions and their versions).
    Anything missing, unexpected or different fails, naming the objects (counts by kind and the first names in the
    message, full lists in the evidence). An extension of another version on the restore server is a V(warn); so
    is a manifest without an inventory (manifest_version 1), saying which kinds it could not compare.
  - Always drops the scratch database, also when the restore or the verification fails, on any error, or when the
    module is interrupted (SIGTERM, SIGINT, SIGHUP).
  - "Scratch databases carry their owner: the run id in the name, an owner tag (run id, host, PID) in their
    COMMENT, and a session named C(hunter.ops drill <run id>) held open for the whole run. Before restoring, the
    drill drops the scratch databases of this prefix whose owner is gone (no session of that run, no such process
    on this host) and reports them with their size; a running drill's database is never touched."
  - "A run killed outright (SIGKILL) cannot clean up: before creating its scratch database it writes a state file
    into O(state_dir) and prints a C(hunter.ops notice:) line on stderr naming the database, so the failed task
    and the next run say which database may remain."
  - Refuses a scratch name equal to the backup's source database or in O(protected_names), an existing
    database, and a server of the production group unless O(allow_production=true).
  - Returns the items C(RESTORE-DRYRUN) and C(RESTORE-RTO) under RV(checks). RESTORE-RTO measures the restore
    alone and the drill end to end (download, checksum, create, restore, verification, drop), projects both to the
    production size (the data-bound phases linearly), and compares the end-to-end time with O(rto_target_minutes).
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
      - Restore this backup (a file, or a C(.dir) directory), an absolute path. Its manifest must lie beside it.
      - Mutually exclusive with O(backup_dir) and O(s3_bucket).
    type: path
  backup_dir:
    description:
      - Restore the newest backup in this directory (an absolute path); it must match its manifest (size, sha256).
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
      - Restore the newest backup stored in this bucket under O(s3_prefix). It is downloaded, and its size and
        sha256 must match its manifest (a mismatching copy fails the drill).
    type: str
  download_dir:
    description:
      - Where a backup from S3 is downloaded (an absolute path). Default a temporary directory, removed afterwards.
    type: path
  state_dir:
    description:
      - Directory of the state file a run writes before it creates its scratch database and removes after the
        drop (C(.hunter_ops_drill-<run id>.json)); the next run reads it to report and drop what a killed run left.
      - Default O(backup_dir), the directory of O(backup_path), else O(download_dir), else the system's temporary
        directory. When it cannot be written the drill goes on and says so in the evidence.
    type: path
  scratch_prefix:
    description:
      - Prefix of the scratch database name (a lower-case identifier of at most 38 characters); also how leftovers
        of earlier runs are recognised.
    type: str
    default: restore_drill
  scratch_name:
    description:
      - Use this scratch database name instead of C(<scratch_prefix>_<timestamp>_<run id>). It must not exist, and
        must be a lower-case identifier (letters, digits, C(_)); anything a client could read as a connection
        string (C(dbname=hunter)) is refused.
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
      - Only for untagged scratch databases of this prefix (C(<prefix>_<YYYYmmdd_HHMMSS>), left by versions before
        the owner tag) - seconds after which one with no session is dropped as a leftover. Tagged ones are dropped
        when their owner is gone, whatever their age.
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

- name: Drill from S3 (the newest backup under the prefix)
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
      status: fail
      message: "backup_pre_v1.0_20261128_020000.sql restored into restore_drill_20261128_021500_3f9a0c12 but differs
        from its manifest: missing after restore: 1 view (public.company_summary), 1 foreign key
        (public.domain_signals.domain_signals_company_id_fkey); scratch dropped"
      evidence: {scratch_database: restore_drill_20261128_021500_3f9a0c12,
                 counts: {public.companies: {expected: 50, restored: 50}},
                 schema: {missing: {views: [public.company_summary]}}}
    RESTORE-RTO:
      status: pass
      message: "restore 2.1 s, end to end 3.0 s; projected for the production size: restore 4 min 10 s, end to end
        5 min 02 s; target 15 min 00 s"
      evidence: {restore_s: 2.1, end_to_end_s: 3.0, target_s: 900, projected_s: 250.0, end_to_end_projected_s: 302.0}
run_id:
  description: This run's id (in the scratch name, the owner tag and the name of its sessions).
  returned: always
  type: str
backup:
  description: The backup tested (name, path, source, format, size_bytes, sha256, database, manifest_version).
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
  description: Scratch databases of earlier runs whose owner is gone, dropped (or to drop, in check mode), with the
    reason, their age and size.
  returned: always
  type: list
  elements: dict
leftovers_left:
  description: Scratch databases of this prefix left alone, with the reason (e.g. their drill is running).
  returned: always
  type: list
  elements: dict
earlier_runs_died:
  description: Earlier runs whose state file remained in O(state_dir) (killed outright), and what became of their
    scratch database.
  returned: always
  type: list
  elements: dict
verification:
  description: Tables missing or unexpected, row counts compared, mismatches by table, and the schema comparison.
  returned: when the restore finished
  type: dict
rto:
  description: Restore and end-to-end durations (with the phases), target, sizes, throughput and both projections
    for the production size.
  returned: when the restore finished
  type: dict
'''

import sys

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.hunter.ops.plugins.module_utils import backup_s3, pg, s3, secret
from ansible_collections.hunter.ops.plugins.module_utils import restore_rules as rules
from ansible_collections.hunter.ops.plugins.module_utils import schema_inventory
from ansible_collections.hunter.ops.plugins.module_utils.restore_drill import Drill, validate_settings
from ansible_collections.hunter.ops.plugins.module_utils.results import FAIL, PASS, SKIP, WARN, check_item
from ansible_collections.hunter.ops.plugins.module_utils.validate import ParameterError

DRYRUN = "RESTORE-DRYRUN"
RTO = "RESTORE-RTO"
MAX_LISTED_TABLES = 50
STEP_WORDS = {"server": "server %s", "prepare": "cannot restore %s", "create": "creating the scratch database for %s",
              "restore": "restore of %s", "verify": "verification of %s"}


def argument_spec():
    spec = pg.pg_argument_spec()
    spec.update(backup_s3.s3_argument_spec())
    spec.update(
        db_name=dict(type="str", default="postgres"),
        backup_path=dict(type="path"),
        backup_dir=dict(type="path"),
        backup_label=dict(type="str"),
        source_database=dict(type="str"),
        download_dir=dict(type="path"),
        state_dir=dict(type="path"),
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
    return spec


# -- RESTORE-DRYRUN ----------------------------------------------------------------------------

def _notes(drill):
    """Trailing facts every RESTORE-DRYRUN message carries: the cleanup and the leftovers."""
    notes = []
    if drill.created:
        notes.append("scratch dropped" if drill.dropped else "scratch database %s NOT dropped (it remains on %s): %s"
                     % (drill.scratch, drill.server(), drill.drop_error))
    leftovers = drill.leftovers_report()
    dropped = [e for e in leftovers if e.get("dropped")]
    if dropped:
        notes.append("dropped %d leftover(s) of earlier runs whose drill is gone: %s" % (len(dropped), ", ".join(
            "%s (%s)" % (e["name"], rules.format_bytes(e["size_bytes"])) if e.get("size_bytes") is not None
            else e["name"] for e in dropped)))
    failed = [e["name"] for e in leftovers if e.get("dropped") is False]
    if failed:
        notes.append("could not drop leftover(s) %s" % ", ".join(failed))
    for run in drill.died_report():
        notes.append("an earlier drill died (run %s, pid %s, started %s): its scratch database %s %s" % (
            run["run_id"], run["pid"], run["started_at"], run["scratch"], run["outcome"]))
    return "".join("; " + n for n in notes)


def _schema_evidence(drill):
    diff = drill.schema
    if diff is None:
        return {"compared": False, "reason": "manifest_version %s has no schema inventory"
                % drill.selected["manifest"].get("manifest_version")}
    out = dict((k, diff[k]) for k in ("compared", "missing", "unexpected", "different", "warnings", "not_compared",
                                      "definitions_compared"))
    return out


def _not_compared(drill):
    """Kinds the drill could not compare (an old manifest), or []."""
    if drill.schema is None:
        return list(schema_inventory.KINDS)
    return list(drill.schema["not_compared"])


def _finished(drill):
    """RESTORE-DRYRUN status and message once the restore and the verification finished."""
    outcome = drill.verification
    manifest = drill.selected["manifest"]
    manifest_tables = manifest.get("tables") or {}
    compared = outcome["compared"]
    drill.evidence.update(
        tables={"expected": len(manifest_tables), "restored": outcome["restored_tables"],
                "missing": outcome["missing"], "unexpected": outcome["unexpected"]},
        counts=dict((t, compared[t]) for t in sorted(compared)[:MAX_LISTED_TABLES]),
        counts_compared=len(compared), schema=_schema_evidence(drill))
    if outcome["mismatches"]:
        drill.evidence["mismatches"] = outcome["mismatches"]
    problems = list(outcome["problems"])
    if drill.schema is not None:
        problems += schema_inventory.problems(drill.schema, manifest.get("schema"), drill.schema["restored"])
    name, scratch = drill.selected["name"], drill.scratch
    if problems:
        return FAIL, "%s restored into %s but differs from its manifest: %s" % (name, scratch, "; ".join(problems))
    message = "%s (the newest backup) restored into %s: %d tables with exact row counts as in the manifest" % (
        name, scratch, len(compared))
    status = PASS
    skipped = _not_compared(drill)
    if drill.schema is not None and drill.schema["compared"]:
        message += ", schema as recorded (%s)" % ", ".join(
            "%d %s" % (n, schema_inventory.noun(kind)[0 if n == 1 else 1])
            for kind, n in sorted(drill.schema["compared"].items(), key=lambda kv: schema_inventory.KINDS.index(kv[0]))
            if n)
        if not drill.schema["definitions_compared"]:
            message += "; definitions not compared (dumped from PostgreSQL %s, restored on %s)" % (
                manifest.get("server_version"), drill.server_version_num)
    if skipped:
        status = WARN
        message += "; not compared: %s (%s)" % (", ".join(k.replace("_", " ") for k in skipped),
                                                "manifest_version %s has no schema inventory"
                                                % manifest.get("manifest_version") if drill.schema is None
                                                else "absent from the manifest")
    if drill.schema is not None and drill.schema["warnings"]:
        status = WARN
        message += "; %s" % "; ".join("%s %s: %s" % (schema_inventory.noun(kind)[0], name_, why)
                                      for kind, found in sorted(drill.schema["warnings"].items())
                                      for name_, why in sorted(found.items()))
    return status, message


def _error_message(drill):
    step, text = drill.error["step"], drill.error["message"]
    if drill.interrupted:
        return "drill %s" % text
    name = drill.selected["name"] if drill.selected else None
    if step == "select" or name is None:
        return text
    if step == "server":
        return "server %s: %s" % (drill.server(), text)
    what = STEP_WORDS.get(step, "%s") % name
    if step in ("restore", "verify", "create") and drill.scratch:
        what += " into %s" % drill.scratch
    return "%s failed: %s" % (what, text) if step != "prepare" else "%s: %s" % (what, text)


# -- RESTORE-RTO ----------------------------------------------------------------------------------

def rto_item(drill, settings):
    """RESTORE-RTO from a completed drill: restore alone and end to end, both projected."""
    manifest = drill.selected["manifest"]
    target = settings["rto_target_s"]
    backup_bytes = manifest.get("size_bytes")
    db_bytes = drill.restored_bytes
    if settings["production_size"] is not None:
        prod, basis, measured = settings["production_size"], "production_size (database size)", db_bytes
    elif manifest.get("database_size_bytes"):
        prod, basis, measured = manifest["database_size_bytes"], "manifest database_size_bytes", db_bytes
    else:
        prod, basis, measured = backup_bytes, "manifest size_bytes (backup size)", backup_bytes
    timings = drill.timings
    restore_s, end_to_end_s = timings["restore_s"], timings["end_to_end_s"]
    projection = rules.project_rto(restore_s, measured, prod)
    factor = float(prod) / float(measured) if prod and measured else None
    projected_e2e = rules.project_end_to_end(timings, end_to_end_s, factor)
    status, message = rules.rto_verdict(restore_s, end_to_end_s, projection["projected_s"], projected_e2e, target)
    if projection["throughput_bytes_per_s"]:
        message += " (backup %s, %s restored at %s/s; production %s from %s)" % (
            rules.format_bytes(backup_bytes), rules.format_bytes(db_bytes),
            rules.format_bytes(projection["throughput_bytes_per_s"]), rules.format_bytes(prod), basis)
    phases = dict((k, timings[k]) for k in ("download_s", "sha256_s", "create_s", "restore_s", "verify_s", "drop_s")
                  if k in timings)
    rto = dict(restore_s=round(restore_s, 2), end_to_end_s=round(end_to_end_s, 2), phases_s=phases, target_s=target,
               backup_size_bytes=backup_bytes, backup_size=rules.format_bytes(backup_bytes),
               restored_database_bytes=db_bytes, restored_database_size=rules.format_bytes(db_bytes),
               jobs=settings["jobs"], format=manifest.get("format"), production_size_bytes=prod,
               production_size=rules.format_bytes(prod), projection_basis=basis,
               throughput_bytes_per_s=projection["throughput_bytes_per_s"],
               throughput=(rules.format_bytes(projection["throughput_bytes_per_s"]) + "/s")
               if projection["throughput_bytes_per_s"] else None,
               projected_s=projection["projected_s"], projected=rules.format_duration(projection["projected_s"]),
               end_to_end_projected_s=projected_e2e, end_to_end_projected=rules.format_duration(projected_e2e))
    return check_item(status, message, rto), rto


# -- the run ------------------------------------------------------------------------------------------

def result_of(drill, settings, check_mode=False):
    """(result dict, failed message or None) for a drill that ran (module.exit_json/fail_json)."""
    result = dict(changed=drill.changed, run_id=drill.run_id, scratch_dropped=not drill.created or drill.dropped,
                  leftovers_dropped=drill.leftovers_report(), leftovers_left=drill.left_alone(),
                  earlier_runs_died=drill.died_report())
    if drill.selected:
        result["backup"] = drill.evidence.get("backup")
    if drill.scratch:
        result["scratch_database"] = drill.scratch
    if drill.sweep:
        drill.evidence["leftovers"] = result["leftovers_dropped"] + result["leftovers_left"]
    if drill.died:
        drill.evidence["earlier_runs_died"] = result["earlier_runs_died"]
    drill.evidence["timings_s"] = dict(drill.timings)
    target = {"target_s": settings["rto_target_s"]}
    failed_msg = None
    rto = None
    if drill.refused:
        msg = drill.refused + _notes(drill)
        result["checks"] = {DRYRUN: check_item(FAIL, msg, drill.evidence), RTO: check_item(FAIL, msg, target)}
        return result, msg
    if drill.error:
        status, message = FAIL, _error_message(drill)
        if drill.interrupted:
            failed_msg = "restore drill %s%s" % (drill.error["message"], _notes(drill))
    elif check_mode:
        would_drop = [e["name"] for e in result["leftovers_dropped"]]
        status, message = SKIP, "check mode: would restore %s into %s on %s, verify, and drop it%s" % (
            drill.selected["name"], drill.scratch, drill.server(),
            " (after dropping leftovers %s)" % ", ".join(would_drop) if would_drop else "")
        result["changed"] = bool(would_drop)
    else:
        status, message = _finished(drill)
        result["verification"] = dict(drill.verification, schema=drill.evidence.get("schema"))
        rto, result["rto"] = rto_item(drill, settings)
    if drill.created and not drill.dropped:
        status = FAIL
    message += _notes(drill)
    if status == SKIP:
        rto = check_item(SKIP, message, target)
    elif rto is None:
        rto = check_item(FAIL, "no restore time: the drill did not complete a restore (see RESTORE-DRYRUN)", target)
    result["checks"] = {DRYRUN: check_item(status, message, drill.evidence,
                                           duration_ms=drill.timings.get("end_to_end_s", 0) * 1000), RTO: rto}
    return result, failed_msg


def notify(text):
    """A line on stderr that survives this process: Ansible shows it when the module dies."""
    sys.stderr.write(text)
    sys.stderr.flush()


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    secrets = secret.protect(module)  # every form of the password and S3 keys, before anything can fail
    pg.require_psycopg(module)
    if module.params.get("s3_bucket") and not s3.HAS_BOTO3:
        module.fail_json(msg=missing_required_lib("boto3"))
    try:
        settings = validate_settings(module.params)
    except ParameterError as err:
        module.fail_json(msg=str(err), changed=False)
    why = rules.refuse_server(settings["admin"].get("host"), module.params["production_hosts"],
                              module.params["host_in_production"], module.params["allow_production"])
    if why:
        module.fail_json(msg=why, changed=False, scratch_dropped=True, leftovers_dropped=[])
    drill = Drill(module.params, settings, check_mode=module.check_mode, notify=notify,
                  secrets=secrets)
    try:
        drill.run()
    except Exception as err:  # pylint: disable=broad-except
        # a bug, not a finding: the scratch database is already dropped (Drill.run's finally)
        drill.error = dict(step=drill.step, message="unexpected %s: %s" % (type(err).__name__, drill._redact(err)))
        result, failed_msg = result_of(drill, settings)
        module.fail_json(msg="restore drill failed: %s" % result["checks"][DRYRUN]["message"], **result)
    result, failed_msg = result_of(drill, settings, check_mode=module.check_mode)
    if failed_msg:
        module.fail_json(msg=failed_msg, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

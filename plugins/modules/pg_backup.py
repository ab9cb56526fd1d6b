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
  - "Beside the backup it writes C(<backup>.manifest.json) (docs/ARCHITECTURE.md, manifest_version 2): versions,
    format, compression, size, sha256, timing, the exact row count of every table and the schema inventory (views,
    materialized views, indexes, constraints, sequences with their values, functions and procedures, triggers,
    extensions with their versions), all read inside the snapshot the dump used (a REPEATABLE READ transaction
    exports it and C(pg_dump --snapshot) uses it)."
  - Waits for table locks are bounded by O(table_lock_timeout) (C(pg_dump --lock-wait-timeout) and the counting
    session's C(lock_timeout)); when one runs out the backup fails naming the table and the session holding or
    awaiting its ACCESS EXCLUSIVE lock (PID, application, user, as far as the role may see them).
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
  table_lock_timeout:
    description:
      - Seconds the dump and the row counts wait for a table lock that another session holds (or awaits) in
        ACCESS EXCLUSIVE mode, e.g. a migration, before the backup fails naming the table and that session.
      - V(0) waits without a limit of its own (only O(timeout) bounds it).
    type: int
    default: 60
notes:
  - O(db_statement_timeout) is not applied to the dump or to the row counts (they are bounded by O(timeout), their
    lock waits by O(table_lock_timeout)).
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
  description: Check items BACKUP-CMD and BACKUP-VALID (status, message, evidence). A failure caused by a lock wait
    carries C(evidence.lock_wait) (relation, lock_wait_s, lock_holders).
  returned: always
  type: dict
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hunter.ops.plugins.module_utils import pg, secret
from ansible_collections.hunter.ops.plugins.module_utils.backup_run import BackupFailed, take_backup, validate_plan
from ansible_collections.hunter.ops.plugins.module_utils.pg_dump import ClientTools, describe, one_line
from ansible_collections.hunter.ops.plugins.module_utils.results import FAIL, PASS, SKIP, check_item
from ansible_collections.hunter.ops.plugins.module_utils.validate import ParameterError


def argument_spec():
    spec = pg.pg_argument_spec()
    spec.update(
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
        table_lock_timeout=dict(type="int", default=60),
    )
    return spec


def failed_items(msg, evidence, cmd_status=FAIL):
    return {
        "BACKUP-CMD": check_item(cmd_status, msg, evidence),
        "BACKUP-VALID": check_item(FAIL if cmd_status == FAIL else SKIP, "no valid backup from this run: %s" % msg,
                                   evidence),
    }


def done_items(taken):
    """BACKUP-CMD and BACKUP-VALID of a backup written and re-checked."""
    run, outcome, manifest = taken["run"], taken["outcome"], taken["outcome"]["manifest"]
    valid_ev = dict(path=run.final, manifest=outcome["manifest_path"], size_bytes=manifest["size_bytes"],
                    sha256=manifest["sha256"], sha256_rechecked=True, content=outcome["detail"],
                    tables=manifest["tables"], snapshot=manifest["snapshot"],
                    schema_objects=dict((k, len(v)) for k, v in manifest["schema"].items()))
    return {
        "BACKUP-CMD": check_item(PASS, "%s backup of %s written to %s in %.1f s"
                                 % (run.fmt, run.database, run.final, manifest["duration_s"]),
                                 taken["evidence"], duration_ms=taken["duration_s"] * 1000),
        "BACKUP-VALID": check_item(PASS, "%s bytes, sha256 %s... recorded and re-checked; %s; %d tables counted and "
                                   "the schema inventory recorded in the snapshot"
                                   % (manifest["size_bytes"], manifest["sha256"][:12], outcome["detail"],
                                      len(manifest["tables"])), valid_ev),
    }


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    p = module.params
    secrets = secret.protect(module)
    result = dict(changed=False, backup=None, command=[], checks={})

    def fail(msg, evidence=None):
        msg = one_line(msg, secrets, limit=1000)
        result["checks"] = failed_items(msg, dict(evidence or {}))
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
    try:
        taken = take_backup(p, tools, plan, check_mode=module.check_mode, warn=module.warn)
    except BackupFailed as err:
        result["command"] = err.evidence.get("command") or []
        fail(str(err), err.evidence)
    run = taken["run"]
    result.update(backup=run.final, command=[describe(s) for s in run.stages])
    if module.check_mode:
        msg = "check mode: would write %s" % run.final
        result.update(changed=True, checks={"BACKUP-CMD": check_item(SKIP, msg, taken["evidence"]),
                                            "BACKUP-VALID": check_item(SKIP, "check mode: no backup written",
                                                                       taken["evidence"])})
        module.exit_json(msg=msg, **result)
    result.update(changed=True, manifest_path=taken["outcome"]["manifest_path"], manifest=taken["outcome"]["manifest"],
                  checks=done_items(taken))
    module.exit_json(msg="backup written: %s" % run.final, **result)


if __name__ == "__main__":
    main()

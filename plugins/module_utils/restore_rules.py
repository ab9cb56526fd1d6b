# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure rules of the restore drill (RESTORE-DRYRUN, RESTORE-RTO), kept apart from I/O.

- which servers the drill refuses (scratch names: module_utils/scratch_db.py);
- the table and row-count diff between a manifest and a restored database (the schema
  inventory's: module_utils/schema_inventory.py);
- the RTO verdict and the projections for the production size.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.hunter.ops.plugins.module_utils.results import human_bytes

_LOOPBACK = ("localhost", "127.0.0.1", "::1", "localhost.localdomain", "ip6-localhost")


# -- the server --------------------------------------------------------------------------

def _host_key(host):
    """Compare server addresses as written, with every loopback spelling and a socket dir as one."""
    text = str(host or "").strip().lower().rstrip(".")
    if not text or text.startswith("/") or text in _LOOPBACK:
        return "loopback"
    return text


def is_local(host):
    """True for a loopback address, a socket directory, or no host (libpq's local default)."""
    return _host_key(host) == "loopback"


def refuse_server(host, production_hosts, host_in_production, allow_production):
    """Why the drill must not run against this server, or None.

    The rule: the server is production when `host` names a host of the production group
    (inventory name or ansible_host, as written), or when it is local (loopback, a socket)
    and the host running the drill is itself in the production group.
    """
    if allow_production:
        return None
    shown = host or "(local socket)"
    wanted = _host_key(host)
    for candidate in production_hosts or []:
        if candidate and _host_key(candidate) == wanted:
            return ("target server %s is a host of the production group (%s); restore drills run on "
                    "a staging server (set allow_production to override)" % (shown, candidate))
    if host_in_production and is_local(host):
        return ("target server %s is local to a host of the production group; restore drills run on "
                "a staging server (set allow_production to override)" % shown)
    return None


# -- verification ------------------------------------------------------------------------

def qualify(table, default_schema="public"):
    """``companies`` -> ``public.companies``; a qualified name stays as it is."""
    text = str(table).strip()
    return text if "." in text else "%s.%s" % (default_schema, text)


def tables_to_count(manifest_tables, configured):
    """Tables whose rows are counted: the configured ones (qualified), or all of the manifest."""
    if configured:
        seen = []
        for table in configured:
            name = qualify(table)
            if name not in seen:
                seen.append(name)
        return seen
    return sorted(manifest_tables)


def verify(manifest_tables, restored_tables, restored_counts, counted, rows_counted=True):
    """Compare a restored database with its manifest.

    manifest_tables: {"schema.table": rows at the dump's snapshot}; restored_tables: names found;
    restored_counts: {"schema.table": rows} for the counted tables; counted: the counted names.
    rows_counted=False: the backup was taken without row counts (empty table list), so there is
    nothing to verify against, which is a failure of the drill, not a pass.
    Returns {"ok", "missing", "unexpected", "mismatches", "not_in_backup", "compared", "problems",
    "restored_tables"}.
    """
    if not rows_counted:
        return {"ok": False, "missing": [], "unexpected": [], "not_in_backup": [], "mismatches": {},
                "compared": {}, "restored_tables": len(set(restored_tables)),
                "problems": ["the manifest has no table list or row counts (backup taken without counting "
                             "rows): the restore cannot be verified"]}
    expected = set(manifest_tables)
    found = set(restored_tables)
    missing = sorted(expected - found)
    unexpected = sorted(found - expected)
    not_in_backup = [t for t in counted if t not in expected]
    compared = {}
    mismatches = {}
    for table in counted:
        if table not in expected or table not in found:
            continue
        pair = {"expected": manifest_tables[table], "restored": restored_counts.get(table)}
        compared[table] = pair
        if pair["restored"] != pair["expected"]:
            mismatches[table] = pair
    problems = []
    if missing:
        problems.append("tables missing after restore: %s" % ", ".join(missing))
    if unexpected:
        problems.append("tables not in the manifest: %s" % ", ".join(unexpected))
    if not_in_backup:
        problems.append("configured tables not in the backup: %s" % ", ".join(not_in_backup))
    for table in sorted(mismatches):
        pair = mismatches[table]
        problems.append("%s: %s rows restored, manifest has %s" % (table, pair["restored"], pair["expected"]))
    return {
        "ok": not problems,
        "missing": missing,
        "unexpected": unexpected,
        "not_in_backup": not_in_backup,
        "mismatches": mismatches,
        "compared": compared,
        "problems": problems,
        "restored_tables": len(found),
    }


# -- RTO -----------------------------------------------------------------------------------

def format_duration(seconds):
    """``42.1 s``, ``3 min 05 s``, ``2 h 04 min``."""
    if seconds is None:
        return "n/a"
    seconds = float(seconds)
    if seconds < 60:
        return "%.1f s" % seconds
    if seconds < 3600:
        return "%d min %02d s" % (seconds // 60, round(seconds % 60))
    return "%d h %02d min" % (seconds // 3600, (seconds % 3600) // 60)


def format_bytes(size):
    return human_bytes(size, digits=1)


def project_rto(duration_s, measured_bytes, production_bytes):
    """Projected restore time for production_bytes at the measured throughput (linear).

    measured_bytes and production_bytes must measure the same thing (both database sizes,
    or both backup sizes). Returns {"throughput_bytes_per_s", "projected_s"}; None values when
    a figure is missing or zero.
    """
    if not duration_s or duration_s <= 0 or not measured_bytes or measured_bytes <= 0:
        return {"throughput_bytes_per_s": None, "projected_s": None}
    throughput = float(measured_bytes) / float(duration_s)
    projected = float(production_bytes) / throughput if production_bytes else None
    return {"throughput_bytes_per_s": round(throughput, 1),
            "projected_s": round(projected, 1) if projected is not None else None}


# The phases whose time grows with the data; start-up, connecting and CREATE DATABASE do not.
SCALABLE_PHASES = ("download_s", "sha256_s", "restore_s", "verify_s", "drop_s")


def project_end_to_end(phases, end_to_end_s, factor):
    """End-to-end time for a database `factor` times the measured one: the data-bound phases
    (SCALABLE_PHASES) scale linearly, the rest of the measured time stays. None without a factor."""
    if factor is None or end_to_end_s is None:
        return None
    scalable = sum(float(phases.get(k) or 0) for k in SCALABLE_PHASES)
    fixed = max(0.0, float(end_to_end_s) - scalable)
    return round(fixed + scalable * float(factor), 1)


def rto_verdict(restore_s, end_to_end_s, projected_s, projected_end_to_end_s, target_s):
    """(status, message) judged on the end-to-end time (download to drop), which bounds a real
    recovery from above: fail when the measured time is over target, warn when only the projection
    for the production size is."""
    target = format_duration(target_s)
    measured = "restore %s, end to end %s" % (format_duration(restore_s), format_duration(end_to_end_s))
    if end_to_end_s > target_s:
        return "fail", "%s: over the RTO target of %s" % (measured, target)
    if projected_end_to_end_s is None:
        return "pass", "%s, within the RTO target of %s (no production size to project)" % (measured, target)
    projected = "projected for the production size: restore %s, end to end %s" % (
        format_duration(projected_s), format_duration(projected_end_to_end_s))
    if projected_end_to_end_s > target_s:
        return "warn", "%s; %s, over the RTO target of %s" % (measured, projected, target)
    return "pass", "%s; %s; target %s" % (measured, projected, target)

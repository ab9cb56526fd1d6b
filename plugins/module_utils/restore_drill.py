# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure rules of the restore drill (RESTORE-DRYRUN, RESTORE-RTO), kept apart from I/O.

- scratch database names (``<prefix>_<YYYYmmdd_HHMMSS>``) and the leftover sweep;
- which names and servers the drill refuses;
- the verification diff between a manifest and a restored database;
- the RTO verdict and the projection for the production size.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re

from ansible_collections.hunter.ops.plugins.module_utils.results import human_bytes
from ansible_collections.hunter.ops.plugins.module_utils.validate import ParameterError

SCRATCH_TS_FORMAT = "%Y%m%d_%H%M%S"
# PostgreSQL truncates identifiers at 63 bytes; the name must survive intact to be found again.
MAX_IDENTIFIER = 63
# "_YYYYmmdd_HHMMSS" plus room for a "_N" suffix when two drills start within one second.
_SCRATCH_SUFFIX_LEN = 16 + 3
# Never restored into, never dropped, whatever the configuration says.
ALWAYS_PROTECTED = ("postgres", "template0", "template1")
_LOOPBACK = ("localhost", "127.0.0.1", "::1", "localhost.localdomain", "ip6-localhost")
_PREFIX = re.compile(r"^[a-z_][a-z0-9_]*$")


# -- scratch names --------------------------------------------------------------------

def validate_prefix(param, prefix):
    """A lower-case identifier short enough to carry the timestamp."""
    text = str(prefix or "")
    if not _PREFIX.match(text):
        raise ParameterError(param, "must be a lower-case identifier (letters, digits, _), got %r" % (prefix,))
    if len(text) + _SCRATCH_SUFFIX_LEN > MAX_IDENTIFIER:
        raise ParameterError(param, "must be at most %d characters, got %d"
                             % (MAX_IDENTIFIER - _SCRATCH_SUFFIX_LEN, len(text)))
    return text


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def scratch_name(prefix, now, attempt=0):
    """``<prefix>_<YYYYmmdd_HHMMSS>`` (UTC); ``_<n>`` appended on a retry after a name clash."""
    name = "%s_%s" % (prefix, now.strftime(SCRATCH_TS_FORMAT))
    return name if not attempt else "%s_%d" % (name, attempt + 1)


def scratch_created_at(name, prefix):
    """The UTC time encoded in a scratch name of this prefix, or None when the name is not one."""
    match = re.match(r"^%s_(\d{8}_\d{6})(?:_\d{1,2})?$" % re.escape(prefix), name or "")
    if not match:
        return None
    try:
        stamp = datetime.datetime.strptime(match.group(1), SCRATCH_TS_FORMAT)
    except ValueError:
        return None
    return stamp.replace(tzinfo=datetime.timezone.utc)


def protected_set(protected_names, source_database):
    """Names the drill never restores into nor drops."""
    names = set(ALWAYS_PROTECTED)
    names.update(n for n in (protected_names or []) if n)
    if source_database:
        names.add(source_database)
    return names


def leftovers(database_names, prefix, now, max_age_s, protected):
    """Earlier scratch databases (this prefix, older than max_age_s): [(name, age_s)], oldest first.

    The age comes from the name, so a drill running right now on another host (younger than
    the limit) is left alone.
    """
    found = []
    for name in database_names:
        created = scratch_created_at(name, prefix)
        if created is None or name in protected:
            continue
        age = (now - created).total_seconds()
        if age >= max_age_s:
            found.append((name, int(age)))
    return sorted(found, key=lambda item: -item[1])


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


def rto_verdict(duration_s, projected_s, target_s):
    """(status, message): fail when the measured restore is over target, warn when only the projection is."""
    target = format_duration(target_s)
    measured = format_duration(duration_s)
    if duration_s > target_s:
        return "fail", "restore took %s, over the RTO target of %s" % (measured, target)
    if projected_s is not None and projected_s > target_s:
        return "warn", ("restore took %s (target %s), but the projection for the production size is %s, "
                        "over the target" % (measured, target, format_duration(projected_s)))
    if projected_s is None:
        return "pass", "restore took %s, within the RTO target of %s (no production size to project)" % (
            measured, target)
    return "pass", "restore took %s, projected %s for the production size; target %s" % (
        measured, format_duration(projected_s), target)

# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The schema inventory of a database (manifest key ``schema``, docs/ARCHITECTURE.md) and the
comparison of a restored database with it.

One catalog query per kind, all in one statement, so the backup reads it inside the dump's
exported snapshot (pg_dump.SnapshotSession) and the restore drill reads the restored database
with the very same SQL. Each kind is a JSON object ``{name: signature}``; the statement
returns one JSON text value, which reads alike through psql and psycopg.

Both sides must run it with ``search_path = pg_catalog`` so that every definition comes back
schema-qualified the same way (pg_get_viewdef and friends qualify what the path does not show).

Only what pg_dump dumps is listed: no system schemas, no objects that belong to an extension
(CREATE EXTENSION brings them back).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

KINDS = ("views", "materialized_views", "indexes", "constraints", "sequences", "functions", "triggers",
         "extensions")
# Read before pg_dump starts: a sequence is not transactional, so the dump's value (read later)
# can only be the same or ahead of the inventory's.
EARLY_KINDS = ("sequences",)
LATE_KINDS = tuple(k for k in KINDS if k not in EARLY_KINDS)

_USER_NAMESPACE = r"""n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp_'"""


def _not_extension_member(catalog, oid_expr):
    return ("NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.%s'::pg_catalog.regclass"
            " AND d.objid = %s AND d.deptype = 'e')" % (catalog, oid_expr))


_RELATION = ("FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE "
             + _USER_NAMESPACE + " AND " + _not_extension_member("pg_class", "c.oid"))

# kind -> a scalar query returning a JSON object {name: signature}
_SQL = {
    "views": (
        "SELECT coalesce(json_object_agg(format('%s.%s', n.nspname, c.relname), "
        "md5(pg_catalog.pg_get_viewdef(c.oid))), '{}') " + _RELATION + " AND c.relkind = 'v'"),
    "materialized_views": (
        "SELECT coalesce(json_object_agg(format('%s.%s', n.nspname, c.relname), json_build_object("
        "'definition', md5(pg_catalog.pg_get_viewdef(c.oid)), 'populated', c.relispopulated)), '{}') "
        + _RELATION + " AND c.relkind = 'm'"),
    "indexes": (
        "SELECT coalesce(json_object_agg(format('%s.%s', n.nspname, ic.relname), "
        "pg_catalog.pg_get_indexdef(i.indexrelid)), '{}') "
        "FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid "
        "JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace WHERE " + _USER_NAMESPACE
        + " AND " + _not_extension_member("pg_class", "i.indrelid")),
    "constraints": (
        "SELECT coalesce(json_object_agg(format('%s.%s.%s', n.nspname, c.relname, co.conname), json_build_object("
        "'type', CASE co.contype WHEN 'p' THEN 'primary' WHEN 'u' THEN 'unique' WHEN 'f' THEN 'foreign' "
        "WHEN 'c' THEN 'check' ELSE 'exclusion' END, "
        "'definition', pg_catalog.pg_get_constraintdef(co.oid))), '{}') "
        "FROM pg_catalog.pg_constraint co JOIN pg_catalog.pg_class c ON c.oid = co.conrelid "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE co.contype IN ('p', 'u', 'f', 'c', 'x') AND "
        + _USER_NAMESPACE + " AND " + _not_extension_member("pg_class", "c.oid")),
    # last_value is NULL until the sequence is first used (is_called false), as pg_dump restores it.
    "sequences": (
        "SELECT coalesce(json_object_agg(format('%s.%s', n.nspname, c.relname), json_build_object("
        "'last_value', CASE WHEN pg_catalog.has_sequence_privilege(c.oid, 'SELECT,USAGE') "
        "THEN pg_catalog.pg_sequence_last_value(c.oid) END, "
        "'increment', s.seqincrement, "
        "'readable', pg_catalog.has_sequence_privilege(c.oid, 'SELECT,USAGE'))), '{}') "
        "FROM pg_catalog.pg_sequence s JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE "
        + _USER_NAMESPACE + " AND " + _not_extension_member("pg_class", "c.oid")),
    "functions": (
        "SELECT coalesce(json_object_agg(format('%s.%s(%s)', n.nspname, p.proname, "
        "pg_catalog.pg_get_function_identity_arguments(p.oid)), json_build_object("
        "'kind', CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' WHEN 'w' THEN 'window' "
        "ELSE 'function' END, "
        "'md5', md5(CASE WHEN p.prokind = 'a' THEN (SELECT format('%s %s %s %s %s', a.aggtransfn, a.aggfinalfn, "
        "a.aggtranstype::pg_catalog.regtype, a.agginitval, pg_catalog.pg_get_function_result(p.oid)) "
        "FROM pg_catalog.pg_aggregate a WHERE a.aggfnoid = p.oid) "
        "ELSE pg_catalog.pg_get_functiondef(p.oid) END))), '{}') "
        "FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE "
        + _USER_NAMESPACE + " AND " + _not_extension_member("pg_proc", "p.oid")),
    "triggers": (
        "SELECT coalesce(json_object_agg(format('%s.%s.%s', n.nspname, c.relname, t.tgname), "
        "pg_catalog.pg_get_triggerdef(t.oid)), '{}') "
        "FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE NOT t.tgisinternal AND "
        + _USER_NAMESPACE + " AND " + _not_extension_member("pg_class", "c.oid")),
    "extensions": "SELECT coalesce(json_object_agg(extname, extversion), '{}') FROM pg_catalog.pg_extension",
}

SEARCH_PATH_SQL = "SET search_path = pg_catalog, pg_temp"

# Words for messages: kind -> (singular, plural); constraints and functions by their own type.
_NOUNS = {
    "views": ("view", "views"), "materialized_views": ("materialized view", "materialized views"),
    "indexes": ("index", "indexes"), "sequences": ("sequence", "sequences"), "triggers": ("trigger", "triggers"),
    "extensions": ("extension", "extensions"), "tables": ("table", "tables"),
    "constraints": ("constraint", "constraints"), "functions": ("function", "functions"),
    "primary": ("primary key", "primary keys"), "unique": ("unique constraint", "unique constraints"),
    "foreign": ("foreign key", "foreign keys"), "check": ("check constraint", "check constraints"),
    "exclusion": ("exclusion constraint", "exclusion constraints"),
    "function": ("function", "functions"), "procedure": ("procedure", "procedures"),
    "aggregate": ("aggregate", "aggregates"), "window": ("window function", "window functions"),
}


def inventory_sql(kinds=KINDS):
    """One statement returning the inventory of `kinds` as one JSON text value."""
    parts = ", ".join("'%s', (%s)" % (kind, _SQL[kind]) for kind in kinds)
    return "SELECT json_build_object(%s)::text;" % parts


def parse(text, kinds=KINDS):
    """The inventory dict from the statement's JSON text; ValueError when it is not one."""
    data = json.loads(text)
    if not isinstance(data, dict) or any(not isinstance(data.get(k), dict) for k in kinds):
        raise ValueError("schema inventory: expected a JSON object of %s" % ", ".join(kinds))
    return dict((k, data[k]) for k in kinds)


def collect(fetch_one, kinds=KINDS):
    """The inventory through `fetch_one(sql) -> the first column of the first row` (psql or psycopg)."""
    return parse(fetch_one(inventory_sql(kinds)), kinds)


def counts(inventory):
    """{kind: number of objects}, for messages and evidence."""
    return dict((k, len(v)) for k, v in (inventory or {}).items() if isinstance(v, dict))


# -- comparison ------------------------------------------------------------------------------

def _sequence_position(entry):
    """(readable, last value or None when never used)."""
    if not isinstance(entry, dict):
        return False, None
    return entry.get("readable", True) is not False, entry.get("last_value")


def _sequence_behind(expected, restored):
    """Why a restored sequence is behind the one in the manifest, or None.

    The manifest's value is read before pg_dump starts, so the dump's (and the restore's) may be
    ahead on a busy database; behind means the restore lost the value (e.g. a reset sequence)."""
    readable, want = _sequence_position(expected)
    _unused, got = _sequence_position(restored)
    if not readable or want is None:
        return None
    if got is None:
        return "never used after restore, manifest has last value %s" % want
    step = (expected or {}).get("increment") or 1
    if (step > 0 and got < want) or (step < 0 and got > want):
        return "last value %s after restore, manifest has %s" % (got, want)
    return None


def _difference(kind, expected, restored, definitions):
    """Why an object present on both sides differs, or None."""
    if kind == "sequences":
        return _sequence_behind(expected, restored)
    if kind == "extensions":
        return None if expected == restored else "version %s after restore, manifest has %s" % (restored, expected)
    if kind == "materialized_views":
        if bool((expected or {}).get("populated")) != bool((restored or {}).get("populated")):
            return "populated %s after restore, manifest has %s" % (
                (restored or {}).get("populated"), (expected or {}).get("populated"))
        if definitions and (expected or {}).get("definition") != (restored or {}).get("definition"):
            return "definition differs"
        return None
    if kind in ("constraints", "functions"):
        field = "type" if kind == "constraints" else "kind"
        if (expected or {}).get(field) != (restored or {}).get(field):
            return "%s %s after restore, manifest has %s" % (
                field, (restored or {}).get(field), (expected or {}).get(field))
        detail = "definition" if kind == "constraints" else "md5"
        if definitions and (expected or {}).get(detail) != (restored or {}).get(detail):
            return "definition differs"
        return None
    if definitions and expected != restored:
        return "definition differs"
    return None


def noun(kind, entry=None):
    """The words for an object of this kind (constraints and functions by their type)."""
    if kind == "constraints" and isinstance(entry, dict):
        return _NOUNS.get(entry.get("type"), ("constraint", "constraints"))
    if kind == "functions" and isinstance(entry, dict):
        return _NOUNS.get(entry.get("kind"), ("function", "functions"))
    return _NOUNS.get(kind, (kind, kind))


def compare(expected, restored, definitions=True):
    """Compare a restored database's inventory with the manifest's.

    expected: the manifest's ``schema`` (kinds it lacks are listed in ``not_compared``);
    restored: collect() of the restored database; definitions=False compares presence, types
    and values only (restored on another major version, whose definitions print differently).

    Returns {"ok", "missing": {kind: [names]}, "unexpected": {kind: [names]},
    "different": {kind: {name: why}}, "warnings": {kind: {name: why}}, "not_compared": [kinds],
    "compared": {kind: count}}. Extension versions that differ are warnings (the restore
    server's packages, not the backup); anything else missing, unexpected or different fails.
    """
    expected = expected if isinstance(expected, dict) else {}
    out = {"missing": {}, "unexpected": {}, "different": {}, "warnings": {}, "not_compared": [], "compared": {}}
    for kind in KINDS:
        want = expected.get(kind)
        if not isinstance(want, dict):
            out["not_compared"].append(kind)
            continue
        got = (restored or {}).get(kind) or {}
        out["compared"][kind] = len(want)
        missing = sorted(set(want) - set(got))
        unexpected = sorted(set(got) - set(want))
        if missing:
            out["missing"][kind] = missing
        if unexpected:
            out["unexpected"][kind] = unexpected
        for name in sorted(set(want) & set(got)):
            why = _difference(kind, want[name], got[name], definitions)
            if why:
                bucket = "warnings" if kind == "extensions" else "different"
                out[bucket].setdefault(kind, {})[name] = why
    out["ok"] = not (out["missing"] or out["unexpected"] or out["different"])
    return out


def _grouped(kind, names, entries):
    """[(noun pair, [names])] of one kind, constraints and functions split by their type."""
    groups = {}
    order = []
    for name in names:
        words = noun(kind, (entries or {}).get(name))
        if words not in groups:
            groups[words] = []
            order.append(words)
        groups[words].append(name)
    return [(words, groups[words]) for words in order]


def describe_objects(by_kind, entries_of=None, limit=3):
    """'1 view (public.v), 2 foreign keys (a, b)': counts by kind and the first names."""
    parts = []
    for kind in KINDS + ("tables",):
        names = by_kind.get(kind)
        if not names:
            continue
        names = sorted(names)
        for (one, many), group in _grouped(kind, names, (entries_of or {}).get(kind)):
            shown = ", ".join(group[:limit]) + (", ..." if len(group) > limit else "")
            parts.append("%d %s (%s)" % (len(group), one if len(group) == 1 else many, shown))
    return ", ".join(parts)


def problems(diff, expected=None, restored=None, limit=3):
    """One-line problems of a comparison, for the message: counts by kind and the first names."""
    out = []
    expected = expected or {}
    if diff.get("missing"):
        out.append("missing after restore: " + describe_objects(diff["missing"], expected, limit))
    if diff.get("different"):
        out.append("different: " + describe_objects(
            dict((k, list(v)) for k, v in diff["different"].items()), expected, limit))
    if diff.get("unexpected"):
        out.append("not in the manifest: " + describe_objects(diff["unexpected"], restored or {}, limit))
    return out

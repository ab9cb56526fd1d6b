"""The schema inventory comparison (module_utils/schema_inventory.py): what a restored database may
lack or change, and how the message names it. The catalog queries themselves run against real
PostgreSQL in tests/integration (test_pg_backup.py, test_pg_restore_dryrun.py)."""
import copy
import json

import pytest

from ansible_collections.hunter.ops.plugins.module_utils import schema_inventory as si

SOURCE = {
    "views": {"public.company_summary": "32869e0d", "public.recent": "aa11"},
    "materialized_views": {"public.signal_types": {"definition": "1b75", "populated": True}},
    "indexes": {"public.companies_pkey": "CREATE UNIQUE INDEX companies_pkey ON public.companies USING btree (id)",
                "public.domain_signals_domain_idx": "CREATE INDEX domain_signals_domain_idx ON public.domain_signals "
                                                    "USING btree (domain)"},
    "constraints": {
        "public.companies.companies_pkey": {"type": "primary", "definition": "PRIMARY KEY (id)"},
        "public.domain_signals.domain_signals_company_id_fkey": {
            "type": "foreign", "definition": "FOREIGN KEY (company_id) REFERENCES public.companies(id)"},
        "public.companies.companies_score_check": {"type": "check", "definition": "CHECK ((score >= 0))"}},
    "sequences": {"public.companies_id_seq": {"last_value": 50, "increment": 1, "readable": True},
                  "public.countdown": {"last_value": -5, "increment": -1, "readable": True},
                  "public.unused": {"last_value": None, "increment": 1, "readable": True},
                  "public.hidden": {"last_value": None, "increment": 1, "readable": False}},
    "functions": {"public.touch()": {"kind": "function", "md5": "8683"},
                  "public.noop()": {"kind": "procedure", "md5": "2580"}},
    "triggers": {"public.companies.companies_touch": "CREATE TRIGGER companies_touch ..."},
    "extensions": {"plpgsql": "1.0", "pg_trgm": "1.6"},
}


def restored(**changes):
    data = copy.deepcopy(SOURCE)
    for path, value in changes.items():
        kind, name = path.split(":", 1)
        if value is None:
            del data[kind][name]
        else:
            data[kind][name] = value
    return data


def test_an_identical_restore_compares_every_kind():
    diff = si.compare(SOURCE, restored())
    assert diff["ok"] and diff["not_compared"] == []
    assert diff["compared"] == {"views": 2, "materialized_views": 1, "indexes": 2, "constraints": 3, "sequences": 4,
                                "functions": 2, "triggers": 1, "extensions": 2}


def test_missing_view_index_and_foreign_key_fail_naming_each():
    got = restored(**{"views:public.company_summary": None, "indexes:public.domain_signals_domain_idx": None,
                      "constraints:public.domain_signals.domain_signals_company_id_fkey": None})
    diff = si.compare(SOURCE, got)
    assert not diff["ok"]
    assert diff["missing"] == {"views": ["public.company_summary"], "indexes": ["public.domain_signals_domain_idx"],
                               "constraints": ["public.domain_signals.domain_signals_company_id_fkey"]}
    assert si.problems(diff, SOURCE, got) == [
        "missing after restore: 1 view (public.company_summary), 1 index (public.domain_signals_domain_idx), "
        "1 foreign key (public.domain_signals.domain_signals_company_id_fkey)"]


def test_the_message_counts_by_kind_and_shows_the_first_names_only():
    expected = {"views": dict(("public.v%d" % i, "x") for i in range(5)), "indexes": {}}
    diff = si.compare(expected, {"views": {}, "indexes": {}})
    assert si.problems(diff, expected) == ["missing after restore: 5 views (public.v0, public.v1, public.v2, ...)"]
    assert diff["missing"]["views"] == sorted(expected["views"])   # the full list stays in the evidence


@pytest.mark.parametrize("change,kind,why", [
    ({"views:public.recent": "bb22"}, "views", "definition differs"),
    ({"indexes:public.companies_pkey": "CREATE INDEX companies_pkey ON public.companies USING hash (id)"}, "indexes",
     "definition differs"),
    ({"constraints:public.companies.companies_score_check": {"type": "check", "definition": "CHECK (true)"}},
     "constraints", "definition differs"),
    ({"constraints:public.companies.companies_pkey": {"type": "unique", "definition": "PRIMARY KEY (id)"}},
     "constraints", "type unique after restore, manifest has primary"),
    ({"functions:public.touch()": {"kind": "function", "md5": "ffff"}}, "functions", "definition differs"),
    ({"triggers:public.companies.companies_touch": "CREATE TRIGGER companies_touch AFTER ..."}, "triggers",
     "definition differs"),
    ({"materialized_views:public.signal_types": {"definition": "1b75", "populated": False}}, "materialized_views",
     "populated False after restore, manifest has True"),
    ({"sequences:public.companies_id_seq": {"last_value": None, "increment": 1, "readable": True}}, "sequences",
     "never used after restore, manifest has last value 50"),
    ({"sequences:public.companies_id_seq": {"last_value": 49, "increment": 1, "readable": True}}, "sequences",
     "last value 49 after restore, manifest has 50"),
    ({"sequences:public.countdown": {"last_value": -4, "increment": -1, "readable": True}}, "sequences",
     "last value -4 after restore, manifest has -5"),
])
def test_what_differs_fails(change, kind, why):
    diff = si.compare(SOURCE, restored(**change))
    assert not diff["ok"]
    assert list(diff["different"][kind].values()) == [why]


def test_sequences_ahead_of_the_manifest_pass():
    # the manifest reads sequences before pg_dump starts: the dump may hold a later value
    got = restored(**{"sequences:public.companies_id_seq": {"last_value": 57, "increment": 1, "readable": True},
                      "sequences:public.countdown": {"last_value": -9, "increment": -1, "readable": True},
                      "sequences:public.unused": {"last_value": 3, "increment": 1, "readable": True}})
    assert si.compare(SOURCE, got)["ok"]


def test_definitions_are_not_compared_across_major_versions_but_presence_types_and_values_are():
    got = restored(**{"views:public.recent": "other", "indexes:public.companies_pkey": "other",
                      "sequences:public.companies_id_seq": {"last_value": 1, "increment": 1, "readable": True}})
    diff = si.compare(SOURCE, got, definitions=False)
    assert diff["different"] == {"sequences": {"public.companies_id_seq": "last value 1 after restore, manifest "
                                                                          "has 50"}}


def test_an_unexpected_object_fails_and_an_extension_version_only_warns():
    got = restored(**{"views:public.extra": "cc", "extensions:pg_trgm": "1.5"})
    diff = si.compare(SOURCE, got)
    assert not diff["ok"] and diff["unexpected"] == {"views": ["public.extra"]}
    assert diff["warnings"] == {"extensions": {"pg_trgm": "version 1.5 after restore, manifest has 1.6"}}
    assert si.compare(SOURCE, restored(**{"extensions:pg_trgm": "1.5"}))["ok"]


def test_kinds_absent_from_the_manifest_are_listed_not_compared():
    partial = {"views": SOURCE["views"], "indexes": SOURCE["indexes"]}
    diff = si.compare(partial, restored())
    assert diff["ok"] and diff["compared"] == {"views": 2, "indexes": 2}
    assert diff["not_compared"] == ["materialized_views", "constraints", "sequences", "functions", "triggers",
                                    "extensions"]
    assert si.compare(None, restored())["not_compared"] == list(si.KINDS)


def test_one_statement_reads_every_kind_and_parses_back():
    sql = si.inventory_sql()
    assert sql.startswith("SELECT json_build_object(") and sql.count("'%s', (" % "views") == 1
    for kind in si.KINDS:
        assert "'%s', (SELECT" % kind in sql
    assert si.parse(json.dumps(SOURCE)) == SOURCE
    assert si.parse(json.dumps({"sequences": {}}), kinds=si.EARLY_KINDS) == {"sequences": {}}
    with pytest.raises(ValueError):
        si.parse(json.dumps({"views": {}}))
    assert si.counts(SOURCE)["constraints"] == 3

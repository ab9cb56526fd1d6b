"""Structural comparison of v1 and legacy JSON (API-COMPAT): keys and JSON types, recursively,
lists by their elements. Values never matter."""
import pytest

from ansible_collections.hunter.ops.plugins.module_utils.structure import compare, json_type, shape_of

V1_LEADS = {"leads": [{"domain": "a.com", "score": 71, "created_at": "2026-01-01T00:00:00"},
                      {"domain": "b.com", "score": 12.5, "created_at": "2026-01-02T00:00:00"}],
            "count": 2}


def test_same_structure_different_values_is_no_difference():
    other = {"count": 999, "leads": [{"domain": "zzz.org", "score": 1, "created_at": "x"}]}
    assert compare(V1_LEADS, other) == ([], [])


def test_the_sample_services_different_legacy_shape_is_reported_key_by_key():
    legacy = {"results": V1_LEADS["leads"], "count": "2"}
    diffs = compare(V1_LEADS, legacy)[0]
    assert diffs == [
        "$.count: number in v1, string in legacy",
        "$.leads: missing in legacy (array in v1)",
        "$.results: only in legacy (array)",
    ]


def test_nested_type_change_inside_list_elements_has_a_path():
    legacy = {"leads": [{"domain": "a.com", "score": "71", "created_at": "x"}], "count": 1}
    diffs = compare(V1_LEADS, legacy)[0]
    assert diffs == ["$.leads[].score: number in v1, string in legacy"]


def test_list_elements_are_merged_so_one_odd_element_shows_as_a_union_type():
    v1 = {"items": [{"a": 1}, {"a": 2}]}
    legacy = {"items": [{"a": 1}, {"a": "2"}]}
    diffs = compare(v1, legacy)[0]
    assert diffs == ["$.items[].a: number in v1, number|string in legacy"]


def test_key_present_in_only_some_list_elements_counts_as_present():
    v1 = {"items": [{"a": 1}, {"a": 2, "b": True}]}
    legacy = {"items": [{"a": 3, "b": False}]}
    assert compare(v1, legacy)[0] == []


def test_empty_list_matches_any_list_with_a_note():
    diffs, notes = compare({"signals": ["x", "y"]}, {"signals": []})
    assert diffs == []
    assert notes == ["$.signals[]: empty list in legacy, elements not compared"]


def test_array_against_string_is_a_difference():
    diffs = compare({"signals": ["a", "b"]}, {"signals": "a,b"})[0]
    assert diffs == ["$.signals: array in v1, string in legacy"]


def test_int_and_float_are_both_number_and_bool_is_not_a_number():
    assert json_type(1) == json_type(1.5) == "number"
    assert json_type(True) == "boolean"
    assert compare({"x": 1}, {"x": 2.5})[0] == []
    assert compare({"x": 1}, {"x": True})[0] == ["$.x: number in v1, boolean in legacy"]


@pytest.mark.parametrize("null_matches_any, expected", [
    (False, ["$.last: string in v1, null in legacy"]),
    (True, []),
])
def test_null_is_a_type_unless_nullable_fields_are_accepted(null_matches_any, expected):
    diffs = compare({"last": "2026-01-01"}, {"last": None}, null_matches_any=null_matches_any)[0]
    assert diffs == expected


def test_top_level_type_mismatch_and_odd_keys_are_quoted_in_paths():
    assert compare({"a": 1}, [1])[0] == ["$: object in v1, array in legacy"]
    diffs = compare({"odd key": 1}, {})[0]
    assert diffs == ['$["odd key"]: missing in legacy (number in v1)']


def test_names_of_the_sides_are_configurable():
    diffs = compare({"a": 1}, {"a": "1"}, names=("left", "right"))[0]
    assert diffs == ["$.a: number in left, string in right"]


def test_deeply_nested_objects_in_lists_of_lists():
    v1 = {"matrix": [[{"v": 1}]]}
    legacy = {"matrix": [[{"v": None, "w": 1}]]}
    diffs = compare(v1, legacy)[0]
    assert diffs == ["$.matrix[][].v: number in v1, null in legacy", "$.matrix[][].w: only in legacy (number)"]


def test_shape_of_a_list_of_scalars_and_objects_keeps_both():
    shape = shape_of([1, {"a": "x"}])
    assert shape.items.types == {"number", "object"}
    assert set(shape.items.keys) == {"a"}

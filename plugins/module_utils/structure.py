# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Structural comparison of two JSON documents: same keys, same value types, recursively.

Values are ignored, only the shape counts. A list is described by its elements: the shapes
of all its elements are merged (union of object keys, union of types), so a list of 50 leads
compares as one element shape. An empty list says nothing about its elements and matches any
list. JSON types are used (an int and a float are both `number`).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def json_type(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


class Shape(object):
    """The types a position can hold; for objects their keys' shapes, for arrays their elements' shape."""

    def __init__(self, types=(), keys=None, items=None):
        self.types = set(types)
        self.keys = keys if keys is not None else {}
        self.items = items  # None: no element seen (empty list or not an array)

    def type_text(self):
        return "|".join(sorted(self.types)) or "nothing"


def shape_of(value):
    kind = json_type(value)
    if kind == "object":
        return Shape([kind], keys=dict((str(k), shape_of(v)) for k, v in value.items()))
    if kind == "array":
        items = None
        for element in value:
            items = merge(items, shape_of(element))
        return Shape([kind], items=items)
    return Shape([kind])


def merge(a, b):
    """One shape describing both a and b (used for the elements of a list)."""
    if a is None:
        return b
    if b is None:
        return a
    keys = dict(a.keys)
    for key, sub in b.keys.items():
        keys[key] = merge(keys.get(key), sub)
    return Shape(a.types | b.types, keys=keys, items=merge(a.items, b.items))


def _child(path, key):
    return "%s.%s" % (path, key) if _IDENTIFIER.match(key) else '%s["%s"]' % (path, key.replace('"', '\\"'))


def _compare(a, b, path, names, null_matches_any, diffs, notes):
    a_types, b_types = set(a.types), set(b.types)
    if null_matches_any and ("null" in a_types or "null" in b_types):
        a_types.discard("null")
        b_types.discard("null")
        if not a_types or not b_types:  # null against anything: accepted
            return
    if a_types != b_types:
        diffs.append("%s: %s in %s, %s in %s" % (path, "|".join(sorted(a_types)), names[0],
                                                 "|".join(sorted(b_types)), names[1]))
    if "object" in a_types and "object" in b_types:
        for key in sorted(set(a.keys) | set(b.keys)):
            where = _child(path, key)
            if key not in b.keys:
                diffs.append("%s: missing in %s (%s in %s)" % (where, names[1], a.keys[key].type_text(), names[0]))
            elif key not in a.keys:
                diffs.append("%s: only in %s (%s)" % (where, names[1], b.keys[key].type_text()))
            else:
                _compare(a.keys[key], b.keys[key], where, names, null_matches_any, diffs, notes)
    if "array" in a_types and "array" in b_types:
        if a.items is None or b.items is None:
            empty = [n for n, s in zip(names, (a, b)) if s.items is None]
            notes.append("%s[]: empty list in %s, elements not compared" % (path, " and ".join(empty)))
        else:
            _compare(a.items, b.items, path + "[]", names, null_matches_any, diffs, notes)


def compare(left, right, names=("v1", "legacy"), null_matches_any=False):
    """(differences, notes) between two JSON documents' structures.

    ``differences`` are one-line strings such as ``$.leads[].score: number in v1, string in legacy``
    or ``$.count: missing in legacy (number in v1)``; empty means the same structure. ``notes`` says
    what could not be compared (empty lists).
    """
    diffs, notes = [], []
    _compare(shape_of(left), shape_of(right), "$", names, null_matches_any, diffs, notes)
    return diffs, notes

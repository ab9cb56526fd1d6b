# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check items keyed by CHECKLIST.md IDs: the one result shape every check module returns."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

PASS = "pass"
FAIL = "fail"
WARN = "warn"
SKIP = "skip"
STATUSES = (PASS, FAIL, WARN, SKIP)

# Evidence text is trimmed so a report stays readable and a large body never floods a log.
MAX_EVIDENCE_CHARS = 600
# A line a module prints on stderr before a step that could leave something behind; when the module
# dies without a result, the recorded items carry these lines (plugins/filter/checks.py).
NOTICE_PREFIX = "hunter.ops notice: "


def trim(text, limit=MAX_EVIDENCE_CHARS):
    """Shorten text for evidence, saying how much was cut."""
    if text is None:
        return None
    if not isinstance(text, str):
        text = str(text)
    if len(text) <= limit:
        return text
    return "%s... [%d more chars]" % (text[:limit], len(text) - limit)


def check_item(status, message, evidence=None, duration_ms=None, **extra):
    """One check result: status, a one-line message and evidence."""
    if status not in STATUSES:
        raise ValueError("unknown check status %r" % (status,))
    evidence = dict(evidence or {})
    if duration_ms is not None:
        evidence["duration_ms"] = round(float(duration_ms), 1)
    evidence.update(extra)
    message = " ".join(str(message).split())  # one line, always
    return {"status": status, "message": message, "evidence": evidence}


def worst(statuses):
    """The most severe status of several (fail > warn > pass > skip)."""
    order = {FAIL: 3, WARN: 2, PASS: 1, SKIP: 0}
    statuses = list(statuses)
    if not statuses:
        return SKIP
    return max(statuses, key=lambda s: order.get(s, 0))


class Stopwatch(object):
    """Measures wall time in milliseconds: `with Stopwatch() as sw: ...; sw.ms`."""

    def __init__(self):
        self.start = None
        self.ms = None

    def __enter__(self):
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.ms = (time.monotonic() - self.start) * 1000.0
        return False

    def elapsed_ms(self):
        return (time.monotonic() - self.start) * 1000.0


def human_bytes(size, digits=1):
    """A byte count for evidence and messages: '512 B', '1.5 GiB' ('n/a' when unknown)."""
    if size is None:
        return "n/a"
    size = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return ("%d %s" % (size, unit)) if unit == "B" else ("%.*f %s" % (digits, size, unit))
        size /= 1024.0
    return "%.*f TiB" % (digits, size)  # pragma: no cover

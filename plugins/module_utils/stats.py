# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Latency summaries for evidence (percentiles by the nearest-rank method)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math


def percentile(values, pct):
    """The nearest-rank percentile: the smallest value with at least pct% of values <= it.

    Nearest rank always returns a measured value (no interpolation), which is what a
    latency report should show. None for no values.
    """
    if not 0 < pct <= 100:
        raise ValueError("percentile must be in (0, 100], got %r" % (pct,))
    ordered = sorted(values)
    if not ordered:
        return None
    rank = int(math.ceil(pct / 100.0 * len(ordered)))
    return ordered[max(rank, 1) - 1]


def latency_summary(values_ms):
    """{count, p50_ms, p99_ms, max_ms, mean_ms} rounded to 0.01 ms (None values when empty)."""
    values = list(values_ms)

    def r(x):
        return None if x is None else round(x, 2)

    return {
        "count": len(values),
        "p50_ms": r(percentile(values, 50)),
        "p99_ms": r(percentile(values, 99)),
        "max_ms": r(max(values) if values else None),
        "mean_ms": r(sum(values) / len(values) if values else None),
    }

"""Figures of a list of durations: the one percentile helper of the tests and the bench."""

import math
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (`fraction` 0.99 for p99): the smallest value that at
    least that fraction of the values do not exceed; NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def p99(seconds: Sequence[float]) -> float:
    """The 99th percentile of durations, 0 when there are none."""
    return percentile(seconds, 0.99) if seconds else 0.0


def summarize(seconds: Sequence[float]) -> str:
    ordered = sorted(seconds)
    return (
        f"n={len(ordered)} p50={statistics.median(ordered) * 1000:.0f}ms "
        f"p99={percentile(ordered, 0.99) * 1000:.0f}ms max={ordered[-1] * 1000:.0f}ms"
    )

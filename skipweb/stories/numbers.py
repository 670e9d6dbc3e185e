"""Measured numbers as a story's sentences write them: values, ratios and parameter counts."""

from __future__ import annotations

import math


def _sci(x: float) -> str:
    mantissa, exp = f"{x:.1e}".split("e")
    return f"{mantissa}e{int(exp)}"


def num(x: float) -> str:
    """A measured value for a sentence: 0.08, 2.41, 35.2, 9.2e3, 7.9e-3."""
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    a = abs(float(f"{x:.2g}"))  # the branch by the value as shown: 0.00999... shows as 0.01, not 1.0e-2
    if 0.01 <= a < 10:
        return f"{x:.2f}"
    if 10 <= a < 100:
        return f"{x:.1f}"
    if 100 <= a < 10_000:
        return f"{x:.0f}"
    return _sci(x)


def times(r: float) -> str:
    """A ratio for a sentence: 2.3×, 0.45×, 1.03×, 17×, 9.2e3×."""
    if not math.isfinite(r):
        return f"{r}×"
    a = abs(float(f"{r:.2g}"))  # the branch by the value as shown
    if 0.9 <= a < 1.1:  # near 1, a third digit tells 1.03× from 0.97×
        return f"{r:.3g}×"
    if 0.1 <= a < 10:
        return f"{r:.2g}×" if a < 1 else f"{r:.1f}×"
    if 10 <= a < 1000:
        return f"{r:.0f}×"
    return _sci(r) + "×"


def count(n: float) -> str:
    """A parameter count: 269k, 1.02M."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return str(int(n))


def ratio(a: float, b: float) -> float:
    """a / b, inf when only b is 0, nan when both are."""
    if b == 0:
        return math.nan if a == 0 else math.inf
    return a / b

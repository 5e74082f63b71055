"""The first Wasserstein distance of two sorted samples, exactly, in a few passes over the larger one.

In one dimension W1 is the integral over u in (0, 1] of |Q_a(u) - Q_b(u)|, with Q the empirical
quantile functions: a sorted sample of n values is the step function that is a[i] on
(i/n, (i+1)/n]. With n <= m, the larger sample's steps are no longer than the smaller one's, so
each of them meets at most one step boundary of the smaller sample: pairing b[j] with the smaller
sample's value where b's step starts, a[floor(j n / m)] (``np.repeat``, no search), is exact except
on the at most n - 1 steps that hold a boundary, which are corrected one by one from the integer
positions (multiples of 1/(n m), exact in int64). No merge of the two samples and no cancellation:
only differences of paired values are summed, so values far from zero keep their digits. The
result equals ``scipy.stats.wasserstein_distance`` up to rounding (the unit tests hold it to 1e-9
relative). The cost is sorting the window once (``drift.DriftDetector`` sorts each window column
once, and the reference once at ``fit``) plus a few vectorised passes over it. Must stay a pure
function of float arrays without missing values.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np


def distance(reference: np.ndarray, current: np.ndarray) -> float:
    """W1 of two non-empty samples of finite floats, in any order (sorts copies of both)."""
    return sorted_distance(np.sort(reference), np.sort(current))


def sorted_distance(first: np.ndarray, second: np.ndarray) -> float:
    """W1 of two non-empty samples of finite floats, each sorted ascending."""
    small, big = (first, second) if len(first) <= len(second) else (second, first)
    n, m = len(small), len(big)
    layout = _layout(n, m)
    paired = np.repeat(small, layout.repeats)
    np.subtract(paired, big, out=paired)
    np.abs(paired, out=paired)
    total = float(paired.sum()) * n
    del paired
    if layout.crossed.size:
        facing = big[layout.facing]
        before, after = small[layout.crossed], small[layout.crossed + 1]
        total += float((layout.tail * (np.abs(after - facing) - np.abs(before - facing))).sum())
    return total / n / m


@dataclasses.dataclass(frozen=True)
class _Layout:
    """Which of the small sample's steps each step of the big one meets; depends on the sizes only."""

    repeats: np.ndarray  # big steps starting inside each small step
    crossed: np.ndarray  # small steps i whose end (i+1) m falls strictly inside a big step
    facing: np.ndarray  # that big step j
    tail: np.ndarray  # length of its part past the boundary, facing small[i + 1]


@functools.lru_cache(maxsize=2)
def _layout(n: int, m: int) -> _Layout:
    """The pairing of sizes n <= m, kept for the next columns (a window's columns mostly share both sizes).

    At most 32 bytes per row of the smaller sample, for the last two pairs of sizes.
    """
    # Positions in units of 1/(n m): small's step i is (i m, (i+1) m], big's step j is (j n, (j+1) n].
    # Big's step j starts inside small's step i for j in [ceil(i m / n), ceil((i+1) m / n)).
    boundaries = np.arange(n + 1, dtype=np.int64) * m
    repeats = np.diff(-(-boundaries // n))
    inner = boundaries[1:n]
    step = inner // n
    rem = inner - step * n
    crossed = np.flatnonzero(rem)
    layout = _Layout(repeats, crossed, step[crossed], n - rem[crossed])
    for field in dataclasses.fields(layout):
        getattr(layout, field.name).flags.writeable = False
    return layout

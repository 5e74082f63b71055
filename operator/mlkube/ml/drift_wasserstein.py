"""The first Wasserstein distance of two large samples, exactly and without sorting them.

W1 is the integral of |D(x)| with D = F_ref - F_cur, the difference of the empirical CDFs.
Cut the value range into equal cells: a value's cell is arithmetic (no search), and per-cell
counts and sums give the integral of D over each cell exactly. Where D keeps its sign inside a
cell, that integral's absolute value is the cell's share of W1. The cells where D may change
sign lie near the CDFs' crossings, a few hundred at most for continuous data; they are
integrated point by point after sorting only their values, except cells whose points all share
one value (ties, discrete data), where D jumps once and no sorting is needed. The result equals
``scipy.stats.wasserstein_distance`` up to rounding, about three times faster than sorting a
million-row window. Must stay a pure function of two float arrays without missing values.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# About four points per cell: enough cells that D rarely changes sign inside one.
POINTS_PER_CELL = 4
MAX_CELLS = 1 << 20


def distance(reference: np.ndarray, current: np.ndarray) -> float:
    """W1 of two non-empty samples of finite floats, in any order."""
    lo = min(reference.min(), current.min())
    hi = max(reference.max(), current.max())
    if hi == lo:
        return 0.0
    grid = _Grid(lo, hi, cells=int(np.clip((len(reference) + len(current)) // POINTS_PER_CELL, 16, MAX_CELLS)))
    samples = (grid.bin(reference, weight=1 / len(reference)), grid.bin(current, weight=-1 / len(current)))
    step = sum(sample.count * sample.weight for sample in samples)  # change of D across each cell
    start = np.cumsum(step) - step  # D at each cell's left edge
    area = start * grid.width + grid.right_edges() * step - sum(sample.total * sample.weight for sample in samples)
    # Inside a cell D moves between start - (current points)/m and start + (reference points)/n.
    low = start + samples[1].count * samples[1].weight
    high = start + samples[0].count * samples[0].weight
    mixed = (low < 0) & (high > 0)
    total = np.abs(area[~mixed]).sum()
    if mixed.any():
        total += _integrate_mixed(samples, mixed, start, step, grid)
    return float(total)


@dataclasses.dataclass(frozen=True)
class _Binned:
    """One sample on the grid; D moves by ``weight`` at each of its points (+1/n or -1/m)."""

    values: np.ndarray  # offsets from the grid's lo
    cell: np.ndarray
    count: np.ndarray
    total: np.ndarray
    weight: float


class _Grid:
    """Equal cells over [lo, hi]; a value's cell never decreases as the value grows, as sorting needs."""

    def __init__(self, lo: float, hi: float, *, cells: int):
        self.lo, self.cells = lo, cells
        self.width = (hi - lo) / cells
        self._scale = cells / (hi - lo)

    def bin(self, values: np.ndarray, *, weight: float) -> _Binned:
        """The sample as offsets from ``lo``, with cells, counts and sums per cell.

        Offsets keep the sums' magnitude at the range's, not the values': with values near 1e9
        and a spread of 1, sums of raw values would cancel away most of the digits.
        """
        offset = values - self.lo
        scaled = offset * self._scale
        cell = scaled.astype(np.int64)
        del scaled
        np.minimum(cell, self.cells - 1, out=cell)
        return _Binned(
            offset, cell, np.bincount(cell, minlength=self.cells), np.bincount(cell, weights=offset, minlength=self.cells), weight
        )

    def left_edges(self, cell: np.ndarray | None = None) -> np.ndarray:
        """Cell edges as offsets from ``lo``, like the binned values."""
        cell = np.arange(self.cells) if cell is None else cell
        return cell * self.width

    def right_edges(self, cell: np.ndarray | None = None) -> np.ndarray:
        return self.left_edges(cell) + self.width


def _integrate_mixed(
    samples: tuple[_Binned, _Binned], mixed: np.ndarray, start: np.ndarray, step: np.ndarray, grid: _Grid
) -> float:
    """Integral of |D| over the cells where D may change sign."""
    mean = sum(sample.total for sample in samples) / np.maximum(sum(sample.count for sample in samples), 1)
    taken = []
    spread = np.zeros(grid.cells, dtype=bool)
    for sample in samples:
        inside = mixed[sample.cell]
        values, cells = sample.values[inside], sample.cell[inside]
        spread[cells[values != mean[cells]]] = True
        taken.append((values, cells, sample.weight))
    single = np.flatnonzero(mixed & ~spread)
    at = mean[single]
    total = (
        np.abs(start[single]) * (at - grid.left_edges(single))
        + np.abs(start[single] + step[single]) * (grid.right_edges(single) - at)
    ).sum()
    kept = [(values[spread[cells]], cells[spread[cells]], weight) for values, cells, weight in taken]
    if sum(len(values) for values, _, _ in kept):
        total += _integrate_sorted(kept, start, grid)
    return float(total)


def _integrate_sorted(points: list[tuple[np.ndarray, np.ndarray, float]], start: np.ndarray, grid: _Grid) -> float:
    """Integral of |D| over the cells holding these points, from the points in sorted order."""
    values = np.concatenate([values for values, _, _ in points])
    cells = np.concatenate([cells for _, cells, _ in points])
    steps = np.concatenate([np.full(len(values), weight) for values, _, weight in points])
    order = np.lexsort((values, cells))
    values, cells, steps = values[order], cells[order], steps[order]
    first = np.r_[True, cells[1:] != cells[:-1]]
    last = np.r_[cells[1:] != cells[:-1], True]
    running = np.cumsum(steps)
    run_lengths = np.diff(np.r_[np.flatnonzero(first), len(values)])
    after = start[cells] + running - np.repeat((running - steps)[first], run_lengths)  # D right after each point
    next_point = np.where(last, grid.right_edges(cells), np.r_[values[1:], 0.0])
    inside = (np.abs(after) * (next_point - values)).sum()
    before_first = (np.abs(start[cells[first]]) * (values[first] - grid.left_edges(cells[first]))).sum()
    return float(inside + before_first)

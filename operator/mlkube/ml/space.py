"""The `params` syntax of a TrainingJob's algorithms, as search dimensions.

    C: 1.0                        fixed value
    max_depth: [3, 5, null]       choices
    n_estimators: {int: [50, 300]}
    subsample: {uniform: [0.5, 1.0]}
    C: {loguniform: [0.001, 10]}

`parse` validates the syntax (errors.InvalidSpec naming the field), `suggest` draws a point
through an Optuna trial (random, TPE, or a grid point enqueued in the study), `grid` lists the
points of a grid search, ranges discretised into `GRID_POINTS` values. No estimator knowledge.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any

import numpy as np

from mlkube.ml import errors

GRID_POINTS = 4
RANGE_KINDS = ("int", "uniform", "loguniform")


@dataclasses.dataclass(frozen=True)
class Fixed:
    value: Any


@dataclasses.dataclass(frozen=True)
class Choice:
    values: tuple


@dataclasses.dataclass(frozen=True)
class Range:
    kind: str  # int | uniform | loguniform
    low: float
    high: float


Dimension = Fixed | Choice | Range


def parse(params: dict[str, Any], *, field: str) -> dict[str, Dimension]:
    """The dimensions of `params`; `field` (e.g. `algorithms[0].params`) prefixes every error."""
    return {name: _dimension(value, field=f"{field}.{name}") for name, value in params.items()}


def _dimension(value: Any, *, field: str) -> Dimension:
    if isinstance(value, list):
        if not value:
            raise errors.InvalidSpec(f"{field}: an empty list of choices; give at least one value")
        for choice in value:
            if choice is not None and not isinstance(choice, (bool, int, float, str)):
                raise errors.InvalidSpec(f"{field}: choice {choice!r} must be a number, string, boolean or null")
        return Choice(tuple(value))
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in RANGE_KINDS:
        kind, bounds = next(iter(value.items()))
        if not (
            isinstance(bounds, list)
            and len(bounds) == 2
            and all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)
        ):
            raise errors.InvalidSpec(f"{field}.{kind}: expected [low, high] numbers, got {bounds!r}")
        low, high = bounds
        if low > high:
            raise errors.InvalidSpec(f"{field}.{kind}: low {low} is above high {high}")
        if kind == "int" and not all(float(b).is_integer() for b in bounds):
            raise errors.InvalidSpec(f"{field}.int: bounds must be integers, got {bounds!r}")
        if kind == "loguniform" and low <= 0:
            raise errors.InvalidSpec(f"{field}.loguniform: bounds must be positive, got {bounds!r}")
        return Range(kind, low, high)
    return Fixed(value)


def suggest(trial, space: dict[str, Dimension], *, prefix: str) -> dict[str, Any]:
    """A point of `space` drawn through an Optuna trial; parameter names are `prefix.name` in the study."""
    point = {}
    for name, dim in space.items():
        key = f"{prefix}.{name}"
        if isinstance(dim, Fixed):
            point[name] = dim.value
        elif isinstance(dim, Choice):
            point[name] = trial.suggest_categorical(key, list(dim.values))
        elif dim.kind == "int":
            point[name] = trial.suggest_int(key, int(dim.low), int(dim.high))
        else:
            point[name] = trial.suggest_float(key, dim.low, dim.high, log=dim.kind == "loguniform")
    return point


def grid(space: dict[str, Dimension], *, points: int = GRID_POINTS) -> list[dict[str, Any]]:
    """Every combination of the dimensions' grid values, in a stable order."""
    names = list(space)
    values = [_grid_values(space[n], points) for n in names]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]


def study_params(point: dict[str, Any], space: dict[str, Dimension], *, prefix: str) -> dict[str, Any]:
    """`point` as the study's parameter names, for `study.enqueue_trial` (fixed values are not study parameters)."""
    return {f"{prefix}.{n}": v for n, v in point.items() if not isinstance(space[n], Fixed)}


def _grid_values(dim: Dimension, points: int) -> list:
    if isinstance(dim, Fixed):
        return [dim.value]
    if isinstance(dim, Choice):
        return list(dim.values)
    if dim.kind == "int":
        low, high = int(dim.low), int(dim.high)
        return sorted({int(round(v)) for v in np.linspace(low, high, min(points, high - low + 1))})
    if dim.kind == "loguniform":
        return [float(v) for v in np.geomspace(dim.low, dim.high, points)] if dim.low != dim.high else [dim.low]
    return [float(v) for v in np.linspace(dim.low, dim.high, points)] if not math.isclose(dim.low, dim.high) else [dim.low]

"""Train / validation / test partitions and the cross-validation folds of the training partition.

Random splits are seeded and, for classification with `stratify`, keep class proportions.
With `timeColumn` the table is ordered by time: the oldest rows train, the next validate, the
newest test, and the folds are forward-chaining (each validates on rows after its training
rows), so no model is scored on the past it was trained after. Pure functions of the table.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from sklearn import model_selection

from mlkube.api import preprocessing
from mlkube.ml import errors


@dataclasses.dataclass(frozen=True)
class Partitions:
    train: pd.DataFrame
    validation: pd.DataFrame  # empty when split.validation is 0
    test: pd.DataFrame


def partition(table: pd.DataFrame, *, target: str, task: str, spec: preprocessing.Split) -> Partitions:
    """Split `table` into train, validation and test by `spec`."""
    n = len(table)
    n_test = max(1, int(round(n * spec.test)))
    n_validation = int(round(n * spec.validation))
    if spec.validation > 0:
        n_validation = max(1, n_validation)
    if n - n_test - n_validation < 2:
        raise errors.DataError(
            f"only {n} usable rows: too few to hold out {spec.test:.0%} "
            f"for test and {spec.validation:.0%} for validation "
            "and still train; add data or lower preprocessing.split.test/validation"
        )
    if spec.time_column:
        ordered = table.sort_values(spec.time_column, kind="stable").reset_index(drop=True)
        train_end = n - n_test - n_validation
        return Partitions(ordered.iloc[:train_end], ordered.iloc[train_end : n - n_test], ordered.iloc[n - n_test :])
    stratified = task == "classification" and spec.stratify
    rest, test = _holdout(table, n_test, target=target, stratified=stratified, seed=spec.seed, field="split.test")
    if n_validation == 0:
        return Partitions(rest, rest.iloc[0:0], test)
    train, validation = _holdout(
        rest, n_validation, target=target, stratified=stratified, seed=spec.seed, field="split.validation"
    )
    return Partitions(train, validation, test)


def folds(y: pd.Series, *, task: str, spec: preprocessing.Split, cv_folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, held-out) row positions of each cross-validation fold of the training partition."""
    n = len(y)
    if n < cv_folds * 2:
        raise errors.DataError(
            f"the training partition has {n} rows, too few for tuning.cvFolds={cv_folds}; add data or lower cvFolds"
        )
    if task == "classification" and y.nunique() < 2:
        where = f"the oldest rows by {spec.time_column}" if spec.time_column else "the rows left for training"
        raise errors.DataError(
            f"the training partition ({where}) holds a single class, {y.iloc[0]!r}; a classifier needs two. "
            "Add data or change preprocessing.split"
        )
    if spec.time_column:
        splitter = model_selection.TimeSeriesSplit(n_splits=cv_folds)
    elif task == "classification" and spec.stratify:
        smallest = y.value_counts().min()
        if smallest < cv_folds:
            rare = y.value_counts().idxmin()
            raise errors.DataError(
                f"class {rare!r} has {smallest} training rows, fewer than tuning.cvFolds={cv_folds}; "
                "add data, lower cvFolds or set preprocessing.split.stratify: false"
            )
        splitter = model_selection.StratifiedKFold(n_splits=cv_folds, shuffle=True, random_state=spec.seed)
    else:
        splitter = model_selection.KFold(n_splits=cv_folds, shuffle=True, random_state=spec.seed)
    return list(splitter.split(np.zeros((n, 1)), y))


def search_sample(y: pd.Series, *, size: int, task: str, spec: preprocessing.Split) -> pd.Index:
    """The index labels of ``size`` rows of the training partition (target ``y``) that the search
    sees: seeded, stratified by class for classification when ``spec.stratify`` (and every class has
    two rows), the partition's own order kept. All of it when ``size`` covers it."""
    if size >= len(y):
        return y.index
    stratify = y if task == "classification" and spec.stratify and y.value_counts().min() >= 2 else None
    try:
        chosen, _ = model_selection.train_test_split(y.index, train_size=size, random_state=spec.seed, stratify=stratify)
    except ValueError:  # too few rows per class for a stratified sample of this size
        chosen, _ = model_selection.train_test_split(y.index, train_size=size, random_state=spec.seed)
    return y.index[y.index.isin(chosen)]


def _holdout(table: pd.DataFrame, size: int, *, target: str, stratified: bool, seed: int, field: str):
    labels = table[target] if stratified else None
    if stratified:
        counts = labels.value_counts()
        if counts.min() < 2 or size < len(counts):
            rare = counts.idxmin()
            raise errors.DataError(
                f"preprocessing.{field}: cannot stratify: class {rare!r} "
                f"has {counts.min()} rows and the holdout holds {size} "
                f"rows for {len(counts)} classes; add data or set preprocessing.split.stratify: false"
            )
    rest, held = model_selection.train_test_split(table, test_size=size, random_state=seed, stratify=labels)
    return rest.reset_index(drop=True), held.reset_index(drop=True)

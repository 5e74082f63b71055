"""split: seeded, stratified, time-ordered partitions and cross-validation folds."""

import re

import numpy as np
import pandas as pd
import pytest
from mlspec import preprocessing

from mlkube.api import datasource
from mlkube.api import preprocessing as preprocessing_api
from mlkube.ml import errors, split


def spec(**fields):
    return preprocessing(split=fields).split


def test_partition_sizes_are_seeded_and_stratified(mixed):
    parts = split.partition(mixed, target="y", task="classification", spec=spec(test=0.2, validation=0.25, seed=3))
    again = split.partition(mixed, target="y", task="classification", spec=spec(test=0.2, validation=0.25, seed=3))

    assert (len(parts.train), len(parts.validation), len(parts.test)) == (110, 50, 40)
    pd.testing.assert_frame_equal(parts.test, again.test)
    share = (mixed["y"] == "yes").mean()
    for part in (parts.train, parts.validation, parts.test):
        assert (part["y"] == "yes").mean() == pytest.approx(share, abs=0.03)


def test_validation_zero_leaves_an_empty_validation_partition(mixed):
    parts = split.partition(mixed, target="y", task="classification", spec=spec(validation=0))
    assert (len(parts.train), len(parts.validation), len(parts.test)) == (160, 0, 40)


def test_time_column_tests_on_the_newest_rows(mixed):
    table = mixed.assign(ts=np.random.default_rng(0).permutation(200))
    parts = split.partition(table, target="y", task="classification", spec=spec(timeColumn="ts", test=0.1, validation=0.1))
    assert parts.train["ts"].max() < parts.validation["ts"].min() < parts.test["ts"].min()
    assert sorted(parts.test["ts"]) == list(range(180, 200))


def test_time_folds_validate_on_later_rows(mixed):
    folds = split.folds(mixed["y"], task="classification", spec=spec(timeColumn="ts"), cv_folds=3)
    assert all(train.max() < held.min() for train, held in folds)


def test_stratified_folds_cover_every_row_once(mixed):
    folds = split.folds(mixed["y"], task="classification", spec=spec(), cv_folds=4)
    assert sorted(np.concatenate([held for _, held in folds]).tolist()) == list(range(200))


def test_too_few_rows_say_what_to_fix(mixed):
    with pytest.raises(errors.DataError, match="only 3 usable rows"):
        split.partition(mixed.head(3), target="y", task="regression", spec=spec())
    with pytest.raises(errors.DataError, match=re.escape("class 'rare' has 2 training rows, fewer than tuning.cvFolds=3")):
        split.folds(pd.Series(["rare"] * 2 + ["common"] * 20), task="classification", spec=spec(), cv_folds=3)


def test_a_single_class_training_partition_is_refused():
    y = pd.Series(["old"] * 10)
    with pytest.raises(errors.DataError, match="the training partition \\(the oldest rows by ts\\) holds a single class, 'old'"):
        split.folds(y, task="classification", spec=spec(timeColumn="ts"), cv_folds=3)


def test_the_search_sample_is_seeded_stratified_and_keeps_the_partitions_order():
    y = pd.Series(["a"] * 900 + ["b"] * 100, index=range(1000, 2000))
    spec = preprocessing_api.Split(seed=7)
    chosen = split.search_sample(y, size=200, task="classification", spec=spec)
    assert len(chosen) == 200 and list(chosen) == sorted(chosen), "the partition's order is kept"
    assert (y.loc[chosen] == "b").sum() == 20, "class shares kept: 10 % of 200"
    assert list(split.search_sample(y, size=200, task="classification", spec=spec)) == list(chosen), "seeded"
    assert list(split.search_sample(y, size=5000, task="classification", spec=spec)) == list(y.index)
    assert datasource.Sample(fraction=0.25).size(1000) == 250 and datasource.Sample(rows=50).size(20) == 20

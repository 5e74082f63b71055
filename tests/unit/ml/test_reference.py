"""A version's reference sample: its training partition (at most 10,000 rows) with its own predictions,
or, for a version retrained on captured traffic, the newest regime of that traffic."""

import numpy as np
import pandas as pd
import pytest
from sklearn import linear_model

from mlkube.ml import artifacts, drift, reference

FEATURES = ["x", "colour"]


def rows(n: int, *, seed: int, shift: float = 0.0, start: int = 0) -> pd.DataFrame:
    """``n`` rows of a numeric and a categorical feature; ``shift`` moves x (a recalibrated sensor).
    ``id`` numbers the rows from ``start`` so that a test can tell which ones were kept."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, n)
    return pd.DataFrame(
        {
            "id": np.arange(start, start + n),
            "x": x + shift,
            "colour": rng.choice(["red", "green", "blue"], n),
            "y": np.where(x > 0, "yes", "no"),
        }
    )


class Model:
    """A fitted classifier on x and colour (one-hot by hand, so the test needs no pipeline)."""

    def __init__(self, train: pd.DataFrame):
        self.estimator = linear_model.LogisticRegression().fit(self._matrix(train), train["y"])

    @staticmethod
    def _matrix(table: pd.DataFrame) -> np.ndarray:
        return np.column_stack([table["x"], table["colour"] == "red", table["colour"] == "green"]).astype(float)

    def predict(self, table: pd.DataFrame) -> np.ndarray:
        return self.estimator.predict(self._matrix(table))


def test_the_reference_is_the_training_partition_capped_at_10000_rows_with_the_versions_predictions():
    train = rows(12_500, seed=0)
    model = Model(train)

    made = reference.of(model, train, features=["id", *FEATURES], target="y", categorical=["colour"], seed=7)

    table = made.table
    assert len(table) == artifacts.REFERENCE_MAX_ROWS == 10_000
    assert made.source == reference.TRAINING and made.card()["rows"] == 10_000
    assert "10,000 of the 12,500 rows of the training partition" in made.description
    assert table["id"].is_unique and table["id"].isin(train["id"]).all(), "a sample of the training rows, each once"
    kept = train.set_index("id").loc[table["id"]]
    assert table["x"].tolist() == kept["x"].tolist() and table["colour"].tolist() == kept["colour"].tolist()
    assert table[drift.PREDICTION_COLUMN].tolist() == model.predict(kept).tolist(), "the version's own predictions"
    assert table[drift.TARGET_COLUMN].tolist() == kept["y"].tolist()
    again = reference.of(model, train, features=["id", *FEATURES], target="y", categorical=["colour"], seed=7)
    assert again.table["id"].tolist() == table["id"].tolist(), "the sample is seeded"


@pytest.mark.parametrize("traffic", [None, rows(0, seed=1)])
def test_a_small_training_partition_is_the_reference_whole(traffic):
    train = rows(206, seed=0)
    made = reference.of(Model(train), train, features=FEATURES, target="y", seed=0, traffic=traffic)
    assert made.table[FEATURES].equals(train[FEATURES]) and made.description == "the training partition (206 rows)"


def test_a_version_retrained_on_shifted_traffic_is_judged_against_that_traffic():
    # The project's data, then 200 labelled requests like it, then 150 after a sensor was recalibrated.
    data = rows(300, seed=0)
    traffic = pd.concat([rows(200, seed=1, start=1000), rows(150, seed=2, shift=5.0, start=2000)], ignore_index=True)
    train = pd.concat([data, traffic.iloc[:300]], ignore_index=True).sample(frac=0.6, random_state=0)  # a mixed partition
    model = Model(train)

    made = reference.of(model, train, features=FEATURES, target="y", categorical=["colour"], seed=0, traffic=traffic)

    assert made.source == reference.TRAFFIC
    assert made.description.startswith("the newest 150 of the 350 labelled requests the version was retrained for")
    newest = traffic.tail(150)
    assert made.table["x"].tolist() == newest["x"].tolist(), "exactly the requests after the recalibration"
    assert made.table[drift.PREDICTION_COLUMN].tolist() == model.predict(newest).tolist()
    assert made.table[drift.TARGET_COLUMN].tolist() == newest["y"].tolist()

    # What the user sees: the recalibrated traffic the version was retrained for is not drift against
    # this reference, and it would be against the training partition.
    window = rows(400, seed=3, shift=5.0)
    judged = drift.DriftDetector(categorical=["colour"], dataset_share=0.3).fit(made.table[FEATURES]).score(window)
    assert not judged.dataset_drift, judged.explanation()
    partition = reference.of(model, train, features=FEATURES, target="y", seed=0).table
    assert drift.DriftDetector(categorical=["colour"], dataset_share=0.3).fit(partition[FEATURES]).score(window).dataset_drift
    # ...and a further shift of that traffic is still drift.
    assert (
        drift.DriftDetector(categorical=["colour"], dataset_share=0.3)
        .fit(made.table[FEATURES])
        .score(rows(400, seed=4))
        .dataset_drift
    )


def test_traffic_like_the_training_data_keeps_the_training_partition():
    train = rows(400, seed=0)
    traffic = rows(300, seed=1)
    made = reference.of(Model(train), train, features=FEATURES, target="y", categorical=["colour"], seed=0, traffic=traffic)
    assert made.source == reference.TRAINING and len(made.table) == 400
    assert "distributed like it" in made.description


def test_too_little_traffic_keeps_the_training_partition_and_says_why():
    train = rows(400, seed=0)
    traffic = rows(29, seed=2, shift=5.0)
    made = reference.of(Model(train), train, features=FEATURES, target="y", categorical=["colour"], seed=0, traffic=traffic)
    assert made.source == reference.TRAINING and len(made.table) == 400
    assert "only 29 labelled requests joined it" in made.description


def test_a_shift_within_the_newest_block_gives_a_reference_of_one_block():
    train = rows(400, seed=0)
    traffic = pd.concat([rows(100, seed=1), rows(20, seed=2, shift=5.0)], ignore_index=True)
    made = reference.of(Model(train), train, features=FEATURES, target="y", categorical=["colour"], seed=0, traffic=traffic)
    assert made.source == reference.TRAFFIC and len(made.table) == reference.MIN_TRAFFIC_ROWS == 30


def test_the_regime_search_uses_at_most_twenty_blocks_of_at_least_thirty_rows():
    assert [reference.block_rows(n) for n in (30, 600, 601, 100_000)] == [30, 30, 31, 5000]


class Constant:
    """A model of text that always answers "yes"."""

    def predict(self, table: pd.DataFrame) -> np.ndarray:
        return np.full(len(table), "yes")


def test_free_text_is_left_out_of_the_regime_search():
    # A text column holds a new value in every row: compared as a category, any traffic would "differ".
    data = rows(300, seed=0).assign(note=[f"note {i}" for i in range(300)])
    traffic = rows(200, seed=1, start=1000).assign(note=[f"other words {i}" for i in range(200)])
    train = pd.concat([data, traffic], ignore_index=True)
    made = reference.of(
        Model(train),
        train,
        features=[*FEATURES, "note"],
        target="y",
        categorical=["colour"],
        seed=0,
        traffic=traffic,
        text=["note"],
    )
    assert made.source == reference.TRAINING and "distributed like it" in made.description
    only_text = reference.of(Constant(), train, features=["note"], target="y", seed=0, traffic=traffic, text=["note"])
    assert only_text.source == reference.TRAINING and "free text" in only_text.description

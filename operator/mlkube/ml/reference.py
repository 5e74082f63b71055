"""A model version's reference sample: the rows its drift analysis compares live traffic with.

The reference (``reference.parquet``) is what the version was trained for: its feature columns,
the version's own predictions on those rows (``__prediction__``, for prediction drift) and their
ground truth (``__target__``). Concept drift does not read it: its baseline is the test-set metric
in the model card. The model server takes its explanation baselines from it too.

Which rows, and why:

- **The training partition**, a seeded sample of at most ``artifacts.REFERENCE_MAX_ROWS`` rows:
  the data the version learned. Not the test split, the smallest partition (69 rows for the
  penguins), on which a two-sample test has little power. The held-out rows (validation and
  test) join it, marked ``__holdout__``: they are drawn from the same data, and prediction drift
  compares live predictions with the version's predictions on *them* only, since on rows it
  learned a model that fits them closely predicts their labels, and an over-fitted model's
  in-sample predictions would make every live window look drifted.
- **A version retrained on captured traffic** (``retraining.includeFeedback``) is judged against
  the distribution it was retrained for. When the newest labelled traffic differs from the
  training partition, the reference is the newest *regime* of that traffic: the newest block of
  rows, extended back block by block for as long as no feature test tells a block apart from the
  newest one. Not the whole traffic: the feedback window (days) spans the regime before the shift
  too, and a reference mixing both regimes reports drift on the very traffic the version was
  retrained for, for as long as it serves. Not a fixed newest share: where the shift happened is
  not known; too short a share loses power, too long a one mixes regimes. The tests are
  Kolmogorov-Smirnov (numeric) and chi-square (categorical) at ``REGIME_ALPHA`` over the number of
  features (Bonferroni), so a block is rarely cut off by chance, and a cut only ever shortens the
  reference, it never mixes regimes. The recent holdout of ``promotion.evaluateOn: recent``
  counts: it is the newest traffic, the version was promoted for it, and the reference is a
  description of a distribution, never scored against. The training partition stays the
  reference when fewer than ``MIN_TRAFFIC_ROWS`` labelled requests joined it (too few to describe
  the traffic), and when the newest block does not differ from it (it is the larger sample).

Pure: a fitted model and tables in, a table out. It reads and writes nothing.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

from mlkube.ml import artifacts, drift, errors

TRAINING, TRAFFIC = "trainingPartition", "recentTraffic"
# Fewer labelled requests than this are too few to describe the traffic: the same minimum as the
# recent holdout on which the trainer judges challenger and champion. The regime search works in
# blocks of at least as many rows (at most REGIME_BLOCKS blocks), so a regime is never smaller.
MIN_TRAFFIC_ROWS = 30
REGIME_BLOCKS = 20
# Family-wise level of the tests that cut the regime (divided by the number of features).
REGIME_ALPHA = 0.01


@dataclasses.dataclass(frozen=True)
class Reference:
    """The reference table and what it is, for the model card and the drift report."""

    table: pd.DataFrame
    source: str
    description: str

    def card(self) -> dict[str, Any]:
        """The model card's ``reference`` entry: ``source`` (trainingPartition | recentTraffic), ``rows``, ``description``."""
        return {"source": self.source, "rows": len(self.table), "description": self.description}


def of(
    model: Any,
    train: pd.DataFrame,
    *,
    features: list[str],
    target: str,
    categorical: Iterable[str] = (),
    seed: int,
    traffic: pd.DataFrame | None = None,
    text: Iterable[str] = (),
    holdout: pd.DataFrame | None = None,
) -> Reference:
    """The reference of the version ``model`` trained on ``train`` (the training partition).

    ``traffic``: the labelled captured requests the run read when its training data included
    them (feature columns and ``target``, oldest first; None when it did not). ``categorical``:
    the feature columns the pipeline encodes as categories (tested with chi-square). ``holdout``:
    the rows the version did not learn (validation and test partitions), added to a
    training-partition reference as ``__holdout__`` rows.
    """
    sample = train.sample(artifacts.REFERENCE_MAX_ROWS, random_state=seed) if len(train) > artifacts.REFERENCE_MAX_ROWS else train
    if len(sample) < len(train):
        trained = f"a seeded sample of {len(sample):,} of the {len(train):,} rows of the training partition"
    else:
        trained = f"the training partition ({len(train):,} rows)"
    if holdout is not None and len(holdout):
        trained += f", and the {len(holdout):,} held-out rows on which its predictions are the prediction-drift baseline"

    def training_table() -> pd.DataFrame:
        learned = table(model, sample, features=features, target=target).assign(**{drift.HOLDOUT_COLUMN: False})
        if holdout is None or not len(holdout):
            return learned
        unseen = table(model, holdout, features=features, target=target).assign(**{drift.HOLDOUT_COLUMN: True})
        return pd.concat([learned, unseen], ignore_index=True)

    if traffic is None or traffic.empty:
        return Reference(training_table(), TRAINING, trained)
    if len(traffic) < MIN_TRAFFIC_ROWS:
        why = f"; only {len(traffic)} labelled requests joined it, too few to describe the traffic (at least {MIN_TRAFFIC_ROWS})"
        return Reference(training_table(), TRAINING, trained + why)
    # Free text is left out of the regime tests: every text would be a category of its own.
    tested = [f for f in features if f not in set(text)]
    if not tested:
        why = "; its features are free text, which the search for a newer regime of the traffic does not compare"
        return Reference(training_table(), TRAINING, trained + why)
    try:
        recent = regime(traffic, features=tested, categorical=categorical, train=sample)
    except errors.DataError as e:  # a reference is no reason to fail the run that trained the version
        why = f"; the labelled requests it was retrained on could not be compared with it ({e})"
        return Reference(training_table(), TRAINING, trained + why)
    if recent is None:
        why = f"; the newest of the {len(traffic):,} labelled requests it was retrained on are distributed like it"
        return Reference(training_table(), TRAINING, trained + why)
    recent = recent.tail(artifacts.REFERENCE_MAX_ROWS)
    description = (
        f"the newest {len(recent):,} of the {len(traffic):,} labelled requests the version was retrained for: "
        f"one distribution, which differs from its training partition ({len(train):,} rows)"
    )
    return Reference(table(model, recent, features=features, target=target), TRAFFIC, description)


def regime(
    traffic: pd.DataFrame, *, features: list[str], categorical: Iterable[str] = (), train: pd.DataFrame
) -> pd.DataFrame | None:
    """The newest rows of ``traffic`` (oldest first) drawn from one distribution, or None when the
    newest block does not differ from ``train`` (then the traffic holds no new regime to prefer)."""
    size = block_rows(len(traffic))
    start = max(0, len(traffic) - size)
    newest = drift.DriftDetector(
        method="ks",  # chi-square for the categorical columns
        threshold=REGIME_ALPHA / len(features),
        categorical=list(categorical),
        columns=features,
    ).fit(traffic.iloc[start:])
    if not _differs(newest, train):
        return None
    while start > 0:
        older = traffic.iloc[max(0, start - size) : start]
        if _differs(newest, older):
            break
        start -= len(older)
    return traffic.iloc[start:]


def block_rows(rows: int) -> int:
    """Rows per block of the regime search over ``rows`` labelled requests."""
    return max(MIN_TRAFFIC_ROWS, math.ceil(rows / REGIME_BLOCKS))


def table(model: Any, rows: pd.DataFrame, *, features: list[str], target: str) -> pd.DataFrame:
    """``rows``' feature columns, ``model``'s predictions on them and their ``target``, as stored."""
    reference = rows[features].reset_index(drop=True)
    for column in reference.columns:
        values = reference[column]
        if values.dtype == object and values.dropna().map(type).nunique() > 1:
            # Parquet needs one type per column; mixed categories are compared as text anyway.
            reference[column] = values.astype(str).where(values.notna(), None)
    reference[drift.PREDICTION_COLUMN] = model.predict(rows[features])
    reference[drift.TARGET_COLUMN] = rows[target].to_numpy()
    return reference


def _differs(detector: drift.DriftDetector, rows: pd.DataFrame) -> bool:
    return any(feature.drifted for feature in detector.score(rows).features)

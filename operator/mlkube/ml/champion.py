"""The challenger against the champion, and the labeled traffic both can be judged on.

What every framing's training run (``experiment``, ``tasks.unsupervised``,
``tasks.forecasting_run``) shares about the project's champion and its feedback:
``labeled_traffic`` reads the captured requests that received ground truth since
``feedback.since``; ``champion_version`` fetches and loads the champion with its pinned digest
checked before its files are fetched and again before it is unpickled; ``comparison_failed`` is the
model card's comparison when the champion could not be scored. ``compare`` and ``recent_holdout``
are the supervised run's comparison, on the test split or on the newest labeled traffic
(``evaluateOn: recent``).

Must not: read the environment, print or exit (the trainer entrypoint does); a spec or data
problem is raised as ``errors.InvalidSpec`` or ``errors.DataError`` naming the field.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from typing import Any

import pandas as pd

from mlkube.api import trainer as trainer_api
from mlkube.common import timestamps
from mlkube.ml import artifacts, errors, evaluation, storage, traffic

# evaluateOn: recent holds out the newest `split.test` share of the labeled traffic, at least this many
# rows, and only when as many labeled rows remain for training; fewer and the test split is used.
RECENT_MIN_ROWS = 30


def labeled_traffic(spec: trainer_api.TrainerInput, features: list[str]) -> pd.DataFrame:
    """Captured requests of the project's deployments that received ground truth since `feedback.since`."""
    source = spec.feedback
    try:
        since = timestamps.parse(source.since)
    except ValueError as e:
        raise errors.InvalidSpec(f"feedback.since: {source.since!r} is not an RFC 3339 time") from e
    try:
        return traffic.labeled(
            source.uri,
            namespace=spec.project.namespace,
            deployments=source.deployments,
            features=features,
            target=spec.project.problem.target,
            since=since,
            options=storage.Options(endpoint=source.endpoint),
        )
    except errors.StorageError as e:
        raise errors.DataError(f"feedback.uri: {e}") from e


def recent_holdout(labeled: pd.DataFrame, *, test_share: float) -> pd.DataFrame | None:
    """The newest labeled rows that judge challenger and champion, or None when there are too few."""
    size = max(RECENT_MIN_ROWS, int(round(test_share * len(labeled))))
    return labeled.tail(size) if len(labeled) >= 2 * size else None


@contextlib.contextmanager
def champion_version(spec: trainer_api.TrainerInput) -> Iterator[artifacts.ModelVersion]:
    """The project's champion, fetched into a temporary directory and loaded; the registry's pinned
    digest is checked before its files are fetched and again before it is unpickled."""
    assert spec.champion is not None
    with tempfile.TemporaryDirectory(prefix="mlkube-champion-") as local:
        options = storage.Options(endpoint=spec.output.endpoint)
        pinned = spec.champion.digest
        directory = artifacts.download(spec.champion.artifact_uri, local, storage_options=options, expected_digest=pinned)
        yield artifacts.load(directory, expected_digest=pinned)


def comparison_failed(
    spec: trainer_api.TrainerInput, challenger: dict[str, float], *, holdout: str, error: Exception
) -> dict[str, Any]:
    """The model card's comparison when the champion could not be scored: the challenger alone and why."""
    assert spec.champion is not None
    metric = spec.project.problem.primary_metric
    return {
        "championVersion": spec.champion.version,
        "metric": metric,
        "challenger": challenger.get(metric),
        "champion": None,
        "challengerBetter": None,
        "holdout": holdout,
        "error": f"{type(error).__name__}: {error}",
    }


def compare(spec: trainer_api.TrainerInput, model, task, *, test: tuple, recent: tuple | None) -> dict[str, Any] | None:
    """Challenger and champion on the same holdout: the newest labeled traffic when given, else the test split."""
    if spec.champion is None:
        return None
    if recent is not None:
        X_test, y_test = recent
        challenger, holdout = evaluation.scores(model, X_test, y_test, task), "recent"
    else:
        (X_test, y_test, challenger), holdout = test, "test"
    metric = spec.project.problem.primary_metric
    try:
        with champion_version(spec) as version:
            columns = [f["name"] for f in version.card.get("featureSchema", [])] or list(X_test.columns)
            missing = [c for c in columns if c not in X_test.columns]
            if missing:
                raise ValueError(f"the champion needs column(s) {', '.join(missing)} that this run's data lacks")
            champion = evaluation.scores(version.pipeline, X_test[columns], y_test, task)
    except Exception as e:
        return comparison_failed(spec, challenger, holdout=holdout, error=e)
    return {
        **evaluation.compare(challenger, champion, metric=metric, champion_version=spec.champion.version),
        "holdout": holdout,
    }

"""Clustering (`problem.task: clustering`): the candidates, the fitted clusterer that answers
`{"cluster": i, "distance": d}`, its metrics and the cluster profiles of the model card.

Candidates: kmeans, gaussian_mixture and agglomerative (ward). Each is fitted once per k in
`problem.clusters.min..max` (k is `n_clusters`, or `n_components` for the mixture, and comes from
the project, never from `algorithms[].params`). Clusters are renumbered by size, largest first, so
cluster 0 is the biggest segment. kmeans and the mixture assign new rows with their own `predict`;
agglomerative clustering has no such thing, so it is served by its fitted nearest centroid (the
mean of each cluster's training rows). `distance` is the Euclidean distance, in the pipeline's
transformed feature space, from the row to its cluster's centroid.

Metrics on the rows given with their assigned clusters: `silhouette`, `davies_bouldin` (lower is
better), `calinski_harabasz` (left out when fewer than two clusters are present), and
`n_clusters` (of the model). Pure; no I/O.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn import base, cluster, mixture
from sklearn import metrics as skm

from mlkube.api import predictions

FIELDS = predictions.FIELDS["clustering"]
DEFAULT_RANGE = (2, 8)
# silhouette is quadratic in the rows: it is computed on a seeded sample of at most this many.
SILHOUETTE_SAMPLE = 2000

# name: (estimator class, fixed defaults, the parameter that is k)
REGISTRY: dict[str, tuple[type, dict[str, Any], str]] = {
    "kmeans": (cluster.KMeans, {"n_init": 4}, "n_clusters"),
    "gaussian_mixture": (mixture.GaussianMixture, {"covariance_type": "full"}, "n_components"),
    "agglomerative": (cluster.AgglomerativeClustering, {"linkage": "ward"}, "n_clusters"),
}


def k_parameter(name: str) -> str:
    return REGISTRY[name][2]


def build(name: str, params: dict[str, Any], *, seed: int) -> Any:
    """The unfitted clustering estimator `name` at `params` (which hold its k)."""
    cls, defaults, _ = REGISTRY[name]
    settings = dict(defaults)
    if "random_state" in cls().get_params():
        settings["random_state"] = seed
    settings.update(params)
    return cls(**settings)


class Clusterer(base.BaseEstimator):
    """A fitted clustering with centroids: `records(X)` answers `{"cluster": i, "distance": d}` per row."""

    record_fields = FIELDS

    def __init__(self, estimator: Any = None):
        self.estimator = estimator

    def fit(self, X, y=None) -> Clusterer:
        X = np.asarray(X, dtype=float)
        estimator = base.clone(self.estimator)
        raw = np.asarray(estimator.fit_predict(X))
        found, counts = np.unique(raw, return_counts=True)
        by_size = found[np.argsort(-counts, kind="stable")]
        size = int(max(raw.max() + 1, getattr(estimator, "n_components", 0), getattr(estimator, "n_clusters", 0)))
        self.mapping_ = np.full(size, -1, dtype=int)
        self.mapping_[by_size] = np.arange(len(by_size))
        self.labels_ = self.mapping_[raw]
        self.centroids_ = np.vstack([X[self.labels_ == c].mean(axis=0) for c in range(len(by_size))])
        self.n_clusters_ = len(by_size)
        self.estimator_ = estimator
        return self

    def _nearest(self, X: np.ndarray) -> np.ndarray:
        distances = ((X[:, None, :] - self.centroids_[None, :, :]) ** 2).sum(axis=2)
        return distances.argmin(axis=1)

    def predict(self, X) -> np.ndarray:
        """The cluster of each row: the estimator's own assignment where it has one, else the nearest centroid."""
        X = np.asarray(X, dtype=float)
        if not hasattr(self.estimator_, "predict"):
            return self._nearest(X)
        assigned = self.mapping_[np.asarray(self.estimator_.predict(X))]
        empty = assigned < 0  # a mixture component that held no training row has no centroid
        if empty.any():
            assigned[empty] = self._nearest(X[empty])
        return assigned

    def records(self, X) -> dict[str, np.ndarray]:
        X = np.asarray(X, dtype=float)
        assigned = self.predict(X)
        distance = np.sqrt(((X - self.centroids_[assigned]) ** 2).sum(axis=1))
        return {"cluster": assigned, "distance": distance}


def scores(X, labels: np.ndarray, *, n_clusters: int, seed: int) -> dict[str, float]:
    """The clustering metrics of transformed rows `X` assigned to `labels`."""
    X = np.asarray(X, dtype=float)
    found: dict[str, float] = {"n_clusters": float(n_clusters)}
    present = len(np.unique(labels))
    if 2 <= present < len(X):
        sample = SILHOUETTE_SAMPLE if len(X) > SILHOUETTE_SAMPLE else None
        found["silhouette"] = float(skm.silhouette_score(X, labels, sample_size=sample, random_state=seed))
        found["davies_bouldin"] = float(skm.davies_bouldin_score(X, labels))
        found["calinski_harabasz"] = float(skm.calinski_harabasz_score(X, labels))
    return {name: value for name, value in found.items() if np.isfinite(value)}


def profiles(rows: pd.DataFrame, labels: np.ndarray, *, numeric: list[str]) -> list[dict[str, Any]]:
    """Per cluster, the model card's profile: size, share of the rows, and the mean of each
    numeric feature in its own units."""
    total = len(rows)
    found = []
    for c in range(int(labels.max()) + 1 if len(labels) else 0):
        members = rows[labels == c]
        found.append(
            {
                "cluster": c,
                "size": int(len(members)),
                "share": round(len(members) / total, 4) if total else 0.0,
                "means": {name: _round(members[name].mean()) for name in numeric} if len(members) else {},
            }
        )
    return found


def _round(value: Any) -> float | None:
    value = float(value)
    return float(f"{value:.6g}") if np.isfinite(value) else None

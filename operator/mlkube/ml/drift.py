"""Data drift and prediction drift between a reference table and a window of live traffic.

``DriftDetector`` follows scikit-learn's estimator contract: the constructor stores parameters,
``fit(reference)`` learns a profile per column (type, method, sorted values, quantile bins for
psi and jensenshannon, category counts; attributes ending in ``_``) and ``score(current)``
returns a ``DriftResult`` whose ``to_status`` is the DriftMonitor status shape. ``score`` sorts
each numeric window column once (missing values sort to the ends and are cut off) and hashes
each categorical one once (``value_counts``). The statistics live in ``drift_methods``; concept
drift (labelled traffic) in ``drift_performance``; the HTML page in ``report``. Nothing here
reads files, talks to Kubernetes or reads the clock.

Column types: numeric dtypes are numeric; bool, string, object and category dtypes, the names
given in ``categorical``, and numeric columns with at most 5 distinct reference values (flags,
small codes: Evidently's rule) are categorical.

``method="auto"`` picks per column as Evidently does, on the reference's row count n: with
n <= 1000 a statistical test (numeric: Kolmogorov-Smirnov; categorical: chi-square), judged on
its p-value; with more rows an effect size (numeric: Wasserstein distance in reference standard
deviations; categorical: Jensen-Shannon distance). On large samples a test finds every
negligible difference significant (p ~ 0 at a million rows); an effect size keeps the verdict
about how much the distribution moved. A method named explicitly that does not apply to a
column's type is replaced by its counterpart of the same scale: ks <-> chi2, wasserstein ->
jensenshannon. PSI and Jensen-Shannon apply to both types (numeric: the reference's quantile bins).
Evidently's z-test for two-valued columns is chi-square here: on a 2 x 2 table the pooled
two-proportion z-test and the chi-square test of homogeneity give the same p-value (z^2 = chi^2).

Missing values: numeric statistics compare the present values and each feature reports its
missing share on both sides (infinities count as missing); for categoricals "missing" is a
bucket of its own, and so is every category the reference never showed ("unseen"). A numeric
column with no values in the window, or none in the reference, is compared on missingness alone.
The dataset drifts when the share of drifted features is at least ``dataset_share``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from concurrent import futures
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlkube.ml import drift_methods, errors

if TYPE_CHECKING:  # drift_performance pulls in scikit-learn's metrics; scoring data drift needs none
    from mlkube.ml import drift_performance

# Columns of the reference and the captured traffic that are not features (the artifact contract).
PREDICTION_COLUMN, TARGET_COLUMN = "__prediction__", "__target__"
HOLDOUT_COLUMN = "__holdout__"  # in a reference: the row is one the version did not learn (validation, test)
AUTO_TEST_MAX_ROWS = 1000
DISCRETE_MAX_VALUES = 5
_COUNTERPART = {"ks": "chi2", "chi2": "ks", "wasserstein": "jensenshannon"}
_BUCKET_METHODS = frozenset({"psi", "jensenshannon"})  # numeric columns compared on quantile bins


@dataclasses.dataclass(frozen=True)
class FeatureDrift:
    """Drift of one column. ``score`` is on ``method``'s scale: a p-value for ks and chi2."""

    name: str
    kind: str
    method: str
    score: float
    threshold: float
    drifted: bool
    importance: float | None = None
    missing_reference: float = 0.0
    missing_current: float = 0.0
    unseen_current: float = 0.0
    note: str | None = None

    @property
    def severity(self) -> float:
        """Score relative to the threshold, 1.0 at the threshold, for ranking across methods."""
        return drift_methods.severity(self.method, self.score, self.threshold)

    @property
    def weighted_severity(self) -> float:
        """Severity times the model's importance of the feature (1 when importance is unknown)."""
        return self.severity * (1.0 if self.importance is None else self.importance)

    def to_status(self) -> dict[str, Any]:
        status = {
            "name": self.name,
            "method": self.method,
            "score": _readable(self.score),
            "threshold": self.threshold,
            "drifted": self.drifted,
        }
        if self.importance is not None:
            status["importance"] = _readable(self.importance)
        return status


@dataclasses.dataclass(frozen=True)
class DriftResult:
    """Per-feature drift in column order, and the dataset verdict."""

    features: tuple[FeatureDrift, ...]
    drift_share: float
    dataset_drift: bool
    dataset_share: float
    n_reference: int
    n_current: int

    @property
    def drifted(self) -> list[FeatureDrift]:
        return [feature for feature in self.features if feature.drifted]

    def ranked(self) -> list[FeatureDrift]:
        """Drifted features first, each group by importance-weighted severity, strongest first."""
        return sorted(self.features, key=lambda f: (f.drifted, f.weighted_severity), reverse=True)

    def explanation(self, top_k: int = 5) -> str:
        """One sentence naming the drifted features that matter most to the model."""
        drifted = [feature for feature in self.ranked() if feature.drifted]
        if not drifted:
            return f"No drift: none of {len(self.features)} features moved past its threshold."
        named = ", ".join(_describe(feature) for feature in drifted[:top_k])
        more = f" and {len(drifted) - top_k} more" if len(drifted) > top_k else ""
        verdict = "dataset drift" if self.dataset_drift else "below the dataset share"
        return f"{len(drifted)} of {len(self.features)} features drifted ({verdict}); most important: {named}{more}."

    def to_status(
        self,
        top_k: int | None = None,
        *,
        prediction: FeatureDrift | None = None,
        performance: drift_performance.PerformanceDrift | None = None,
    ) -> dict[str, Any]:
        """The DriftMonitor status fields: datasetDrift, driftShare, features (ranked, the first
        ``top_k``), and predictionDrift / performance when given."""
        ranked = self.ranked()[:top_k]
        status: dict[str, Any] = {
            "datasetDrift": self.dataset_drift,
            "driftShare": _readable(self.drift_share),
            "features": [feature.to_status() for feature in ranked],
        }
        if prediction is not None:
            status["predictionDrift"] = {
                "method": prediction.method,
                "score": _readable(prediction.score),
                "drifted": prediction.drifted,
            }
        if performance is not None:
            status["performance"] = performance.to_status()
        return status


@dataclasses.dataclass(frozen=True)
class _ColumnProfile:
    """What ``fit`` learned about one reference column."""

    kind: str
    method: str
    threshold: float
    rows: int
    missing: int
    sorted_values: np.ndarray | None = None  # numeric: present values, sorted
    std: float = 0.0
    bin_edges: np.ndarray | None = None  # numeric psi and jensenshannon: interior edges at reference quantiles
    categories: pd.Index | None = None  # categorical: seen categories, most frequent first
    counts: np.ndarray | None = None  # reference counts per bucket (see _bucket_counts)


class DriftDetector:
    """Learns a reference table's columns; scores windows of traffic against them.

    Parameters: ``method`` (auto | psi | ks | chi2 | jensenshannon | wasserstein), ``threshold``
    (per feature on the method's scale, a p-value for ks and chi2; None: each method's default in
    ``drift_methods.DEFAULT_THRESHOLDS``), ``dataset_share`` (share of drifted features that makes
    dataset drift), ``categorical`` (column names to treat as categorical), ``importance``
    ({feature: weight}, the model card's featureImportance), ``columns`` (the columns to compare;
    default all but ``__prediction__`` and ``__target__``), ``n_bins`` (quantile bins of numeric columns for psi and jensenshannon),
    ``n_jobs`` (threads scoring columns in parallel; None is 1).
    """

    def __init__(
        self,
        method: str = "auto",
        threshold: float | None = None,
        dataset_share: float = 0.5,
        categorical: Iterable[str] | None = None,
        importance: Mapping[str, float] | None = None,
        columns: Iterable[str] | None = None,
        n_bins: int = 10,
        n_jobs: int | None = None,
    ):
        self.method = method
        self.threshold = threshold
        self.dataset_share = dataset_share
        self.categorical = categorical
        self.importance = importance
        self.columns = columns
        self.n_bins = n_bins
        self.n_jobs = n_jobs

    def fit(self, reference: pd.DataFrame) -> DriftDetector:
        """Learn each column's type, method, threshold and reference distribution."""
        self._check_parameters()
        if self.columns is None:
            columns = [name for name in reference.columns if name not in (PREDICTION_COLUMN, TARGET_COLUMN, HOLDOUT_COLUMN)]
        else:
            columns = list(self.columns)
        _require_columns(reference, columns, "reference")
        if not columns:
            raise errors.DataError("reference: no columns to compare; pass the feature columns")
        if len(reference) == 0:
            raise errors.DataError("reference: the table has no rows; drift needs reference data")
        forced = set(self.categorical or ())
        self.profiles_ = {name: self._profile(name, reference[name], name in forced) for name in columns}
        self.n_reference_ = len(reference)
        return self

    def score(self, current: pd.DataFrame) -> DriftResult:
        """Compare a window of traffic with the reference, column by column."""
        if not hasattr(self, "profiles_"):
            raise RuntimeError("DriftDetector.score called before fit")
        _require_columns(current, list(self.profiles_), "current window")
        if len(current) == 0:
            raise errors.DataError("current window: no rows to compare with the reference")
        names = list(self.profiles_)
        if (self.n_jobs or 1) > 1:
            with futures.ThreadPoolExecutor(self.n_jobs) as pool:
                features = tuple(pool.map(lambda name: self._score_column(name, current[name]), names))
        else:
            features = tuple(self._score_column(name, current[name]) for name in names)
        drift_share = sum(feature.drifted for feature in features) / len(features)
        return DriftResult(
            features=features,
            drift_share=drift_share,
            dataset_drift=drift_share >= self.dataset_share,
            dataset_share=self.dataset_share,
            n_reference=self.n_reference_,
            n_current=len(current),
        )

    def _check_parameters(self) -> None:
        if self.method != "auto" and self.method not in drift_methods.METHODS:
            allowed = ", ".join(["auto", *sorted(drift_methods.METHODS)])
            raise errors.InvalidSpec(f"dataDrift.method: {self.method!r} is not one of {allowed}")
        if self.threshold is not None and not self.threshold > 0:
            raise errors.InvalidSpec(f"dataDrift.threshold: {self.threshold} must be positive")
        if not 0 < self.dataset_share <= 1:
            raise errors.InvalidSpec(f"dataDrift.datasetShare: {self.dataset_share} must be in (0, 1]")
        if self.n_bins < 2:
            raise errors.InvalidSpec(f"n_bins: {self.n_bins} must be at least 2")

    def _profile(self, name: str, column: pd.Series, forced_categorical: bool) -> _ColumnProfile:
        if not forced_categorical and _is_numeric(column):
            values = _sorted_present(_numbers(column, name, "reference"))
            if values.size and 1 + np.count_nonzero(values[1:] != values[:-1]) > DISCRETE_MAX_VALUES:
                method = _method_for("numeric", self.method, len(column))
                edges = counts = None
                if method in _BUCKET_METHODS:
                    edges = np.unique(np.quantile(values, np.linspace(0, 1, self.n_bins + 1)[1:-1]))
                    counts = _sorted_bin_counts(values, edges)
                return _ColumnProfile(
                    "numeric",
                    method,
                    self._threshold_for(name, method),
                    len(column),
                    len(column) - values.size,
                    sorted_values=values,
                    std=float(values.std()),
                    bin_edges=edges,
                    counts=counts,
                )
        method = _method_for("categorical", self.method, len(column))
        frequencies = column.value_counts(dropna=False)  # one hashing pass, missing values included
        absent = frequencies.index.isna()
        missing = int(frequencies[absent].sum())
        frequencies = frequencies[~absent & (frequencies > 0).to_numpy()]
        return _ColumnProfile(
            "categorical",
            method,
            self._threshold_for(name, method),
            len(column),
            missing,
            categories=pd.Index(frequencies.index.to_numpy()),
            counts=np.concatenate([frequencies.to_numpy(), [0, missing]]),
        )

    def _threshold_for(self, name: str, method: str) -> float:
        threshold = drift_methods.DEFAULT_THRESHOLDS[method] if self.threshold is None else float(self.threshold)
        if method in drift_methods.P_VALUE_METHODS and not threshold < 1:
            raise errors.InvalidSpec(
                f"dataDrift.threshold: {threshold} is a p-value for {method} (column {name!r}) and must be below 1, e.g. 0.05"
            )
        return threshold

    def _score_column(self, name: str, column: pd.Series) -> FeatureDrift:
        profile = self.profiles_[name]
        importance = None if self.importance is None else float(self.importance.get(name, 0.0))
        common = {
            "name": name,
            "kind": profile.kind,
            "threshold": profile.threshold,
            "importance": importance,
            "missing_reference": profile.missing / profile.rows,
        }
        if profile.kind == "categorical":
            counts = _bucket_counts(column, profile.categories)
            score = _compare_counts(profile.method, profile.counts, counts)
            k = len(profile.categories)
            return FeatureDrift(
                **common,
                method=profile.method,
                score=score,
                drifted=drift_methods.is_drifted(profile.method, score, profile.threshold),
                missing_current=float(counts[k + 1] / len(column)),
                unseen_current=float(counts[k] / len(column)),
            )
        values = _sorted_present(_numbers(column, name, "current window"))
        n_missing = len(column) - values.size
        if values.size == 0:
            return self._score_missingness(profile, common, len(column))
        score = self._compare_numbers(profile, values)
        return FeatureDrift(
            **common,
            method=profile.method,
            score=score,
            drifted=drift_methods.is_drifted(profile.method, score, profile.threshold),
            missing_current=n_missing / len(column),
        )

    @staticmethod
    def _compare_numbers(profile: _ColumnProfile, values: np.ndarray) -> float:
        """``values``: the window's present values, sorted."""
        if profile.method == "ks":
            return drift_methods.ks_p_value(profile.sorted_values, values)
        if profile.method == "wasserstein":
            return drift_methods.wasserstein_normalised(profile.sorted_values, values, profile.std)
        return _compare_counts(profile.method, profile.counts, _sorted_bin_counts(values, profile.bin_edges))

    def _score_missingness(self, profile: _ColumnProfile, common: dict[str, Any], rows: int) -> FeatureDrift:
        method = _COUNTERPART.get(profile.method, profile.method)
        threshold = self._threshold_for(common["name"], method)
        reference = np.array([profile.rows - profile.missing, profile.missing])
        score = _compare_counts(method, reference, np.array([0, rows]))
        return FeatureDrift(
            **{**common, "threshold": threshold},
            method=method,
            score=score,
            drifted=drift_methods.is_drifted(method, score, threshold),
            missing_current=1.0,
            note="no values in the current window; compared on missingness",
        )


def prediction_drift(
    reference: pd.Series, current: pd.Series, *, method: str = "psi", threshold: float | None = None, categorical: bool = False
) -> FeatureDrift:
    """Drift of the model's outputs (``__prediction__``): labels are categorical, values numeric.

    ``categorical=True`` treats numeric outputs as labels (integer class ids).
    """
    name = reference.name if reference.name is not None else "__prediction__"
    detector = DriftDetector(
        method=method, threshold=threshold, dataset_share=1.0, columns=[name], categorical=[name] if categorical else None
    )
    detector.fit(reference.rename(name).to_frame())
    return detector.score(current.rename(name).to_frame()).features[0]


def _is_numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def _method_for(kind: str, requested: str, reference_rows: int) -> str:
    if requested == "auto":
        small = reference_rows <= AUTO_TEST_MAX_ROWS
        if kind == "numeric":
            return "ks" if small else "wasserstein"
        return "chi2" if small else "jensenshannon"
    if kind == "categorical" and requested in drift_methods.NUMERIC_ONLY:
        return _COUNTERPART[requested]
    if kind == "numeric" and requested in drift_methods.CATEGORICAL_ONLY:
        return _COUNTERPART[requested]
    return requested


def _compare_counts(method: str, reference: np.ndarray, current: np.ndarray) -> float:
    if method == "psi":
        return drift_methods.psi(reference, current)
    if method == "jensenshannon":
        return drift_methods.jensen_shannon(reference, current)
    return drift_methods.chi2_p_value(reference, current)


def _bucket_counts(column: pd.Series, categories: pd.Index) -> np.ndarray:
    """Counts per bucket: one per reference category, then "unseen", then "missing"."""
    # Hash the window once (value_counts), then place its few distinct values.
    frequencies = column.value_counts(dropna=False)
    k = len(categories)
    bucket = categories.get_indexer(frequencies.index)
    bucket = np.where(bucket < 0, k, bucket)
    bucket[frequencies.index.isna()] = k + 1
    return np.bincount(bucket, weights=frequencies.to_numpy(), minlength=k + 2).astype(np.int64)


def _sorted_present(values: np.ndarray) -> np.ndarray:
    """The finite values, sorted: one sort (a copy), then the non-finite ends cut off.

    numpy sorts -inf first and +inf then NaN last, and ``searchsorted`` uses the same order.
    """
    values = np.sort(values)
    return values[np.searchsorted(values, -np.inf, side="right") : np.searchsorted(values, np.inf, side="left")]


def _sorted_bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of sorted values per bin: bin b holds edges[b-1] <= v < edges[b] (open-ended first and last bins)."""
    return np.diff(np.searchsorted(values, edges, side="left"), prepend=0, append=values.size)


def _numbers(column: pd.Series, name: str, side: str) -> np.ndarray:
    try:
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as error:
        raise errors.DataError(
            f"{side} column {name!r}: expected numbers as in the reference ({error}); "
            f"send numeric values or declare the column categorical"
        ) from error


def _require_columns(table: pd.DataFrame, columns: list[str], side: str) -> None:
    absent = [name for name in columns if name not in table.columns]
    if absent:
        raise errors.DataError(f"{side}: columns {absent} are missing; it must hold every compared feature")


def _describe(feature: FeatureDrift) -> str:
    importance = "" if feature.importance is None else f"importance {feature.importance:.2f}, "
    return f"{feature.name} ({importance}{feature.method} {_readable(feature.score)})"


def _readable(value: float) -> float:
    return float(f"{value:.4g}")

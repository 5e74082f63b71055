"""How a TrainingJob processes its data before and inside the model.

``spec.preprocessing`` of the TrainingJob kind (``api/training.py``): missing values, outliers,
scaling, encoding, binning, class balance, augmentation, feature extraction and selection, the
train/validation/test split and bias mitigation. Plain data with their validation; the CRD schema
is generated from them, so their wire names are the API. The ML core (``ml/processing.py``,
``ml/split.py``, ``ml/mitigation.py``) carries them out.
"""

from __future__ import annotations

from typing import Literal

import pydantic

from mlkube.api import base

ImputeStrategy = Literal["mean", "median", "most_frequent", "constant", "drop"]


class Impute(base.ApiModel):
    """How missing values are filled."""

    numeric: ImputeStrategy = "median"
    """Strategy for numeric columns; drop removes rows with a missing value."""
    categorical: Literal["most_frequent", "constant", "drop"] = "most_frequent"
    """Strategy for categorical columns; drop removes rows with a missing value."""
    fill_value: str | float | None = None
    """The value used by the constant strategy (default 0 for numbers, "missing" for categories)."""


class Outliers(base.ApiModel):
    """Outlier handling on the training rows."""

    method: Literal["iqr", "zscore", "isolation_forest", "none"] = "none"
    """Detection method."""
    factor: float = pydantic.Field(1.5, gt=0)
    """IQR multiplier, or the z-score limit for zscore."""
    action: Literal["clip", "drop"] = "clip"
    """Clip values to the limits, or drop the rows (training rows only)."""


class Bin(base.ApiModel):
    """Discretisation of one numeric column."""

    column: str = pydantic.Field(min_length=1)
    """The column to bin."""
    bins: int = pydantic.Field(5, ge=2, le=1000)
    """Number of bins."""
    strategy: Literal["uniform", "quantile", "kmeans"] = "quantile"
    """How bin edges are chosen."""


class Augment(base.ApiModel):
    """Synthetic copies of training rows."""

    method: Literal["none", "noise"] = "none"
    """noise adds copies of numeric training rows with Gaussian jitter."""
    copies: int = pydantic.Field(1, ge=1, le=100)
    """Jittered copies per training row."""
    scale: float = pydantic.Field(0.05, gt=0, le=10)
    """Jitter standard deviation as a share of each column's standard deviation."""


class FeatureExtraction(base.ApiModel):
    """Derived features."""

    method: Literal["none", "pca"] = "none"
    """pca replaces the features with principal components."""
    components: int = pydantic.Field(10, ge=1)
    """Number of principal components (capped at the number of features)."""


class FeatureSelection(base.ApiModel):
    """Feature selection after encoding."""

    method: Literal["none", "variance", "kbest", "model"] = "none"
    """variance drops near-constant features, kbest keeps the k best by a univariate test,
    model keeps the features a tree ensemble finds important."""
    k: int = pydantic.Field(20, ge=1)
    """Features kept by kbest (capped at the number of features)."""
    threshold: float | None = pydantic.Field(None, ge=0)
    """Variance threshold for variance, importance threshold for model (default: mean importance)."""


class Split(base.ApiModel):
    """Partition into train, validation and test sets."""

    test: float = pydantic.Field(0.2, gt=0, lt=1)
    """Share of rows held out for the final test."""
    validation: float = pydantic.Field(0.2, ge=0, lt=1)
    """Share of rows held out for validation (0: validate by cross-validation only)."""
    stratify: bool = True
    """Keep class proportions in every partition (classification)."""
    seed: int = 42
    """Random seed of the split."""
    time_column: str | None = None
    """For time-ordered data: split by this column, oldest rows for training, newest for test."""

    @pydantic.model_validator(mode="after")
    def _shares_leave_training_rows(self) -> Split:
        if self.test + self.validation >= 1:
            raise ValueError("test + validation must be below 1 so that rows are left for training")
        return self

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "(has(self.test) ? self.test : 0.2) + (has(self.validation) ? self.validation : 0.2) < 1.0",
                    "message": "test + validation must be below 1 so that rows are left for training",
                }
            ]
        }
    )


class Mitigation(base.ApiModel):
    """Bias mitigation across the project's sensitive features (``MLProject.spec.fairness``).

    The search tunes the estimator without it; the chosen configuration is then fitted with it."""

    method: Literal["none", "reweighing", "exponentiated_gradient", "threshold_optimizer"] = "none"
    """reweighing: Kamiran-Calders sample weights that make label and group independent;
    exponentiated_gradient: fairlearn's reductions around the estimator (it must accept sample
    weights); threshold_optimizer: per-group decision thresholds on the fitted model, which then
    needs the sensitive features in every prediction request."""
    constraint: Literal["demographic_parity", "equalized_odds", "equal_opportunity"] | None = None
    """What exponentiated_gradient and threshold_optimizer equalise across groups (default
    demographic_parity); reweighing always targets demographic parity."""

    @pydantic.model_validator(mode="after")
    def _constraint_needs_a_reduction(self) -> Mitigation:
        if self.constraint is not None and self.method in ("none", "reweighing"):
            raise ValueError(
                f"constraint: applies to exponentiated_gradient and threshold_optimizer, not {self.method}; remove it"
            )
        return self

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.constraint) || (has(self.method) && self.method in "
                    "['exponentiated_gradient', 'threshold_optimizer'])",
                    "message": "constraint applies to exponentiated_gradient and threshold_optimizer only",
                }
            ]
        }
    )


class Preprocessing(base.ApiModel):
    """Data processing. Everything that runs at prediction time is part of the fitted model."""

    drop_duplicates: bool = True
    """Drop duplicate rows before splitting."""
    impute: Impute = pydantic.Field(default_factory=Impute)
    """Missing values."""
    outliers: Outliers = pydantic.Field(default_factory=Outliers)
    """Outliers in numeric columns."""
    scale: Literal["standard", "minmax", "robust", "none"] = "standard"
    """Scaling of numeric columns."""
    encode: Literal["onehot", "ordinal", "target"] = "onehot"
    """Encoding of categorical columns; unknown categories at prediction time are handled."""
    bins: list[Bin] = []
    """Numeric columns to discretise."""
    balance: Literal["none", "class_weight", "oversample", "undersample", "smote"] = "none"
    """Class balancing (classification)."""
    augment: Augment = pydantic.Field(default_factory=Augment)
    """Data augmentation of the training rows."""
    feature_extraction: FeatureExtraction = pydantic.Field(default_factory=FeatureExtraction)
    """Feature extraction."""
    feature_selection: FeatureSelection = pydantic.Field(default_factory=FeatureSelection)
    """Feature selection."""
    split: Split = pydantic.Field(default_factory=Split)
    """Train/validation/test partition."""
    mitigation: Mitigation = pydantic.Field(default_factory=Mitigation)
    """Bias mitigation across the project's fairness.sensitiveFeatures."""

"""The TrainingJob's `preprocessing` spec turned into one fitted-at-once pipeline.

`prepare` does what happens to the whole table before it is split (duplicate rows, rows without
a target, rows with a missing value when an impute strategy is `drop`). `build` returns the
pipeline that is fitted on the training partition only and served as is:

    [drop outliers] [jitter copies]           training-only row samplers (no-ops at predict time)
    ColumnTransformer                         impute, clip, scale / bin / encode, per column kind
    [oversample | undersample | smote]        training-only, after encoding so SMOTE sees numbers
    [feature selection] [pca]
    estimator

Without row samplers it is a plain `sklearn.pipeline.Pipeline`, otherwise an
`imblearn.pipeline.Pipeline` (a subclass whose samplers only run in `fit`). Because every
statistic is learned inside the pipeline, cross-validation refits it per fold and nothing leaks
from held-out rows. No I/O, no spec parsing beyond the typed `preprocessing_api.Preprocessing`.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
from sklearn import compose, feature_selection, impute, pipeline, preprocessing

from mlkube.api import preprocessing as preprocessing_api
from mlkube.api import project
from mlkube.ml import errors, profile, transformers
from mlkube.ml.tasks import text

DEFAULT_NUMERIC_FILL = 0.0
DEFAULT_CATEGORICAL_FILL = "missing"


@dataclasses.dataclass(frozen=True)
class Columns:
    """Feature columns by how they are processed."""

    numeric: list[str]
    categorical: list[str]  # categorical and boolean
    binned: list[str]
    text: list[str] = dataclasses.field(default_factory=list)  # free text: TF-IDF (problem.textColumns)


def columns_of(table: pd.DataFrame, features: list[str], spec: preprocessing_api.Preprocessing, *, text_columns=()) -> Columns:
    binned = [b.column for b in spec.bins]
    texts = [c for c in features if c in set(text_columns)]
    kinds = {c: profile.feature_type(table[c]) for c in features if c not in texts}
    return Columns(
        numeric=[c for c in kinds if kinds[c] == "numeric" and c not in binned],
        categorical=[c for c in kinds if kinds[c] in ("categorical", "boolean")],
        binned=[c for c in kinds if c in binned],
        text=texts,
    )


def prepare(
    table: pd.DataFrame, problem: project.Problem, spec: preprocessing_api.Preprocessing, columns: Columns
) -> pd.DataFrame:
    """The table ready to split: duplicates, unlabeled rows and (for `drop` strategies) incomplete rows removed."""
    table = table.dropna(subset=[problem.target])
    if spec.drop_duplicates:
        table = table.drop_duplicates()
    dropped = non_nullable(spec, columns)
    if dropped:
        table = table.dropna(subset=sorted(dropped))
    if table.empty:
        raise errors.DataError(
            "no rows are left after dropping duplicates and rows with missing values; "
            "use an impute strategy other than drop or fix the data"
        )
    return table.reset_index(drop=True)


def non_nullable(spec: preprocessing_api.Preprocessing, columns: Columns) -> set[str]:
    """Columns whose missing values drop the row (impute `drop`): the served model refuses nulls there."""
    dropped = set()
    if spec.impute.numeric == "drop":
        dropped |= {*columns.numeric, *columns.binned}
    if spec.impute.categorical == "drop":
        dropped |= set(columns.categorical)
    return dropped


def check(spec: preprocessing_api.Preprocessing, problem: project.Problem) -> None:
    """Refuse spec combinations no pipeline can honour (errors.InvalidSpec)."""
    if spec.outliers.method == "isolation_forest" and spec.outliers.action == "clip":
        raise errors.InvalidSpec(
            "preprocessing.outliers: isolation_forest flags rows, it has no limits to clip to; use action: drop"
        )
    if problem.task == "regression" and spec.balance not in ("none",):
        raise errors.InvalidSpec(f"preprocessing.balance: {spec.balance} needs a classification task; use none for regression")


def build(
    spec: preprocessing_api.Preprocessing,
    columns: Columns,
    estimator,
    *,
    task: str,
    seed: int,
    smote_neighbours: int = 5,
) -> pipeline.Pipeline:
    """The unfitted pipeline for `spec` ending in `estimator`."""
    steps = []
    if spec.outliers.method != "none" and spec.outliers.action == "drop" and columns.numeric:
        steps.append(
            (
                "drop_outliers",
                _sampler(
                    transformers.drop_outliers,
                    columns=columns.numeric,
                    method=spec.outliers.method,
                    factor=spec.outliers.factor,
                    random_state=seed,
                ),
            )
        )
    jittered = [*columns.numeric, *columns.binned]
    if spec.augment.method == "noise" and jittered:
        steps.append(
            (
                "augment",
                _sampler(
                    transformers.jitter,
                    columns=jittered,
                    copies=spec.augment.copies,
                    scale=spec.augment.scale,
                    random_state=seed,
                ),
            )
        )
    steps.append(("features", column_transformer(spec, columns, task=task)))
    balance = _balancer(spec.balance, seed=seed, smote_neighbours=smote_neighbours)
    if balance is not None:
        steps.append(("balance", balance))
    selection = _selector(spec.feature_selection, task=task, seed=seed)
    if selection is not None:
        steps.append(("select", selection))
    if spec.feature_extraction.method == "pca":
        steps.append(("pca", transformers.PrincipalComponents(spec.feature_extraction.components, random_state=seed)))
    steps.append(("model", estimator))
    if any(name in ("drop_outliers", "augment", "balance") for name, _ in steps):
        from imblearn import pipeline as imblearn_pipeline

        return imblearn_pipeline.Pipeline(steps)
    return pipeline.Pipeline(steps)


def column_transformer(spec: preprocessing_api.Preprocessing, columns: Columns, *, task: str) -> compose.ColumnTransformer:
    """Per-column-kind transformations, learned on the rows they are fitted on."""
    branches = []
    if columns.numeric:
        steps = _numeric_imputer(spec.impute)
        if spec.outliers.method in ("iqr", "zscore") and spec.outliers.action == "clip":
            steps.append(transformers.OutlierClipper(spec.outliers.method, spec.outliers.factor))
        if spec.scale != "none":
            steps.append(_SCALERS[spec.scale]())
        branches.append(("numeric", _steps(steps), columns.numeric))
    for bin_spec in spec.bins:
        steps = _numeric_imputer(spec.impute)
        steps.append(
            preprocessing.KBinsDiscretizer(
                n_bins=bin_spec.bins,
                encode="onehot-dense",
                strategy=bin_spec.strategy,
                quantile_method="averaged_inverted_cdf",
                random_state=0,
            )
        )
        branches.append((f"bin_{bin_spec.column}", _steps(steps), [bin_spec.column]))
    if columns.categorical:
        steps = [transformers.AsCategories()]
        if spec.impute.categorical != "drop":
            fill = spec.impute.fill_value if isinstance(spec.impute.fill_value, str) else DEFAULT_CATEGORICAL_FILL
            steps.append(impute.SimpleImputer(strategy=spec.impute.categorical, fill_value=fill))
        steps.append(_encoder(spec.encode, task=task))
        branches.append(("categorical", _steps(steps), columns.categorical))
    for column in columns.text:
        branches.append((f"text_{column}", text.TextVectorizer(), [column]))
    # TF-IDF features stay sparse (tens of thousands of columns, mostly zeros); the rest is dense.
    sparse_threshold = 1.0 if columns.text else 0.0
    return compose.ColumnTransformer(
        branches, remainder="drop", sparse_threshold=sparse_threshold, verbose_feature_names_out=False
    )


_SCALERS = {
    "standard": preprocessing.StandardScaler,
    "minmax": preprocessing.MinMaxScaler,
    "robust": preprocessing.RobustScaler,
}


def _numeric_imputer(spec: preprocessing_api.Impute) -> list:
    if spec.numeric == "drop":
        return []
    fill = spec.fill_value if isinstance(spec.fill_value, (int, float)) else DEFAULT_NUMERIC_FILL
    return [impute.SimpleImputer(strategy=spec.numeric, fill_value=fill)]


def _encoder(method: str, *, task: str):
    if method == "onehot":
        return preprocessing.OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    if method == "ordinal":
        return preprocessing.OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1)
    # Target encoding cross-fits internally, so a row's own target never encodes that row.
    return preprocessing.TargetEncoder(target_type="continuous" if task == "regression" else "auto")


def _selector(spec: preprocessing_api.FeatureSelection, *, task: str, seed: int):
    if spec.method == "variance":
        return feature_selection.VarianceThreshold(threshold=spec.threshold or 0.0)
    if spec.method == "kbest":
        score = feature_selection.f_classif if task == "classification" else feature_selection.f_regression
        return transformers.KBest(score_func=score, k=spec.k)
    if spec.method == "model":
        return transformers.model_selector(task, threshold=spec.threshold, random_state=seed)
    return None


def _balancer(method: str, *, seed: int, smote_neighbours: int):
    if method in ("none", "class_weight"):
        return None  # class_weight is an estimator parameter (see algorithms.build)
    from imblearn import over_sampling, under_sampling

    if method == "oversample":
        return over_sampling.RandomOverSampler(random_state=seed)
    if method == "undersample":
        return under_sampling.RandomUnderSampler(random_state=seed)
    return over_sampling.SMOTE(random_state=seed, k_neighbors=max(1, smote_neighbours))


def _sampler(function, **kw_args):
    from imblearn import FunctionSampler

    return FunctionSampler(func=function, kw_args=kw_args, validate=False)


def _steps(steps: list):
    return pipeline.make_pipeline(*steps) if steps else "passthrough"


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Everything needed to build the run's pipeline around any estimator (picklable, for trial workers)."""

    spec: preprocessing_api.Preprocessing
    columns: Columns
    task: str
    seed: int
    smote_neighbours: int = 5

    def pipeline(self, estimator) -> pipeline.Pipeline:
        return build(self.spec, self.columns, estimator, task=self.task, seed=self.seed, smote_neighbours=self.smote_neighbours)

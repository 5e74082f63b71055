"""A tiny real model version for the serving tests: breast-cancer logistic regression.

Trains on `sklearn.datasets.load_breast_cancer` plus one derived categorical feature
(`size_band`), and writes the version with `mlkube.ml.artifacts.write`, as the trainer does.
"""

from __future__ import annotations

import datetime
import pathlib

import numpy as np
import pandas as pd
from sklearn import compose, datasets, linear_model, pipeline, preprocessing

from mlkube.ml import artifacts

FEATURES = 8  # the first eight numeric columns keep the requests short


def breast_cancer_frame() -> tuple[pd.DataFrame, pd.Series]:
    data = datasets.load_breast_cancer(as_frame=True)
    frame = data.frame.iloc[:, :FEATURES].copy()
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    frame["size_band"] = np.where(frame["mean_radius"] > frame["mean_radius"].median(), "large", "small")
    return frame, data.target


def write_version(
    dest: pathlib.Path, *, C: float = 1.0, numeric_only: bool = False, unknown_categories: str = "ignore"
) -> artifacts.ArtifactInfo:
    """`unknown_categories`: the encoder's handle_unknown ("error": the pipeline raises on a category it never saw)."""
    frame, target = breast_cancer_frame()
    if numeric_only:
        frame = frame.drop(columns="size_band")
    numeric = [c for c in frame.columns if c != "size_band"]
    steps = [("num", preprocessing.StandardScaler(), numeric)]
    if not numeric_only:
        steps.append(("cat", preprocessing.OneHotEncoder(handle_unknown=unknown_categories), ["size_band"]))
    model = pipeline.Pipeline(
        [("prep", compose.ColumnTransformer(steps)), ("clf", linear_model.LogisticRegression(C=C, max_iter=2000))]
    ).fit(frame, target)
    schema = [{"name": c, "type": "numeric", "dtype": "float64", "nullable": False} for c in numeric]
    if not numeric_only:
        schema.append(
            {"name": "size_band", "type": "categorical", "dtype": "object", "categories": ["large", "small"], "nullable": False}
        )
    reference = frame.iloc[:100].copy()
    reference["__prediction__"] = model.predict(frame.iloc[:100])
    reference["__target__"] = target.iloc[:100].to_numpy()
    card = {
        "schemaVersion": 1,
        "problem": {"task": "classification", "target": "target", "positiveClass": 1, "primaryMetric": "roc_auc"},
        "algorithm": "logistic_regression",
        "params": {"C": C},
        "featureSchema": schema,
        "classes": [0, 1],
        "createdAt": datetime.datetime.now(datetime.UTC).isoformat(),
    }
    return artifacts.write(dest.as_uri(), pipeline=model, card=card, metrics={"test": {}}, reference=reference)


def instance(row: int = 0, *, numeric_only: bool = False) -> dict:
    frame, _ = breast_cancer_frame()
    if numeric_only:
        frame = frame.drop(columns="size_band")
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in frame.iloc[row].to_dict().items()}

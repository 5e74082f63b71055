"""A small real model version for the batch-scoring unit tests: Palmer penguins, species from
six features (two categorical, one of them nullable), written with the trainer's artifact writer."""

from __future__ import annotations

import pathlib

import numpy as np
import palmerpenguins
import pandas as pd
from sklearn import compose, impute, linear_model, pipeline, preprocessing

from mlkube.ml import artifacts

FEATURES = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]
NUMERIC = FEATURES[1:5]


def penguins() -> pd.DataFrame:
    """The penguins with a species, an id column first."""
    frame = palmerpenguins.load_penguins().dropna(subset=["species"]).reset_index(drop=True)
    frame.insert(0, "penguin_id", np.arange(len(frame)))
    return frame


def write_version(dest: pathlib.Path) -> artifacts.ArtifactInfo:
    frame = penguins()
    X, y = frame[FEATURES], frame["species"]
    model = pipeline.Pipeline(
        [
            (
                "prep",
                compose.ColumnTransformer(
                    [
                        ("num", pipeline.make_pipeline(impute.SimpleImputer(), preprocessing.StandardScaler()), NUMERIC),
                        (
                            "cat",
                            pipeline.make_pipeline(
                                impute.SimpleImputer(strategy="most_frequent"),
                                preprocessing.OneHotEncoder(handle_unknown="ignore"),
                            ),
                            ["island", "sex"],
                        ),
                    ]
                ),
            ),
            ("clf", linear_model.LogisticRegression(max_iter=1000)),
        ]
    ).fit(X, y)
    schema = [{"name": "island", "type": "categorical", "categories": sorted(X["island"].unique()), "nullable": False}]
    schema += [{"name": c, "type": "numeric", "nullable": True} for c in NUMERIC]
    schema += [{"name": "sex", "type": "categorical", "categories": ["female", "male"], "nullable": True}]
    card = {
        "schemaVersion": 1,
        "problem": {"task": "classification", "target": "species"},
        "featureSchema": schema,
        "classes": list(model.classes_),
    }
    reference = X.iloc[:50].assign(__prediction__=model.predict(X.iloc[:50]), __target__=y.iloc[:50].to_numpy())
    return artifacts.write(dest.as_uri(), pipeline=model, card=card, metrics={"test": {}}, reference=reference)


def instance(row: pd.Series) -> dict:
    """A row as the V1 instance a client would send (None for missing values)."""
    return {k: (None if pd.isna(row[k]) else (row[k] if isinstance(row[k], str) else float(row[k]))) for k in FEATURES}

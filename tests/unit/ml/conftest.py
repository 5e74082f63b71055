"""Small real tables for the ML core's unit tests."""

import numpy as np
import pandas as pd
import pytest
from sklearn import datasets


@pytest.fixture
def cancer() -> pd.DataFrame:
    """Breast cancer (569 rows, 30 numeric features), target y in {malignant, benign}."""
    frame = datasets.load_breast_cancer(as_frame=True).frame.rename(columns={"target": "y"})
    frame["y"] = frame["y"].map({0: "malignant", 1: "benign"})
    return frame


@pytest.fixture
def mixed() -> pd.DataFrame:
    """200 rows: two numeric, one categorical and one boolean feature; y depends on x1 and colour."""
    rng = np.random.default_rng(0)
    n = 200
    frame = pd.DataFrame(
        {
            "x1": rng.normal(10, 2, n),
            "x2": rng.uniform(0, 100, n),
            "colour": rng.choice(["red", "green", "blue"], n),
            "flag": rng.choice([True, False], n),
        }
    )
    frame["y"] = np.where((frame["x1"] > 10) | (frame["colour"] == "red"), "yes", "no")
    return frame

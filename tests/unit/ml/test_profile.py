"""profile: the data-quality profile and the feature schema kept in the model card."""

import numpy as np
import pandas as pd

from mlkube.ml import profile


def test_profile_reports_missing_duplicates_constants_and_numeric_text():
    table = pd.DataFrame(
        {
            "a": [1.0, np.nan, 3.0, 1.0],
            "const": [7, 7, 7, 7],
            "amount": ["1.5", "2", " 3 ", "1.5"],
            "city": ["x", "y", None, "x"],
        }
    )
    found = profile.of(table)
    assert found["missingShare"] == {"a": 0.25, "const": 0.0, "amount": 0.0, "city": 0.25}
    assert found["duplicateRows"] == 1
    assert found["constantColumns"] == ["const"]
    assert found["typeMismatches"] == {"amount": "numbers stored as strings"}
    assert (found["rows"], found["columns"]) == (4, 4)


def test_feature_schema_types_categories_and_nullability(mixed):
    schema = profile.feature_schema(mixed, ["x1", "colour", "flag"], non_nullable={"x1"})
    assert schema == [
        {"name": "x1", "type": "numeric", "dtype": "float64", "nullable": False},
        {
            "name": "colour",
            "type": "categorical",
            "dtype": "object",
            "categories": ["blue", "green", "red"],
            "nullable": True,
        },
        {"name": "flag", "type": "boolean", "dtype": "bool", "nullable": True},
    ]

"""Batch validation and scoring agree with the model server row by row: a row is accepted exactly
when the server accepts it as one instance, becomes the same frame row and gets the same answer;
a refused row gets the server's message and does not fail its neighbours."""

from __future__ import annotations

import batchmodel
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mlkube.api import batch
from mlkube.ml import artifacts
from mlkube.serving import columns, postprocessing, schema, scorer

CARD = {
    "featureSchema": [
        {"name": "island", "type": "categorical", "categories": ["Biscoe", "Dream"], "nullable": False},
        {"name": "bill", "type": "numeric", "nullable": True},
        {"name": "mass", "type": "numeric", "nullable": False},
        {"name": "sex", "type": "categorical", "categories": ["female", "male"], "nullable": True},
        {"name": "tagged", "type": "boolean", "nullable": False},
        {"name": "site", "type": "categorical", "categories": [1, 2, 3], "nullable": False},
    ]
}
FEATURES = schema.FeatureSchema.from_card(CARD)


def server(instance: dict) -> pd.DataFrame | str:
    """The server's frame for one instance, or its refusal without the ``instances[0]: `` prefix."""
    try:
        return FEATURES.frame_from_instances([instance])
    except schema.SchemaError as refused:
        return str(refused).removeprefix("instances[0]: ")


def assert_agrees(arrays: dict[str, pa.Array], instances: list[dict]) -> columns.Validated:
    validated = columns.validate(FEATURES, arrays)
    refused = {f.row: f for f in validated.failures}
    kept = iter(range(len(validated.frame)))
    for row, instance in enumerate(instances):
        online = server(instance)
        if isinstance(online, str):
            assert not validated.accepted[row] and refused[row].reason == online, (row, instance)
        else:
            assert validated.accepted[row], (row, instance, refused.get(row))
            mine = validated.frame.iloc[[next(kept)]].reset_index(drop=True)
            pd.testing.assert_frame_equal(mine, online)
    return validated


TYPED = [  # as Parquet would carry them: one type per column
    {"island": "Biscoe", "bill": 39.1, "mass": 3750.0, "sex": "male", "tagged": True, "site": 1},
    {"island": "Dream", "bill": None, "mass": 3800.0, "sex": None, "tagged": False, "site": 2},
    {"island": None, "bill": 40.0, "mass": 3900.0, "sex": "female", "tagged": True, "site": 3},
    {"island": "Mars", "bill": 41.0, "mass": None, "sex": "female", "tagged": True, "site": 3},
    {"island": "Biscoe", "bill": 42.0, "mass": 4000.0, "sex": "male", "tagged": None, "site": None},
]


def test_typed_columns_agree_with_the_server_row_by_row():
    arrays = {name: pa.array([row[name] for row in TYPED]) for name in FEATURES.names}
    validated = assert_agrees(arrays, TYPED)
    assert [(f.row, f.column, f.kind) for f in validated.failures] == [
        (2, "island", "feature 'island' is null but the model does not accept nulls"),
        (3, "mass", "feature 'mass' is null but the model does not accept nulls"),
        (4, "tagged", "feature 'tagged' is null but the model does not accept nulls"),
    ]


def test_a_typed_column_of_the_wrong_type_refuses_each_value_as_the_server_does():
    rows = [dict(TYPED[0], island=1), dict(TYPED[0], island=2)]
    arrays = {name: pa.array([row[name] for row in rows]) for name in FEATURES.names}
    validated = assert_agrees(arrays, rows)
    assert [f.reason for f in validated.failures] == [
        "feature 'island' expects a string, got 1",
        "feature 'island' expects a string, got 2",
    ]
    numbers_as_flags = {**arrays, "island": pa.array(["Biscoe", "Dream"]), "tagged": pa.array([1, 0])}
    assert [f.kind for f in columns.validate(FEATURES, numbers_as_flags).failures] == [
        "feature 'tagged' expects true or false"
    ] * 2


TEXT = [  # CSV cells: text or empty (null); what the server would get once the text is read
    (["Biscoe", "39.1", "3750", "male", "true", "1"], {"bill": 39.1, "mass": 3750.0, "tagged": True, "site": 1}),
    (["Dream", None, " 3800 ", None, "False", "2"], {"bill": None, "mass": 3800.0, "tagged": False, "site": 2}),
    (["Biscoe", "abc", "3900", "female", "true", "3"], {"bill": "abc", "mass": 3900.0, "tagged": True, "site": 3}),
    (["Dream", "40", "4000", "female", "yes", "2"], {"bill": 40.0, "mass": 4000.0, "tagged": "yes", "site": 2}),
    (["Dream", "40", "4000", "female", "true", "two"], {"bill": 40.0, "mass": 4000.0, "tagged": True, "site": "two"}),
]


def test_text_is_read_as_the_feature_type_then_checked_as_the_server_does():
    names = FEATURES.names
    arrays = {name: pa.array([cells[i] for cells, _ in TEXT], pa.string()) for i, name in enumerate(names)}
    instances = [{**dict(zip(names, cells)), **typed} for cells, typed in TEXT]
    validated = assert_agrees(arrays, instances)
    assert [(f.row, f.column, f.reason) for f in validated.failures] == [
        (2, "bill", "feature 'bill' expects a number, got 'abc'"),
        (3, "tagged", "feature 'tagged' expects true or false, got 'yes'"),
        (4, "site", "feature 'site' expects a number (a category code), got 'two'"),
    ]


def test_a_missing_feature_column_names_it():
    arrays = {name: pa.array([row[name] for row in TYPED]) for name in FEATURES.names if name != "mass"}
    with pytest.raises(schema.SchemaError, match="input: no column 'mass'"):
        columns.validate(FEATURES, arrays)


@pytest.fixture(scope="module")
def version(tmp_path_factory):
    path = tmp_path_factory.mktemp("version") / "v1"
    info = batchmodel.write_version(path)
    return artifacts.load(path, expected_digest=info.digest)


@pytest.mark.parametrize("threshold", [None, 0.9])
def test_a_scored_row_is_the_online_prediction_of_that_row(version, threshold):
    block = postprocessing.Postprocessing(labels={"Adelie": "adelie"})
    output = batch.Output(uri="file:///out/", passthrough=["penguin_id"], include=["prediction", "probabilities", "modelVersion"])
    frame = batchmodel.penguins()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    scored = scorer.Scorer(version.pipeline, version.card, block=block, output=output, version=4).score(table)
    out = scored.table.to_pandas()
    assert list(out.columns) == [
        "penguin_id",
        "prediction",
        "probability_adelie",
        "probability_Chinstrap",
        "probability_Gentoo",
        "model_version",
    ]
    assert out["penguin_id"].tolist() == frame["penguin_id"].tolist() and set(out["model_version"]) == {4}
    decider = postprocessing.Decider(version.pipeline, version.card, block)
    for row in range(0, len(frame), 7):
        online = decider.predict(features_of(version).frame_from_instances([batchmodel.instance(frame.iloc[row])]))
        assert out["prediction"][row] == online.labels[0]
        for name, probability in online.probabilities[0].items():
            assert out[f"probability_{name}"][row] == pytest.approx(probability, abs=1e-12)
    assert scored.failures == [] and np.array_equal(scored.labels, out["prediction"].to_numpy(dtype=object))


def features_of(version) -> schema.FeatureSchema:
    return schema.FeatureSchema.from_card(version.card)


def test_a_regression_scores_values_and_has_no_probabilities(tmp_path):
    from sklearn import compose, linear_model, pipeline, preprocessing

    frame = batchmodel.penguins().dropna(subset=["body_mass_g", "flipper_length_mm", "island"])
    X, y = frame[["island", "flipper_length_mm"]], frame["body_mass_g"]
    prep = compose.ColumnTransformer([("cat", preprocessing.OneHotEncoder(), ["island"])], remainder="passthrough")
    model = pipeline.make_pipeline(prep, linear_model.LinearRegression()).fit(X, y)
    card = {
        "problem": {"task": "regression", "target": "body_mass_g"},
        "featureSchema": [
            {"name": "island", "type": "categorical", "categories": sorted(X["island"].unique()), "nullable": False},
            {"name": "flipper_length_mm", "type": "numeric", "nullable": False},
        ],
    }
    output = batch.Output(uri="file:///out/", include=["prediction", "probabilities"])
    block = postprocessing.Postprocessing()
    scored = scorer.Scorer(model, card, block=block, output=output, version=2).score(
        pa.Table.from_pandas(X, preserve_index=False)
    )
    assert scored.table.column_names == ["prediction"] and scored.table.schema.field("prediction").type == pa.float64()
    online = postprocessing.Decider(model, card, block).predict(
        schema.FeatureSchema.from_card(card).frame_from_instances([{"island": "Dream", "flipper_length_mm": 190.0}])
    )
    row = X.reset_index(drop=True).index[(X["island"].to_numpy() == "Dream") & (X["flipper_length_mm"].to_numpy() == 190.0)][0]
    assert scored.table.column("prediction")[int(row)].as_py() == pytest.approx(online.labels[0], rel=1e-12)

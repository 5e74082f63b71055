"""Request validation against the featureSchema: frames, dtypes and messages that name the field."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from mlkube.serving import schema

CARD = {
    "featureSchema": [
        {"name": "age", "type": "numeric", "dtype": "float64", "nullable": True},
        {"name": "home", "type": "categorical", "dtype": "object", "categories": ["own", "rent"], "nullable": False},
        {"name": "active", "type": "boolean", "dtype": "bool", "nullable": False},
    ]
}


@dataclasses.dataclass
class Input:  # the attributes of kserve's InferInput that the schema reads
    name: str
    shape: list
    data: list


@pytest.fixture
def fs() -> schema.FeatureSchema:
    return schema.FeatureSchema.from_card(CARD)


def test_objects_become_a_frame_in_schema_order_with_training_dtypes(fs):
    frame = fs.frame_from_instances(
        [{"active": True, "home": "own", "age": 41, "extra": 1}, {"age": None, "home": "rent", "active": False}]
    )
    assert list(frame.columns) == ["age", "home", "active"]
    assert frame["age"].dtype == np.float64 and np.isnan(frame["age"][1])
    assert frame["home"].tolist() == ["own", "rent"] and frame["active"].dtype == bool


def test_arrays_follow_schema_order(fs):
    frame = fs.frame_from_instances([[41, "own", True]])
    assert frame.iloc[0].tolist() == [41.0, "own", True]


@pytest.mark.parametrize(
    "instances, message",
    [
        ([{"home": "own", "active": True}], "instances[0]: missing feature 'age'"),
        ([{"age": 1, "home": "own", "active": True}, {"age": 1, "active": True}], "instances[1]: missing feature 'home'"),
        ([{"age": "41", "home": "own", "active": True}], "instances[0]: feature 'age' expects a number, got '41'"),
        ([{"age": True, "home": "own", "active": True}], "feature 'age' expects a number"),
        ([{"age": 1, "home": 3, "active": True}], "feature 'home' expects a string, got 3"),
        ([{"age": 1, "home": None, "active": True}], "feature 'home' is null but the model does not accept nulls"),
        ([{"age": 1, "home": "own", "active": 1}], "feature 'active' expects true or false"),
        ([[1, "own"]], "instances[0]: expected an array of 3 values in featureSchema order, got 2 values"),
        ([{"age": 1, "home": "own", "active": True}, [1, "own", True]], "instances[1]: expected an object"),
        ([], "instances: expected a non-empty list"),
        ("nope", "instances: expected a non-empty list"),
        ([7], "instances[0]: expected an object keyed by feature name or an array"),
    ],
)
def test_invalid_instances_are_refused_naming_the_field(fs, instances, message):
    with pytest.raises(schema.SchemaError) as error:
        fs.frame_from_instances(instances)
    assert message in str(error.value)


def test_unknown_category_accepted_by_default_and_rejected_when_configured():
    row = [{"age": 1, "home": "boat", "active": True}]
    assert schema.FeatureSchema.from_card(CARD).frame_from_instances(row)["home"][0] == "boat"
    strict = schema.FeatureSchema.from_card(CARD, reject_unknown_categories=True)
    with pytest.raises(schema.SchemaError, match="feature 'home' has unknown category 'boat' \\(known: 'own', 'rent'\\)"):
        strict.frame_from_instances(row)


def test_v2_one_input_per_feature(fs):
    frame = fs.frame_from_inputs(
        [Input("home", [2], ["own", "rent"]), Input("age", [2, 1], [[1], [2]]), Input("active", [2], [True, False])]
    )
    assert frame["age"].tolist() == [1.0, 2.0] and frame["home"].tolist() == ["own", "rent"]


def test_v2_single_matrix_input(fs):
    frame = fs.frame_from_inputs([Input("x", [2, 3], [1, "own", True, 2, "rent", False])])
    assert frame.shape == (2, 3) and frame["home"].tolist() == ["own", "rent"]


@pytest.mark.parametrize(
    "inputs, message",
    [
        ([Input("age", [1], [1]), Input("home", [1], ["own"])], "inputs: missing input 'active'"),
        (
            [Input("age", [2], [1, 2]), Input("home", [1], ["own"]), Input("active", [1], [True])],
            "input 'home' has 1 values, input 'age' has 2",
        ),
        ([Input("x", [1, 2], [1, "own"])], "expected [n, 3]"),
        ([Input("x", [2, 3], [1, "own", True])], "its shape needs 6"),
        ([], "inputs: expected one input per feature"),
    ],
)
def test_invalid_v2_inputs_are_refused(fs, inputs, message):
    with pytest.raises(schema.SchemaError) as error:
        fs.frame_from_inputs(inputs)
    assert message in str(error.value)


def test_all_numeric_fast_path_matches_the_general_frame():
    names = [f"f{i}" for i in range(5)]
    fs = schema.FeatureSchema([schema.Feature(n, "numeric") for n in names])
    rows = [[float(i * j) for j in range(5)] for i in range(3)]
    fast = fs.frame_from_instances(rows)
    pd.testing.assert_frame_equal(fast, pd.DataFrame(rows, columns=names, dtype=np.float64))


def test_numeric_category_codes_require_numbers():
    card = {"featureSchema": [{"name": "plan", "type": "categorical", "categories": [1, 2, 3]}]}
    fs = schema.FeatureSchema.from_card(card)
    assert fs.frame_from_instances([[2]])["plan"][0] == 2
    with pytest.raises(schema.SchemaError, match="expects a number \\(a category code\\), got '2'"):
        fs.frame_from_instances([["2"]])


@pytest.mark.parametrize(
    "card, message",
    [
        ({}, "featureSchema must be a list"),
        ({"featureSchema": [{"name": "a", "type": "image"}]}, r"featureSchema\[0\] \(a\): type must be one of"),
        ({"featureSchema": [{"type": "numeric"}]}, r"featureSchema\[0\]: expected an object with a string 'name'"),
        ({"featureSchema": []}, "featureSchema is empty"),
    ],
)
def test_bad_cards_are_refused_naming_the_entry(card, message):
    with pytest.raises(ValueError, match=message):
        schema.FeatureSchema.from_card(card)

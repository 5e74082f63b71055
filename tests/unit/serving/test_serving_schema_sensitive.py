"""A sensitive feature the model needs at prediction time (threshold_optimizer): a request without
it, with a null or with a group the model has no threshold for gets an error that names it."""

from __future__ import annotations

import dataclasses

import pytest

from mlkube.serving import schema

CARD = {
    "featureSchema": [
        {"name": "age", "type": "numeric", "dtype": "float64", "nullable": True},
        {
            "name": "sex",
            "type": "categorical",
            "dtype": "object",
            "categories": ["Female", "Male"],
            "nullable": True,
            "sensitive": True,
            "groups": ["Female", "Male"],
        },
    ]
}
WHY = "a sensitive feature: this model's fairness post-processing decides per group, so every request must carry it"


@dataclasses.dataclass
class Input:
    name: str
    shape: list
    data: list


@pytest.fixture
def fs() -> schema.FeatureSchema:
    return schema.FeatureSchema.from_card(CARD)


def test_a_request_without_the_sensitive_feature_is_refused_naming_it(fs):
    with pytest.raises(schema.SchemaError) as refused:
        fs.frame_from_instances([{"age": 41, "sex": "Male"}, {"age": 30}])
    assert str(refused.value) == f"instances[1]: missing feature 'sex' ({WHY})"
    with pytest.raises(schema.SchemaError, match=rf"inputs: missing input 'sex' \({WHY}\)"):
        fs.frame_from_inputs([Input("age", [1], [41])])


def test_a_null_or_unknown_group_is_refused_and_a_known_one_accepted(fs):
    with pytest.raises(
        schema.SchemaError, match=rf"instances\[0\]: feature 'sex' is null but the model does not accept nulls \({WHY}\)"
    ):
        fs.frame_from_instances([{"age": 41, "sex": None}])
    with pytest.raises(
        schema.SchemaError, match="sensitive feature 'sex' has group 'Other', which the model has no threshold for"
    ):
        fs.frame_from_instances([{"age": 41, "sex": "Other"}])
    assert fs.frame_from_instances([{"age": 41, "sex": "Female"}])["sex"].tolist() == ["Female"]


def test_an_ordinary_missing_feature_keeps_its_short_message():
    fs = schema.FeatureSchema.from_card({"featureSchema": [CARD["featureSchema"][0]]})
    with pytest.raises(schema.SchemaError) as refused:
        fs.frame_from_instances([{}])
    assert str(refused.value) == "instances[0]: missing feature 'age'"

"""BatchPrediction's spec: what the models and the CRD's own rules refuse, with the field named."""

import functools
import pathlib

import pydantic
import pytest
import yaml

from mlkube.api import batch, errors, kinds, scoring
from mlkube.local.apiserver import schema

ROOT = pathlib.Path(__file__).parents[3]
SPEC = {
    "projectRef": "penguins",
    "model": {"version": 2},
    "input": {"uri": "s3://data/score/2026-12-01/", "format": "parquet"},
    "output": {"uri": "s3://data/pred/2026-12-01/", "passthrough": ["customer_id"]},
}


@functools.cache
def crd_schema() -> dict:
    crd = yaml.safe_load((ROOT / "crds" / "mlkube.io_batchpredictions.yaml").read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def crd_causes(spec: dict) -> list[str]:
    obj = {"apiVersion": "mlkube.io/v1alpha1", "kind": "BatchPrediction", "metadata": {"name": "bp"}, "spec": spec}
    return [f"{c.field}: {c.message}" for c in schema.validate(schema.default(obj, crd_schema()), crd_schema())]


def refused(spec: dict) -> str:
    with pytest.raises(pydantic.ValidationError) as caught:
        kinds.BATCHPREDICTION.parse_spec(spec)
    return errors.describe(caught.value)


def test_defaults_are_the_documented_ones():
    spec = kinds.BATCHPREDICTION.parse_spec(SPEC)
    assert (spec.parallelism, spec.max_failed_rows, spec.output.format, spec.output.mode) == (1, 0.0, "parquet", "error")
    assert spec.output.include == ["prediction", "probabilities"]
    assert crd_causes(SPEC) == []


def test_a_prefix_without_a_format_is_refused_by_both():
    spec = {**SPEC, "input": {"uri": "s3://data/score/"}}
    assert refused(spec) == "spec.input: format: set csv, csv.gz or parquet (the uri does not end in .csv, .csv.gz or .parquet)"
    assert crd_causes(spec) == [
        'spec.input: Invalid value: "object": format: set csv, csv.gz or parquet (the uri does not end in .csv, .csv.gz or .parquet)'
    ]
    assert kinds.BATCHPREDICTION.parse_spec({**spec, "input": {"uri": "file:///data/day.csv.gz"}}).input.format is None
    assert batch.format_of("file:///data/day.csv.gz") == "csv.gz"


@pytest.mark.parametrize("column", ["prediction", "model_version", "probability_Adelie"])
def test_a_passthrough_column_may_not_shadow_an_output_column(column):
    spec = {**SPEC, "output": {**SPEC["output"], "passthrough": ["id", column]}}
    assert f"column {column!r} is a name of the output's own columns" in refused(spec)
    assert any("the output's own columns" in cause for cause in crd_causes(spec))


def test_the_model_is_one_of_version_track_or_alias():
    assert "set exactly one of version, track or alias" in refused({**SPEC, "model": {"version": 2, "track": "champion"}})
    assert kinds.BATCHPREDICTION.parse_spec({**SPEC, "model": {"track": "champion"}}).model.track == "champion"


def test_a_shard_result_round_trips_and_names_are_the_layout():
    result = scoring.ShardResult(ok=True, index=3, rows_scored=10, part=scoring.part_name(3, "1a2b3c4d", "parquet"))
    assert scoring.ShardResult.model_validate_json(result.model_dump_json(by_alias=True)) == result
    assert result.part == "part-00003-1a2b3c4d.parquet"
    assert scoring.failures_name(3, "1a2b3c4d") == "failures/part-00003-1a2b3c4d.csv"
    assert scoring.record_name(3, "1a2b3c4d") == "_shards/00003-1a2b3c4d.json"
    assert scoring.run_token("1a2b3c4d-5e6f-0000-0000-000000000000") == "1a2b3c4d"

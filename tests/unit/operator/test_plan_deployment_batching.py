"""spec.serving.batching reaches each version's model server: as MLKUBE_BATCHING, which the server reads back."""

import json

import pydantic
import pytest
from mdep_cases import mdep, observed, plan

from mlkube.api import scaling
from mlkube.serving import server


def model_env(obj: dict) -> dict[str, str]:
    [isvc] = [c for c in plan(obj, observed(isvcs={})).apply if c["kind"] == "InferenceService"]
    return {e["name"]: e["value"] for e in isvc["spec"]["predictor"]["model"]["env"]}


def test_the_defaults_are_the_model_servers_own_and_are_not_written():
    assert server.BATCHING_ENV not in model_env(mdep())
    assert server.BATCHING_ENV not in model_env(mdep(serving={"batching": {"enabled": True}}))
    assert server.batching_of(None) == scaling.Batching(enabled=True, max_batch_size=64, max_latency="2ms")


@pytest.mark.parametrize(
    "batching",
    [{"enabled": False}, {"maxBatchSize": 256, "maxLatency": "10ms"}, {"maxLatency": "1s"}],
)
def test_a_batching_block_reaches_the_model_server_as_the_user_wrote_it(batching):
    value = model_env(mdep(serving={"batching": batching}))[server.BATCHING_ENV]
    assert server.batching_of(value) == scaling.Batching.model_validate(batching)
    assert json.loads(value) == {"enabled": True, "maxBatchSize": 64, "maxLatency": "2ms", **batching}


@pytest.mark.parametrize(
    "batching, field",
    [({"maxLatency": "5s"}, "maxLatency"), ({"maxLatency": "0ms"}, "maxLatency"), ({"maxBatchSize": 0}, "maxBatchSize")],
)
def test_out_of_range_settings_are_refused_naming_the_field(batching, field):
    with pytest.raises(pydantic.ValidationError, match=field):
        scaling.Serving.model_validate({"batching": batching})
    with pytest.raises(ValueError, match=f"--batching: {field}: "):
        server.batching_of(json.dumps(batching))

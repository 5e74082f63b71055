"""The drift check's answer, as its Job's termination message carries it: within 4096 bytes (the least
important features go first), and a clear error for a missing or invalid request."""

import json

from mlkube import driftcheck
from mlkube.api import driftcheck as driftcheck_api


def test_a_long_result_keeps_within_the_termination_message_and_its_most_important_features():
    features = [
        {"name": f"feature_{i:03d}", "method": "psi", "score": 0.5, "threshold": 0.2, "drifted": True} for i in range(100)
    ]
    result = {"phase": "Drifting", "samples": 500, "summary": "many features drifted", "features": features}
    encoded = driftcheck.compact(result)
    assert len(encoded) <= driftcheck_api.RESULT_LIMIT_BYTES
    parsed = driftcheck_api.DriftCheckResult.model_validate_json(encoded)
    assert parsed.summary == "many features drifted" and 10 < len(parsed.features) < 100
    assert [f.name for f in parsed.features] == [f["name"] for f in features[: len(parsed.features)]]


def test_a_long_error_is_shortened_not_dropped():
    encoded = driftcheck.compact({"error": "x" * 10_000})
    assert len(encoded) <= driftcheck_api.RESULT_LIMIT_BYTES and json.loads(encoded)["error"].endswith("...")


def test_no_request_or_an_invalid_one_is_an_error_answer_naming_what_to_fix():
    assert driftcheck.answer("") == (
        {"error": "no request: set MLKUBE_DRIFTCHECK_REQUEST to the request JSON (or pass it on stdin)"},
        1,
    )
    body, code = driftcheck.answer(json.dumps({"reference": {"uri": "file:///m/"}}))
    assert code == 1 and body["error"].startswith("invalid request: request.reference.digest: Field required")
    assert driftcheck.answer("{not json")[0]["error"].startswith("invalid request: not JSON")

"""The trainer's result document: compact enough for a termination message."""

import json

from mlkube import trainer


def test_result_is_cut_to_the_termination_message_limit():
    result = {
        "ok": True,
        "artifactUri": "s3://m/r/",
        "digest": "sha256:" + "0" * 64,
        "algorithm": "knn",
        "params": {"n_neighbors": 5},
        "metrics": {"validation": {"f1": 0.9}, "test": {"f1": 0.9}},
        "successCriteriaMet": True,
        "diagnostics": {
            "trialSeconds": {"p50": 1, "max": 2},
            "peakMemoryMiB": 100,
            "overfitting": {},
            "warnings": [f"UserWarning {i} " * 20 for i in range(100)],
        },
        "comparison": None,
        "lineage": {
            "data": [
                {"uri": f"s3://datasets/2026/12/source-{i}.parquet", "digest": "sha256:" + f"{i}" * 64, "rows": 10_000}
                for i in range(4)
            ],
            "image": "ghcr.io/mlkube/mlkube:0.1.0",
            "mlkubeVersion": "0.1.0",
        },
    }
    encoded = trainer.compact(result)
    assert len(encoded) <= trainer.RESULT_LIMIT_BYTES
    decoded = json.loads(encoded)
    assert decoded["metrics"] == result["metrics"] and 0 < len(decoded["diagnostics"]["warnings"]) < 100
    assert decoded["lineage"] == result["lineage"]


def test_long_failure_message_is_truncated():
    encoded = trainer.compact(trainer.failure("DataError", "x" * 10_000))
    assert len(encoded) <= trainer.RESULT_LIMIT_BYTES and json.loads(encoded)["message"].endswith("...")

"""Adaptive batching in real model-server processes under real concurrent HTTP requests: the same
predictions as an unbatched server, each request with its own id, and a bad request failing alone."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import modelfactory
import pytest
from serving_processes import CLIENT, spawn_server

FEATURES = list(modelfactory.instance(0))
CONCURRENCY = 16


@pytest.fixture(scope="module")
def strict_servers(tmp_path_factory):
    """One version whose encoder refuses unseen categories, served batched and unbatched."""
    root = tmp_path_factory.mktemp("strict")
    modelfactory.write_version(root / "v1", unknown_categories="error")
    # A wide window: the concurrent requests of a test surely meet in batches.
    batched = spawn_server("batched", root / "v1", root, "--batching", json.dumps({"maxLatency": "50ms", "maxBatchSize": 32}))
    unbatched = spawn_server("unbatched", root / "v1", root, "--batching", json.dumps({"enabled": False}))
    try:
        yield {"batched": batched.wait_ready(), "unbatched": unbatched.wait_ready()}
    finally:
        batched.stop(kill=True)
        unbatched.stop(kill=True)


def v1(name: str, rows: list[dict], *, arrays: bool = False) -> tuple[str, dict]:
    instances = [[r[f] for f in FEATURES] for r in rows] if arrays else rows
    return f"/v1/models/{name}:predict", {"instances": instances}


def v2(name: str, rows: list[dict]) -> tuple[str, dict]:
    inputs = [
        {"name": f, "shape": [len(rows)], "datatype": "BYTES" if f == "size_band" else "FP64", "data": [r[f] for r in rows]}
        for f in FEATURES
    ]
    return f"/v2/models/{name}/infer", {"inputs": inputs}


def requests_for(name: str) -> list[tuple[str, dict]]:
    """48 requests of 1 to 3 rows, in both protocols and both V1 forms."""
    out = []
    for i in range(48):
        rows = [modelfactory.instance((i * 7 + k) % 500) for k in range(1 + i % 3)]
        out.append(v2(name, rows) if i % 4 == 3 else v1(name, rows, arrays=i % 4 == 1))
    return out


async def send_all(url: str, requests: list[tuple[str, dict]]) -> list[httpx.Response]:
    """Every request at once over CONCURRENCY connections, each with its own x-request-id."""
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        return await asyncio.gather(
            *(client.post(path, json=body, headers={"x-request-id": f"req-{i}"}) for i, (path, body) in enumerate(requests))
        )


def predictions(response: httpx.Response) -> tuple[list, list[list[float]]]:
    """(labels, probability rows) of a V1 or V2 answer."""
    body = response.json()
    if "outputs" in body:
        outputs = {o["name"]: o for o in body["outputs"]}
        n, k = outputs["probabilities"]["shape"]
        flat = outputs["probabilities"]["data"]
        return outputs["predict"]["data"], [flat[i * k : (i + 1) * k] for i in range(n)]
    return body["predictions"], [list(p.values()) for p in body["probabilities"]]


def batches(url: str) -> tuple[float, float]:
    """(pipeline calls, requests scored in them) from the server's /metrics."""
    text = CLIENT.get(url + "/metrics").text
    count = re.search(r'^mlkube_predict_batch_requests_count\{model_name="batched"\} (\S+)$', text, re.M)
    total = re.search(r'^mlkube_predict_batch_requests_sum\{model_name="batched"\} (\S+)$', text, re.M)
    return float(count.group(1)), float(total.group(1))


def test_batched_and_unbatched_servers_return_the_same_predictions_each_under_its_own_id(strict_servers):
    calls_before, scored_before = batches(strict_servers["batched"].url)
    batched = asyncio.run(send_all(strict_servers["batched"].url, requests_for("batched")))
    unbatched = asyncio.run(send_all(strict_servers["unbatched"].url, requests_for("unbatched")))
    for i, (ours, reference) in enumerate(zip(batched, unbatched)):
        assert ours.status_code == reference.status_code == 200, ours.text
        assert ours.headers["x-request-id"] == f"req-{i}"
        labels, probabilities = predictions(ours)
        reference_labels, reference_probabilities = predictions(reference)
        assert labels == reference_labels
        # Equal up to float rounding: a matrix product over 16 rows may round the last bit differently than over one.
        for row, reference_row in zip(probabilities, reference_probabilities):
            assert row == pytest.approx(reference_row, rel=0, abs=1e-12)
    calls, scored = batches(strict_servers["batched"].url)
    assert scored - scored_before == 48
    assert calls - calls_before < 48, "concurrent requests were scored together"


def test_a_malformed_row_and_a_row_the_pipeline_cannot_score_fail_only_their_own_requests(strict_servers):
    good = requests_for("batched")[:30]
    invalid_path, invalid = v1("batched", [modelfactory.instance(1), {**modelfactory.instance(2), "mean_area": "big"}])
    unscorable_path, unscorable = v1("batched", [{**modelfactory.instance(3), "size_band": "huge"}])
    mixed = good[:10] + [(invalid_path, invalid)] + good[10:20] + [(unscorable_path, unscorable)] + good[20:]
    answers = asyncio.run(send_all(strict_servers["batched"].url, mixed))
    reference = asyncio.run(send_all(strict_servers["unbatched"].url, [(p.replace("batched", "unbatched"), b) for p, b in good]))

    invalid_answer, unscorable_answer = answers[10], answers[21]
    assert invalid_answer.status_code == 400 and invalid_answer.headers["x-request-id"] == "req-10"
    assert invalid_answer.json()["error"] == "instances[1]: feature 'mean_area' expects a number, got 'big'"
    assert unscorable_answer.status_code == 500 and unscorable_answer.headers["x-request-id"] == "req-21"
    assert "unknown categories ['huge']" in unscorable_answer.json()["error"]
    good_answers = answers[:10] + answers[11:21] + answers[22:]
    assert [a.status_code for a in good_answers] == [200] * 30
    assert [predictions(a)[0] for a in good_answers] == [predictions(r)[0] for r in reference]

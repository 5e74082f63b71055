"""The router as a real process refusing abuse: bounded bodies, and feedback that is authenticated,
bounded, rate limited and one label per request id."""

from __future__ import annotations

import json

import modelfactory
from serving_processes import CLIENT

PREDICT = "/v1/models/churn-prod:predict"


def predict(router, **kwargs):
    return CLIENT.post(router.url + PREDICT, json={"instances": [modelfactory.instance(0)]}, **kwargs)


def feedback(router, body, **kwargs):
    return CLIENT.post(router.url + "/v1/feedback", json=body, **kwargs)


def labels(store) -> list[dict]:
    files = sorted((store / "feedback" / "ml" / "churn-prod").glob("date=*/*.jsonl"))
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


def test_feedback_with_a_token_configured_needs_it_and_follows_its_rotation(start_router, make_table, store, tmp_path):
    token_file = tmp_path / "feedback-token"
    token_file.write_text("first-token\n")
    router = start_router(make_table(), "--feedback-token-file", str(token_file))
    request_id = predict(router).headers["x-request-id"]
    body = {"requestId": request_id, "groundTruth": 1}
    missing = feedback(router, body)
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert "Authorization: Bearer <token>" in missing.json()["error"]
    assert feedback(router, body, headers={"authorization": "Bearer wrong"}).status_code == 401
    token_file.write_text("second-token-rotated\n")  # the Secret is rotated where it is mounted
    assert feedback(router, body, headers={"authorization": "Bearer first-token"}).status_code == 401
    assert feedback(router, body, headers={"authorization": "Bearer second-token-rotated"}).status_code == 200
    assert router.stats()["feedback"]["unauthorized"] == 3 and len(labels(store)) == 1


def test_a_token_from_the_environment_is_required_too(start_router, make_table, monkeypatch):
    monkeypatch.setenv("MLKUBE_FEEDBACK_TOKEN", "env-token")  # spawn passes os.environ on
    router = start_router(make_table())
    request_id = predict(router).headers["x-request-id"]
    assert feedback(router, {"requestId": request_id, "groundTruth": 1}).status_code == 401
    ok = feedback(router, {"requestId": request_id, "groundTruth": 1}, headers={"authorization": "Bearer env-token"})
    assert ok.status_code == 200


def test_huge_feedback_is_refused_and_nothing_is_stored(start_router, make_table, store):
    # Issue 14: a 30 MB ground truth was accepted, twice.
    router = start_router(make_table())
    request_id = predict(router).headers["x-request-id"]
    huge = {"requestId": request_id, "groundTruth": "x" * 30_000_000}
    for _ in range(2):
        refused = feedback(router, huge)
        assert refused.status_code == 413
        assert "over this router's limit of 1048576 bytes (--feedback-max-bytes)" in refused.json()["error"]
    big_label = feedback(router, {"requestId": request_id, "groundTruth": "y" * 20_000})
    assert big_label.status_code == 413
    assert "items[0].groundTruth: is 20002 bytes as JSON, over the limit of 16384 bytes" in big_label.json()["error"]
    assert labels(store) == [] and router.stats()["feedback"]["tooLarge"] == 3
    assert feedback(router, {"requestId": request_id, "groundTruth": 1}).status_code == 200, "the id was not used up"
    nested = b'{"requestId": "x", "groundTruth": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert CLIENT.post(router.url + "/v1/feedback", content=nested).status_code == 400  # not a 500


def test_one_label_per_request_id_the_first_wins(start_router, make_table, store):
    router = start_router(make_table())
    request_id = predict(router).headers["x-request-id"]
    assert feedback(router, {"requestId": request_id, "groundTruth": 0}).status_code == 200
    second = feedback(router, {"requestId": request_id, "groundTruth": 1})
    assert second.status_code == 409 and "already has its ground truth: the first one sent is kept" in second.json()["error"]
    assert [(r["requestId"], r["groundTruth"]) for r in labels(store)] == [(request_id, 0)]
    assert router.stats()["feedback"]["conflicts"] == 1


def test_a_reused_request_id_gets_a_fresh_one_and_cannot_take_over_feedback(start_router, make_table, store):
    table = make_table(split=[{"version": 1, "weight": 100, "role": "stable"}])
    router = start_router(table)
    first = predict(router, headers={"x-request-id": "chosen-by-client"})
    assert first.headers["x-request-id"] == "chosen-by-client"
    router.apply({**table, "split": [{"version": 2, "weight": 100, "role": "stable"}]})
    again = predict(router, headers={"x-request-id": "chosen-by-client"})
    assert again.headers["x-request-id"] != "chosen-by-client" and again.headers["x-mlkube-version"] == "2"
    assert feedback(router, {"requestId": "chosen-by-client", "groundTruth": 1}).status_code == 200
    assert [(r["requestId"], r["version"]) for r in labels(store)] == [("chosen-by-client", 1)]


def test_feedback_beyond_a_clients_rate_gets_429_with_retry_after(start_router, make_table):
    router = start_router(make_table(), "--feedback-rate", "0.01", "--feedback-burst", "2")  # refills in 100 s
    answers = [feedback(router, {"requestId": f"unknown-{i}", "groundTruth": 1}) for i in range(3)]
    assert [a.status_code for a in answers] == [404, 404, 429]
    assert int(answers[2].headers["retry-after"]) >= 1 and "retry after" in answers[2].json()["error"]
    assert router.stats()["feedback"]["rateLimited"] == 1
    assert predict(router).status_code == 200, "inference is not rate limited"


def test_an_inference_body_over_the_routers_limit_is_refused_and_capture_goes_on(start_router, make_table, store):
    router = start_router(make_table(), "--max-request-bytes", "100000")
    body = b"[" + b"1," * 60_000 + b"1]"
    refused = CLIENT.post(router.url + PREDICT, content=body)
    assert refused.status_code == 413
    assert refused.json()["error"] == (
        f"request body is {len(body)} bytes, over this router's limit of 100000 bytes (--max-request-bytes): send fewer rows"
    )
    assert predict(router).status_code == 200
    router.stop()  # flushes
    records = [json.loads(line) for f in store.rglob("inference-log/**/*.jsonl") for line in f.read_text().splitlines()]
    assert len(records) == 1 and records[0]["status"] == 200

"""The router as a real process in front of real model servers: split, sticky, mirrors, capture, feedback."""

from __future__ import annotations

import collections
import json
import re
import time

import httpx
import modelfactory
from serving_processes import CLIENT, free_port, spawn_server

PREDICT = "/v1/models/churn-prod:predict"


def predict(router, row: int = 0, path: str = PREDICT, **kwargs) -> httpx.Response:
    return CLIENT.post(router.url + path, json={"instances": [modelfactory.instance(row)]}, **kwargs)


def eventually(check, timeout: float = 10.0):
    """The value of `check()` once truthy (background work: mirrors, capture flushes)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def test_canary_split_is_measured_at_the_router(start_router, make_table):
    router = start_router(
        make_table(split=[{"version": 1, "weight": 80, "role": "stable"}, {"version": 2, "weight": 20, "role": "canary"}])
    )
    served = collections.Counter()
    for i in range(100):
        response = predict(router, i % 50)
        assert response.status_code == 200
        served[response.headers["x-mlkube-version"]] += 1
    assert 0.08 < served["2"] / 100 < 0.32  # the router's draws are seeded: this is deterministic
    versions = router.stats()["versions"]
    assert versions["1"]["requests"] == served["1"] and versions["1"]["byRole"] == {"stable": served["1"]}
    assert versions["2"]["requests"] == served["2"] and versions["2"]["byRole"] == {"canary": served["2"]}
    assert versions["1"]["errors"] == versions["2"]["errors"] == 0
    assert versions["1"]["latency"]["buckets"][-1]["count"] == served["1"]


def test_sticky_header_keeps_each_user_on_one_version(start_router, make_table):
    router = start_router(
        make_table(
            sticky={"header": "x-user-id"},
            split=[{"version": 1, "weight": 50, "role": "stable"}, {"version": 2, "weight": 50, "role": "candidate"}],
        )
    )
    seen = collections.defaultdict(set)
    for user in range(16):
        for _ in range(3):
            response = predict(router, headers={"x-user-id": f"user-{user}"})
            seen[user].add(response.headers["x-mlkube-version"])
    assert all(len(versions) == 1 for versions in seen.values())
    assert {v for versions in seen.values() for v in versions} == {"1", "2"}


def test_request_ids_are_returned_and_v2_is_routed(start_router, make_table):
    router = start_router(make_table())
    generated = predict(router)
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])
    row = modelfactory.instance(0)
    body = {"inputs": [{"name": "x", "shape": [1, len(row)], "datatype": "BYTES", "data": list(row.values())}]}
    v2 = CLIENT.post(router.url + "/v2/models/churn-prod/infer", json=body, headers={"x-request-id": "mine"})
    assert v2.status_code == 200 and v2.headers["x-request-id"] == "mine" and v2.json()["id"] == "mine"
    assert CLIENT.post(router.url + "/v1/models/other:predict", json={"instances": []}).status_code == 404
    assert CLIENT.get(router.url + "/v1/models/churn-prod").json() == {"name": "churn-prod", "ready": True}


def test_shadow_never_affects_the_primary_even_when_killed(start_router, make_table, versions, tmp_path):
    shadow = spawn_server("churn-prod-v2", versions["v2"], tmp_path).wait_ready()
    table = make_table(shadow={"version": 2, "percent": 100})
    table["backends"]["2"] = {"url": shadow.url, "model": "churn-prod-v2"}
    router = start_router(table)
    try:
        for i in range(10):
            response = predict(router, i)
            assert response.status_code == 200 and response.headers["x-mlkube-version"] == "1"
        mirrored = eventually(lambda: router.stats()["versions"].get("2", {}).get("requests", 0) >= 10)
        assert mirrored
        before = router.stats()["versions"]["2"]
        assert before["byRole"] == {"shadow": 10} and before["errors"] == 0
        assert before["agreement"]["compared"] == 10 and 0 < before["agreement"]["agreed"] <= 10
        shadow.stop(kill=True)
        for i in range(15):
            response = predict(router, i)
            assert response.status_code == 200 and response.headers["x-mlkube-version"] == "1"
            assert "predictions" in response.json()
        after = eventually(lambda: (v := router.stats()["versions"]["2"])["requests"] >= 25 and v)
        assert after["errors"] == 15 and after["agreement"]["compared"] == 10
        primary = router.stats()["versions"]["1"]
        assert primary["requests"] == 25 and primary["errors"] == 0
    finally:
        shadow.stop(kill=True)


def test_mirrors_beyond_the_in_flight_limit_are_skipped_and_counted(start_router, make_table):
    router = start_router(make_table(shadow={"version": 2, "percent": 100}), "--mirror-limit", "0")
    assert all(predict(router, i).status_code == 200 for i in range(5))
    stats = router.stats()
    assert stats["mirrorsDropped"] == 5 and "2" not in stats["versions"]


def test_canary_requests_are_compared_with_the_stable(start_router, make_table):
    router = start_router(
        make_table(
            split=[{"version": 1, "weight": 50, "role": "stable"}, {"version": 2, "weight": 50, "role": "canary"}],
            compare={"version": 2, "percent": 100},
        )
    )
    canary_served = sum(predict(router, i).headers["x-mlkube-version"] == "2" for i in range(40))
    assert canary_served > 0
    stats = eventually(lambda: (s := router.stats()["versions"])["2"]["agreement"]["compared"] == canary_served and s)
    assert stats["2"]["agreement"]["compared"] == canary_served
    assert stats["1"]["byRole"].get("compare") == canary_served
    assert stats["1"]["agreement"]["compared"] == 0


def test_preview_path_goes_to_the_preview_version(start_router, make_table):
    router = start_router(make_table(preview={"version": 2}))
    assert predict(router, path="/preview" + PREDICT).headers["x-mlkube-version"] == "2"
    assert predict(router).headers["x-mlkube-version"] == "1"
    assert router.stats()["versions"]["2"]["byRole"] == {"preview": 1}
    router.apply(make_table())
    missing = predict(router, path="/preview" + PREDICT)
    assert missing.status_code == 404 and "no preview version" in missing.json()["error"]


def test_backend_errors_and_unreachable_backends_count_as_errors(start_router, make_table):
    table = make_table(split=[{"version": 1, "weight": 100, "role": "stable"}])
    table["backends"]["3"] = {"url": f"http://127.0.0.1:{free_port()}", "model": "gone"}
    router = start_router(table)
    bad = CLIENT.post(router.url + PREDICT, json={"instances": [{"mean_radius": 1}]})
    assert bad.status_code == 400 and "missing feature 'mean_texture'" in bad.json()["error"]
    router.apply({**table, "split": [{"version": 3, "weight": 100, "role": "stable"}]})
    unreachable = predict(router)
    assert unreachable.status_code == 502 and "version 3 is unreachable" in unreachable.json()["error"]
    assert unreachable.headers["x-mlkube-version"] == "3"
    versions = router.stats()["versions"]
    assert versions["1"]["errors"] == 1 and versions["3"]["errors"] == 1
    metrics = CLIENT.get(router.url + "/metrics").text
    assert 'mlkube_router_requests_total{code="400",deployment="churn-prod",role="stable",version="1"} 1.0' in metrics
    assert 'mlkube_router_requests_total{code="0",deployment="churn-prod",role="stable",version="3"} 1.0' in metrics


def test_an_invalid_table_is_ignored_and_the_old_one_kept(start_router, make_table):
    router = start_router(make_table())
    router.routes.write_text(json.dumps({**make_table(), "split": [], "generation": 99}))
    assert eventually(lambda: router.stats()["tableErrors"] == 1)
    assert router.stats()["generation"] == 1
    assert predict(router).status_code == 200


def test_capture_files_appear_under_the_documented_layout(start_router, make_table, store):
    router = start_router(make_table())
    ids = [predict(router, i).headers["x-request-id"] for i in range(5)]
    files = eventually(lambda: sorted((store / "inference-log" / "ml" / "churn-prod").glob("date=*/*.jsonl")))
    assert files and re.fullmatch(r"date=\d{4}-\d{2}-\d{2}", files[0].parent.name)
    assert re.fullmatch(r"\d{10}-.+-\d{6}\.jsonl", files[0].name)
    records = eventually(
        lambda: (
            [json.loads(line) for f in sorted(store.rglob("inference-log/**/*.jsonl")) for line in f.read_text().splitlines()]
            if router.stats()["capture"]["written"] == 5
            else None
        )
    )
    assert [r["requestId"] for r in records] == ids
    first = records[0]
    assert (first["version"], first["role"], first["status"], first["protocol"]) == (1, "stable", 200, "v1")
    assert first["request"]["instances"][0]["mean_radius"] == modelfactory.instance(0)["mean_radius"]
    assert first["response"]["predictions"] == [0] and first["latencyMs"] > 0 and first["timestamp"].endswith("Z")


def test_a_stopped_router_writes_what_it_buffered(start_router, make_table, store):
    router = start_router(make_table())
    ids = [predict(router, i).headers["x-request-id"] for i in range(3)]
    router.stop()  # SIGTERM well before the next 1 s flush
    records = [json.loads(line) for f in sorted(store.rglob("inference-log/**/*.jsonl")) for line in f.read_text().splitlines()]
    assert sorted(r["requestId"] for r in records) == sorted(ids)


def test_capture_honours_the_sample_rate(start_router, make_table, store):
    table = make_table()
    table["capture"]["sampleRate"] = 0.0
    router = start_router(table)
    for i in range(10):
        predict(router, i)
    assert router.stats()["capture"]["captured"] == 0


def test_feedback_for_known_and_unknown_request_ids(start_router, make_table, store):
    router = start_router(make_table())
    answer = predict(router)
    request_id, prediction = answer.headers["x-request-id"], answer.json()["predictions"][0]
    single = CLIENT.post(router.url + "/v1/feedback", json={"requestId": request_id, "groundTruth": 0})
    assert single.status_code == 200
    unknown = CLIENT.post(router.url + "/v1/feedback", json={"requestId": "never-served", "groundTruth": 1})
    assert unknown.status_code == 404 and "never-served" in unknown.json()["error"]
    batch = CLIENT.post(
        router.url + "/v1/feedback",
        json={"items": [{"requestId": request_id, "groundTruth": 1}, {"requestId": "never-served", "groundTruth": 1}]},
    )
    assert batch.status_code == 207
    assert [r["status"] for r in batch.json()["results"]] == [409, 404] and batch.json()["accepted"] == 0
    assert CLIENT.post(router.url + "/v1/feedback", content=b"{").status_code == 400
    files = sorted((store / "feedback" / "ml" / "churn-prod").glob("date=*/*.jsonl"))
    records = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert [(r["requestId"], r["groundTruth"], r["version"]) for r in records] == [(request_id, 0, 1)]  # the first label
    feedback = router.stats()["feedback"]
    assert (feedback["accepted"], feedback["unknown"], feedback["conflicts"], feedback["unscored"]) == (1, 2, 1, 0)
    quality = router.stats()["versions"]["1"]["quality"]  # scored once, against the first ground truth
    assert (quality["labeled"], quality["correct"]) == (1, int(prediction == 0))


def test_health_and_measurement_endpoints_answer(start_router, make_table):
    router = start_router(make_table())
    for path in ("/v2/health/ready", "/v2/health/live", "/mlkube/stats", "/metrics"):
        assert CLIENT.get(router.url + path).status_code == 200, path

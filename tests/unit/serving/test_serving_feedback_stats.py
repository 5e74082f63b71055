"""Feedback judging and the request index bound; stats JSON/Prometheus; prediction agreement."""

from __future__ import annotations

import json

import pytest

from mlkube.serving import agreement, feedback, stats


def test_request_index_forgets_the_oldest_beyond_capacity():
    index = feedback.RequestIndex(capacity=2)
    for i in range(3):
        index.remember(f"r{i}", feedback.Served(1, "stable", 0.0))
    assert index.lookup("r0") is None and index.lookup("r2") == feedback.Served(1, "stable", 0.0) and len(index) == 2


def test_judge_accepts_known_ids_and_reports_unknown_and_malformed_items():
    index = feedback.RequestIndex()
    index.remember("known", feedback.Served(4, "canary", 1_795_000_000.0))
    items, is_batch = feedback.items_of({"items": [{"requestId": "known", "groundTruth": 1}, {"requestId": "gone", "groundTruth": 0},
                                                   {"requestId": "known"}, {"groundTruth": 1}]})
    records, results = feedback.judge(items, index, now=1_795_000_100.0)
    assert is_batch and [r["status"] for r in results] == [200, 404, 400, 400]
    assert "unknown requestId 'gone'" in results[1]["error"] and "items[2].groundTruth: missing" in results[2]["error"]
    assert records == [{"_ts": 1_795_000_100.0, "requestId": "known", "groundTruth": 1, "version": 4, "role": "canary",
                        "requestTimestamp": "2026-11-18T11:06:40.000Z", "timestamp": "2026-11-18T11:08:20.000Z"}]


@pytest.mark.parametrize("body", [[1], {"items": []}, {"items": "x"}])
def test_malformed_feedback_bodies_are_refused(body):
    with pytest.raises(feedback.FeedbackError):
        feedback.items_of(body)


def test_stats_count_requests_errors_latency_and_agreement_per_version():
    s = stats.Stats("churn")
    s.record(3, "stable", status=200, latency_ms=0.7)
    s.record(3, "stable", status=500, latency_ms=30)
    s.record(4, "shadow", status=0, latency_ms=12000)
    s.record_agreement(4, True)
    s.record_agreement(4, False)
    doc = json.loads(json.dumps(s.as_json()))
    v3, v4 = doc["versions"]["3"], doc["versions"]["4"]
    assert (v3["requests"], v3["errors"], v3["byRole"]) == (2, 1, {"stable": 2})
    buckets = {str(b["le"]): b["count"] for b in v3["latency"]["buckets"]}
    assert buckets["1"] == 1 and buckets["25"] == 1 and buckets["50"] == 2 and buckets["+Inf"] == 2
    assert v4["errors"] == 1 and v4["latency"]["buckets"][-2]["count"] == 0 and v4["latency"]["buckets"][-1]["count"] == 1
    assert v4["agreement"] == {"compared": 2, "agreed": 1}


def test_server_errors_leave_out_the_clients_bad_requests():
    s = stats.Stats("churn")
    for status in (200, 400, 404, 500, 503, 0):
        s.record(3, "canary", status=status, latency_ms=1)
    counters = s.as_json()["versions"]["3"]
    assert (counters["requests"], counters["errors"], counters["serverErrors"]) == (6, 5, 3)


def test_prometheus_exposition_renders_the_same_counters():
    s = stats.Stats("churn")
    s.record(3, "stable", status=200, latency_ms=2)
    s.record_agreement(3, True)
    s.capture["dropped"] = 5
    text, content_type = stats.prometheus_text(s)
    body = text.decode()
    assert content_type.startswith("text/plain")
    assert 'mlkube_router_requests_total{code="200",deployment="churn",role="stable",version="3"} 1.0' in body
    assert 'mlkube_router_request_duration_seconds_bucket{deployment="churn",le="0.0025",version="3"} 1.0' in body
    assert 'mlkube_router_agreement_agreed_total{deployment="churn",version="3"} 1.0' in body
    assert 'mlkube_router_capture_dropped_total{deployment="churn"} 5.0' in body


@pytest.mark.parametrize("first, second, expected", [
    (b'{"predictions": [1, 0]}', b'{"predictions": [1, 0], "probabilities": []}', True),
    (b'{"predictions": [1, 0]}', b'{"predictions": [1, 1]}', False),
    (b'{"predictions": ["churn"]}', b'{"predictions": ["stay"]}', False),
    (b'{"predictions": [100.0]}', b'{"predictions": [104.0]}', True),
    (b'{"predictions": [100.0]}', b'{"predictions": [110.0]}', False),
    (b'{"outputs": [{"name": "probabilities", "data": [0.1]}, {"name": "predict", "data": [1]}]}', b'{"predictions": [1]}', True),
    (b'{"predictions": [1]}', b'{"error": "boom"}', None),
    (b'{"predictions": [1]}', b'{"predictions": [1, 1]}', None),
    (b'not json', b'{"predictions": [1]}', None),
])
def test_agreement_compares_predictions_across_protocols(first, second, expected):
    assert agreement.agrees(first, second) is expected

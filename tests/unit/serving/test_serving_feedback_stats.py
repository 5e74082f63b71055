"""Feedback judging (one label per id, size limits) and the request index bound; stats JSON/Prometheus; prediction agreement."""

from __future__ import annotations

import json

import pytest

from mlkube.api import inference_log
from mlkube.serving import agreement, feedback, stats


def test_request_index_forgets_the_oldest_beyond_capacity():
    index = feedback.RequestIndex(capacity=2)
    for i in range(3):
        index.remember(f"r{i}", feedback.Served(1, "stable", 0.0))
    assert index.lookup("r0") is None and index.lookup("r2") == feedback.Served(1, "stable", 0.0) and len(index) == 2


def test_judge_accepts_known_ids_and_reports_unknown_and_malformed_items():
    index = feedback.RequestIndex()
    index.remember("known", feedback.Served(4, "canary", 1_795_000_000.0))
    items, is_batch = feedback.items_of(
        {
            "items": [
                {"requestId": "known", "groundTruth": 1},
                {"requestId": "gone", "groundTruth": 0},
                {"requestId": "known"},
                {"groundTruth": 1},
            ]
        }
    )
    records, results = feedback.judge(items, index, now=1_795_000_100.0)
    assert is_batch and [r["status"] for r in results] == [200, 404, 400, 400]
    assert "unknown requestId 'gone'" in results[1]["error"] and "items[2].groundTruth: missing" in results[2]["error"]
    assert [r.wire() for r in records] == [
        {
            "requestId": "known",
            "groundTruth": 1,
            "version": 4,
            "role": "canary",
            "requestTimestamp": "2026-11-18T11:06:40.000Z",
            "timestamp": "2026-11-18T11:08:20.000Z",
        }
    ]


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


@pytest.mark.parametrize(
    "first, second, expected",
    [
        (b'{"predictions": [1, 0]}', b'{"predictions": [1, 0], "probabilities": []}', True),
        (b'{"predictions": [1, 0]}', b'{"predictions": [1, 1]}', False),
        (b'{"predictions": ["churn"]}', b'{"predictions": ["stay"]}', False),
        (b'{"predictions": [100.0]}', b'{"predictions": [104.0]}', True),
        (b'{"predictions": [100.0]}', b'{"predictions": [110.0]}', False),
        (
            b'{"outputs": [{"name": "probabilities", "data": [0.1]}, {"name": "predict", "data": [1]}]}',
            b'{"predictions": [1]}',
            True,
        ),
        (b'{"predictions": [1]}', b'{"error": "boom"}', None),
        (b'{"predictions": [1]}', b'{"predictions": [1, 1]}', None),
        (b"not json", b'{"predictions": [1]}', None),
    ],
)
def test_agreement_compares_predictions_across_protocols(first, second, expected):
    assert agreement.agrees(first, second) is expected


def labels(*pairs: tuple[str, object]) -> list[inference_log.FeedbackRecord]:
    return [inference_log.FeedbackRecord(request_id=i, ground_truth=t, timestamp="2026-11-18T11:08:20.000Z") for i, t in pairs]


def _scored_index(**kw):
    index = feedback.RequestIndex(**kw)
    index.remember("a", feedback.Served(3, "stable", 0.0, b'{"predictions": ["Adelie"], "probabilities": [{"Adelie": 0.9}]}'))
    index.remember("b", feedback.Served(4, "canary", 0.0, b'{"predictions": ["Gentoo", "Adelie"]}'))
    index.remember("c", feedback.Served(4, "canary", 0.0, None))
    index.remember("d", feedback.Served(4, "canary", 0.0, b'{"outputs": [{"name": "predict", "data": [2.5]}]}'))
    return index


def test_feedback_is_scored_once_against_the_single_prediction_it_names():
    index = _scored_index()
    records = labels(("a", "Adelie"), ("b", "Gentoo"), ("c", "Adelie"), ("d", 3))
    scored, unscored = feedback.score(records, index)
    assert scored == [feedback.Scored(3, "Adelie", "Adelie"), feedback.Scored(4, 2.5, 3)]
    assert unscored == 2  # b: a batch of two rows; c: no body kept
    assert index.lookup("a").scored and index.lookup("a").response is None and index.kept_bytes == 0
    again, unscored = feedback.score(labels(("a", "Gentoo")), index)
    assert (again, unscored) == ([], 1)  # a repeated feedback counts once


def test_a_null_ground_truth_is_not_scored_and_does_not_use_up_the_id():
    index = _scored_index()
    assert feedback.score(labels(("a", None)), index) == ([], 1)
    assert feedback.score(labels(("a", "Adelie")), index)[0] == [feedback.Scored(3, "Adelie", "Adelie")]


def test_kept_bodies_stay_within_the_budget_and_are_freed_on_eviction():
    index = feedback.RequestIndex(capacity=2, response_budget=10)
    index.remember("a", feedback.Served(1, "stable", 0.0, b"12345678"))
    index.remember("b", feedback.Served(1, "stable", 0.0, b"12345"))  # over the budget: kept without its body
    assert index.lookup("b").response is None and index.kept_bytes == 8
    index.remember("c", feedback.Served(1, "stable", 0.0, b"12"))  # evicts a
    assert index.lookup("a") is None and index.kept_bytes == 2
    assert not index.remember("c", feedback.Served(1, "stable", 0.0, b"123"))  # a known id keeps its entry
    assert index.kept_bytes == 2 and len(index) == 2 and index.lookup("c").response == b"12"
    big = feedback.RequestIndex(response_budget=10**9)
    big.remember("x", feedback.Served(1, "stable", 0.0, b"x" * (feedback.MAX_KEPT_RESPONSE + 1)))
    assert big.lookup("x").response is None and big.kept_bytes == 0
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        feedback.RequestIndex(capacity=0)


@pytest.mark.parametrize(
    "prediction, truth, expected",
    [
        ("churn", "churn", (True, None)),
        ("churn", "stay", (False, None)),
        (1, 1, (True, 0.0)),
        (1, 2, (False, -1.0)),
        (1, "1", (True, None)),
        (100.0, 104.0, (True, -4.0)),
        (100.0, 110.0, (False, -10.0)),
        (True, True, (True, None)),
        ("Adelie", None, (False, None)),
    ],
)
def test_outcome_uses_the_agreement_rule_and_measures_numeric_errors(prediction, truth, expected):
    assert agreement.outcome(prediction, truth) == expected


def test_quality_counters_in_json_and_prometheus():
    s = stats.Stats("churn")
    s.record_label(3, correct=True, error=None)
    s.record_label(3, correct=False, error=None)
    s.record_label(4, correct=False, error=-2.0)
    s.record_label(4, correct=True, error=0.5)
    doc = s.as_json()
    assert doc["versions"]["3"]["quality"] == {"labeled": 2, "correct": 1, "absErrorSum": 0.0, "squaredErrorSum": 0.0}
    assert doc["versions"]["4"]["quality"] == {"labeled": 2, "correct": 1, "absErrorSum": 2.5, "squaredErrorSum": 4.25}
    assert doc["feedback"] == {
        "accepted": 0,
        "unknown": 0,
        "unscored": 0,
        "conflicts": 0,
        "tooLarge": 0,
        "unauthorized": 0,
        "rateLimited": 0,
    }
    body = stats.prometheus_text(s)[0].decode()
    assert 'mlkube_router_quality_labeled_total{deployment="churn",version="3"} 2.0' in body
    assert 'mlkube_router_quality_correct_total{deployment="churn",version="4"} 1.0' in body
    assert 'mlkube_router_quality_abs_error_total{deployment="churn",version="4"} 2.5' in body
    assert 'mlkube_router_quality_squared_error_total{deployment="churn",version="4"} 4.25' in body


def test_one_label_per_request_id_the_first_wins_and_later_ones_are_conflicts():
    index = feedback.RequestIndex()
    index.remember("r1", feedback.Served(3, "stable", 1_795_000_000.0))
    index.remember("r2", feedback.Served(3, "stable", 1_795_000_000.0))
    items = [{"requestId": "r1", "groundTruth": 0}, {"requestId": "r1", "groundTruth": 1}]
    records, results = feedback.judge(items, index, now=1_795_000_100.0)
    assert [r.ground_truth for r in records] == [0] and [r["status"] for r in results] == [200, 409]
    assert "already has its ground truth: the first one sent is kept" in results[1]["error"]
    index.claim([r.request_id for r in records])  # as the router does before it writes
    records, results = feedback.judge(
        [{"requestId": "r1", "groundTruth": 1}, {"requestId": "r2", "groundTruth": 1}], index, now=0
    )
    assert [r["status"] for r in results] == [409, 200] and [r.request_id for r in records] == ["r2"]


def test_a_label_whose_write_failed_is_released_and_can_be_sent_again():
    index = feedback.RequestIndex()
    index.remember("r1", feedback.Served(3, "stable", 0.0))
    index.claim(["r1"])
    index.release(["r1"])
    records, results = feedback.judge([{"requestId": "r1", "groundTruth": 1}], index, now=0)
    assert results == [{"requestId": "r1", "status": 200}] and len(records) == 1


def test_a_ground_truth_over_the_size_limit_is_refused_naming_the_field_and_limit():
    index = feedback.RequestIndex()
    index.remember("r1", feedback.Served(3, "stable", 0.0))
    index.remember("r2", feedback.Served(3, "stable", 0.0))
    deep: list = [1]
    for _ in range(300):
        deep = [deep]
    items = [{"requestId": "r1", "groundTruth": "x" * 100}, {"requestId": "r2", "groundTruth": deep}]
    records, results = feedback.judge(items, index, now=0, max_truth_bytes=64)
    assert records == [] and [r["status"] for r in results] == [413, 413]
    assert results[0]["error"] == "items[0].groundTruth: is 102 bytes as JSON, over the limit of 64 bytes; send the label itself"
    assert "items[1].groundTruth: cannot be serialised as JSON" in results[1]["error"]
    assert not index.lookup("r1").labeled, "a refused label does not use up the id"

"""The router's accumulation of served probabilities (estimatedPerformance): read from the model
server's own V1 and V2 bodies, counted per version only when the routing table asks for it."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import orjson
import pytest

from mlkube.api import routing as routing_api
from mlkube.serving import endpoints, feedback, postprocessing, router, scores, stats, upstream


def prediction(labels, matrix, classes) -> postprocessing.Prediction:
    matrix = np.asarray(matrix, dtype=float)
    return postprocessing.Prediction(
        labels=labels,
        probabilities=[dict(zip(classes, row)) for row in matrix.tolist()],
        class_names=classes,
        probability_matrix=matrix,
    )


BINARY = prediction(["churn", "stay", "stay"], [[0.2, 0.8], [0.9, 0.1], [0.45, 0.55]], ["stay", "churn"])
THREE = prediction([2, 0], [[0.1, 0.2, 0.7], [0.5, 0.3, 0.2]], ["0", "1", "2"])


def v1(p: postprocessing.Prediction) -> bytes:
    return orjson.dumps(endpoints.v1_body(p))


def v2(p: postprocessing.Prediction) -> bytes:
    return orjson.dumps({"model_name": "m", "outputs": endpoints.v2_outputs(p)})


@pytest.mark.parametrize("encode", [v1, v2])
def test_rows_give_the_predicted_class_probability_and_the_second_class_probability(encode):
    # "stay" predicted at 0.45 by a threshold below 0.5: its own probability, not the highest, counts
    assert scores.rows_of(encode(BINARY)) == [(0.8, 0.8), (0.9, 0.1), (0.45, 0.55)]
    assert scores.rows_of(encode(THREE)) == [(0.7, None), (0.5, None)]


@pytest.mark.parametrize(
    "body",
    [b'{"predictions": [1.5, 2.5]}', b'{"error": "boom"}', b"not json", b'{"predictions": [1], "probabilities": [{"a": 2}]}'],
)
def test_answers_without_probabilities_add_nothing(body):
    counted = scores.Scores()
    assert scores.observe(counted, body) == 0 and counted.scored == 0


def test_stats_report_the_histogram_per_version():
    s = stats.Stats("churn")
    s.record_scores(3, v1(BINARY))
    s.record_scores(3, v1(THREE))
    s.record(4, "stable", status=200, latency_ms=1)
    doc = json.loads(json.dumps(s.as_json()))
    counted = doc["versions"]["3"]["scores"]
    assert counted["scored"] == 5 and counted["confidenceSum"] == pytest.approx(0.8 + 0.9 + 0.45 + 0.7 + 0.5)
    assert len(counted["bins"]) == scores.BINS and sum(counted["bins"]) == 3  # the three-class rows have no histogram
    assert (counted["bins"][80], counted["bins"][10], counted["bins"][55]) == (1, 1, 1)
    assert counted["binSums"][55] == pytest.approx(0.55)
    assert "scores" not in doc["versions"]["4"]  # nothing asked, nothing reported


def table(scored: list[int] | None) -> str:
    doc = {
        "deployment": "churn",
        "namespace": "ns",
        "backends": {"1": {"url": "http://v1", "model": "churn-v1"}, "2": {"url": "http://v2", "model": "churn-v2"}},
        "split": [{"version": 1, "weight": 50, "role": "stable"}, {"version": 2, "weight": 50, "role": "canary"}],
        "scores": {"versions": scored} if scored else None,
    }
    return json.dumps(doc)


@pytest.mark.parametrize("scored, counted", [([2], {2: 3}), (None, {})])
def test_the_router_counts_only_the_versions_its_table_names(scored, counted):
    async def scenario() -> dict[int, int]:
        r = router.Router()
        r.apply_routes(table(scored))

        class AnsweringPool:  # every backend answers the same three binary rows
            def send(self, method, url, body, header_lines, timeout, done):
                done(upstream.Response(200, {"content-type": "application/json"}, v1(BINARY)))

        r.pool = AnsweringPool()
        compiled = r.compiled
        replies = []
        for draw in (0.1, 0.9):  # one request to each version (weights 50/50)
            choice = compiled.split.choose(draw)
            r._forward(compiled, choice, f"id-{draw}", "v1", "predict", {}, b'{"instances": [{}]}', lambda *a: replies.append(a))
        await r.mirrors.close()
        assert [status for status, _, _ in replies] == [200, 200]
        return {v: s.scores.scored for v, s in r.stats.versions.items() if s.scores is not None}

    found = asyncio.run(scenario())
    assert found == counted  # version 2 answered once, three rows


def test_a_table_naming_an_unknown_version_is_refused():
    with pytest.raises(routing_api.RoutesError, match=r"scores.versions\[0\]: 7 has no entry in backends"):
        routing_api.RoutingTable.parse(json.loads(table([7])))


ONE = prediction(["churn"], [[0.3, 0.7]], ["stay", "churn"])


@pytest.mark.parametrize("encode", [v1, v2])
def test_a_label_for_a_single_two_class_answer_goes_in_the_labeled_histogram(encode):
    counted = scores.Scores()
    assert scores.label(counted, encode(ONE), "churn") and scores.label(counted, encode(ONE), "stay")
    assert (counted.labeled_counts[70], counted.labeled_positives[70], sum(counted.labeled_counts)) == (2, 1, 2)
    assert not scores.label(counted, encode(ONE), "maybe")  # names neither class
    assert not scores.label(counted, encode(BINARY), "churn")  # three rows: which one is it for?
    assert not scores.label(counted, encode(THREE), "2")


def test_feedback_scoring_hands_the_answer_to_the_stats():
    index = feedback.RequestIndex()
    index.remember("r1", feedback.Served(2, "canary", 0.0, v1(ONE)))
    records, _ = feedback.judge([{"requestId": "r1", "groundTruth": "churn"}], index, now=1.0)
    (labeled,), unscored = feedback.score(records, index)
    assert unscored == 0 and labeled.response == v1(ONE)
    s = stats.Stats("churn")
    s.record_scored_label(labeled.version, labeled.response, labeled.truth)
    found = s.as_json()["versions"]["2"]["scores"]
    assert (found["labeledBins"][70], found["labeledPositives"][70], found["scored"]) == (1, 1, 0)

"""Models that answer records (anomaly detection, clustering): the model server's bodies, batch
scoring's columns, agreement and feedback outcomes on the first field, the inference log read back
with the whole record, and concept drift of a detector from feedback."""

import datetime
import json
import pathlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mlkube.api import batch
from mlkube.ml import traffic
from mlkube.ml.tasks import anomaly, clustering, unsupervised
from mlkube.serving import agreement, endpoints, postprocessing, scorer

DATA = pathlib.Path(__file__).parents[2] / "data"
FEATURES = [f"f{i}" for i in range(1, 10)]


@pytest.fixture(scope="module")
def shuttle():
    return pd.read_csv(DATA / "shuttle" / "shuttle_3000.csv")


@pytest.fixture(scope="module")
def detector(shuttle):
    from sklearn import preprocessing

    model = unsupervised.RecordPipeline(
        [
            ("features", preprocessing.StandardScaler()),
            ("model", anomaly.AnomalyDetector(anomaly.build("isolation_forest", {"n_estimators": 50}, seed=0), 0.07)),
        ]
    )
    return model.fit(shuttle[FEATURES].iloc[:2000])


CARD = {"problem": {"task": "anomaly_detection"}}


def test_v1_answers_one_record_per_row_and_v2_one_output_per_field(detector, shuttle):
    decider = postprocessing.Decider(detector, CARD, postprocessing.Postprocessing())
    rows = shuttle[FEATURES].iloc[2000:2005]
    prediction = decider.predict(rows)
    body = endpoints.v1_body(prediction)
    assert [set(p) for p in body["predictions"]] == [{"anomaly", "score"}] * 5
    offline = detector.records(rows)
    assert [p["score"] for p in body["predictions"]] == offline["score"].tolist()
    assert [p["anomaly"] for p in body["predictions"]] == offline["anomaly"].tolist()
    outputs = endpoints.v2_outputs(prediction)
    assert [(o["name"], o["datatype"]) for o in outputs] == [("predict", "INT64"), ("score", "FP64")]
    assert outputs[0]["parameters"] == {"field": "anomaly"} and outputs[1]["data"] == offline["score"].tolist()
    # A batch of requests is split back per request with its records.
    first, second = prediction.split([2, 3])
    assert first.labels == body["predictions"][:2] and second.records["score"] == offline["score"].tolist()[2:]


def test_a_threshold_or_label_names_are_refused_for_a_record_model(detector):
    with pytest.raises(
        ValueError,
        match=r'postprocessing.threshold applies to classifiers; this anomaly_detection model answers \{"anomaly", "score"\}',
    ):
        postprocessing.Decider(detector, CARD, postprocessing.Postprocessing(threshold=0.3))


def test_batch_scoring_writes_the_first_field_as_prediction_and_the_others_beside_it(detector, shuttle):
    card = {**CARD, "featureSchema": [{"name": f, "type": "numeric", "nullable": False} for f in FEATURES]}
    output = batch.Output.model_validate({"uri": "file:///tmp/out/", "include": ["prediction"]})
    scoring = scorer.Scorer(detector, card, block=postprocessing.Postprocessing(), output=output, version=3)
    rows = shuttle[FEATURES].iloc[2000:2010]
    scored = scoring.score(pa.Table.from_pandas(rows, preserve_index=False))
    offline = detector.records(rows)
    assert scored.table.column("prediction").to_pylist() == offline["anomaly"].tolist()
    assert scored.table.column("prediction_score").to_pylist() == offline["score"].tolist()


def test_agreement_and_feedback_outcomes_compare_the_first_field():
    a = json.dumps({"predictions": [{"cluster": 2, "distance": 1.0}]}).encode()
    b = json.dumps({"predictions": [{"cluster": 2, "distance": 3.5}]}).encode()
    c = json.dumps({"predictions": [{"cluster": 1, "distance": 1.0}]}).encode()
    assert agreement.agrees(a, b) is True and agreement.agrees(a, c) is False
    assert agreement.outcome({"anomaly": 1, "score": 0.9}, 1)[0] is True
    assert agreement.outcome({"anomaly": 0, "score": 0.1}, 1)[0] is False


def _write(root: pathlib.Path, kind: str, records: list[dict]) -> None:
    path = root / kind / "ml/prod/date=2026-11-24" / "1-router-x-000001.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def _logged(request_id: str, second: int, request: dict, response: dict) -> dict:
    return {
        "requestId": request_id,
        "timestamp": f"2026-11-24T10:00:{second:02d}.000Z",
        "version": 1,
        "role": "stable",
        "verb": "predict",
        "status": 200,
        "request": request,
        "response": response,
    }


def test_the_inference_log_reads_back_records_from_v1_and_v2(tmp_path):
    v2_response = {
        "outputs": [
            {"name": "predict", "datatype": "INT64", "shape": [1], "data": [3], "parameters": {"field": "cluster"}},
            {"name": "distance", "datatype": "FP64", "shape": [1], "data": [0.5]},
        ]
    }
    v2_request = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [4.0]}]}
    _write(
        tmp_path,
        "inference-log",
        [
            _logged("r1", 1, {"instances": [{"x": 1.0}]}, {"predictions": [{"cluster": 0, "distance": 1.5}]}),
            _logged("r2", 2, v2_request, v2_response),
        ],
    )
    since = datetime.datetime(2026, 11, 20, tzinfo=datetime.UTC)
    table = traffic.window(f"file://{tmp_path}", namespace="ml", deployment="prod", features=["x"], since=since, size=10)
    assert table["__prediction__"].tolist() == [0, 3]
    assert table["__record__"].tolist() == [{"cluster": 0, "distance": 1.5}, {"cluster": 3, "distance": 0.5}]


def test_feedback_on_flagged_rows_scores_a_detector_against_its_test_baseline():
    served = [{"anomaly": 1, "score": s} for s in (0.9, 0.8, 0.7, 0.6)] + [{"anomaly": 0, "score": 0.2}]
    truth = [1, 1, 0, 1, 0]
    found = anomaly.performance("roc_auc", truth, served, baseline=0.99, max_drop=0.05, contamination=None)
    assert found.samples == 5 and found.current == pytest.approx(5 / 6) and found.drifted
    only_anomalies = anomaly.performance("roc_auc", [1, 1], served[:2], baseline=0.99, max_drop=0.05, contamination=None)
    assert only_anomalies.current is None and only_anomalies.samples == 2 and "undefined" in only_anomalies.note


def test_a_served_cluster_is_the_offline_assignment():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(np.vstack([rng.normal(0, 1, (50, 2)), rng.normal(6, 1, (30, 2))]), columns=["a", "b"])
    from sklearn import preprocessing

    model = unsupervised.RecordPipeline(
        [
            ("features", preprocessing.StandardScaler()),
            ("model", clustering.Clusterer(clustering.build("agglomerative", {"n_clusters": 2}, seed=0))),
        ]
    ).fit(X)
    decider = postprocessing.Decider(model, {"problem": {"task": "clustering"}}, postprocessing.Postprocessing())
    served = [p["cluster"] for p in endpoints.v1_body(decider.predict(X))["predictions"]]
    assert served == model.predict(X).tolist() and sorted(set(served)) == [0, 1]


@pytest.mark.filterwarnings("error::FutureWarning")  # occluding an integer column by its mean widens it
def test_explanations_of_a_detector_attribute_its_anomaly_score(detector, shuttle):
    from mlkube.serving import explain

    reference = shuttle[FEATURES].iloc[:2000]
    explainer = explain.Explainer(
        detector, is_classifier=False, positive_index=None, baseline={f: float(reference[f].mean()) for f in FEATURES}
    )
    anomalies = shuttle[shuttle["anomaly"] == 1][FEATURES].head(3)
    found = explainer.explain(anomalies)
    assert [row["score"] for row in found] == pytest.approx(detector.records(anomalies)["score"].tolist())
    assert all(set(row["attributions"]) == set(FEATURES) for row in found)
    assert any(max(row["attributions"].values()) > 0 for row in found)  # some reading made it look less typical

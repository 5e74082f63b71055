"""Anomaly detection and clustering on real data (Shuttle, CDNOW RFM): the fitted models' records,
thresholds and metrics, and a whole unsupervised run writing a servable version."""

import pathlib

import numpy as np
import pandas as pd
import pytest

from mlkube.api import trainer as trainer_api
from mlkube.ml import artifacts, experiment
from mlkube.ml.tasks import anomaly, clustering, unsupervised

DATA = pathlib.Path(__file__).parents[2] / "data"
SHUTTLE = DATA / "shuttle" / "shuttle_3000.csv"
CDNOW = DATA / "cdnow" / "cdnow_rfm_2000.csv"


@pytest.fixture(scope="module")
def shuttle():
    table = pd.read_csv(SHUTTLE)
    features = [f"f{i}" for i in range(1, 10)]
    table[features] = (table[features] - table[features].mean()) / table[features].std()  # as the pipeline scales
    return table.iloc[:2000], table.iloc[2000:]


@pytest.mark.parametrize("name", list(anomaly.REGISTRY))
def test_every_detector_flags_exactly_from_half_and_keeps_its_own_ranking(shuttle, name):
    train, test = shuttle
    features = [f"f{i}" for i in range(1, 10)]
    detector = anomaly.AnomalyDetector(anomaly.build(name, {}, seed=0), contamination=0.07).fit(train[features].to_numpy(float))
    found = detector.records(test[features].to_numpy(float))
    assert set(found) == {"anomaly", "score"}
    assert ((found["score"] >= 0) & (found["score"] <= 1)).all()
    assert (found["anomaly"] == (found["score"] >= 0.5)).all()
    metrics = anomaly.scores(found["score"], found["anomaly"], test["anomaly"], contamination=0.07)
    if name == "isolation_forest":  # local outlier factors miss Shuttle's anomalies, which are dense among themselves
        assert metrics["roc_auc"] > 0.9, metrics
    # The served score orders rows exactly as the detector's own raw score does.
    raw = detector.raw_scores(test[features].to_numpy(float))
    assert (pd.Series(raw).rank().to_numpy() == pd.Series(found["score"]).rank().to_numpy()).all()


def test_contamination_sets_the_share_flagged_on_training_rows(shuttle):
    train, _ = shuttle
    X = train[[f"f{i}" for i in range(1, 10)]].to_numpy(float)
    detector = anomaly.AnomalyDetector(anomaly.build("isolation_forest", {}, seed=0), contamination=0.1).fit(X)
    assert detector.predict(X).mean() == pytest.approx(0.1, abs=0.01)


def test_labels_move_the_threshold_to_the_best_f1(shuttle):
    train, test = shuttle
    features = [f"f{i}" for i in range(1, 10)]
    detector = anomaly.AnomalyDetector(anomaly.build("isolation_forest", {}, seed=0)).fit(train[features])
    before = detector.records(test[features])
    detector.use_labels(test[features], test["anomaly"])
    after = detector.records(test[features])
    f1_before = anomaly.scores(before["score"], before["anomaly"], test["anomaly"])["f1"]
    assert anomaly.scores(after["score"], after["anomaly"], test["anomaly"])["f1"] >= f1_before


def test_anomaly_metrics_without_labels_are_the_anomaly_rate_only():
    assert anomaly.scores(np.array([0.2, 0.7, 0.4, 0.9]), np.array([0, 1, 0, 1])) == {"anomaly_rate": 0.5}


def test_precision_and_recall_at_k_count_the_k_highest_scores():
    found = anomaly.scores(np.array([0.9, 0.8, 0.3, 0.2]), np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0]), contamination=0.5)
    assert found["precision_at_k"] == 0.5  # k = 2: one of the two top scores is an anomaly
    assert found["recall_at_k"] == 0.5


@pytest.fixture(scope="module")
def rfm():
    table = pd.read_csv(CDNOW, dtype={"customer_id": str})
    X = table.drop(columns="customer_id")
    return (X - X.mean()) / X.std()


@pytest.mark.parametrize("name", list(clustering.REGISTRY))
def test_clusters_are_numbered_by_size_and_served_as_assigned(rfm, name):
    k = clustering.k_parameter(name)
    fitted = clustering.Clusterer(clustering.build(name, {k: 4}, seed=0)).fit(rfm)
    sizes = np.bincount(fitted.labels_)
    assert fitted.n_clusters_ == 4 and list(sizes) == sorted(sizes, reverse=True)
    found = fitted.records(rfm)
    assert (found["cluster"] == fitted.predict(rfm)).all()
    assert (found["distance"] >= 0).all()
    nearest = np.linalg.norm(rfm.to_numpy()[:, None, :] - fitted.centroids_[None], axis=2).argmin(axis=1)
    if name == "agglomerative":  # no predict of its own: served by the nearest fitted centroid
        assert (found["cluster"] == nearest).all()
    if name == "kmeans":
        assert (found["cluster"] == fitted.labels_).all()


def test_clustering_metrics_and_profiles(rfm):
    fitted = clustering.Clusterer(clustering.build("kmeans", {"n_clusters": 3}, seed=0)).fit(rfm)
    metrics = clustering.scores(rfm, fitted.labels_, n_clusters=3, seed=0)
    assert set(metrics) == {"silhouette", "davies_bouldin", "calinski_harabasz", "n_clusters"}
    assert -1 <= metrics["silhouette"] <= 1
    profiles = clustering.profiles(rfm, fitted.labels_, numeric=["frequency"])
    assert sum(p["size"] for p in profiles) == len(rfm)
    assert [p["cluster"] for p in profiles] == [0, 1, 2]


def _spec(tmp_path, problem, uri, **overrides):
    document = {
        "project": {
            "name": "demo",
            "namespace": "ml",
            "goal": {"description": "find them", "type": "Process"},
            "problem": problem,
            "successCriteria": [],
        },
        "trainingJob": {"name": "demo-1", "namespace": "ml", "uid": "u-1", "trigger": "manual", "parentVersion": None},
        "data": {"uri": uri},
        "preprocessing": {},
        "algorithms": [],
        "tuning": {"maxTrials": 10},
        "output": {"uri": (tmp_path / "v1").as_uri()},
        **overrides,
    }
    return trainer_api.TrainerInput.model_validate(document)


def test_an_anomaly_run_writes_a_version_whose_records_match_its_metrics(tmp_path):
    problem = {"task": "anomaly_detection", "target": "anomaly", "primaryMetric": "roc_auc"}
    spec = _spec(tmp_path, problem, SHUTTLE.as_uri(), algorithms=[{"name": "isolation_forest"}, {"name": "robust_covariance"}])
    outcome, info = experiment.run(spec)
    assert outcome.metrics["test"]["roc_auc"] >= 0.9
    assert 0 < outcome.metrics["test"]["anomaly_rate"] < 0.2
    version = artifacts.load(tmp_path / "v1", expected_digest=info.digest)
    assert version.card["problem"]["task"] == "anomaly_detection"
    assert version.card["prediction"] == {"fields": ["anomaly", "score"]}
    assert version.card["anomaly"]["thresholdFrom"] == "validationLabels"
    assert isinstance(version.pipeline, unsupervised.RecordPipeline)


def test_a_clustering_run_picks_k_in_range_and_profiles_the_clusters(tmp_path):
    problem = {
        "task": "clustering",
        "primaryMetric": "silhouette",
        "clusters": {"min": 3, "max": 4},
        "features": {"exclude": ["customer_id"]},
    }
    spec = _spec(tmp_path, problem, CDNOW.as_uri(), algorithms=[{"name": "kmeans"}, {"name": "agglomerative"}])
    outcome, info = experiment.run(spec)
    test = outcome.metrics["test"]
    assert 3 <= test["n_clusters"] <= 4 and "silhouette" in test
    assert len(outcome.search.trials) == 4
    card = artifacts.load(tmp_path / "v1", expected_digest=info.digest).card
    assert card["clusters"]["k"] == test["n_clusters"]
    assert sum(p["size"] for p in card["clusters"]["profiles"]) == outcome.rows["train"]


@pytest.mark.parametrize(
    ("problem", "preprocessing", "message"),
    [
        (
            {"task": "anomaly_detection", "target": "f1", "primaryMetric": "roc_auc"},
            {},
            "problem.target: anomaly_detection reads",
        ),
        (
            {"task": "anomaly_detection", "target": "anomaly", "primaryMetric": "roc_auc"},
            {"balance": "smote"},
            "preprocessing.balance",
        ),
    ],
)
def test_a_framing_the_data_cannot_train_is_refused_naming_the_field(tmp_path, problem, preprocessing, message):
    from mlkube.ml import errors

    spec = _spec(tmp_path, problem, SHUTTLE.as_uri(), preprocessing=preprocessing)
    with pytest.raises((errors.DataError, errors.InvalidSpec)) as caught:
        experiment.run(spec)
    assert str(caught.value).startswith(message)

"""Issues 15 and 16 acceptance on the embedded control plane, through kubectl: anomaly detection on
Statlog (Shuttle) and customer segmentation on CDNOW, each trained by a TrainingJob, registered,
served by a ModelDeployment through the router, and (anomaly detection) judged by a DriftMonitor on
the feedback an engineer gives on the flagged readings. Served answers are compared with the
version's own pipeline loaded offline from the artifact store, and the CRDs refuse inconsistent
framings naming the field."""

from __future__ import annotations

import concurrent.futures
import pathlib

import httpx
import pandas as pd
import pytest
import yaml

from localcluster import LocalCluster, wait_for
from mlkube.ml import artifacts

pytestmark = pytest.mark.slow

DATA = pathlib.Path(__file__).parents[2] / "data"
SHUTTLE = DATA / "shuttle" / "shuttle_3000.csv"
CDNOW = DATA / "cdnow" / "cdnow_rfm_2000.csv"
FEATURES = [f"f{i}" for i in range(1, 10)]


def project(name: str, problem: dict, data: pathlib.Path, storage: pathlib.Path, template: dict, **spec) -> dict:
    return {
        "apiVersion": "mlkube.io/v1alpha1",
        "kind": "MLProject",
        "metadata": {"name": name},
        "spec": {
            "goal": {"description": "find what is unusual or alike", "type": "Process"},
            "problem": problem,
            "data": {"uri": f"file://{data}"},
            "storage": {"uri": f"file://{storage}"},
            "training": {"template": template},
            **spec,
        },
    }


def train_and_serve(cluster: LocalCluster, namespace: str, name: str) -> tuple[dict, dict, str]:
    """The first TrainingJob of project `name` run to champion, and a Direct deployment of it:
    (the run's status, the ModelVersion, the deployment's URL)."""
    cluster.apply(
        {
            "apiVersion": "mlkube.io/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"name": f"{name}-1"},
            "spec": {"projectRef": name},
        },
        namespace,
    )
    run = wait_for(
        lambda: (lambda s: s if s.get("phase") in ("Succeeded", "Failed") else None)(
            cluster.status("tj", f"{name}-1", namespace)
        ),
        120,
        f"{name}-1 to finish",
    )
    assert run["phase"] == "Succeeded", run.get("message")
    wait_for(lambda: cluster.status("mlproject", name, namespace).get("championVersion") == 1, 60, f"{name} v1 to be champion")
    version = cluster.get("mv", f"{name}-v1", namespace)
    cluster.apply(
        {
            "apiVersion": "mlkube.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": f"{name}-prod"},
            "spec": {
                "projectRef": name,
                "model": {"track": "champion"},
                "strategy": {"type": "Direct"},
                "logging": {"enabled": True, "sampleRate": 1.0},
            },
        },
        namespace,
    )
    served = wait_for(
        lambda: (lambda s: s if s.get("phase") == "Healthy" and s.get("stableVersion") == 1 else None)(
            cluster.status("mdep", f"{name}-prod", namespace)
        ),
        120,
        f"{name}-prod to serve version 1",
    )
    return run, version, served["url"]


def offline(version: dict, tmp_path: pathlib.Path):
    """The version's pipeline, loaded from the artifact store after its digest is checked."""
    local = artifacts.download(version["spec"]["artifactUri"], tmp_path / "offline", expected_digest=version["spec"]["digest"])
    return artifacts.load(local, expected_digest=version["spec"]["digest"]).pipeline


def test_anomaly_detection_is_served_in_the_offline_ranking_and_feedback_on_flags_is_scored(
    cluster: LocalCluster, namespace, tmp_path
):
    problem = {"task": "anomaly_detection", "target": "anomaly", "primaryMetric": "roc_auc"}
    template = {"algorithms": [{"name": "isolation_forest", "params": {"n_estimators": [100]}}, {"name": "robust_covariance"}]}
    cluster.apply(project("shuttle", problem, SHUTTLE, tmp_path / "models", template), namespace)
    run, version, url = train_and_serve(cluster, namespace, "shuttle")
    test = run["metrics"]["test"]
    assert test["roc_auc"] >= 0.9 and {"pr_auc", "precision_at_k", "recall_at_k", "f1", "anomaly_rate"} <= set(test)

    table = pd.read_csv(SHUTTLE)
    rows = pd.concat([table[table["anomaly"] == 1].head(40), table[table["anomaly"] == 0].head(110)]).sample(
        frac=1, random_state=3
    )

    def ask(row: pd.Series) -> tuple[str, dict]:
        instance = {f: int(row[f]) for f in FEATURES}
        response = client.post(f"{url}/v1/models/shuttle-prod:predict", json={"instances": [instance]})
        response.raise_for_status()
        return response.headers["x-request-id"], response.json()["predictions"][0]

    with httpx.Client(timeout=30) as client, concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(ask, (row for _, row in rows.iterrows())))
        served = [prediction for _, prediction in answers]
        assert all(set(p) == {"anomaly", "score"} and p["anomaly"] == int(p["score"] >= 0.5) for p in served)
        # Served scores rank the rows as the version's own pipeline does offline.
        expected = offline(version, tmp_path).records(rows[FEATURES])
        served_scores = pd.Series([p["score"] for p in served])
        assert (served_scores.rank().to_numpy() == pd.Series(expected["score"]).rank().to_numpy()).all()
        assert [p["anomaly"] for p in served] == expected["anomaly"].tolist()
        # V2 answers the same record, the flag as `predict` and the score as its own output.
        v2 = client.post(
            f"{url}/v2/models/shuttle-prod/infer",
            json={"inputs": [{"name": f, "shape": [1], "datatype": "INT64", "data": [int(rows.iloc[0][f])]} for f in FEATURES]},
        ).json()
        outputs = {o["name"]: o for o in v2["outputs"]}
        assert outputs["predict"]["data"] == [served[0]["anomaly"]] and outputs["score"]["data"][0] == pytest.approx(
            served[0]["score"]
        )

        # An engineer confirms or dismisses every flagged reading.
        flagged = [(request_id, int(truth)) for (request_id, p), truth in zip(answers, rows["anomaly"]) if p["anomaly"] == 1]
        assert len(flagged) >= 20
        items = [{"requestId": request_id, "groundTruth": truth} for request_id, truth in flagged]
        client.post(f"{url}/v1/feedback", json={"items": items}).raise_for_status()

    cluster.apply(
        {
            "apiVersion": "mlkube.io/v1alpha1",
            "kind": "DriftMonitor",
            "metadata": {"name": "shuttle-drift"},
            "spec": {
                "deploymentRef": "shuttle-prod",
                "interval": "5s",
                "window": {"size": 500, "duration": "1h"},
                "minSamples": 100,
                "conceptDrift": {"metric": "f1", "maxDrop": 0.5, "minLabeled": 10},
            },
        },
        namespace,
    )
    status = wait_for(
        lambda: (lambda s: s if (s.get("performance") or {}).get("samples") == len(flagged) else None)(
            cluster.status("dmon", "shuttle-drift", namespace)
        ),
        90,
        "the monitor to score the feedback on the flagged readings",
    )
    assert status["samples"] == len(rows) + 1 and status["performance"]["metric"] == "f1"  # the V1 requests and the V2 one
    precision = sum(truth for _, truth in flagged) / len(flagged)
    assert status["performance"]["current"] == pytest.approx(2 * precision / (1 + precision), abs=1e-3)
    assert "predictionDrift" in status


def test_clustering_picks_k_in_range_and_serves_the_offline_assignment(cluster: LocalCluster, namespace, tmp_path):
    problem = {
        "task": "clustering",
        "primaryMetric": "silhouette",
        "clusters": {"min": 2, "max": 4},
        "features": {"exclude": ["customer_id"]},
    }
    template = {"algorithms": [{"name": "kmeans"}, {"name": "agglomerative"}], "tuning": {"maxTrials": 6}}
    cluster.apply(project("segments", problem, CDNOW, tmp_path / "models", template), namespace)
    run, version, url = train_and_serve(cluster, namespace, "segments")
    test = run["metrics"]["test"]
    assert "silhouette" in test and 2 <= test["n_clusters"] <= 4
    assert run["bestAlgorithm"] in ("kmeans", "agglomerative")

    customers = pd.read_csv(CDNOW, dtype={"customer_id": str}).sample(60, random_state=5)
    features = ["recency_days", "frequency", "monetary", "cds", "tenure_days"]
    instances = [{f: float(v) for f, v in row.items()} for row in customers[features].to_dict("records")]
    with httpx.Client(timeout=30) as client:
        response = client.post(f"{url}/v1/models/segments-prod:predict", json={"instances": instances})
        response.raise_for_status()
    served = response.json()["predictions"]
    pipeline = offline(version, tmp_path)
    assert [p["cluster"] for p in served] == pipeline.predict(customers[features]).tolist()
    assert [p["distance"] for p in served] == pytest.approx(pipeline.records(customers[features])["distance"].tolist())
    assert {p["cluster"] for p in served} <= set(range(int(test["n_clusters"])))

    # Then only loyal customers come: the share of each segment moves, which the monitor reports.
    loyal = pd.read_csv(CDNOW, dtype={"customer_id": str}).query("frequency >= 6").head(80)
    instances = [{f: float(v) for f, v in row.items()} for row in loyal[features].to_dict("records")]
    with httpx.Client(timeout=30) as client:
        client.post(f"{url}/v1/models/segments-prod:predict", json={"instances": instances}).raise_for_status()
    cluster.apply(
        {
            "apiVersion": "mlkube.io/v1alpha1",
            "kind": "DriftMonitor",
            "metadata": {"name": "segments-drift"},
            "spec": {
                "deploymentRef": "segments-prod",
                "interval": "5s",
                "window": {"size": 500, "duration": "1h"},
                "minSamples": 100,
                "predictionDrift": {"method": "psi", "threshold": 0.2},
            },
        },
        namespace,
    )
    status = wait_for(
        lambda: (lambda s: s if s.get("phase") in ("Healthy", "Drifting") else None)(
            cluster.status("dmon", "segments-drift", namespace)
        ),
        60,
        "the monitor's first analysis",
    )
    assert status["samples"] == len(customers) + len(loyal)
    assert status["phase"] == "Drifting" and status["predictionDrift"]["drifted"], status
    assert "performance" not in status  # segments have no ground truth to score


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"clusters": {"min": 2, "max": 5}}, "spec.problem.clusters"),
        ({"contamination": 0.7}, "spec.problem.contamination"),
        ({"primaryMetric": "silhouette"}, "spec.problem.primaryMetric"),
    ],
)
def test_the_api_server_refuses_an_inconsistent_framing_naming_the_field(
    cluster: LocalCluster, namespace, tmp_path, change, field
):
    problem = {"task": "classification", "target": "anomaly", "primaryMetric": "roc_auc", **change}
    refused = cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=yaml.safe_dump(project("bad", problem, SHUTTLE, tmp_path, {})),
        check=False,
    )
    assert refused.returncode != 0 and field in refused.stderr, refused.stderr

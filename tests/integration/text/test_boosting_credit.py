"""LightGBM and XGBoost on real credit-scoring data: each chosen by the tuner's search over its
space, registered, served, and the XGBoost version rolled out over the LightGBM one by a canary
like any other version. Through kubectl on the embedded control plane.

Data: tests/data/credit (modeldata's credit_data, 4,454 applications; see its README for the licence).
"""

from __future__ import annotations

import pathlib

import httpx
import pandas as pd
import pytest
from text_helpers import registered, serving

from localcluster import wait_for

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]  # a local cluster, real processes

CREDIT_CSV = pathlib.Path(__file__).parents[2] / "data" / "credit" / "credit_data.csv"


def test_lightgbm_and_xgboost_versions_are_tuned_served_and_rolled_out(cluster, namespace, tmp_path):
    cluster.apply(
        {
            "apiVersion": "mlkube.io/v1alpha1",
            "kind": "MLProject",
            "metadata": {"name": "credit"},
            "spec": {
                "goal": {"description": "Approve loans that will be repaid", "type": "Financial"},
                "problem": {"task": "classification", "target": "Status", "primaryMetric": "roc_auc"},
                "data": {"uri": CREDIT_CSV.as_uri()},
                "storage": {"uri": tmp_path.as_uri()},
                "promotion": {"policy": "manual"},
            },
        },
        namespace,
    )
    for library in ("lightgbm", "xgboost"):
        cluster.apply(
            {
                "apiVersion": "mlkube.io/v1alpha1",
                "kind": "TrainingJob",
                "metadata": {"name": library},
                "spec": {
                    "projectRef": "credit",
                    "algorithms": [{"name": library}],
                    "tuning": {"strategy": "random", "maxTrials": 2, "cvFolds": 2},
                },
            },
            namespace,
        )
    versions = registered(cluster, namespace, "credit", {"lightgbm", "xgboost"})
    for library, entry in versions.items():
        assert entry["algorithm"] == library
        assert entry["metrics"]["roc_auc"] > 0.75, (library, entry["metrics"])
        card = cluster.status("trainingjob", library, namespace)
        assert card.get("phase") == "Succeeded", card

    first, second = versions["lightgbm"]["version"], versions["xgboost"]["version"]
    cluster.apply(
        {
            "apiVersion": "mlkube.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "credit"},
            "spec": {
                "projectRef": "credit",
                "model": {"version": first},
                "strategy": {
                    "type": "Canary",
                    "canary": {"steps": [{"weight": 50, "pause": "5s"}]},
                    "analysis": {"interval": "5s", "minRequests": 5, "maxErrorRate": 0.05},
                },
            },
        },
        namespace,
    )
    url = f"{serving(cluster, 'credit', namespace)}/v1/models/credit:predict"
    applicants = pd.read_csv(CREDIT_CSV).drop(columns=["Status"]).dropna().head(20)
    rows = [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in applicants.to_dict("records")]
    cluster.kubectl(
        "patch", "mdep", "credit", "-n", namespace, "--type=merge", "-p", f'{{"spec": {{"model": {{"version": {second}}}}}}}'
    )
    answered = set()
    with httpx.Client(timeout=30) as http:

        def promoted() -> bool:
            for row in rows:
                response = http.post(url, json={"instances": [row]})
                assert response.status_code == 200, response.text
                assert response.json()["predictions"][0] in ("good", "bad")
                answered.add(response.headers.get("x-mlkube-version"))
            status = cluster.status("mdep", "credit", namespace)
            assert status.get("phase") not in ("RolledBack", "Degraded"), status
            return status.get("stableVersion") == second and status.get("phase") == "Healthy"

        try:
            wait_for(promoted, 240, f"the canary of version {second} (xgboost) to be promoted", interval=1)
        except AssertionError as timeout:
            raise AssertionError(f"{timeout}: {cluster.status('mdep', 'credit', namespace)}") from None
    assert {str(first), str(second)} <= answered, answered  # both libraries answered live requests

"""Issue 22's scenario on real credit-scoring data: version 1 a logistic regression, version 2 a
histogram gradient boosting model that disagrees with it on some applicants, rolled out under
steady live traffic by Canary, ABTest and BlueGreen with only the thresholds the user wrote. A
better model is expected to predict differently: none of the three may roll it back for that,
and no client request may fail on the way.

Data: tests/data/credit (modeldata's credit_data, 4,454 applications; see its README for the licence).
"""

from __future__ import annotations

import collections
import pathlib
import threading
import uuid
from typing import Any

import pandas as pd
import pytest
from rollout_helpers import Client, registry, roll_to, serving, wait_for

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]  # a local cluster, real processes

CREDIT_CSV = pathlib.Path(__file__).parents[2] / "data" / "credit" / "credit_data.csv"
PROJECT = "credit"
# What the user wrote in the report, and nothing more.
ANALYSIS = {"interval": "5s", "minRequests": 10, "maxErrorRate": 0.05}
STRATEGIES = {
    "Canary": {"type": "Canary", "canary": {"steps": [{"weight": 50, "pause": "10s"}]}, "analysis": ANALYSIS},
    "ABTest": {"type": "ABTest", "abTest": {"weight": 50, "duration": "30s"}, "analysis": ANALYSIS},
    "BlueGreen": {"type": "BlueGreen", "blueGreen": {"previewDuration": "10s"}, "analysis": ANALYSIS},
}


@pytest.fixture(scope="module")
def credit(cluster, tmp_path_factory) -> dict[str, Any]:
    """A credit project with its two trained versions: {"namespace", "v1", "v2"}."""
    namespace = f"credit-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", namespace)
    cluster.apply(
        {
            "apiVersion": "mlkube.io/v1alpha1",
            "kind": "MLProject",
            "metadata": {"name": PROJECT},
            "spec": {
                "goal": {"description": "Approve loans that will be repaid", "type": "Financial"},
                "problem": {"task": "classification", "target": "Status", "primaryMetric": "roc_auc"},
                "data": {"uri": CREDIT_CSV.as_uri()},
                "storage": {"uri": tmp_path_factory.mktemp("credit-models").as_uri()},
                "promotion": {"policy": "manual"},
            },
        },
        namespace,
    )
    for name, algorithm in (("logistic", "logistic_regression"), ("boosted", "hist_gradient_boosting")):
        cluster.apply(
            {
                "apiVersion": "mlkube.io/v1alpha1",
                "kind": "TrainingJob",
                "metadata": {"name": name},
                "spec": {
                    "projectRef": PROJECT,
                    "algorithms": [{"name": algorithm}],
                    "tuning": {"strategy": "random", "maxTrials": 1, "cvFolds": 2},
                },
            },
            namespace,
        )
    trained = wait_for(
        lambda: (found := registry(cluster, namespace, PROJECT)).keys() >= {"logistic", "boosted"} and found,
        300,
        "both credit trainings to register",
        interval=1,
    )
    return {"namespace": namespace, "v1": trained["logistic"]["version"], "v2": trained["boosted"]["version"]}


def applicants() -> list[dict[str, Any]]:
    frame = pd.read_csv(CREDIT_CSV).drop(columns=["Status"]).dropna().head(200)
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in frame.to_dict("records")]


class SteadyTraffic:
    """Clients sending applicants one by one until stopped; keeps (version, status) of every answer."""

    def __init__(self, client: Client, rows: list[dict[str, Any]], *, threads: int = 2) -> None:
        self.client, self.rows, self.answers = client, rows, []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._send, args=(i,), daemon=True) for i in range(threads)]
        for thread in self._threads:
            thread.start()

    def _send(self, offset: int) -> None:
        i = offset
        while not self._stop.is_set():
            response = self.client.predict(self.rows[i % len(self.rows)])
            self.answers.append((response.headers.get("x-mlkube-version"), response.status_code))
            i += 2

    def stop(self) -> collections.Counter:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        return collections.Counter(self.answers)


@pytest.mark.parametrize("strategy", STRATEGIES, ids=str)
def test_a_better_credit_model_that_disagrees_with_the_old_one_is_promoted(cluster, credit, strategy):
    namespace, v1, v2 = credit["namespace"], credit["v1"], credit["v2"]
    name = f"credit-{strategy.lower()}"
    cluster.apply(
        {
            "apiVersion": "mlkube.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": name},
            "spec": {"projectRef": PROJECT, "model": {"version": v1}, "strategy": STRATEGIES[strategy]},
        },
        namespace,
    )
    url = serving(cluster, name, namespace)
    rows = applicants()
    live = SteadyTraffic(Client(url, name), rows)
    preview = SteadyTraffic(Client(f"{url}/preview", name), rows, threads=1) if strategy == "BlueGreen" else None
    try:
        roll_to(cluster, name, namespace, v2)
        wait_for(
            lambda: (
                ((s := cluster.mdep_status(name, namespace)).get("stableVersion") == v2 and s.get("phase") == "Healthy")
                or s.get("phase") in ("RolledBack", "Paused", "Degraded")
            ),
            240,
            f"the {strategy} rollout of version {v2} to end",
            interval=1,
        )
    finally:
        answered = live.stop()
        previewed = preview.stop() if preview else collections.Counter()
    status = cluster.mdep_status(name, namespace)
    assert (status["phase"], status["stableVersion"]) == ("Healthy", v2), (strategy, status.get("message"), status)
    assert {code for _, code in answered} == {200}, answered  # no client request failed on the way
    assert answered[(str(v2), 200)] > 0 and answered[(str(v1), 200)] > 0, answered
    if strategy == "BlueGreen":
        assert previewed[(str(v2), 200)] > 0, previewed  # the preview was exercised before the switch
    events = cluster.events(name, namespace)
    assert "Promoted" in events and "RolledBack" not in events, events
    cluster.kubectl("delete", "mdep", name, "-n", namespace, "--wait=false", check=False)

"""Issue 8 acceptance on the embedded control plane: drift -> alert -> retrain -> new champion -> rollout.

Real processes and real HTTP throughout: the operator, the trainer, the model servers and the router
run as local processes; traffic and feedback go to the router at the ModelDeployment's
``status.url``; labels are also imported in bulk with ``mlkube feedback``; alerts go to an
Alertmanager-compatible receiver on loopback. The shift is a bill caliper recalibrated to
centimetres (``mlkube.local.scenario``), which the first model cannot handle and a model retrained
on the labeled shifted traffic can. Each version is judged against its own reference: the first its training
partition, the retrained one the newest labeled traffic it was retrained for, on which the loop ends Healthy.
"""

from __future__ import annotations

import json
import pathlib

import pandas as pd
import pytest
from drift_helpers import LocalCluster, mlkube, wait_for

from mlkube.local import scenario

pytestmark = pytest.mark.slow

PROJECT, DEPLOYMENT, MONITOR = "penguins", "penguins-prod", "penguins-drift"


def project(data: pathlib.Path, storage: pathlib.Path) -> dict:
    template = {
        "algorithms": [{"name": "random_forest", "params": {"n_estimators": [50], "max_depth": {"int": [4, 10]}}}],
        "tuning": {"strategy": "random", "maxTrials": 2, "cvFolds": 2},
    }
    return {
        "apiVersion": "mlkube.io/v1alpha1",
        "kind": "MLProject",
        "metadata": {"name": PROJECT},
        "spec": {
            "goal": {"description": "Identify penguin species", "type": "Process"},
            "problem": {"task": "classification", "target": "species", "primaryMetric": "f1", "features": {"exclude": ["year"]}},
            "successCriteria": [{"metric": "f1", "op": ">=", "threshold": 0.8}],
            "data": {"uri": f"file://{data}"},
            "storage": {"uri": f"file://{storage}"},
            "training": {"template": template},
            "retraining": {"onDrift": True, "cooldown": "1h", "maxPerDay": 4, "includeFeedback": True, "feedbackWindow": "1d"},
            "promotion": {"policy": "auto", "evaluateOn": "recent"},
        },
    }


def monitor(name: str, *, webhook: str | None = None) -> dict:
    spec = {
        "deploymentRef": DEPLOYMENT,
        "interval": "5s",
        "window": {"size": 400, "duration": "1h"},
        "minSamples": 100,
        "dataDrift": {"method": "auto", "datasetShare": 0.3},
        "conceptDrift": {"metric": "f1", "maxDrop": 0.05},
        "action": {"retrain": True},
    }
    if webhook:
        spec["alerting"] = {"webhook": webhook, "severity": "critical"}
    return {"apiVersion": "mlkube.io/v1alpha1", "kind": "DriftMonitor", "metadata": {"name": name}, "spec": spec}


def test_drift_alerts_retrains_once_and_the_new_champion_recovers_on_shifted_traffic(cluster: LocalCluster, namespace, tmp_path):
    table = scenario.penguins()
    table.to_csv(tmp_path / "penguins.csv", index=False)
    storage = tmp_path / "models"
    cluster.apply(project(tmp_path / "penguins.csv", storage), namespace)
    cluster.apply(
        {
            "apiVersion": "mlkube.io/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"name": "first"},
            "spec": {"projectRef": PROJECT},
        },
        namespace,
    )
    wait_for(lambda: cluster.status("mlproject", PROJECT, namespace).get("championVersion") == 1, 240, "version 1 to be champion")
    cluster.apply(
        {
            "apiVersion": "mlkube.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": DEPLOYMENT},
            "spec": {
                "projectRef": PROJECT,
                "model": {"track": "champion"},
                "strategy": {"type": "Direct"},
                "logging": {"enabled": True, "sampleRate": 1.0},
            },
        },
        namespace,
    )
    served = wait_for(
        lambda: (lambda s: s if s.get("phase") == "Healthy" and s.get("stableVersion") == 1 else None)(
            cluster.status("mdep", DEPLOYMENT, namespace)
        ),
        120,
        "the deployment to serve version 1",
    )
    url = served["url"]

    with scenario.AlertReceiver() as alerts:
        cluster.apply(monitor(MONITOR, webhook=alerts.url), namespace)

        # In-distribution traffic, labeled in bulk with the CLI: Healthy, performance at its baseline.
        answers = scenario.predict(url, DEPLOYMENT, scenario.stations(table, 200, seed=1))
        where = ["-d", DEPLOYMENT, "-n", namespace, "--kubeconfig", cluster.kubeconfig]
        pending = tmp_path / "pending.csv"
        wait_for(
            lambda: mlkube("feedback", "export", "-o", str(pending), *where).returncode == 0 and len(pd.read_csv(pending)) == 200,
            30,
            "the 200 requests to be captured and pending",
        )
        labeled = pd.read_csv(pending).assign(groundTruth=lambda t: t["requestId"].map({a.request_id: a.truth for a in answers}))
        labeled.to_csv(pending, index=False)
        imported = mlkube("feedback", "import", str(pending), *where)
        assert imported.returncode == 0 and "imported 200 ground truth label(s)" in imported.stdout, imported.stderr

        def analysed(phase: str, labeled_samples: int = 0):
            def check():
                status = cluster.status("dmon", MONITOR, namespace)
                performance = status.get("performance") or {}
                return status if status.get("phase") == phase and performance.get("samples", 0) >= labeled_samples else None

            return check

        healthy = wait_for(analysed("Healthy", 200), 60, "a Healthy analysis with the imported labels")
        assert healthy["samples"] == 200 and not healthy["datasetDrift"] and not healthy["performance"]["drifted"]
        assert alerts.posts == 0 and not cluster.items("trainingjobs", namespace, "-l", "mlkube.io/trigger=drift")

        # Recalibrated traffic with online feedback: Drifting, one Event, one alert, a report, one retraining run.
        before = scenario.predict(url, DEPLOYMENT, scenario.recalibrated(scenario.stations(table, 300, seed=2)), feedback=True)
        wait_for(analysed("Drifting"), 60, "a Drifting analysis of the shifted window")

        # A second monitor of the same project sees the same drift: the cooldown refuses a second run. It is made
        # as soon as the first monitor's episode has started its run, so that it judges version 1 while that run
        # trains (once the retrained version is rolled out, both judge it on its own reference).
        cluster.apply(monitor("second-opinion"), namespace)
        second = wait_for(
            lambda: (lambda s: s if "cooling down" in (s.get("message") or "") else None)(
                cluster.status("dmon", "second-opinion", namespace)
            ),
            60,
            "the second monitor to be refused by the cooldown",
        )
        assert second["phase"] == "Drifting" and "spec.retraining.cooldown 1h" in second["message"]
        assert "RetrainingSkipped" in cluster.events("second-opinion", namespace)

        drifting = wait_for(analysed("Drifting", 300), 60, "a Drifting analysis of the shifted, labeled window")
        assert drifting["datasetDrift"] and drifting["performance"]["drifted"]
        assert drifting["performance"]["current"] < drifting["performance"]["baseline"] - 0.05
        moved = {f["name"] for f in drifting["features"] if f["drifted"]}
        assert moved == set(scenario.RECALIBRATED), drifting["features"]
        condition = next(c for c in drifting["conditions"] if c["type"] == "Drifting")
        assert condition["status"] == "True" and condition["reason"] == "DriftDetected"
        report = pathlib.Path(drifting["reportUri"].removeprefix("file://"))
        assert report.is_file() and report.read_text().lstrip().lower().startswith("<!doctype html")
        assert cluster.events(MONITOR, namespace).count("DriftDetected") == 1
        runs = cluster.items("trainingjobs", namespace, "-l", "mlkube.io/trigger=drift")
        assert [r["metadata"]["name"] for r in runs] == [drifting["retrainingJob"]]
        assert alerts.posts == 1, alerts.alerts  # the drift persists: no second alert inside the resend period
        alert = alerts.alerts[0]
        assert (
            alert["labels"].items()
            >= {
                "alertname": "MLModelDrift",
                "project": PROJECT,
                "deployment": DEPLOYMENT,
                "version": "1",
                "severity": "critical",
            }.items()
        )
        assert "bill_length_mm" in alert["annotations"]["topDriftedFeatures"] and "endsAt" not in alert
        assert alert["annotations"]["reportUri"].endswith(".html")

        # The retrained version beats the champion on the newest labeled traffic, becomes champion and is rolled out.
        run = wait_for(
            lambda: (lambda s: s if s.get("phase") in ("Succeeded", "Failed") else None)(
                cluster.status("tj", drifting["retrainingJob"], namespace)
            ),
            240,
            "the retraining run to finish",
        )
        assert run["phase"] == "Succeeded", run.get("message")
        assert run["comparison"]["holdout"] == "recent" and run["comparison"]["challengerBetter"], run["comparison"]
        wait_for(
            lambda: cluster.status("mlproject", PROJECT, namespace).get("championVersion") == 2, 60, "version 2 to be champion"
        )
        wait_for(
            lambda: (lambda s: s.get("stableVersion") == 2 and s.get("phase") == "Healthy")(
                cluster.status("mdep", DEPLOYMENT, namespace)
            ),
            120,
            "the deployment to roll out version 2",
        )

        after = scenario.predict(url, DEPLOYMENT, scenario.recalibrated(scenario.stations(table, 150, seed=3)))
        assert {a.version for a in after} == {2}
        recovered, degraded = scenario.f1(after), scenario.f1(before)
        assert recovered >= healthy["performance"]["baseline"] - 0.05 and recovered > degraded + 0.2, (recovered, degraded)

        # Version 1 no longer serves: its episode ends and its alert is resolved.
        resolved = wait_for(lambda: [a for a in alerts.alerts if a.get("endsAt")], 60, "the alert of version 1 to be resolved")
        assert resolved[0]["labels"]["version"] == "1" and resolved[0]["startsAt"] == alert["startsAt"]

        # Version 2 is judged against the traffic it was retrained for (its reference is the newest, recalibrated,
        # labeled traffic), so the loop ends Healthy instead of sitting in Drifting behind the retraining cooldown.
        judged = wait_for(
            lambda: (lambda s: s if s.get("modelVersion") == 2 and s.get("phase") in ("Healthy", "Drifting") else None)(
                cluster.status("dmon", MONITOR, namespace)
            ),
            60,
            "an analysis of version 2",
        )
        assert judged["phase"] == "Healthy" and not judged["datasetDrift"], judged
        assert not judged["predictionDrift"]["drifted"] and "cooling down" not in (judged.get("message") or ""), judged
        card = json.loads(next(storage.glob(f"runs/{drifting['retrainingJob']}-*/model_card.json")).read_text())
        assert card["reference"]["source"] == "recentTraffic", card["reference"]


def test_a_monitor_of_a_missing_deployment_says_what_to_fix(cluster: LocalCluster, namespace):
    body = monitor("orphan")
    body["spec"]["deploymentRef"] = "nope"
    cluster.apply(body, namespace)

    def reported():
        status = cluster.status("dmon", "orphan", namespace)
        return next((c for c in status.get("conditions", []) if c["type"] == "Ready" and c["status"] == "False"), None)

    ready = wait_for(reported, 30, "a Ready=False condition")
    assert ready["reason"] == "DeploymentNotFound"
    assert "ModelDeployment 'nope' does not exist" in ready["message"] and "fix spec.deploymentRef" in ready["message"]
    assert cluster.status("dmon", "orphan", namespace)["phase"] == "Pending"

"""Bias drift: the drift check on a real model version trained on UCI Adult with ``sex`` as a
sensitive feature kept out of the features, and a window captured in the router's layout whose
requests carry ``sex``. Traffic in which the women's applications change so that their selection
rate falls is flagged, its DriftMonitor turns Drifting with an alert, and the report shows the
group metrics; the same traffic unchanged is not flagged. About 15 s."""

from __future__ import annotations

import datetime
import json
import pathlib

import pandas as pd
import pytest

from mlkube import driftcheck
from mlkube.api import driftcheck as driftcheck_api
from mlkube.api import kinds
from mlkube.api import trainer as trainer_api
from mlkube.control.plans import monitor
from mlkube.control.policy import checkjob
from mlkube.ml import artifacts, experiment

ADULT = pathlib.Path(__file__).parents[2] / "data" / "adult" / "adult_4000.csv"
NOW = datetime.datetime(2026, 11, 24, 12, 0, tzinfo=datetime.UTC)
WEBHOOK = "http://alertmanager:9093/api/v2/alerts"


@pytest.fixture(scope="module")
def version(tmp_path_factory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("adult")
    spec = trainer_api.TrainerInput.model_validate(
        {
            "project": {
                "name": "adult",
                "namespace": "ml",
                "goal": {"description": "grant credit fairly", "type": "Financial"},
                "problem": {
                    "task": "classification",
                    "target": "income",
                    "primaryMetric": "accuracy",
                    "features": {"exclude": ["sex"]},
                },
                "fairness": {"sensitiveFeatures": ["sex"], "favorableOutcome": ">50K"},
            },
            "trainingJob": {"name": "adult-1", "namespace": "ml", "uid": "u"},
            "data": {"uri": f"file://{ADULT}"},
            "algorithms": [{"name": "logistic_regression", "params": {"C": 1.0}}],
            "tuning": {"strategy": "random", "maxTrials": 1, "cvFolds": 2},
            "output": {"uri": f"file://{root}/v1/"},
        }
    )
    experiment.run(spec)
    return root / "v1"


def capture(store: pathlib.Path, version: pathlib.Path, rows: pd.DataFrame) -> None:
    """The served version's answers to ``rows`` (each request carrying ``sex``) as the router captures
    them, with the ground truth as feedback."""
    model = artifacts.load(version)
    features = [f["name"] for f in model.card["featureSchema"]]
    predictions = model.pipeline.predict(rows[features])
    log, answers = [], []
    for i, ((_, row), predicted) in enumerate(zip(rows.iterrows(), predictions)):
        stamp = f"2026-11-24T11:{i // 60 % 60:02d}:{i % 60:02d}.000Z"
        instance = {k: (v.item() if hasattr(v, "item") else v) for k, v in row[[*features, "sex"]].items()}
        log.append(
            {
                "requestId": f"r{i}",
                "timestamp": stamp,
                "namespace": "ml",
                "deployment": "prod",
                "version": 1,
                "role": "stable",
                "protocol": "v1",
                "verb": "predict",
                "status": 200,
                "request": {"instances": [instance]},
                "response": {"predictions": [predicted]},
            }
        )
        answers.append({"requestId": f"r{i}", "groundTruth": row["income"], "timestamp": stamp})
    for kind, records in (("inference-log", log), ("feedback", answers)):
        path = store / f"{kind}/ml/prod/date=2026-11-24/1795000000-router-000001.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in records))


def request(store: pathlib.Path, version: pathlib.Path, *, max_drop: float = 0.1) -> dict:
    return {
        "reference": {"uri": f"file://{version}/", "digest": artifacts.digest_of((version / artifacts.MANIFEST).read_bytes())},
        "traffic": {
            "uri": f"file://{store}",
            "namespace": "ml",
            "deployment": "prod",
            "versions": [1],
            "size": 5000,
            "since": "2026-11-24T00:00:00Z",
        },
        "minSamples": 100,
        "dataDrift": {"method": "auto", "threshold": 0.9, "datasetShare": 1.0},  # judge fairness alone here
        "predictionDrift": {"method": "psi", "threshold": 10.0},
        "conceptDrift": {"metric": "accuracy", "maxDrop": 1.0, "minLabeled": 50},
        "fairness": {"maxDrop": max_drop, "minGroupSamples": 30},
        "report": {"uri": f"file://{store}/reports/r.html"},
    }


def traffic() -> pd.DataFrame:
    return pd.read_csv(ADULT).sample(1200, random_state=5).reset_index(drop=True)


def test_traffic_like_the_training_data_is_not_bias_drift(version, tmp_path):
    capture(tmp_path, version, traffic())
    # The test split holds about 25 women earning >50K: its TPR of women is itself known to about
    # +-0.1, so the allowed drop is wider than that noise here.
    result = driftcheck.analyse(request(tmp_path, version, max_drop=0.15))
    fairness = result["fairness"]
    assert fairness["drifted"] is False and result["phase"] == "Healthy"
    assert {"disparate_impact", "demographic_parity_difference", "equalized_odds_difference"} <= set(fairness["metrics"])
    assert "note" not in fairness


def test_a_falling_selection_rate_of_one_group_is_bias_drift_with_an_alert_and_a_report(version, tmp_path):
    rows = traffic()
    women = rows["sex"] == "Female"
    # The women applying now report less education and hours, and no capital gains: the served model,
    # unchanged, selects fewer of them; the men's applications are as before.
    rows.loc[women, "education_num"] = (rows.loc[women, "education_num"] - 5).clip(lower=1)
    rows.loc[women, "hours_per_week"] = 20
    rows.loc[women, "capital_gain"] = 0
    baseline = json.loads((version / artifacts.CARD).read_text())["fairness"]["groups"]["sex"]["Female"]["selection_rate"]
    capture(tmp_path, version, rows)

    result = driftcheck.analyse(request(tmp_path, version))
    fairness = result["fairness"]
    assert result["phase"] == "Drifting" and fairness["drifted"] is True
    drifted = {(s["group"], s["metric"]) for s in fairness["shifts"] if s["drifted"]}
    assert ("", "disparate_impact") in drifted
    assert "Bias drift: " in result["summary"] and "sex" in result["summary"]
    female = next(s for s in fairness["shifts"] if s["group"] == "Female" and s["metric"] == "selection_rate")
    assert female["baseline"] == pytest.approx(baseline, abs=1e-6) and female["current"] < baseline
    assert fairness["metrics"]["disparate_impact"] < fairness["baseline"]["disparate_impact"] - 0.1
    assert len(driftcheck.compact(result)) <= driftcheck_api.RESULT_LIMIT_BYTES
    page = (tmp_path / "reports" / "r.html").read_text()
    assert "<h2>Fairness</h2>" in page and "disparate_impact" in page

    # The DriftMonitor's pass over this answer: Drifting, the summary in the Event and the alert.
    parsed = driftcheck_api.DriftCheckResult.model_validate(result)
    observed = monitor.Observed(served=_served(), check=checkjob.CheckState("Succeeded", result=parsed))
    outcome = monitor.plan(_dmon(), observed, now=NOW)
    status = outcome.plan.status.wire()
    assert status["phase"] == "Drifting" and status["fairness"]["drifted"] is True
    drifting = next(c for c in status["conditions"] if c["type"] == "Drifting")
    assert drifting["status"] == "True" and "Bias drift: " in drifting["message"]
    assert any(e.reason == "DriftDetected" and "Bias drift: " in e.message for e in outcome.plan.events)
    [alert] = outcome.alerts
    assert alert.url == WEBHOOK and "Bias drift: " in json.dumps(alert.body)


def _dmon() -> dict:
    return {
        "apiVersion": "mlkube.io/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": {"name": "adult-drift", "namespace": "ml", "uid": "d", "generation": 1},
        "spec": {"deploymentRef": "prod", "fairness": {"maxDrop": 0.1}, "alerting": {"webhook": WEBHOOK}},
    }


def _served() -> monitor.Served:
    mlp = {
        "apiVersion": "mlkube.io/v1alpha1",
        "kind": "MLProject",
        "metadata": {"name": "adult", "namespace": "ml", "uid": "p"},
        "spec": {
            "goal": {"description": "grant credit fairly", "type": "Financial"},
            "problem": {"task": "classification", "target": "income", "primaryMetric": "accuracy"},
            "fairness": {"sensitiveFeatures": ["sex"]},
            "data": {"uri": f"file://{ADULT}"},
            "storage": {"uri": "file:///s"},
        },
        "status": {
            "models": [
                {
                    "version": 1,
                    "trainingJob": "adult-1",
                    "createdAt": "2026-11-20T00:00:00Z",
                    "artifactUri": "file:///s/v1/",
                    "digest": "sha256:1",
                }
            ]
        },
    }
    entry = kinds.MLPROJECT.parse_status(mlp["status"]).models[0]
    return monitor.Served(project=mlp, project_spec=kinds.MLPROJECT.parse_spec(mlp["spec"]), entry=entry)

"""The dashboard's memory: objects as listed and watched, and the history it records while watching."""

from __future__ import annotations

import datetime
import math

import pytest
from dashboard_cases import NOW, NS, canary, event, filled, monitor

from mlkube.dashboard import store
from mlkube.ml import drift_methods


def test_a_list_replaces_the_collection_and_watch_events_change_it():
    data = store.Store()
    data.replace("modeldeployments", [canary(25)], now=NOW)
    assert "modeldeployments" in data.synced and "mlprojects" not in data.synced
    data.apply("modeldeployments", "MODIFIED", canary(50), now=NOW)
    assert data.get("modeldeployments", NS, "penguins-prod")["status"]["traffic"][1]["percent"] == 50
    data.apply("modeldeployments", "BOOKMARK", {"metadata": {"resourceVersion": "9"}}, now=NOW)
    data.apply("modeldeployments", "DELETED", canary(50), now=NOW)
    assert data.all("modeldeployments") == []
    data.replace("modeldeployments", [], now=NOW)
    assert data.get("modeldeployments", NS, "penguins-prod") is None


def test_traffic_history_records_each_change_of_the_rollout_once():
    data = filled()
    history = list(data.traffic[NS, "penguins-prod"])
    assert [s.split for s in history] == [((1, "stable", 75), (2, "canary", 25)), ((1, "stable", 50), (2, "canary", 50))]
    assert [s.at for s in history] == ["2026-12-05T12:00:00Z", "2026-12-05T12:00:30Z"]
    data.apply("modeldeployments", "MODIFIED", canary(50), now=NOW + datetime.timedelta(minutes=5))  # a resync, nothing new
    assert len(data.traffic[NS, "penguins-prod"]) == 2
    data.apply("modeldeployments", "MODIFIED", canary(50, verdict="Failing"), now=NOW + datetime.timedelta(minutes=6))
    assert [s.verdict for s in data.traffic[NS, "penguins-prod"]] == ["Passing", "Passing", "Failing"]


def test_drift_history_has_one_sample_per_analysis_and_scores_per_feature():
    data = filled()
    samples = list(data.drift[NS, "penguins-drift"])
    assert [(s.at, s.phase, s.drift_share) for s in samples] == [
        ("2026-12-05T11:50:00Z", "Healthy", 0.0),
        ("2026-12-05T11:59:00Z", "Drifting", 0.5),
    ]
    data.apply("driftmonitors", "MODIFIED", monitor("2026-12-05T11:59:00Z", share=0.5, bill=1e-6, drifted=True), now=NOW)
    assert len(data.drift[NS, "penguins-drift"]) == 2  # same lastCheckTime: the same analysis
    over_time = store.features_over_time(samples)
    assert over_time[0][0] == "bill_length_mm"  # the feature that moved most comes first
    assert over_time[0][1] == pytest.approx([math.log(0.5) / math.log(0.05), math.log(1e-6) / math.log(0.05)])
    assert over_time[1][1] == pytest.approx([0.05, 0.05])  # psi 0.01 against its threshold 0.2


@pytest.mark.parametrize(
    ("method", "score", "threshold"),
    [("ks", 1e-6, 0.05), ("chi2", 0.3, 0.01), ("ks", 0.0, 0.05), ("psi", 0.3, 0.2), ("wasserstein", 0.01, 0.1)],
)
def test_severity_is_the_ml_cores_scale(method, score, threshold):
    assert store.severity(method, score, threshold) == pytest.approx(drift_methods.severity(method, score, threshold))


def test_a_score_without_a_usable_threshold_has_no_severity():
    assert store.severity("psi", 0.3, None) is None and store.severity("ks", 0.3, 1.0) is None


def test_history_and_events_are_bounded():
    data = store.Store(history=3, events=2)
    for percent in range(10, 60, 10):
        data.apply("modeldeployments", "MODIFIED", canary(percent), now=NOW)
    assert [s.split[1][2] for s in data.traffic[NS, "penguins-prod"]] == [30, 40, 50]
    data.replace("events", [event(f"e{i}", "R", "m", f"2026-12-05T11:0{i}:00Z") for i in range(4)], now=NOW)
    assert [e["metadata"]["name"] for e in data.all("events")] == ["e2", "e3"]  # the newest two

"""Drift alerts as data: when to send (start, resend period, end) and the Alertmanager v2 body."""

import datetime

from mlkube.api import driftcheck, kinds
from mlkube.control.policy import alerting

NOW = datetime.datetime(2026, 11, 24, 12, 0, tzinfo=datetime.UTC)


def test_alerts_fire_once_per_episode_are_resent_while_it_lasts_and_resolve():
    assert alerting.should_send(drifting=True, was_drifting=False, last_alert=None, now=NOW)
    assert not alerting.should_send(drifting=True, was_drifting=True, last_alert="2026-11-24T11:58:00Z", now=NOW)
    assert alerting.should_send(drifting=True, was_drifting=True, last_alert="2026-11-24T11:50:00Z", now=NOW)
    assert alerting.should_send(drifting=True, was_drifting=True, last_alert=None, now=NOW)
    assert alerting.should_send(drifting=False, was_drifting=True, last_alert="2026-11-24T11:58:00Z", now=NOW)
    assert not alerting.should_send(drifting=False, was_drifting=False, last_alert=None, now=NOW)


def test_the_body_names_the_drifted_features_the_performance_drop_and_the_report():
    result = driftcheck.DriftCheckResult.model_validate(
        {
            "phase": "Drifting",
            "samples": 500,
            "summary": "age moved",
            "reportUri": "r",
            "features": [
                {"name": "age", "method": "psi", "score": 0.4, "drifted": True},
                {"name": "income", "method": "psi", "score": 0.01, "drifted": False},
            ],
            "performance": {"metric": "f1", "baseline": 0.9, "current": 0.7},
        }
    )
    body = alerting.payload({"alertname": "MLModelDrift"}, result, summary=result.summary, starts_at="s", resolved_at="e")
    assert body == [
        {
            "labels": {"alertname": "MLModelDrift"},
            "startsAt": "s",
            "endsAt": "e",
            "annotations": {
                "summary": "age moved",
                "topDriftedFeatures": "age",
                "reportUri": "r",
                "performanceDrop": "f1 0.900 -> 0.700 (drop 0.200, 0 labeled requests)",
            },
        }
    ]


def test_the_end_of_an_episode_is_described_by_its_last_status():
    last = kinds.DRIFTMONITOR.parse_status(
        {"phase": "Drifting", "features": [{"name": "age", "method": "ks", "score": 0.001, "drifted": True}]}
    )
    body = alerting.payload({}, last, starts_at="s", resolved_at=None)
    assert body[0]["annotations"] == {
        "summary": "model input drift",
        "topDriftedFeatures": "age",
        "reportUri": "",
        "performanceDrop": "n/a (not enough labeled requests in the window)",
    }
    assert "endsAt" not in body[0]


def test_labels_identify_the_monitor_and_the_judged_version():
    dmon = {"metadata": {"name": "m", "namespace": "ml"}}
    assert alerting.labels(dmon, project="p", deployment="d", version=3, severity="critical") == {
        "alertname": "MLModelDrift",
        "namespace": "ml",
        "monitor": "m",
        "project": "p",
        "deployment": "d",
        "version": "3",
        "severity": "critical",
    }

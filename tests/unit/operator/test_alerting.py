"""Drift alerts as data: when to send (start, resend period, end) and the Alertmanager v2 body."""

import datetime

import pytest

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


ALLOW = alerting.allowlist("alertmanager.monitoring:9093, https://alerts.example.com/api/v2/")


def test_an_unset_allowlist_allows_any_webhook_and_an_empty_one_none():
    assert alerting.allowlist(None) is None and alerting.is_allowed("http://anywhere/api/v2/alerts", None)
    assert alerting.allowlist(" , ") == () and not alerting.is_allowed("http://anywhere/api/v2/alerts", ())


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://alertmanager.monitoring:9093/api/v2/alerts", True),
        ("https://alertmanager.monitoring:9093/api/v2/alerts", True),
        ("http://alertmanager.monitoring/api/v2/alerts", False),  # the entry names port 9093
        ("https://alerts.example.com/api/v2/alerts", True),
        ("https://alerts.example.com:443/api/v2/alerts", True),
        ("http://alerts.example.com/api/v2/alerts", False),  # another scheme
        ("https://alerts.example.com/api/v2x/alerts", False),  # not under the path
        ("https://alerts.example.com.evil.net/api/v2/alerts", False),
        ("https://alerts.example.com@evil.net/api/v2/alerts", False),  # userinfo, then the real host
        ("http://169.254.169.254/latest/meta-data/", False),
        ("file:///etc/passwd", False),
    ],
)
def test_the_allowlist_matches_hosts_and_url_prefixes_as_parsed(url, allowed):
    assert alerting.is_allowed(url, ALLOW) is allowed


def test_a_refused_webhook_is_explained_with_the_setting_and_what_to_do():
    message = alerting.refusal("http://evil/", ALLOW)
    assert message.startswith("spec.alerting.webhook http://evil/ is not allowed by the operator's MLKUBE_ALERT_WEBHOOK_ALLOW")
    assert "alertmanager.monitoring:9093, https://alerts.example.com/api/v2/" in message and "not posted" in message

"""manifests/monitoring: the PrometheusRule passes promtool and each alert fires on the series it
watches (``promtool test rules``), and the Grafana dashboard is well formed and shipped as built.

promtool comes with Debian's ``prometheus`` package (.ci/run installs it); without it the promtool
tests skip, saying so. That every metric the rule and the dashboard read is one the router or the
operator exports is checked against real scrapes in tests/integration/serving/test_serving_exported_metrics.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import cluster_schemas as cs
import pytest
import yaml

DASHBOARD = cs.ROOT / "manifests" / "monitoring" / "grafana-dashboard.json"
GRAFANA_VARIABLES = {"__rate_interval", "__range", "__interval"}
ALERTS = {
    "MLKubeModelDrift",
    "MLKubeTrainingFailed",
    "MLKubeRolloutRolledBack",
    "MLKubeDeploymentDegraded",
    "MLKubeRouterDown",
    "MLKubeRouterErrors",
    "MLKubeOperatorDown",
}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (apt-get install prometheus ships it; .ci/run installs it)")
    return found


def rule_groups() -> dict:
    """The PrometheusRule's spec, as built by kustomize: a Prometheus rules file."""
    (rule,) = [o for o in cs.build("monitoring") if o["kind"] == "PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    return rule["spec"]


def test_the_prometheus_rule_passes_promtool(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(rule_groups()))
    result = subprocess.run([promtool(), "check", "rules", str(rules)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout
    names = {rule["alert"] for group in rule_groups()["groups"] for rule in group["rules"]}
    assert names == ALERTS


UNIT_TESTS = {
    "rule_files": ["rules.yaml"],
    "evaluation_interval": "1m",
    "tests": [
        {
            "interval": "1m",
            "input_series": [
                {"series": 'mlkube_drift_detected{namespace="ml",monitor="penguins-drift"}', "values": "0 0 1 1 1"},
                {
                    "series": 'mlkube_training_runs_total{namespace="ml",project="penguins",phase="Failed"}',
                    "values": "0 0 1 1 1",
                },
                {
                    "series": 'mlkube_training_runs_total{namespace="ml",project="penguins",phase="Succeeded"}',
                    "values": "0 1 2 3 4",
                },
                {"series": 'mlkube_rollout_rollbacks_total{namespace="ml",deployment="prod"}', "values": "0 0 1 1 1"},
                {"series": 'mlkube_rollout_phase{namespace="ml",deployment="prod",phase="Degraded"}', "values": "0 1x10"},
                {"series": 'mlkube_rollout_phase{namespace="ml",deployment="prod",phase="Healthy"}', "values": "1 0x10"},
                {"series": 'up{job="mlkube-router",namespace="ml",pod="prod-router-7d9f"}', "values": "1 0x10"},
                {"series": 'up{job="mlkube-router",namespace="ml",pod="other-router-5c4b"}', "values": "1x10"},
                {
                    "series": 'mlkube_router_requests_total{namespace="ml",deployment="prod",version="2",role="canary",code="200"}',
                    "values": "0+100x10",
                },
                {"series": 'mlkube_router_errors_total{namespace="ml",deployment="prod",version="2"}', "values": "0+10x10"},
                {
                    "series": 'mlkube_router_requests_total{namespace="ml",deployment="prod",version="1",role="stable",code="200"}',
                    "values": "0+100x10",
                },
                {"series": 'mlkube_router_errors_total{namespace="ml",deployment="prod",version="1"}', "values": "0+1x10"},
                {"series": 'up{job="mlkube-operator"}', "values": "1 1 0x10"},
            ],
            "alert_rule_test": [
                # Before anything happened: quiet.
                *({"eval_time": "1m", "alertname": name, "exp_alerts": []} for name in sorted(ALERTS)),
                {
                    "eval_time": "4m",
                    "alertname": "MLKubeModelDrift",
                    "exp_alerts": [{"exp_labels": {"severity": "warning", "namespace": "ml", "monitor": "penguins-drift"}}],
                },
                {
                    "eval_time": "4m",
                    "alertname": "MLKubeTrainingFailed",
                    "exp_alerts": [{"exp_labels": {"severity": "warning", "namespace": "ml", "project": "penguins"}}],
                },
                {
                    "eval_time": "4m",
                    "alertname": "MLKubeRolloutRolledBack",
                    "exp_alerts": [{"exp_labels": {"severity": "warning", "namespace": "ml", "deployment": "prod"}}],
                },
                {
                    "eval_time": "4m",
                    "alertname": "MLKubeRouterDown",
                    "exp_alerts": [
                        {
                            "exp_labels": {
                                "severity": "critical",
                                "job": "mlkube-router",
                                "namespace": "ml",
                                "pod": "prod-router-7d9f",
                            }
                        }
                    ],
                },
                {"eval_time": "4m", "alertname": "MLKubeDeploymentDegraded", "exp_alerts": []},  # not for 5m yet
                {
                    "eval_time": "7m",
                    "alertname": "MLKubeDeploymentDegraded",
                    "exp_alerts": [{"exp_labels": {"severity": "critical", "namespace": "ml", "deployment": "prod"}}],
                },
                {
                    "eval_time": "8m",
                    "alertname": "MLKubeRouterErrors",  # version 2 fails 10%, version 1 1%
                    "exp_alerts": [
                        {"exp_labels": {"severity": "warning", "namespace": "ml", "deployment": "prod", "version": "2"}}
                    ],
                },
                {
                    "eval_time": "8m",
                    "alertname": "MLKubeOperatorDown",
                    "exp_alerts": [{"exp_labels": {"severity": "critical"}}],  # absent() of a comparison keeps no labels
                },
            ],
        }
    ],
}


def test_each_alert_fires_on_what_it_watches_and_only_then(tmp_path):
    """``promtool test rules`` on synthetic series: each alert's labels at the time it must fire,
    and silence before. Annotations are left out here (their templates are checked above)."""
    groups = rule_groups()
    for group in groups["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(groups))
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(UNIT_TESTS, sort_keys=False))
    result = subprocess.run([promtool(), "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def test_the_dashboard_is_shipped_as_a_configmap_grafana_loads():
    (configmap,) = [o for o in cs.build("monitoring") if o["kind"] == "ConfigMap"]
    assert configmap["metadata"]["name"] == "mlkube-grafana-dashboard"
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"]["mlkube.json"]) == dashboard()


def test_the_dashboard_is_well_formed():
    board = dashboard()
    assert board["uid"] == "mlkube-overview" and isinstance(board["schemaVersion"], int)
    variables = {v["name"] for v in board["templating"]["list"]}
    assert variables == {"datasource", "namespace", "deployment", "monitor", "project"}
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), ids
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        covered = {(grid["x"] + dx, grid["y"] + dy) for dx in range(grid["w"]) for dy in range(grid["h"])}
        assert not covered & cells, f"{panel['title']} overlaps another panel"
        cells |= covered
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"]), panel["title"]
        for target in panel["targets"]:
            used = set(re.findall(r"\$\{?(\w+)", target["expr"]))
            assert used <= variables | GRAFANA_VARIABLES, (panel["title"], used)


def test_the_dashboard_covers_deployments_monitors_and_projects():
    titles = {p["title"] for p in panels()}
    assert {
        "Requests per second by version",
        "Error ratio by version",
        "Latency quantiles by version",
        "Traffic split",
        "Analysis verdict and phase",
        "Drift share and drift",
        "Top drifted features",
        "Runs by outcome",
        "Training duration",
    } <= titles
    latency = next(p for p in panels() if p["title"] == "Latency quantiles by version")
    assert [t["expr"].split(",")[0] for t in latency["targets"]] == [
        "histogram_quantile(0.5",
        "histogram_quantile(0.95",
        "histogram_quantile(0.99",
    ]

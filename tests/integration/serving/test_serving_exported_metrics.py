"""Every metric the alert rules and the Grafana dashboard (manifests/monitoring) read is one that a
running router or the operator actually exports: checked against a real scrape of each.

The router is a real process in front of a backend that does not answer (so its per-version
series have samples); the operator is `mlkube operator` on an API server of its own with
``MLKUBE_METRICS_PORT`` set, as its Deployment runs it. Series Prometheus makes itself (``up``) are
the only names allowed besides those.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
import time

import httpx
import yaml
from prometheus_client import parser
from serving_processes import CLIENT, free_port

MONITORING = pathlib.Path(__file__).resolve().parents[3] / "manifests" / "monitoring"
PROMETHEUS_SERIES = {"up"}  # written by Prometheus for each target, not by the target
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (label names, functions, keywords and Grafana
    variables left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values (may hold braces or names)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)  # label lists
    text = re.sub(r"\$\{?\w+\}?", " ", text)  # Grafana variables
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", text):
        if match.group(2) is None and match.group(1) not in KEYWORDS:  # not a function or aggregation
            names.add(match.group(1))
    return names


def test_metric_names_are_found_in_promql():
    expr = (
        'histogram_quantile(0.99, sum by (version, le) (rate(mlkube_router_request_duration_seconds_bucket{namespace="$namespace",'
        ' deployment=~"a|b"}[$__rate_interval]))) / on (version) group_left (role) max without (x) (up{job="r"} == bool 1)'
    )
    assert metric_names(expr) == {"mlkube_router_request_duration_seconds_bucket", "up"}


def referenced() -> dict[str, set[str]]:
    """Metric name -> where it is read (alert names, dashboard panel titles and variables)."""
    found: dict[str, set[str]] = {}
    rule = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    for group in rule["spec"]["groups"]:
        for item in group["rules"]:
            for name in metric_names(item["expr"]):
                found.setdefault(name, set()).add(f"alert {item['alert']}")
    board = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            for name in metric_names(target["expr"]):
                found.setdefault(name, set()).add(f"panel {panel['title']!r}")
    for variable in board["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            metric = re.fullmatch(r"label_values\((\w+)(?:\{.*\})?,\s*\w+\)", query["query"])
            assert metric, f"variable {variable['name']}: unexpected query {query['query']}"
            found.setdefault(metric.group(1), set()).add(f"variable {variable['name']}")
    return found


def exported(exposition: str) -> set[str]:
    """The series names a scrape of ``exposition`` yields (a family without samples yet counts by its type)."""
    names = set()
    for family in parser.text_string_to_metric_families(exposition):
        names |= {sample.name for sample in family.samples}
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
    return names


def router_scrape(start_router) -> str:
    unreachable = f"http://127.0.0.1:{free_port()}"
    router = start_router(
        {
            "deployment": "churn-prod",
            "namespace": "ml",
            "project": "churn",
            "backends": {"1": {"url": unreachable, "model": "churn-prod-v1"}},
            "split": [{"version": 1, "weight": 100, "role": "stable"}],
            "sticky": None,
            "shadow": None,
            "compare": None,
            "preview": None,
            "capture": {"enabled": False, "sampleRate": 1.0, "uri": None, "endpoint": None},
        }
    )
    answer = CLIENT.post(router.url + "/v1/models/churn-prod:predict", json={"instances": [{"x": 1}]})
    assert answer.status_code >= 500  # counted as an error of version 1
    return CLIENT.get(router.url + "/metrics").text


def operator_scrape(apiserver, tmp_path) -> str:
    port = free_port()
    log = tmp_path / "operator.log"
    with open(log, "wb") as output:
        operator = subprocess.Popen(
            [sys.executable, "-m", "mlkube.cli", "operator", "--kubeconfig", apiserver.kubeconfig],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MLKUBE_METRICS_PORT": str(port)},
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                return CLIENT.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except httpx.TransportError:
                if operator.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"the operator served no metrics:\n{log.read_text()[-3000:]}") from None
                time.sleep(0.2)
    finally:
        operator.terminate()
        try:
            operator.wait(timeout=20)
        except subprocess.TimeoutExpired:
            operator.kill()
            operator.wait()


def test_rules_and_dashboard_read_only_metrics_the_router_and_operator_export(start_router, fresh_apiserver, tmp_path):
    wanted = referenced()
    assert len(wanted) >= 20, sorted(wanted)  # the extraction found the queries' names, not nothing
    router = router_scrape(start_router)
    assert 'mlkube_router_errors_total{deployment="churn-prod",version="1"} 1.0' in router
    operator = operator_scrape(fresh_apiserver(), tmp_path)  # its own API server: it reconciles nobody else's objects
    available = exported(router) | exported(operator) | PROMETHEUS_SERIES
    missing = {name: sorted(where) for name, where in wanted.items() if name not in available}
    assert missing == {}, f"read but exported by neither the router nor the operator: {missing}"

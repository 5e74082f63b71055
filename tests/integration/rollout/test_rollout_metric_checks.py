"""Issue 22 acceptance, metric checks: a Prometheus query check passes and fails as its query
result moves across its successCondition, against a real Prometheus server scraping a gauge the
test sets (promserver.py; skipped where the prometheus binary is absent)."""

from __future__ import annotations

import asyncio
import json
import math
import pathlib
from collections.abc import Iterator

import pytest
from rollout_helpers import Client, penguin_rows, roll_to, serving, wait_for

import promserver
from mlkube.api import strategy as strategy_api
from mlkube.clients import prometheus
from mlkube.control.policy import metricchecks

GAUGE = "candidate_error_ratio"


@pytest.fixture
def gauge() -> Iterator[promserver.Gauge]:
    promserver.binary()  # skip before serving anything
    served = promserver.Gauge(GAUGE, 0.1)
    yield served
    served.close()


@pytest.fixture
def prometheus_url(gauge: promserver.Gauge, tmp_path: pathlib.Path) -> Iterator[str]:
    yield from promserver.run(gauge, tmp_path)


def check(address: str, query: str = GAUGE) -> strategy_api.MetricCheck:
    return strategy_api.MetricCheck.model_validate(
        {
            "name": "error-ratio",
            "provider": {"prometheus": {"address": address, "query": query}},
            "successCondition": "result < 0.3",
        }
    )


def read(address: str, query: str) -> prometheus.Reading:
    return asyncio.run(prometheus.query(address, query))


def scraped(address: str, value: float) -> prometheus.Reading:
    """The query's reading once Prometheus has scraped ``value``."""
    return wait_for(lambda: (r := read(address, GAUGE)).value == value and r, 30, f"Prometheus to scrape {value}")


def test_a_check_passes_then_fails_as_the_query_result_moves(gauge, prometheus_url):
    passing = metricchecks.evaluate(check(prometheus_url), scraped(prometheus_url, 0.1).value)
    assert (passing.verdict, passing.detail) == ("Passing", 'metric error-ratio: result 0.1 meets "result < 0.3"')
    gauge.set(0.5)
    failing = metricchecks.evaluate(check(prometheus_url), scraped(prometheus_url, 0.5).value)
    assert (failing.verdict, failing.detail) == ("Failing", 'metric error-ratio: result 0.5 fails "result < 0.3"')
    scalar = read(prometheus_url, f"scalar({GAUGE}) * 2")  # a scalar result reads the same way
    assert (scalar.value, scalar.error) == (1.0, None)


def test_no_sample_a_bad_query_and_an_unreachable_server_are_inconclusive(gauge, prometheus_url):
    scraped(prometheus_url, 0.1)
    empty = read(prometheus_url, "no_such_metric")
    assert (empty.value, empty.error) == (None, None)
    assert metricchecks.evaluate(check(prometheus_url), empty.value).verdict == "Inconclusive"
    nan = read(prometheus_url, "vector(0) / 0")
    assert math.isnan(nan.value) and metricchecks.evaluate(check(prometheus_url), nan.value).verdict == "Inconclusive"
    bad = read(prometheus_url, "sum(")
    assert bad.value is None and bad.error.startswith("query failed: HTTP 400 bad_data: "), bad
    closed = f"http://127.0.0.1:{promserver.free_port()}"
    down = read(closed, GAUGE)
    assert down.value is None and down.error.startswith(f"Prometheus at {closed} is unreachable"), down
    outcome = metricchecks.evaluate(check(closed), down.value, error=down.error)
    assert outcome.verdict == "Inconclusive" and outcome.detail == f"metric error-ratio: {down.error}"


@pytest.mark.kubectl
@pytest.mark.slow
def test_a_canary_is_rolled_back_when_its_metric_check_fails(cluster, project, deploy, penguins_csv, gauge, prometheus_url):
    namespace, versions = project["namespace"], project["versions"]
    metric = {
        "name": "error-ratio",
        "provider": {"prometheus": {"address": prometheus_url, "query": GAUGE}},
        "successCondition": "result < 0.3",
    }
    analysis = {"interval": "2s", "minRequests": 20, "maxErrorRate": 0.05, "maxLatencyP99": "5s", "metrics": [metric]}
    name = deploy(
        versions["good"], {"type": "Canary", "analysis": analysis, "canary": {"steps": [{"weight": 50, "pause": "1h"}]}}
    )
    client = Client(serving(cluster, name, namespace), name)
    rows = penguin_rows(penguins_csv)[:24]
    scraped(prometheus_url, 0.1)
    roll_to(cluster, name, namespace, versions["better"])

    def judged(verdict: str) -> dict | None:
        client.burst(rows)
        status = cluster.mdep_status(name, namespace)
        return status if (status.get("analysis") or {}).get("verdict") == verdict or status.get("phase") == "RolledBack" else None

    status = wait_for(lambda: judged("Passing"), 120, "the canary's analysis to pass")
    assert (status["phase"], status["candidateVersion"]) == ("Progressing", versions["better"]), status
    assert status["analysis"]["failedChecks"] == [] and status["analysis"]["inconclusiveChecks"] == []
    gauge.set(0.5)
    status = wait_for(lambda: judged("Failing"), 120, "the metric check to fail the canary")
    status = wait_for(lambda: (s := cluster.mdep_status(name, namespace))["phase"] == "RolledBack" and s, 60, "the rollback")
    failed = 'metric error-ratio: result 0.5 fails "result < 0.3"'
    assert (status["stableVersion"], status["rolledBackVersion"]) == (versions["good"], versions["better"])
    assert status["analysis"]["verdict"] == "Failing" and failed in status["analysis"]["failedChecks"]
    assert f"Version {versions['better']} rolled back" in status["message"] and failed in status["message"]
    assert status["traffic"] == [{"version": versions["good"], "role": "stable", "percent": 100}]


@pytest.mark.kubectl
def test_the_api_server_refuses_a_condition_outside_the_language(kubectl, namespace):
    kubectl("apply", "-k", str(pathlib.Path(__file__).parents[3] / "crds"))
    kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=30s")

    def mdep(condition: str) -> str:
        metric = {
            "name": "error-ratio",
            "provider": {"prometheus": {"address": "http://prometheus.monitoring:9090", "query": GAUGE}},
            "successCondition": condition,
        }
        spec = {"projectRef": "churn", "model": {"version": 1}, "strategy": {"analysis": {"metrics": [metric]}}}
        return json.dumps(
            {"apiVersion": "mlkube.io/v1alpha1", "kind": "ModelDeployment", "metadata": {"name": "m"}, "spec": spec}
        )

    refused = kubectl("apply", "-n", namespace, "-f", "-", input=mdep("__import__('os').system('id')"), check=False)
    assert refused.returncode != 0
    assert "spec.strategy.analysis.metrics[0]" in refused.stderr
    assert "successCondition must compare result with numbers" in refused.stderr, refused.stderr
    kubectl("apply", "-n", namespace, "-f", "-", input=mdep("result >= 0 and result < 0.3"))

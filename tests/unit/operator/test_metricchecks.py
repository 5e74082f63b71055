"""Metric checks (strategy.analysis.metrics): the successCondition language, a check's verdict on
a query's value, and the ModelDeployment plan folding the verdict into the rollout's analysis."""

from __future__ import annotations

import math

import pydantic
import pytest
from mdep_cases import STAMP, counters, isvc, mdep, observed, plan, registry, stats

from mlkube.api import kinds
from mlkube.api import strategy as strategy_api
from mlkube.control.policy import metricchecks

ROLLING = {
    "phase": "Progressing",
    "stableVersion": 1,
    "candidateVersion": 2,
    "currentStep": 0,
    "stepStartedAt": STAMP,
    "candidateReadyAt": STAMP,
    "analysisBaseline": {"startTime": 1.0, "requests": 0, "errors": 0, "buckets": [0, 0]},
}
CHECK = {
    "name": "error-ratio",
    "provider": {"prometheus": {"address": "http://prometheus.monitoring:9090", "query": "sum(rate(errors[1m]))"}},
    "successCondition": "result < 0.3",
}


def check(condition: str = "result < 0.3") -> strategy_api.MetricCheck:
    return strategy_api.MetricCheck.model_validate({**CHECK, "successCondition": condition})


@pytest.mark.parametrize(
    ("condition", "value", "holds"),
    [
        ("result < 0.3", 0.29, True),
        ("result < 0.3", 0.3, False),
        ("result <= 0.3", 0.3, True),
        ("result>1e3", 1001, True),
        ("result == 1", 1.0, True),
        ("result != 1", 1.0, False),
        ("result >= -2.5", -2.5, True),
        ("result > 0 and result < 1", 0.5, True),
        ("result > 0 and result < 1", 1.5, False),
        ("result < 0 or result > 10 and result < 20", 15, True),  # and binds tighter than or
        ("result < 0 or result > 10 and result < 20", 25, False),
        ("result < 0 or result > 10 and result < 20", -1, True),
        ("  result < .5  ", 0.25, True),
    ],
)
def test_the_condition_language(condition, value, holds):
    assert metricchecks.parse(condition).holds(value) is holds
    check(condition)  # the API accepts exactly what the evaluator reads


@pytest.mark.parametrize(
    "condition",
    [
        "",
        "result",
        "result <",
        "0.3 > result",
        "result < 0.3 and",
        "result < 0.3 xor result > 0",
        "result < abc",
        "__import__('os').system('id')",
        "result < 0.3; import os",
        "(result < 0.3)",
        "result < 1 andresult > 0",
        "result<0.3and result>0",
        "result < 0.3\n",
    ],
)
def test_anything_else_is_refused_by_the_evaluator_and_the_api_naming_the_field(condition):
    with pytest.raises(metricchecks.InvalidCondition, match=r'^successCondition: .*e\.g\. "result < 0\.3"'):
        metricchecks.parse(condition)
    with pytest.raises(pydantic.ValidationError) as refused:
        kinds.MODELDEPLOYMENT.parse_spec(
            mdep(strategy={"analysis": {"metrics": [{**CHECK, "successCondition": condition}]}})["spec"]
        )
    assert "successCondition" in str(refused.value)


def test_the_crd_carries_the_same_rule_for_the_api_server():
    schema = strategy_api.MetricCheck.model_json_schema()
    rule = schema["x-kubernetes-validations"][0]
    assert rule["rule"] == f"self.successCondition.matches('{strategy_api.SUCCESS_CONDITION_PATTERN}')"
    assert rule["message"].startswith("successCondition must compare result with numbers")


@pytest.mark.parametrize("address", ["ftp://p:9090", "prometheus:9090", "http://p:9090/?x=1", "http://"])
def test_the_address_must_be_an_http_url(address):
    body = {**CHECK, "provider": {"prometheus": {"address": address, "query": "up"}}}
    with pytest.raises(pydantic.ValidationError, match=r"provider\.prometheus\.address"):
        strategy_api.MetricCheck.model_validate(body)


def test_a_checks_verdict_on_a_value():
    assert metricchecks.evaluate(check(), 0.1).verdict == "Passing"
    failing = metricchecks.evaluate(check(), 0.42)
    assert (failing.verdict, failing.detail) == ("Failing", 'metric error-ratio: result 0.42 fails "result < 0.3"')
    for value, why in ((None, "query returned no sample"), (math.nan, "query returned NaN")):
        outcome = metricchecks.evaluate(check(), value)
        assert (outcome.verdict, outcome.detail) == ("Inconclusive", f"metric error-ratio: {why}")
    down = metricchecks.evaluate(check(), None, error="Prometheus at http://p:9090 is unreachable")
    assert (down.verdict, down.detail) == ("Inconclusive", "metric error-ratio: Prometheus at http://p:9090 is unreachable")


def rolling(readings, **changes):
    return observed(
        registry=registry(champion=2),
        isvcs={1: isvc(1), 2: isvc(2)},
        stats=stats(v1=counters(2000), v2=counters(500)),
        metric_readings=readings,
        **changes,
    )


def test_a_failing_check_rolls_the_candidate_back_and_is_named():
    obj = mdep(status=ROLLING, strategy={"type": "Canary", "analysis": {"minRequests": 20, "metrics": [CHECK]}})
    passing = plan(obj, rolling({"error-ratio": (0.1, None)}), at=5)
    assert passing.status.analysis.verdict == "Passing" and passing.status.phase == "Progressing"
    result = plan(obj, rolling({"error-ratio": (0.42, None)}), at=5)
    status = result.status
    assert status.analysis.verdict == "Failing"
    assert status.analysis.failed_checks == ['metric error-ratio: result 0.42 fails "result < 0.3"']
    assert (status.phase, status.rolled_back_version) == ("RolledBack", 2)
    assert result.events[0].reason == "RolledBack"
    assert 'metric error-ratio: result 0.42 fails "result < 0.3"' in result.events[0].message
    assert 'metric error-ratio: result 0.42 fails "result < 0.3"' in status.message


def test_an_unanswered_check_keeps_the_analysis_inconclusive():
    obj = mdep(status=ROLLING, strategy={"type": "Canary", "analysis": {"minRequests": 20, "metrics": [CHECK]}})
    down = rolling({"error-ratio": (None, "Prometheus at http://prometheus.monitoring:9090 did not answer within 5s")})
    status = plan(obj, down, at=5).status
    assert (status.analysis.verdict, status.phase) == ("Inconclusive", "Progressing")
    assert status.analysis.inconclusive_checks == [
        "metric error-ratio: Prometheus at http://prometheus.monitoring:9090 did not answer within 5s"
    ]
    assert plan(obj, rolling({}), at=5).status.analysis.inconclusive_checks == ["metric error-ratio: not queried yet"]

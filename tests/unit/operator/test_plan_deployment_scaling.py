"""Scale: each version's replicas or autoscaling range as KServe reads them, the router's replicas
and HorizontalPodAutoscaler, and the analysis reading every router replica's counters as one."""

import pydantic
import pytest
from mdep_cases import mdep, observed, plan

from mlkube.api import scaling as scaling_api
from mlkube.clients import routerstats
from mlkube.control.policy import analysis


def children(obj: dict, **seen) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for child in plan(obj, observed(**seen)).apply:
        found.setdefault(child["kind"], []).append(child)
    return found


def predictor(obj: dict) -> tuple[dict, dict]:
    [isvc] = children(obj, isvcs={})["InferenceService"]
    return isvc["spec"]["predictor"], isvc["metadata"]["annotations"]


def test_a_fixed_replica_count_is_both_bounds_and_no_autoscaler_class():
    spec, annotations = predictor(mdep(serving={"replicas": 3}))
    assert (spec["minReplicas"], spec["maxReplicas"]) == (3, 3) and "scaleMetric" not in spec
    assert "serving.kserve.io/autoscalerClass" not in annotations


def test_raw_deployment_autoscaling_is_kserves_hpa_on_the_metric_and_target():
    spec, annotations = predictor(mdep(serving={"autoscaling": {"minReplicas": 2, "maxReplicas": 6, "target": 60}}))
    assert {k: spec[k] for k in ("minReplicas", "maxReplicas", "scaleMetric", "scaleTarget")} == {
        "minReplicas": 2,
        "maxReplicas": 6,
        "scaleMetric": "cpu",
        "scaleTarget": 60,
    }
    assert annotations["serving.kserve.io/autoscalerClass"] == "hpa"


def test_keda_gets_kserves_autoscaling_metrics_block():
    scaling = {"maxReplicas": 4, "metric": "memory", "target": 75, "autoscaler": "keda"}
    spec, annotations = predictor(mdep(serving={"autoscaling": scaling}))
    assert annotations["serving.kserve.io/autoscalerClass"] == "keda" and "scaleMetric" not in spec
    assert spec["autoScaling"] == {
        "metrics": [
            {"type": "Resource", "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 75}}}
        ]
    }


def test_serverless_scales_on_knative_metrics_down_to_zero():
    scaling = {"minReplicas": 0, "maxReplicas": 10, "metric": "concurrency", "target": 8}
    spec, annotations = predictor(mdep(serving={"deploymentMode": "Serverless", "autoscaling": scaling}))
    assert (spec["minReplicas"], spec["scaleMetric"], spec["scaleTarget"]) == (0, "concurrency", 8)
    assert "serving.kserve.io/autoscalerClass" not in annotations


@pytest.mark.parametrize(
    "serving, message",
    [
        ({"autoscaling": {"maxReplicas": 4, "metric": "rps", "target": 50}}, "autoscaling.metric: rps is a Knative metric"),
        ({"autoscaling": {"minReplicas": 0, "maxReplicas": 4, "target": 50}}, "scale to zero needs deploymentMode: Serverless"),
        ({"autoscaling": {"minReplicas": 5, "maxReplicas": 4, "target": 50}}, r"minReplicas \(5\) is above maxReplicas \(4\)"),
        ({"autoscaling": {"maxReplicas": 4, "target": 150}}, "utilization is a percentage"),
    ],
)
def test_inconsistent_scaling_is_refused_saying_what_to_change(serving, message):
    with pytest.raises(pydantic.ValidationError, match=message):
        scaling_api.Serving.model_validate(serving)


def test_router_replicas_without_an_autoscaler():
    found = children(mdep(router={"replicas": 2}))
    [router] = found["Deployment"]
    assert router["spec"]["replicas"] == 2 and "HorizontalPodAutoscaler" not in found


def test_a_router_range_gets_a_horizontal_pod_autoscaler_that_owns_the_replica_count():
    found = children(mdep(router={"replicas": 2, "maxReplicas": 5, "targetCpuUtilization": 60}))
    [router], [hpa] = found["Deployment"], found["HorizontalPodAutoscaler"]
    assert "replicas" not in router["spec"], "applying the Deployment must not undo the autoscaler's scale"
    assert hpa["apiVersion"] == "autoscaling/v2" and hpa["metadata"]["name"] == router["metadata"]["name"]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": router["metadata"]["name"]}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    assert hpa["spec"]["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 60}


def test_the_autoscaler_is_deleted_once_the_range_is_gone():
    existing = {"metadata": {"name": "churn-prod-router", "namespace": "ml"}}
    result = plan(mdep(router={"replicas": 2}), observed(router_autoscaler=existing))
    assert [(r.kind, r.name) for r in result.delete] == [("HorizontalPodAutoscaler", "churn-prod-router")]
    kept = plan(mdep(router={"replicas": 2, "maxReplicas": 3}), observed(router_autoscaler=existing))
    assert not [r for r in kept.delete if r.kind == "HorizontalPodAutoscaler"]
    with pytest.raises(pydantic.ValidationError, match=r"maxReplicas \(1\) is below replicas \(2\)"):
        scaling_api.Router.model_validate({"replicas": 2, "maxReplicas": 1})


def router_answer(start: float, generation: int, requests: int, errors: int, fast: int) -> dict:
    buckets = [{"le": 5, "count": fast}, {"le": 50, "count": requests}, {"le": "+Inf", "count": requests}]
    return {
        "deployment": "ml/churn-prod",
        "startTime": start,
        "generation": generation,
        "versions": {
            "2": {
                "requests": requests,
                "errors": errors,
                "serverErrors": errors,
                "byRole": {"canary": requests},
                "latency": {"unit": "ms", "buckets": buckets, "sum": 3.0 * requests, "count": requests},
                "agreement": {"compared": 0, "agreed": 0},
                "quality": {"labeled": 0, "correct": 0, "absErrorSum": 0.0, "squaredErrorSum": 0.0},
            }
        },
        "capture": {"captured": requests},
    }


def test_the_analysis_sees_the_sum_of_every_router_replica():
    one, two = router_answer(100.0, 4, 30, 1, 10), router_answer(200.0, 3, 50, 2, 40)
    total = routerstats.merged([one, two])
    assert total["replicas"] == 2 and total["generation"] == 3 and total["deployment"] == "ml/churn-prod"
    assert total["capture"] == {"captured": 80}
    counters = total["versions"]["2"]
    assert (counters["requests"], counters["serverErrors"], counters["byRole"]) == (80, 3, {"canary": 80})
    assert counters["latency"]["buckets"] == [{"le": 5, "count": 50}, {"le": 50, "count": 80}, {"le": "+Inf", "count": 80}]
    window = analysis.window(total, 2, None)
    assert (window.requests, window.errors) == (80, 3)


def test_a_router_replica_that_comes_or_goes_starts_a_new_window():
    one, two = router_answer(100.0, 4, 30, 1, 10), router_answer(200.0, 4, 50, 2, 40)
    baseline = analysis.snapshot(routerstats.merged([one, two]), 2)
    later = routerstats.merged([router_answer(100.0, 4, 40, 1, 10), router_answer(200.0, 4, 60, 2, 40)])
    assert analysis.window(later, 2, baseline).requests == 20
    replaced = routerstats.merged([router_answer(100.0, 4, 40, 1, 10), router_answer(300.0, 4, 5, 0, 5)])
    assert analysis.window(replaced, 2, baseline).requests == 45, "counted from zero, not 45 - 80"
    assert routerstats.merged([]) is None

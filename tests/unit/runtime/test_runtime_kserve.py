"""KServe's predictor rules: runtime selection, templating, storage initializer, children."""

import base64
import re

import pytest

from mlkube.local.runtime import kserve

ISVC = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {"name": "churn", "namespace": "ml", "uid": "i1", "labels": {"team": "a"}},
    "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "s3://models/churn/v3"}}},
}


def runtime(name, *, priority=None, auto=True, formats=("sklearn",), protocols=None, disabled=False):
    spec = {
        "supportedModelFormats": [
            {"name": f, "autoSelect": auto, **({"priority": priority} if priority is not None else {})} for f in formats
        ],
        "containers": [
            {
                "name": "kserve-container",
                "image": "mlkube:dev",
                "args": ["--model_name={{.Name}}", "--ns={{.Namespace}}", "--team={{.Labels.team}}"],
                "env": [{"name": "A", "value": "1"}],
                "ports": [{"containerPort": 9000}],
            }
        ],
    }
    if protocols:
        spec["protocolVersions"] = protocols
    if disabled:
        spec["disabled"] = True
    return {"metadata": {"name": name}, "spec": spec}


def test_auto_selection_prefers_priority_then_namespace_runtimes():
    model = ISVC["spec"]["predictor"]["model"]
    chosen = kserve.select_runtime(
        ISVC, model, runtimes=[runtime("ns-low", priority=1)], cluster_runtimes=[runtime("cluster-high", priority=2)]
    )
    assert chosen["metadata"]["name"] == "cluster-high"
    chosen = kserve.select_runtime(ISVC, model, runtimes=[runtime("ns")], cluster_runtimes=[runtime("cluster")])
    assert chosen["metadata"]["name"] == "ns"


def test_runtimes_that_cannot_serve_are_skipped():
    model = {**ISVC["spec"]["predictor"]["model"], "protocolVersion": "v2"}
    candidates = [
        runtime("v1-only"),
        runtime("off", protocols=["v2"], disabled=True),
        runtime("manual", protocols=["v2"], auto=False),
        runtime("xgb", protocols=["v2"], formats=("xgboost",)),
    ]
    with pytest.raises(kserve.SpecError) as error:
        kserve.select_runtime(ISVC, model, runtimes=candidates, cluster_runtimes=[])
    assert error.value.reason == "NoSupportingRuntime"


def test_named_runtime_is_used_even_without_auto_select():
    model = {**ISVC["spec"]["predictor"]["model"], "runtime": "manual"}
    chosen = kserve.select_runtime(ISVC, model, runtimes=[], cluster_runtimes=[runtime("manual", auto=False)])
    assert chosen["metadata"]["name"] == "manual"
    with pytest.raises(kserve.SpecError, match="named 'ghost'"):
        kserve.select_runtime(ISVC, {**model, "runtime": "ghost"}, runtimes=[], cluster_runtimes=[])


def test_predictor_container_merges_model_fields_and_fills_placeholders():
    model = {
        **ISVC["spec"]["predictor"]["model"],
        "args": ["--workers=2"],
        "env": [{"name": "A", "value": "2"}, {"name": "B", "value": "3"}],
        "resources": {"limits": {"memory": "1Gi"}},
    }
    container = kserve.predictor_container(runtime("rt"), model, ISVC)
    assert container["name"] == "kserve-container"
    assert container["args"] == ["--model_name=churn", "--ns=ml", "--team=a", "--workers=2"]
    assert container["env"] == [{"name": "A", "value": "2"}, {"name": "B", "value": "3"}]
    assert container["resources"] == {"limits": {"memory": "1Gi"}}


def test_s3_secret_gives_kserve_variables():
    secret = {
        "metadata": {
            "name": "s3",
            "annotations": {
                "serving.kserve.io/s3-endpoint": "127.0.0.1:9000",
                "serving.kserve.io/s3-usehttps": "0",
                "serving.kserve.io/s3-region": "eu-west-1",
            },
        },
        "data": {"AWS_ACCESS_KEY_ID": base64.b64encode(b"k").decode(), "AWS_SECRET_ACCESS_KEY": base64.b64encode(b"s").decode()},
    }
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in kserve.s3_environment(secret)}
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9000"
    assert env["S3_ENDPOINT"] == "127.0.0.1:9000" and env["S3_USE_HTTPS"] == "0"
    assert env["AWS_REGION"] == "eu-west-1"
    assert env["AWS_ACCESS_KEY_ID"] == {"secretKeyRef": {"name": "s3", "key": "AWS_ACCESS_KEY_ID"}}


def test_predictor_deployment_fetches_the_model_first_and_service_targets_the_port():
    container = kserve.predictor_container(runtime("rt"), ISVC["spec"]["predictor"]["model"], ISVC)
    deployment = kserve.predictor_deployment(ISVC, container=container, storage_uri="s3://models/churn/v3", storage_env=[])
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["metadata"]["name"] == "churn-predictor"
    assert pod["initContainers"][0]["args"] == ["s3://models/churn/v3", "/mnt/models"]
    assert pod["containers"][0]["volumeMounts"][0]["mountPath"] == "/mnt/models"
    assert {"name": "kserve-provision-location", "emptyDir": {}} in pod["volumes"]
    service = kserve.predictor_service(ISVC, target_port=kserve.container_port(container))
    assert service["spec"]["ports"][0] == {"name": "http", "port": 80, "targetPort": 9000, "protocol": "TCP"}
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_framework_shorthand_and_missing_predictor():
    shorthand = {"metadata": ISVC["metadata"], "spec": {"predictor": {"sklearn": {"storageUri": "file:///m"}}}}
    assert kserve.model_spec(shorthand)["modelFormat"] == {"name": "sklearn"}
    with pytest.raises(kserve.SpecError, match=re.escape("spec.predictor")):
        kserve.model_spec({"metadata": ISVC["metadata"], "spec": {"predictor": {}}})


def test_a_container_without_probe_gets_a_tcp_readiness_probe_on_its_port():
    container = kserve.predictor_container(runtime("rt"), ISVC["spec"]["predictor"]["model"], ISVC)
    probed = kserve.with_readiness_probe(container)
    assert probed["readinessProbe"]["tcpSocket"] == {"port": 9000}
    own = {**container, "readinessProbe": {"httpGet": {"path": "/ready", "port": 9000}}}
    assert kserve.with_readiness_probe(own) == own

"""The real CRDs through schema.py: mlkube's own (crds/) and the KServe ones of local mode.

Each must be a schema kube-apiserver accepts (no structural errors, every CEL rule compiles), and
the objects mlkube really writes must pass prune/default/validate untouched.
"""

import functools
import pathlib

import pytest
import yaml

from mlkube.api import kinds
from mlkube.control.manifests import serving, servingruntime
from mlkube.local.apiserver import cel, schema
from mlkube.local.runtime import inferenceservices

ROOT = pathlib.Path(__file__).parents[3]
PROJECT_CRDS = sorted((ROOT / "crds").glob("mlkube.io_*.yaml"))
KSERVE_CRDS = sorted((ROOT / "operator/mlkube/local/crds").glob("serving.kserve.io_*.yaml"))


@functools.cache
def _crd(path: pathlib.Path) -> dict:
    return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@functools.cache
def _schema(kind: str) -> dict:
    for path in PROJECT_CRDS + KSERVE_CRDS:
        crd = _crd(path)
        if crd["spec"]["names"]["kind"] == kind:
            return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    raise LookupError(kind)


def _rules(node: object):
    if isinstance(node, dict):
        yield from (entry["rule"] for entry in node.get("x-kubernetes-validations") or ())
        for value in node.values():
            yield from _rules(value)
    elif isinstance(node, list):
        for value in node:
            yield from _rules(value)


def _accepts(obj: dict, kind: str, *, old: dict | None = None) -> dict:
    """obj after the write path: nothing pruned, no cause; returns the defaulted object."""
    crd_schema = _schema(kind)
    pruned, dropped = schema.prune(obj, crd_schema)
    assert dropped == []
    defaulted = schema.default(pruned, crd_schema)
    assert schema.validate(defaulted, crd_schema, old=old) == []
    return defaulted


def test_the_crds_are_there():
    assert len(PROJECT_CRDS) == 6
    assert [p.name for p in KSERVE_CRDS] == [
        "serving.kserve.io_clusterservingruntimes.yaml",
        "serving.kserve.io_inferenceservices.yaml",
        "serving.kserve.io_servingruntimes.yaml",
    ]


@pytest.mark.parametrize("path", PROJECT_CRDS + KSERVE_CRDS, ids=lambda p: p.name)
def test_crd_schemas_are_structural_and_their_rules_compile(path):
    crd = _crd(path)
    for index, version in enumerate(crd["spec"]["versions"]):
        openapi = version["schema"]["openAPIV3Schema"]
        assert schema.structural_errors(openapi, path=f"spec.versions[{index}].schema.openAPIV3Schema") == []
        for rule in _rules(openapi):
            assert cel.compile_expression(rule).error == "", rule


def test_project_crds_carry_cel_rules():
    assert sum(len(list(_rules(_crd(p)))) for p in PROJECT_CRDS) > 0


@pytest.mark.parametrize("kind", kinds.ALL, ids=lambda k: k.kind)
def test_the_examples_pass_their_crd_unchanged(kind):
    for path in sorted((ROOT / "examples").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == kind.kind:
                defaulted = _accepts(doc, kind.kind)
                assert defaulted["spec"].items() >= {k: v for k, v in doc["spec"].items()}.items()


def test_a_project_cel_rule_refuses_what_it_should():
    mdep = _model_deployment()
    both = {**mdep, "spec": {**mdep["spec"], "model": {"track": "champion", "version": 2}}}
    assert schema.validate(both, _schema("ModelDeployment")) == [
        schema.Cause("FieldValueInvalid", 'Invalid value: "object": set exactly one of version, track or alias', "spec.model")
    ]
    assert schema.validate(both, _schema("ModelDeployment"), old=mdep) != []


def _model_deployment() -> dict:
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "ModelDeployment":
                return {**doc, "metadata": {"namespace": "default", "uid": "0b1c", **doc["metadata"]}}
    raise LookupError("ModelDeployment")


def test_the_inference_service_mlkube_builds_passes_the_kserve_crd():
    mdep = _model_deployment()
    isvc = serving.inference_service(
        mdep, kinds.MODELDEPLOYMENT.parse_spec(mdep["spec"]), version=3, storage_uri="file:///var/mlkube/models/v3"
    )
    assert _accepts(isvc, "InferenceService")["spec"]["predictor"]["model"]["modelFormat"]["name"] == serving.MODEL_FORMAT


def test_the_status_the_local_kserve_runtime_writes_passes_the_kserve_crd():
    isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "iris-v1", "namespace": "default", "generation": 2},
        "spec": {"predictor": {"minReplicas": 1, "model": {"modelFormat": {"name": "mlkube"}, "storageUri": "file:///m"}}},
    }
    deployment = {
        "metadata": {"name": "iris-v1-predictor", "generation": 1, "annotations": {}},
        "spec": {"replicas": 1},
        "status": {
            "observedGeneration": 1,
            "replicas": 1,
            "updatedReplicas": 1,
            "readyReplicas": 1,
            "conditions": [{"type": "Available", "status": "True"}],
        },
    }
    ready = inferenceservices.status_of(isvc, deployment, {"spec": {"clusterIP": "10.96.0.12"}}, [], listening=True)
    crashed_pod = {
        "metadata": {"name": "iris-v1-predictor-abc"},
        "status": {
            "containerStatuses": [{"name": "kserve-container", "state": {"terminated": {"exitCode": 3, "message": "bad model"}}}]
        },
    }
    failing = inferenceservices.status_of(isvc, {**deployment, "status": {}}, {"spec": {}}, [crashed_pod], listening=False)
    for status in (ready, failing):
        _accepts({**isvc, "status": status}, "InferenceService")
    assert ready["url"] == "http://10.96.0.12"


def test_the_cluster_serving_runtime_mlkube_installs_passes_the_kserve_crd():
    runtime = servingruntime.cluster_serving_runtime()
    _accepts(runtime, "ClusterServingRuntime")
    namespaced = {**runtime, "kind": "ServingRuntime", "metadata": {**runtime["metadata"], "namespace": "default"}}
    _accepts(namespaced, "ServingRuntime")


@pytest.mark.parametrize(
    ("kind", "obj", "field", "reason"),
    [
        ("InferenceService", {"spec": {"predictor": {"minReplicas": -1}}}, "spec.predictor.minReplicas", "FieldValueInvalid"),
        (
            "InferenceService",
            {"spec": {"predictor": {"model": {"storageUri": "s3://b/m"}}}},
            "spec.predictor.model.modelFormat",
            "FieldValueRequired",
        ),
        ("InferenceService", {"spec": {}}, "spec.predictor", "FieldValueRequired"),
        (
            "InferenceService",
            {"spec": {"predictor": {}}, "status": {"modelStatus": {"transitionStatus": "Done"}}},
            "status.modelStatus.transitionStatus",
            "FieldValueNotSupported",
        ),
        (
            "ClusterServingRuntime",
            {"spec": {"containers": [{"name": "c"}], "supportedModelFormats": [{"name": "x", "priority": "high"}]}},
            "spec.supportedModelFormats[0].priority",
            "FieldValueTypeInvalid",
        ),
        ("ServingRuntime", {"spec": {"supportedModelFormats": []}}, "spec.containers", "FieldValueRequired"),
    ],
)
def test_the_kserve_crds_refuse_malformed_objects(kind, obj, field, reason):
    assert [(c.field, c.reason) for c in schema.validate(obj, _schema(kind))] == [(field, reason)]


def test_unknown_kserve_fields_are_pruned_but_container_specs_are_kept():
    isvc = {"spec": {"predictor": {"typo": 1, "containers": [{"name": "c", "image": "i", "livenessProbe": {"exec": {}}}]}}}
    pruned, dropped = schema.prune(isvc, _schema("InferenceService"))
    assert dropped == ["spec.predictor.typo"]
    assert pruned["spec"]["predictor"]["containers"][0]["livenessProbe"] == {"exec": {}}

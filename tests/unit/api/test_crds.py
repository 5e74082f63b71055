"""The generated CRDs: up to date, structural, and able to refuse invalid specs on their own."""

import pathlib
import re

import pytest
import yaml

from mlkube import cli
from mlkube.api import crds, kinds

ROOT = pathlib.Path(__file__).parents[3]

# Free-form by design: hyper-parameter search spaces and their results, and values that are
# either a number or a string.
FREE_FORM = {
    "spec.algorithms[].params",
    "spec.training.template.algorithms[].params",
    "status.bestParams",
    "spec.params",  # ModelVersion: the best trial's hyper-parameters, as TrainingJob status.bestParams
    "spec.fairness",  # ModelVersion: fairness measurements (their shape is the fairness issue's)
    "spec.preprocessing.impute.fillValue",
    "spec.training.template.preprocessing.impute.fillValue",
}


def test_committed_crds_match_the_models(capsys):
    assert cli.main(["crds", "--check", str(ROOT / "crds")]) == 0, capsys.readouterr().err


def test_check_fails_when_a_file_differs(tmp_path, capsys):
    crds.write(tmp_path)
    path = tmp_path / crds.file_name(kinds.TRAININGJOB)
    path.write_text(path.read_text().replace("maxTrials", "maxTrialz"))
    assert cli.main(["crds", "--check", str(tmp_path)]) == 1
    assert crds.file_name(kinds.TRAININGJOB) in capsys.readouterr().err


def walk(node, path):
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}" if path else name)
    if "items" in node:
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("kind", kinds.ALL, ids=lambda k: k.kind)
def test_crd_is_structural(kind):
    crd = yaml.safe_load((ROOT / "crds" / crds.file_name(kind)).read_text())
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert crd["spec"]["names"]["categories"] == ["mlkube"]
    assert crd["spec"]["names"]["shortNames"] == list(kind.short_names)
    schema = version["schema"]["openAPIV3Schema"]
    assert "$ref" not in yaml.safe_dump(schema)
    for path, node in walk(schema, ""):
        free = node.get("x-kubernetes-preserve-unknown-fields") or node.get("x-kubernetes-int-or-string")
        assert "type" in node or free, f"{kind.kind} {path}: no type"
        if node.get("x-kubernetes-preserve-unknown-fields") and path != "metadata":
            assert path in FREE_FORM, f"{kind.kind} {path}: free-form but not by design"
        assert not ("additionalProperties" in node and "properties" in node), path
        assert "description" in node or path in ("", "metadata") or path.endswith("{}") or path.endswith("[]"), (
            f"{kind.kind} {path}: no description"
        )


def schema_node(kind, dotted):
    crd = crds.crd(kind)
    node = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for part in dotted.split("."):
        node = node["items"] if part == "[]" else node["properties"][part]
    return node


def test_schema_alone_refuses_what_a_schema_can_express():
    weight = schema_node(kinds.MODELDEPLOYMENT, "spec.strategy.canary.steps.[].weight")
    assert (weight["minimum"], weight["maximum"]) == (0, 100)
    assert schema_node(kinds.TRAININGJOB, "spec")["required"] == ["projectRef"]
    assert schema_node(kinds.MLPROJECT, "spec.successCriteria.[].op")["enum"] == [">=", ">", "<=", "<", "=="]
    duration = schema_node(kinds.DRIFTMONITOR, "spec.interval")["pattern"]
    assert re.fullmatch(duration, "5m") and not re.fullmatch(duration, "0s") and not re.fullmatch(duration, "-1m")
    model = schema_node(kinds.MODELDEPLOYMENT, "spec.model")
    assert model["x-kubernetes-validations"][0]["message"] == "set exactly one of version, track or alias"
    assert schema_node(kinds.TRAININGJOB, "spec.preprocessing.split")["x-kubernetes-validations"]


def test_printer_columns_are_the_documented_ones():
    names = {k.kind: [c["name"] for c in crds.crd(k)["spec"]["versions"][0]["additionalPrinterColumns"]] for k in kinds.ALL}
    assert names == {
        "MLProject": ["Task", "Champion", "Versions", "Ready", "Age"],
        "TrainingJob": ["Project", "Phase", "Progress", "Best", "Version", "Age"],
        "ModelVersion": ["Project", "Version", "Algorithm", "Metric", "Eligible", "Approval", "Phase", "Age"],
        "ModelDeployment": ["Project", "Strategy", "Stable", "Candidate", "Traffic", "Phase", "Age"],
        "DriftMonitor": ["Deployment", "Phase", "Drift Share", "Samples", "Last Check", "Age"],
        "BatchPrediction": ["Project", "Version", "Phase", "Rows", "Failed", "Age"],
    }

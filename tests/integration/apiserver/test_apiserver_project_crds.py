"""The project's generated CRDs (crds/*.yaml) and one example of each kind, applied with kubectl."""

from __future__ import annotations

import json
import pathlib

import pytest
import yaml

ROOT = pathlib.Path(__file__).parents[3]
CRD_FILES = sorted((ROOT / "crds").glob("mlkube.io_*.yaml"))
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))

pytestmark = pytest.mark.skipif(not CRD_FILES, reason="crds/*.yaml have not been generated yet")


def test_project_crds_and_examples_apply_and_list(kubectl, namespace):
    for path in CRD_FILES:
        crd = yaml.safe_load(path.read_text())
        kubectl("apply", "-f", str(path))
        kubectl("wait", "--for=condition=Established", f"crd/{crd['metadata']['name']}", "--timeout=10s")
    kinds = {}
    for path in EXAMPLES:
        for document in yaml.safe_load_all(path.read_text()):
            if document and document.get("apiVersion", "").startswith("mlkube.io/"):
                kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(document))
                kinds[document["kind"]] = document["metadata"]["name"]
    assert kinds, "examples/ should hold at least one mlkube.io object"
    for kind, name in kinds.items():
        obj = json.loads(kubectl("get", kind.lower(), name, "-n", namespace, "-o", "json").stdout)
        assert obj["metadata"]["generation"] == 1
        header = kubectl("get", kind.lower(), "-n", namespace).stdout.splitlines()[0]
        assert header.startswith("NAME") and header.split()[-1] == "AGE"
        assert "DESCRIPTION:" in kubectl("explain", f"{kind.lower()}.spec").stdout

"""Offline checks of Kubernetes manifests: kustomize builds and schema validation.

Owns building the kustomizations under ``manifests/`` with the kubectl on PATH and
validating objects against three sources of truth, all available offline:
- built-in kinds: the upstream Kubernetes JSON schemas shipped by ``kubernetes-validate``;
- mlkube.io kinds: the ``openAPIV3Schema`` of our generated CRDs in ``crds/``, with unknown
  fields refused (what ``kubectl apply --validate=strict`` does against a real server);
- KServe kinds: the field names and types of the KServe Python SDK's models (the SDK ships
  no JSON schema, so required fields and enums are not checked).
Must not talk to a cluster or the network.
"""

from __future__ import annotations

import copy
import functools
import pathlib
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[3]
KUBERNETES_VERSION = "1.35.0"  # kind-config.yaml's node
CUSTOM_GROUPS = ("mlkube.io", "serving.kserve.io", "monitoring.coreos.com")


def load_all(path: pathlib.Path) -> list[dict[str, Any]]:
    """Every non-empty YAML document of a file."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@functools.cache
def _built(directory: str) -> tuple[dict[str, Any], ...]:
    result = subprocess.run(["kubectl", "kustomize", directory], capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {directory} failed:\n{result.stderr}")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return tuple(doc for doc in yaml.load_all(result.stdout, Loader=loader) if doc)


def build(relative: str) -> list[dict[str, Any]]:
    """The objects ``kubectl kustomize manifests/<relative>`` renders (fresh copies)."""
    return build_directory(ROOT / "manifests" / relative)


def build_directory(directory: pathlib.Path) -> list[dict[str, Any]]:
    """The objects ``kubectl kustomize <directory>`` renders (fresh copies)."""
    return copy.deepcopy(list(_built(str(directory))))


def group_of(obj: dict[str, Any]) -> str:
    api_version = obj["apiVersion"]
    return api_version.split("/")[0] if "/" in api_version else ""


def ident(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata", {})
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj['kind']} {where}{meta.get('name')}"


def kubernetes_errors(obj: dict[str, Any]) -> list[str]:
    """Schema errors of a built-in object against upstream Kubernetes, strict on unknown fields."""
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{'.'.join(map(str, error.path))}: {error.message}"]
    return []


# --- CRD-backed objects ---------------------------------------------------------------------


def _as_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema (draft 7) copy of a CRD's OpenAPI v3.0 structural schema.

    OpenAPI 3.0 spellings become draft 7 ones (boolean exclusiveMinimum/Maximum, nullable),
    and objects refuse fields they do not declare, as the API server's strict field
    validation does (without it the server would prune them silently).
    """
    schema = copy.deepcopy(schema)

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
                if node.get(exclusive) is True and bound in node:
                    node[exclusive] = node.pop(bound)
                elif node.get(exclusive) is False:
                    del node[exclusive]
            if node.pop("nullable", False) and "type" in node:
                node["type"] = [node["type"], "null"]
            if (
                node.get("type") == "object"
                and "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schema)
    return schema


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema as JSON Schema, from every CRD in crds/."""
    schemas = {}
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        for doc in load_all(path):
            if doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                schemas[key] = _as_json_schema(version["schema"]["openAPIV3Schema"])
    return schemas


def crd_errors(obj: dict[str, Any]) -> list[str]:
    """Errors of a custom resource against its CRD's schema (metadata is the server's job)."""
    schema = crd_schemas().get((obj["apiVersion"], obj["kind"]))
    if schema is None:
        return [f"no CRD in crds/ serves {obj['apiVersion']} {obj['kind']}"]
    body = {key: value for key, value in obj.items() if key != "metadata"}
    schema = {**schema, "properties": {k: v for k, v in schema.get("properties", {}).items() if k != "metadata"}}
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'.'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in validator.iter_errors(body)]


# --- SDK-model checks (KServe) --------------------------------------------------------------

# Both SDKs' spellings: `list[X]`/`List[X]`, `dict(str, X)`/`Dict[str, X]`.
_LIST = re.compile(r"^[lL]ist\[(.+)\]$")
_DICT = re.compile(r"^(?:dict\((\w+), (.+)\)|Dict\[(\w+), (.+)\])$")
_PRIMITIVES = {"str": str, "int": int, "bool": bool, "float": (int, float), "object": object, "datetime": str}


def _model_class(name: str) -> type:
    import kserve.models
    import kubernetes.client.models

    for module in (kserve.models, kubernetes.client.models):
        if hasattr(module, name):
            return getattr(module, name)
    raise LookupError(f"no SDK model {name}")


def sdk_errors(value: Any, type_name: str, where: str = "") -> Iterator[str]:
    """Fields of ``value`` unknown to the SDK model ``type_name``, and wrong primitive types."""
    if match := _LIST.match(type_name):
        if not isinstance(value, list):
            yield f"{where}: expected a list"
            return
        for index, item in enumerate(value):
            yield from sdk_errors(item, match.group(1), f"{where}[{index}]")
    elif match := _DICT.match(type_name):
        if not isinstance(value, dict):
            yield f"{where}: expected a map"
            return
        for key, item in value.items():
            yield from sdk_errors(item, match.group(2) or match.group(4), f"{where}.{key}")
    elif type_name in _PRIMITIVES:
        if not isinstance(value, _PRIMITIVES[type_name]) or (type_name == "int" and isinstance(value, bool)):
            yield f"{where}: expected {type_name}, got {type(value).__name__}"
    else:
        model = _model_class(type_name)
        if not isinstance(value, dict):
            yield f"{where}: expected an object ({type_name})"
            return
        by_json_name = {json_name: attr for attr, json_name in model.attribute_map.items()}
        for key, item in value.items():
            if key not in by_json_name:
                yield f"{where}.{key}: unknown field of {type_name}"
            else:
                yield from sdk_errors(item, model.openapi_types[by_json_name[key]], f"{where}.{key}")


# --- pod templates ---------------------------------------------------------------------------


def pod_specs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The pod specs an object runs: workload templates, and ServingRuntime containers."""
    spec = obj.get("spec", {})
    if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return [spec["template"]["spec"]]
    if obj["kind"] == "CronJob":
        return [spec["jobTemplate"]["spec"]["template"]["spec"]]
    if obj["kind"] in ("ClusterServingRuntime", "ServingRuntime"):
        return [spec]
    return []


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for pod in pod_specs(obj) for c in pod.get("initContainers", []) + pod.get("containers", [])]

"""Least privilege, as built: what the operator, routers and trainers may do on a cluster."""

from __future__ import annotations

import pathlib
import re

import cluster_schemas as cs
import pytest

from mlkube.clients import k8s
from mlkube.control.manifests import serving

BUILDS = ["base", "tenant", "overlays/dev", "overlays/production"]
KINDS = ["mlprojects", "trainingjobs", "modeldeployments", "driftmonitors"]


def _objects(*paths: str) -> list[dict]:
    return [o for path in paths for o in cs.build(path)]


def _cluster_role(name: str) -> dict:
    (role,) = [o for o in _objects("base") if o["kind"] == "ClusterRole" and o["metadata"]["name"] == name]
    return role


def allows(role: dict, group: str, resource: str, verb: str) -> bool:
    return any(
        group in rule.get("apiGroups", []) and resource in rule.get("resources", []) and verb in rule.get("verbs", [])
        for rule in role["rules"]
    )


def test_operator_role_has_no_wildcards_or_privilege_verbs():
    for rule in _cluster_role("mlkube-operator")["rules"]:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule.get(field, []), rule
        assert not {"escalate", "bind", "impersonate", "deletecollection"} & set(rule["verbs"]), rule
        assert "nonResourceURLs" not in rule and "resourceNames" not in rule


@pytest.mark.parametrize(
    ("group", "resource", "verbs"),
    [("mlkube.io", kind, ["get", "list", "watch", "patch"]) for kind in KINDS]
    + [("mlkube.io", f"{kind}/status", ["get", "patch"]) for kind in KINDS]
    + [("mlkube.io", f"{kind}/finalizers", ["update"]) for kind in KINDS]
    + [
        ("mlkube.io", "trainingjobs", ["create", "delete"]),
        ("apiextensions.k8s.io", "customresourcedefinitions", ["get", "list", "watch"]),
        ("batch", "jobs", ["get", "list", "watch", "create", "patch", "delete"]),
        ("", "pods", ["get", "list", "watch"]),
        ("", "pods/log", ["get"]),
        ("", "events", ["create", "patch"]),
        ("", "configmaps", ["get", "list", "watch", "create", "patch", "delete"]),
        ("", "services", ["get", "list", "watch", "create", "patch", "delete"]),
        ("apps", "deployments", ["get", "list", "watch", "create", "patch", "delete"]),
        ("", "serviceaccounts", ["get", "create", "patch"]),
        ("rbac.authorization.k8s.io", "roles", ["get", "create", "patch"]),
        ("rbac.authorization.k8s.io", "rolebindings", ["get", "create", "patch"]),
        ("serving.kserve.io", "inferenceservices", ["get", "list", "watch", "create", "patch", "delete"]),
        ("", "secrets", ["get"]),
    ],
)
def test_operator_may_do_what_its_controllers_need(group, resource, verbs):
    role = _cluster_role("mlkube-operator")
    assert [v for v in verbs if not allows(role, group, resource, v)] == []


@pytest.mark.parametrize(
    ("group", "resource", "verb"),
    [
        ("", "secrets", "list"),  # could enumerate every credential in the cluster
        ("", "secrets", "watch"),
        ("", "secrets", "create"),
        ("", "pods", "create"),  # workloads go through Jobs and Deployments
        ("", "pods", "delete"),
        ("", "pods/exec", "create"),
        ("", "nodes", "get"),
        ("", "namespaces", "delete"),
        ("apiextensions.k8s.io", "customresourcedefinitions", "create"),
        ("rbac.authorization.k8s.io", "clusterroles", "create"),
        ("rbac.authorization.k8s.io", "clusterrolebindings", "create"),
        ("mlkube.io", "mlprojects", "update"),  # the spec is the user's
        ("mlkube.io", "mlprojects", "delete"),
    ],
)
def test_operator_may_not(group, resource, verb):
    assert not allows(_cluster_role("mlkube-operator"), group, resource, verb)


def test_operator_binding_names_the_account_the_deployment_runs_as():
    objects = _objects("base")
    (binding,) = [o for o in objects if o["kind"] == "ClusterRoleBinding"]
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "mlkube-operator"}
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": deployment["spec"]["template"]["spec"]["serviceAccountName"],
            "namespace": deployment["metadata"]["namespace"],
        }
    ]


def test_operator_can_grant_the_router_role_it_applies():
    """RBAC refuses to create a Role granting more than its creator holds (no `escalate`)."""
    role = _cluster_role("mlkube-operator")
    (router_role,) = [o for o in serving.router_access("team-a") if o["kind"] == "Role"]
    for rule in router_role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert [v for v in rule["verbs"] if not allows(role, group, resource, v)] == [], rule


# --- coverage of what the operator's code does -------------------------------------------------

_CALL = re.compile(r"client\.(get|list|delete|patch|patch_status|read_log)\(\s*(k8s\.[A-Z_]+)?")
_VERBS = {"get": "get", "list": "list", "delete": "delete", "patch": "patch", "patch_status": "patch"}


def _operator_sources() -> list[pathlib.Path]:
    package = cs.ROOT / "operator" / "mlkube"
    return [p for p in package.rglob("*.py") if "local" not in p.relative_to(package).parts and p.name != "k8s.py"]


def _resources_by_name() -> dict[str, k8s.Resource]:
    return {name: value for name, value in vars(k8s).items() if isinstance(value, k8s.Resource)}


def test_every_api_call_in_the_operator_is_allowed():
    role = _cluster_role("mlkube-operator")
    resources = _resources_by_name()
    missing, seen = [], 0
    for path in _operator_sources():
        for method, constant in _CALL.findall(path.read_text()):
            seen += 1
            if method == "read_log":
                needed = [("", "pods/log", "get")]
            elif not constant and method == "delete":
                # The plan executor deletes what plans name: the InferenceServices of retired versions
                # and the TrainingJobs past the history limits (the embedded test sees every request).
                assert path.name == "execute.py", f"{path.name}: client.delete(<variable>): extend this test"
                needed = [(r.group, r.plural, "delete") for r in (k8s.INFERENCESERVICES, k8s.TRAININGJOBS)]
            elif not constant:
                # A resource passed in a variable: the pass loop's read, the status writer and the
                # annotation clearer of our kinds.
                assert method in ("get", "patch_status", "patch"), f"{path.name}: client.{method}(<variable>): extend this test"
                needed = [("mlkube.io", f"{kind}/status" if method == "patch_status" else kind, _VERBS[method]) for kind in KINDS]
            else:
                resource = resources[constant.removeprefix("k8s.")]
                plural = f"{resource.plural}/status" if method == "patch_status" else resource.plural
                needed = [(resource.group, plural, _VERBS[method])]
            missing += [f"{path.name}: {n}" for n in needed if not allows(role, *n)]
    assert seen, "found no client calls: has k8s.Client changed its method names?"
    assert missing == []


def _built_resources() -> list[k8s.Resource]:
    """The resources of every kind of object the manifest builders return."""
    by_kind = {r.kind: r for r in _resources_by_name().values()}
    kinds = set()
    for path in (cs.ROOT / "operator" / "mlkube" / "control" / "manifests").glob("*.py"):
        kinds |= set(re.findall(r'"kind": "([A-Za-z]+)"', path.read_text()))
    return [by_kind[kind] for kind in sorted(kinds & set(by_kind))]


def test_every_kind_the_operator_builds_can_be_created_and_applied():
    role = _cluster_role("mlkube-operator")
    by_kind = {r.kind: r for r in _built_resources()}
    managed = set(by_kind)
    assert {"Job", "InferenceService", "Deployment", "Service", "ConfigMap"} <= managed
    missing = [
        (kind, verb)
        for kind in sorted(managed)
        for verb in ("create", "patch")
        if not allows(role, by_kind[kind].group, by_kind[kind].plural, verb)
    ]
    assert missing == []


def test_trainer_has_no_api_access_and_no_token():
    objects = _objects(*BUILDS)
    trainers = [o for o in objects if o["kind"] == "ServiceAccount" and o["metadata"]["name"] == "mlkube-trainer"]
    assert trainers, "no mlkube-trainer ServiceAccount is built"
    for account in trainers:
        assert account["automountServiceAccountToken"] is False
        assert "secrets" not in account
    for obj in objects:
        for subject in obj.get("subjects", []) if obj["kind"].endswith("Binding") else []:
            assert subject["name"] != "mlkube-trainer", f"{cs.ident(obj)} binds the trainer"


def test_model_server_account_mounts_no_token_and_binds_nothing():
    objects = _objects("tenant")
    (account,) = [o for o in objects if o["kind"] == "ServiceAccount" and o["metadata"]["name"] == "mlkube-model"]
    assert account["automountServiceAccountToken"] is False
    assert account["secrets"] == [{"name": "s3-creds"}]
    assert not any(s["name"] == "mlkube-model" for o in objects for s in o.get("subjects", []))

"""Least privilege, as built: what the operator, routers and trainers may do on a cluster.

Three installs: overlays/production (namespaced, the default: the operator's rules hold only in
the namespaces it watches), overlays/cluster-wide and overlays/dev (its rules hold everywhere).
cluster_access.py evaluates RBAC bindings as the API server does.
"""

from __future__ import annotations

import pathlib
import re

import cluster_access as ca
import cluster_schemas as cs
import pytest

from mlkube.clients import k8s
from mlkube.control.manifests import serving

INSTALLS = ["overlays/production", "overlays/cluster-wide", "overlays/dev"]
BUILDS = ["base", "tenant", *INSTALLS]
KINDS = ["mlprojects", "trainingjobs", "modeldeployments", "driftmonitors"]
UNWATCHED = "kube-system"  # a namespace no install lists, holding the cluster's own secrets


def _objects(*paths: str) -> list[dict]:
    return [o for path in paths for o in cs.build(path)]


def _a_watched_namespace(objects: list[dict]) -> str:
    watched = ca.watched_namespaces(objects)
    return sorted(watched)[0] if watched is not ca.ALL_NAMESPACES else "team-a"


def _rules_where_it_works(path: str) -> list[dict]:
    objects = cs.build(path)
    return ca.namespace_rules(objects, _a_watched_namespace(objects))


@pytest.mark.parametrize("path", INSTALLS)
def test_operator_roles_have_no_wildcards_or_privilege_verbs(path):
    roles = ca.bound_roles(cs.build(path))
    assert {r["metadata"]["name"] for r in roles} >= {"mlkube-operator", "mlkube-operator-discovery"}
    for rule in (rule for role in roles for rule in role["rules"]):
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule.get(field, []), rule
        assert not {"escalate", "bind", "impersonate", "deletecollection"} & set(rule["verbs"]), rule
        assert "nonResourceURLs" not in rule and "resourceNames" not in rule


NEEDS = (
    [("mlkube.io", kind, ["get", "list", "watch", "patch"]) for kind in KINDS]
    + [("mlkube.io", f"{kind}/status", ["get", "patch"]) for kind in KINDS]
    + [("mlkube.io", f"{kind}/finalizers", ["update"]) for kind in KINDS]
    + [
        ("mlkube.io", "trainingjobs", ["create", "delete"]),
        ("batch", "jobs", ["get", "list", "watch", "create", "patch", "delete"]),  # trainers and drift checks
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
    ]
)


@pytest.mark.parametrize("path", INSTALLS)
@pytest.mark.parametrize(("group", "resource", "verbs"), NEEDS)
def test_operator_may_do_what_its_controllers_need_where_it_works(path, group, resource, verbs):
    rules = _rules_where_it_works(path)
    assert [v for v in verbs if not ca.allows(rules, group, resource, v)] == []


@pytest.mark.parametrize("path", INSTALLS)
def test_kopf_may_discover_resources_and_namespaces_cluster_wide(path):
    rules = ca.cluster_rules(cs.build(path))
    for group, resource in (("apiextensions.k8s.io", "customresourcedefinitions"), ("", "namespaces")):
        assert [v for v in ("get", "list", "watch") if not ca.allows(rules, group, resource, v)] == [], resource


FORBIDDEN = [
    ("", "secrets", "list"),  # could enumerate every credential in the cluster
    ("", "secrets", "watch"),
    ("", "secrets", "create"),
    ("", "pods", "create"),  # workloads go through Jobs and Deployments
    ("", "pods", "delete"),
    ("", "pods/exec", "create"),
    ("", "nodes", "get"),
    ("", "namespaces", "delete"),
    ("", "namespaces", "create"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "create"),
    ("rbac.authorization.k8s.io", "clusterroles", "create"),
    ("rbac.authorization.k8s.io", "clusterrolebindings", "create"),
    ("mlkube.io", "mlprojects", "update"),  # the spec is the user's
    ("mlkube.io", "mlprojects", "delete"),
]


@pytest.mark.parametrize("path", INSTALLS)
@pytest.mark.parametrize(("group", "resource", "verb"), FORBIDDEN)
def test_operator_may_not(path, group, resource, verb):
    objects = cs.build(path)
    assert not ca.allows(ca.namespace_rules(objects, _a_watched_namespace(objects)), group, resource, verb)
    assert not ca.allows(ca.cluster_rules(objects), group, resource, verb)


# --- the namespaced install ----------------------------------------------------------------------

# What a stolen operator token could do with a namespaced grant held everywhere: read the
# cluster's secrets, run code in any namespace, take over workloads.
OUTSIDE = [
    ("", "secrets", "get"),
    ("batch", "jobs", "create"),
    ("apps", "deployments", "create"),
    ("apps", "deployments", "patch"),
    ("", "configmaps", "get"),
    ("", "services", "create"),
    ("", "pods", "list"),
    ("", "pods/log", "get"),
    ("", "serviceaccounts", "create"),
    ("rbac.authorization.k8s.io", "rolebindings", "create"),
    ("serving.kserve.io", "inferenceservices", "create"),
    ("mlkube.io", "trainingjobs", "create"),
]


@pytest.mark.parametrize(("group", "resource", "verb"), OUTSIDE)
def test_production_operator_may_do_nothing_outside_the_namespaces_it_watches(group, resource, verb):
    objects = cs.build("overlays/production")
    assert ca.watched_namespaces(objects) is not ca.ALL_NAMESPACES, "the production overlay must be namespaced"
    assert UNWATCHED not in ca.watched_namespaces(objects)
    assert not ca.allows(ca.namespace_rules(objects, UNWATCHED), group, resource, verb)
    assert ca.allows(ca.namespace_rules(objects, "ml"), group, resource, verb)


def test_production_grants_cluster_wide_only_discovery():
    """Nothing namespaced is granted through a ClusterRoleBinding: only reading CRDs and namespaces."""
    objects = cs.build("overlays/production")
    granted = {
        (g, r, v)
        for rule in ca.cluster_rules(objects)
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    assert {(g, r) for g, r, _ in granted} == {("apiextensions.k8s.io", "customresourcedefinitions"), ("", "namespaces")}
    assert {v for _, _, v in granted} == {"get", "list", "watch"}


@pytest.mark.parametrize("path", ["overlays/production"])
def test_watched_namespaces_are_exactly_those_with_a_rolebinding_and_exist(path):
    objects = cs.build(path)
    watched = ca.watched_namespaces(objects)
    assert watched and watched == ca.rolebinding_namespaces(objects)
    assert watched <= {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"}
    for binding in (b for b in ca.bindings(objects) if b["kind"] == "RoleBinding"):
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "mlkube-operator"}


@pytest.mark.parametrize("path", ["overlays/cluster-wide", "overlays/dev"])
def test_cluster_wide_installs_watch_every_namespace_with_the_role_bound_cluster_wide(path):
    objects = cs.build(path)
    assert ca.watched_namespaces(objects) is ca.ALL_NAMESPACES
    assert ca.allows(ca.namespace_rules(objects, UNWATCHED), "batch", "jobs", "create")


@pytest.mark.parametrize("path", INSTALLS)
def test_operator_bindings_name_the_account_the_deployment_runs_as(path):
    objects = cs.build(path)
    namespace, name = ca.operator_account(objects)
    assert name == "mlkube-operator" and namespace == "mlkube-system"
    for binding in ca.bindings(objects):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": name, "namespace": namespace}], cs.ident(binding)


@pytest.mark.parametrize("path", INSTALLS)
def test_operator_can_grant_the_router_role_it_applies(path):
    """RBAC refuses to create a Role granting more than its creator holds there (no `escalate`)."""
    objects = cs.build(path)
    namespace = _a_watched_namespace(objects)
    rules = ca.namespace_rules(objects, namespace)
    (router_role,) = [o for o in serving.router_access(namespace) if o["kind"] == "Role"]
    for rule in router_role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert [v for v in rule["verbs"] if not ca.allows(rules, group, resource, v)] == [], rule


# --- coverage of what the operator's code does -------------------------------------------------

_CALL = re.compile(r"client\.(get|list|delete|patch|patch_status|read_log)\(\s*(k8s\.[A-Z_]+)?")
_VERBS = {"get": "get", "list": "list", "delete": "delete", "patch": "patch", "patch_status": "patch"}


def _operator_sources() -> list[pathlib.Path]:
    package = cs.ROOT / "operator" / "mlkube"
    return [p for p in package.rglob("*.py") if "local" not in p.relative_to(package).parts and p.name != "k8s.py"]


def _resources_by_name() -> dict[str, k8s.Resource]:
    return {name: value for name, value in vars(k8s).items() if isinstance(value, k8s.Resource)}


@pytest.mark.parametrize("path", INSTALLS)
def test_every_api_call_in_the_operator_is_allowed(path):
    """Every call is made in the namespace of the object being reconciled, so it must be allowed
    in a watched namespace; a call on a cluster-scoped resource must be allowed cluster-wide."""
    objects = cs.build(path)
    in_namespace, cluster = ca.namespace_rules(objects, _a_watched_namespace(objects)), ca.cluster_rules(objects)
    resources = _resources_by_name()
    scoped = {(r.group, r.plural): r.namespaced for r in resources.values()}
    missing, seen = [], 0
    for source in _operator_sources():
        for method, constant in _CALL.findall(source.read_text()):
            seen += 1
            if method == "read_log":
                needed = [("", "pods/log", "get")]
            elif not constant and method == "delete":
                # The plan executor deletes what plans name: the InferenceServices of retired versions
                # and the TrainingJobs past the history limits (the embedded test sees every request).
                assert source.name == "execute.py", f"{source.name}: client.delete(<variable>): extend this test"
                needed = [(r.group, r.plural, "delete") for r in (k8s.INFERENCESERVICES, k8s.TRAININGJOBS)]
            elif not constant:
                # A resource passed in a variable: the pass loop's read, the status writer and the
                # annotation clearer of our kinds.
                assert method in ("get", "patch_status", "patch"), f"{source.name}: client.{method}(<variable>): extend this test"
                needed = [("mlkube.io", f"{kind}/status" if method == "patch_status" else kind, _VERBS[method]) for kind in KINDS]
            else:
                resource = resources[constant.removeprefix("k8s.")]
                plural = f"{resource.plural}/status" if method == "patch_status" else resource.plural
                needed = [(resource.group, plural, _VERBS[method])]
            for group, resource, verb in needed:
                rules = in_namespace if scoped.get((group, resource.split("/")[0]), True) else cluster
                if not ca.allows(rules, group, resource, verb):
                    missing.append(f"{source.name}: {(group, resource, verb)}")
    assert seen, "found no client calls: has k8s.Client changed its method names?"
    assert missing == []


def _built_resources() -> list[k8s.Resource]:
    """The resources of every kind of object the manifest builders return."""
    by_kind = {r.kind: r for r in _resources_by_name().values()}
    kinds = set()
    for path in (cs.ROOT / "operator" / "mlkube" / "control" / "manifests").glob("*.py"):
        kinds |= set(re.findall(r'"kind": "([A-Za-z]+)"', path.read_text()))
    return [by_kind[kind] for kind in sorted(kinds & set(by_kind))]


@pytest.mark.parametrize("path", INSTALLS)
def test_every_kind_the_operator_builds_can_be_created_and_applied(path):
    rules = _rules_where_it_works(path)
    by_kind = {r.kind: r for r in _built_resources()}
    managed = set(by_kind)
    assert {"Job", "InferenceService", "Deployment", "Service", "ConfigMap"} <= managed
    missing = [
        (kind, verb)
        for kind in sorted(managed)
        for verb in ("create", "patch")
        if not ca.allows(rules, by_kind[kind].group, by_kind[kind].plural, verb)
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

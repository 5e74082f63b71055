"""What the operator's ServiceAccount may do in a built install, as Kubernetes RBAC decides it.

Owns reading the objects of an install (``cluster_schemas.build``): which namespaces the
operator watches (its ``--namespace``/``--all-namespaces`` arguments) and which rules hold for
its ServiceAccount in one namespace (RoleBindings there plus ClusterRoleBindings) or on
cluster-scoped resources and across all namespaces (ClusterRoleBindings only). A RoleBinding may
name a ClusterRole: its rules then hold in the binding's namespace only, as on a cluster.
Must not talk to a cluster.
"""

from __future__ import annotations

from typing import Any

OPERATOR = "mlkube-operator"
ALL_NAMESPACES = None  # watched_namespaces() of a cluster-wide install


def operator_deployment(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == OPERATOR]
    return deployment


def operator_account(objects: list[dict[str, Any]]) -> tuple[str, str]:
    """(namespace, name) of the ServiceAccount the operator runs as."""
    deployment = operator_deployment(objects)
    return deployment["metadata"]["namespace"], deployment["spec"]["template"]["spec"]["serviceAccountName"]


def watched_namespaces(objects: list[dict[str, Any]]) -> set[str] | None:
    """The namespaces the operator's arguments name; ``ALL_NAMESPACES`` (None) for every one.

    Mirrors ``mlkube operator``: ``--namespace`` is repeatable, ``--all-namespaces`` excludes it,
    and neither means every namespace.
    """
    (container,) = operator_deployment(objects)["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    named = {a.removeprefix("--namespace=") for a in args if a.startswith("--namespace=")}
    assert not ("--all-namespaces" in args and named), f"both --all-namespaces and --namespace: {args}"
    assert not any(a in ("-n", "--namespace", "-A") for a in args), f"write --namespace=<ns> in one argument: {args}"
    return named or ALL_NAMESPACES


def _binds_operator(binding: dict[str, Any], account: tuple[str, str]) -> bool:
    namespace, name = account
    return any(
        s.get("kind") == "ServiceAccount" and s.get("name") == name and s.get("namespace") == namespace
        for s in binding.get("subjects", [])
    )


def _role(objects: list[dict[str, Any]], ref: dict[str, Any], namespace: str | None) -> dict[str, Any]:
    kind, name = ref["kind"], ref["name"]
    found = [
        o
        for o in objects
        if o["kind"] == kind
        and o["metadata"]["name"] == name
        and (kind == "ClusterRole" or o["metadata"].get("namespace") == namespace)
    ]
    assert len(found) == 1, f"binding refers to {kind} {name}, which the install has {len(found)} times"
    return found[0]


def bindings(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every RoleBinding and ClusterRoleBinding naming the operator's ServiceAccount."""
    account = operator_account(objects)
    return [o for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding") and _binds_operator(o, account)]


def bound_roles(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every Role and ClusterRole some binding of the operator refers to."""
    roles = {}
    for binding in bindings(objects):
        role = _role(objects, binding["roleRef"], binding["metadata"].get("namespace"))
        roles[(role["kind"], role["metadata"].get("namespace"), role["metadata"]["name"])] = role
    return list(roles.values())


def cluster_rules(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rules that hold cluster-wide: on cluster-scoped resources and in every namespace."""
    return [
        rule
        for binding in bindings(objects)
        if binding["kind"] == "ClusterRoleBinding"
        for rule in _role(objects, binding["roleRef"], None)["rules"]
    ]


def namespace_rules(objects: list[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
    """Rules that hold for namespaced resources in ``namespace``."""
    local = [
        rule
        for binding in bindings(objects)
        if binding["kind"] == "RoleBinding" and binding["metadata"]["namespace"] == namespace
        for rule in _role(objects, binding["roleRef"], namespace)["rules"]
    ]
    return cluster_rules(objects) + local


def rolebinding_namespaces(objects: list[dict[str, Any]]) -> set[str]:
    return {b["metadata"]["namespace"] for b in bindings(objects) if b["kind"] == "RoleBinding"}


def allows(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    """Whether one of ``rules`` allows ``verb`` on ``group``/``resource`` (no wildcards: our roles have none)."""
    return any(
        group in rule.get("apiGroups", []) and resource in rule.get("resources", []) and verb in rule.get("verbs", [])
        for rule in rules
    )

"""Patch and list metadata of the built-in kinds the API server stores, as data.

Owns: for each upstream Go type reachable from the served built-in kinds, the fields that
carry `patchStrategy`/`patchMergeKey` struct tags (strategic merge patch) or
`+listType`/`+listMapKey`/`+mapType` markers (server-side apply), plus the type of each
nested struct that has such fields (`map[<type>]` for a map whose values are such structs,
e.g. a CRD schema's `properties`). Fields not listed merge as plain maps and replace as
atomic lists, and the lookups over the table. The core/v1 entries live in `patch_types_core`;
this module merges them into `TYPES`. Must not: hold behaviour; `patch_strategic` and
`apply_fields` interpret it.

Source: the Kubernetes v1.32 OpenAPI definitions (`x-kubernetes-patch-strategy`,
`x-kubernetes-patch-merge-key`, `x-kubernetes-list-type`, `x-kubernetes-list-map-keys`,
`x-kubernetes-map-type`), which are generated from the struct tags in `k8s.io/api`.
tests/unit/apiserver/test_patch_types.py regenerates this table from the copy of those
definitions shipped in `kubernetes-validate` and fails when the two differ.
"""

from __future__ import annotations

from mlkube.local.apiserver import patch_types_core

ATOMIC = patch_types_core.ATOMIC

ROOT_TYPES: dict[tuple[str, str], str] = {
    ("v1", "ConfigMap"): "io.k8s.api.core.v1.ConfigMap",
    ("v1", "Endpoints"): "io.k8s.api.core.v1.Endpoints",
    ("v1", "Event"): "io.k8s.api.core.v1.Event",
    ("v1", "Namespace"): "io.k8s.api.core.v1.Namespace",
    ("v1", "Pod"): "io.k8s.api.core.v1.Pod",
    ("v1", "Secret"): "io.k8s.api.core.v1.Secret",
    ("v1", "Service"): "io.k8s.api.core.v1.Service",
    ("v1", "ServiceAccount"): "io.k8s.api.core.v1.ServiceAccount",
    (
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
    ): "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
    ("apps/v1", "Deployment"): "io.k8s.api.apps.v1.Deployment",
    ("apps/v1", "ReplicaSet"): "io.k8s.api.apps.v1.ReplicaSet",
    ("batch/v1", "Job"): "io.k8s.api.batch.v1.Job",
    ("coordination.k8s.io/v1", "Lease"): "io.k8s.api.coordination.v1.Lease",
    ("events.k8s.io/v1", "Event"): "io.k8s.api.events.v1.Event",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "io.k8s.api.rbac.v1.ClusterRole",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "io.k8s.api.rbac.v1.ClusterRoleBinding",
    ("rbac.authorization.k8s.io/v1", "Role"): "io.k8s.api.rbac.v1.Role",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "io.k8s.api.rbac.v1.RoleBinding",
    ("v1", "Node"): "io.k8s.api.core.v1.Node",
    ("v1", "ReplicationController"): "io.k8s.api.core.v1.ReplicationController",
    ("apps/v1", "DaemonSet"): "io.k8s.api.apps.v1.DaemonSet",
    ("apiregistration.k8s.io/v1", "APIService"): "io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.APIService",
}

_GROUP_TYPES: dict[str, dict] = {  # every group but core/v1, which patch_types_core holds
    "io.k8s.api.apps.v1.Deployment": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.apps.v1.DeploymentSpec"},
        "status": {"type": "io.k8s.api.apps.v1.DeploymentStatus"},
    },
    "io.k8s.api.apps.v1.DeploymentSpec": {
        "selector": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"},
        "strategy": {"patchStrategy": "retainKeys"},
        "template": {"type": "io.k8s.api.core.v1.PodTemplateSpec"},
    },
    "io.k8s.api.apps.v1.DeploymentStatus": {
        "conditions": {"listMapKeys": ["type"], "listType": "map", "patchMergeKey": "type", "patchStrategy": "merge"},
    },
    "io.k8s.api.apps.v1.ReplicaSet": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.apps.v1.ReplicaSetSpec"},
        "status": {"type": "io.k8s.api.apps.v1.ReplicaSetStatus"},
    },
    "io.k8s.api.apps.v1.ReplicaSetSpec": {
        "selector": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"},
        "template": {"type": "io.k8s.api.core.v1.PodTemplateSpec"},
    },
    "io.k8s.api.apps.v1.ReplicaSetStatus": {
        "conditions": {"listMapKeys": ["type"], "listType": "map", "patchMergeKey": "type", "patchStrategy": "merge"},
    },
    "io.k8s.api.batch.v1.Job": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.batch.v1.JobSpec"},
        "status": {"type": "io.k8s.api.batch.v1.JobStatus"},
    },
    "io.k8s.api.batch.v1.JobSpec": {
        "podFailurePolicy": {"type": "io.k8s.api.batch.v1.PodFailurePolicy"},
        "selector": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"},
        "template": {"type": "io.k8s.api.core.v1.PodTemplateSpec"},
    },
    "io.k8s.api.batch.v1.JobStatus": {
        "conditions": {"patchMergeKey": "type", "patchStrategy": "merge"},
        "uncountedTerminatedPods": {"type": "io.k8s.api.batch.v1.UncountedTerminatedPods"},
    },
    "io.k8s.api.batch.v1.PodFailurePolicy": {
        "rules": {"type": "io.k8s.api.batch.v1.PodFailurePolicyRule"},
    },
    "io.k8s.api.batch.v1.PodFailurePolicyOnExitCodesRequirement": {
        "values": {"listType": "set"},
    },
    "io.k8s.api.batch.v1.PodFailurePolicyRule": {
        "onExitCodes": {"type": "io.k8s.api.batch.v1.PodFailurePolicyOnExitCodesRequirement"},
    },
    "io.k8s.api.batch.v1.UncountedTerminatedPods": {
        "failed": {"listType": "set"},
        "succeeded": {"listType": "set"},
    },
    "io.k8s.api.coordination.v1.Lease": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
    },
    "io.k8s.api.events.v1.Event": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "regarding": {"type": "io.k8s.api.core.v1.ObjectReference"},
        "related": {"type": "io.k8s.api.core.v1.ObjectReference"},
    },
    "io.k8s.api.rbac.v1.AggregationRule": {
        "clusterRoleSelectors": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"},
    },
    "io.k8s.api.rbac.v1.ClusterRole": {
        "aggregationRule": {"type": "io.k8s.api.rbac.v1.AggregationRule"},
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
    },
    "io.k8s.api.rbac.v1.ClusterRoleBinding": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "roleRef": {"type": "io.k8s.api.rbac.v1.RoleRef"},
        "subjects": {"type": "io.k8s.api.rbac.v1.Subject"},
    },
    "io.k8s.api.rbac.v1.Role": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
    },
    "io.k8s.api.rbac.v1.RoleBinding": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "roleRef": {"type": "io.k8s.api.rbac.v1.RoleRef"},
        "subjects": {"type": "io.k8s.api.rbac.v1.Subject"},
    },
    "io.k8s.api.rbac.v1.RoleRef": {
        ATOMIC: True,
    },
    "io.k8s.api.rbac.v1.Subject": {
        ATOMIC: True,
    },
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionSpec"},
        "status": {"type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus"},
    },
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionSpec": {
        "versions": {"type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionVersion"},
    },
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus": {
        "conditions": {"listMapKeys": ["type"], "listType": "map"},
    },
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionVersion": {
        "schema": {"type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceValidation"},
    },
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceValidation": {
        "openAPIV3Schema": {"type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps"},
    },
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps": {
        "allOf": {"type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps"},
        "anyOf": {"type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps"},
        "definitions": {"type": "map[io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps]"},
        "not": {"type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps"},
        "oneOf": {"type": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps"},
        "patternProperties": {"type": "map[io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps]"},
        "properties": {"type": "map[io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps]"},
        "x-kubernetes-validations": {
            "listMapKeys": ["rule"],
            "listType": "map",
            "patchMergeKey": "rule",
            "patchStrategy": "merge",
        },
    },
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector": {
        ATOMIC: True,
    },
    "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": {
        "finalizers": {"listType": "set", "patchStrategy": "merge"},
        "ownerReferences": {
            "listMapKeys": ["uid"],
            "listType": "map",
            "patchMergeKey": "uid",
            "patchStrategy": "merge",
            "type": "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
        },
    },
    "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference": {
        ATOMIC: True,
    },
}

_LOCAL_NODE_GROUP_TYPES: dict[str, dict] = {  # DaemonSet and APIService (the local node's workloads, stored APIServices)
    "io.k8s.api.apps.v1.DaemonSet": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "io.k8s.api.apps.v1.DaemonSetSpec"},
        "status": {"type": "io.k8s.api.apps.v1.DaemonSetStatus"},
    },
    "io.k8s.api.apps.v1.DaemonSetSpec": {
        "selector": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"},
        "template": {"type": "io.k8s.api.core.v1.PodTemplateSpec"},
    },
    "io.k8s.api.apps.v1.DaemonSetStatus": {
        "conditions": {"patchStrategy": "merge", "patchMergeKey": "type", "listType": "map", "listMapKeys": ["type"]},
    },
    "io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.APIService": {
        "metadata": {"type": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "status": {"type": "io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.APIServiceStatus"},
    },
    "io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.APIServiceStatus": {
        "conditions": {"patchStrategy": "merge", "patchMergeKey": "type", "listType": "map", "listMapKeys": ["type"]},
    },
}

TYPES: dict[str, dict] = {**_GROUP_TYPES, **_LOCAL_NODE_GROUP_TYPES, **patch_types_core.CORE_V1}

_NO_METADATA: dict = {}


def root_type(api_version: str, kind: str) -> str | None:
    """The type name of a served built-in kind, or None for kinds without known metadata."""
    return ROOT_TYPES.get((api_version, kind))


_MAP_VALUES: dict[str, dict] = {}


def field(type_name: str | None, name: str) -> dict:
    """The metadata of field `name` of `type_name` (empty when the field has none). Every key
    of a `map[<type>]` holds a value of that type."""
    if type_name is None:
        return _NO_METADATA
    if type_name.startswith("map["):
        if type_name not in _MAP_VALUES:
            _MAP_VALUES[type_name] = {"type": type_name[4:-1]}
        return _MAP_VALUES[type_name]
    return TYPES.get(type_name, _NO_METADATA).get(name, _NO_METADATA)


def is_atomic(type_name: str | None) -> bool:
    """True when values of this type are replaced and owned as a whole."""
    return type_name is not None and TYPES.get(type_name, _NO_METADATA).get(ATOMIC, False)

"""Resource types the server serves: the built-in kinds and those derived from CRDs.

Owns `ResourceType` (everything discovery, OpenAPI, Tables and the write path need to know
about one group/version/plural) and the `Registry` lookup tables. Must not touch storage or
HTTP; turning a CRD object into resource types is done by `crds.py`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
# The kind a subresource answers with, when it is not the parent's: (group, version, kind).
SUBRESOURCE_KINDS = {"scale": ("autoscaling", "v1", "Scale")}
SUBRESOURCE_VERBS = {
    "status": ("get", "patch", "update"),
    "scale": ("get", "patch", "update"),
    "log": ("get",),
    "finalize": ("update",),
    "exec": ("create", "get"),
    "portforward": ("create", "get"),
}

# Field selectors every resource supports; kinds add their own (upstream `GetAttrs` functions).
COMMON_FIELDS = ("metadata.name", "metadata.namespace")
EVENT_FIELDS = (
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
)
EVENTS_V1_FIELDS = (
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reason",
    "reportingController",
    "type",
)
POD_FIELDS = (
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
)


@dataclasses.dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    custom: bool = False
    uses_generation: bool = False
    # CRD-derived only: the version's openAPIV3Schema and additionalPrinterColumns.
    schema: dict[str, Any] | None = None
    printer_columns: tuple[dict[str, Any], ...] = ()
    storage_version: str = ""
    extra_fields: tuple[str, ...] = ()  # field selectors beyond metadata.name/namespace
    selectable_paths: tuple[tuple[str, str], ...] = ()  # CRD selectableFields: (field, jsonPath)
    description: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage_key(self) -> str:
        """Objects are stored once per group/plural, whatever version they are served at."""
        return f"{self.group}/{self.plural}"

    @property
    def storage_api_version(self) -> str:
        version = self.storage_version or self.version
        return f"{self.group}/{version}" if self.group else version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    @property
    def field_selectors(self) -> tuple[str, ...]:
        return COMMON_FIELDS + self.extra_fields + tuple(field for field, _ in self.selectable_paths)


def _builtin(group: str, version: str, plural: str, kind: str, *, namespaced: bool = True, **kw: Any) -> ResourceType:
    kw.setdefault("singular", kind.lower())
    return ResourceType(
        group=group, version=version, plural=plural, kind=kind, namespaced=namespaced, storage_version=version, **kw
    )


BUILTINS: tuple[ResourceType, ...] = (
    _builtin(
        "",
        "v1",
        "namespaces",
        "Namespace",
        namespaced=False,
        short_names=("ns",),
        subresources=("status", "finalize"),
        extra_fields=("status.phase",),
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
    ),
    _builtin("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    _builtin("", "v1", "secrets", "Secret", extra_fields=("type",)),
    _builtin("", "v1", "serviceaccounts", "ServiceAccount", short_names=("sa",)),
    _builtin("", "v1", "events", "Event", short_names=("ev",), extra_fields=EVENT_FIELDS),
    _builtin(
        "",
        "v1",
        "pods",
        "Pod",
        short_names=("po",),
        categories=("all",),
        subresources=("status", "log", "exec", "portforward"),
        extra_fields=POD_FIELDS,
    ),
    _builtin("", "v1", "services", "Service", short_names=("svc",), categories=("all",), subresources=("status",)),
    _builtin("", "v1", "endpoints", "Endpoints", short_names=("ep",)),
    _builtin(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        short_names=("deploy",),
        categories=("all",),
        subresources=("status", "scale"),
        uses_generation=True,
    ),
    _builtin(
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        short_names=("rs",),
        categories=("all",),
        subresources=("status", "scale"),
        uses_generation=True,
    ),
    _builtin(
        "batch",
        "v1",
        "jobs",
        "Job",
        categories=("all",),
        subresources=("status",),
        uses_generation=True,
        extra_fields=("status.successful",),
    ),
    _builtin("batch", "v1", "cronjobs", "CronJob", short_names=("cj",), categories=("all",), subresources=("status",)),
    _builtin("coordination.k8s.io", "v1", "leases", "Lease"),
    # Stored for the operator's router autoscalers; the local runtime runs no autoscaler.
    _builtin(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        short_names=("hpa",),
        categories=("all",),
        subresources=("status",),
        uses_generation=True,
    ),
    # Not stored: reviews.py answers them for the request's identity.
    _builtin(
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        namespaced=False,
        verbs=("create",),
    ),
    _builtin(
        "authorization.k8s.io", "v1", "selfsubjectrulesreviews", "SelfSubjectRulesReview", namespaced=False, verbs=("create",)
    ),
    _builtin("authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", namespaced=False, verbs=("create",)),
    _builtin("events.k8s.io", "v1", "events", "Event", short_names=("ev",), extra_fields=EVENTS_V1_FIELDS),
    _builtin("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    _builtin("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    _builtin("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False),
    _builtin("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False),
    # The one local Node, the runtime's other workload controllers, stored APIServices and the metrics API.
    _builtin("", "v1", "nodes", "Node", namespaced=False, short_names=("no",), subresources=("status",)),
    _builtin(
        "",
        "v1",
        "replicationcontrollers",
        "ReplicationController",
        short_names=("rc",),
        categories=("all",),
        subresources=("status", "scale"),
        uses_generation=True,
    ),
    _builtin(
        "apps",
        "v1",
        "daemonsets",
        "DaemonSet",
        short_names=("ds",),
        categories=("all",),
        subresources=("status",),
        uses_generation=True,
    ),
    _builtin("apiregistration.k8s.io", "v1", "apiservices", "APIService", namespaced=False, subresources=("status",)),
    _builtin("metrics.k8s.io", "v1beta1", "pods", "PodMetrics", singular="", verbs=("get", "list")),
    _builtin("metrics.k8s.io", "v1beta1", "nodes", "NodeMetrics", namespaced=False, singular="", verbs=("get", "list")),
    _builtin(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        short_names=("crd", "crds"),
        subresources=("status",),
        uses_generation=True,
    ),
)

_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple:
    """Sort key putting versions in Kubernetes priority order (v2 > v1 > v1beta2 > v1alpha1 > foo)."""
    match = _VERSION.match(version)
    if not match:
        return (3, 0, 0, version)
    major, stage, minor = int(match[1]), match[2], int(match[3] or 0)
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -major, -minor, version)


class Registry:
    """Lookup of served resource types by group/version/plural, kind and CRD name."""

    def __init__(self) -> None:
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._by_crd: dict[str, list[ResourceType]] = {}
        self.revision = 0  # bumped on every change, so discovery/OpenAPI caches know when to rebuild
        for rtype in BUILTINS:
            self._types[(rtype.group, rtype.version, rtype.plural)] = rtype

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        for rtype in self._types.values():
            if rtype.group == group and rtype.version == version and rtype.kind == kind:
                return rtype
        return None

    def storage_type(self, storage_key: str) -> ResourceType | None:
        """The type of a storage key at its storage version."""
        for rtype in self._types.values():
            if rtype.storage_key == storage_key and rtype.version == (rtype.storage_version or rtype.version):
                return rtype
        return None

    def all(self) -> Iterable[ResourceType]:
        return self._types.values()

    def group_versions(self) -> dict[str, list[str]]:
        """{group: versions in priority order}, the core group first, then groups by name."""
        groups: dict[str, set[str]] = {}
        for group, version, _ in self._types:
            groups.setdefault(group, set()).add(version)
        return {group: sorted(groups[group], key=version_priority) for group in sorted(groups)}

    def resources(self, group: str, version: str) -> list[ResourceType]:
        return sorted((t for (g, v, _), t in self._types.items() if g == group and v == version), key=lambda t: t.plural)

    def crd_types(self, crd_name: str) -> list[ResourceType]:
        return list(self._by_crd.get(crd_name, ()))

    def set_crd(self, crd_name: str, types: list[ResourceType]) -> None:
        """Replace the types served for one CRD (all its served versions)."""
        self.remove_crd(crd_name)
        for rtype in types:
            self._types[(rtype.group, rtype.version, rtype.plural)] = rtype
        self._by_crd[crd_name] = list(types)
        self.revision += 1

    def remove_crd(self, crd_name: str) -> None:
        for rtype in self._by_crd.pop(crd_name, ()):
            self._types.pop((rtype.group, rtype.version, rtype.plural), None)
        self.revision += 1

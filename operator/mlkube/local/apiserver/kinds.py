"""Kind-specific behaviour of the built-in types: defaults, server-set fields, immutable fields.

Owns what upstream's per-kind registry strategies do on create and update for the built-ins
served here (Namespace, Secret, Service clusterIP allocation, Event/Lease time formats, Pod,
Job, CronJob, Deployment defaults). Mutates the private copy it is given; must not write storage.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from collections.abc import Iterable
from typing import Any

from mlkube.local.apiserver import errors, metadata, registry

NAMESPACE_FINALIZER = "kubernetes"
CLUSTER_IP_FIRST = ipaddress.IPv4Address("127.1.0.1")
CLUSTER_IP_LAST = ipaddress.IPv4Address("127.1.255.254")


def prepare_create(
    rtype: registry.ResourceType,
    obj: dict[str, Any],
    *,
    services: Iterable[dict[str, Any]],
    network_seed: str = "",
    nodes: Iterable[dict[str, Any]] = (),
) -> list[errors.Cause]:
    """Apply create-time defaults in place; `services` are the stored ones (for clusterIP allocation),
    `network_seed` names this cluster (its state directory) so that its Service addresses start in a
    /24 of their own: two local clusters on one machine rarely hand out the same address. `nodes`
    are the stored Nodes: a pod without `spec.nodeName` is bound to the first schedulable one
    (the scheduler's job, done at once: there is one local node)."""
    key = (rtype.group, rtype.plural)
    if key == ("", "namespaces"):
        spec = obj.setdefault("spec", {})
        spec.setdefault("finalizers", [NAMESPACE_FINALIZER])
        obj["status"] = {"phase": "Active"}
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
    elif key == ("", "services"):
        return _prepare_service(obj, services, network_seed)
    elif key == ("", "pods"):
        obj["status"] = {"phase": "Pending"}
        spec = obj.setdefault("spec", {})
        spec.setdefault("restartPolicy", "Always")
        if not spec.get("nodeName"):
            schedulable = sorted(n["metadata"]["name"] for n in nodes if not (n.get("spec") or {}).get("unschedulable"))
            if schedulable:
                spec["nodeName"] = schedulable[0]
        if not spec.get("containers"):
            return [errors.Cause("FieldValueRequired", "Required value", "spec.containers")]
    elif key == ("batch", "jobs"):
        obj.pop("status", None)
        _default_job(obj)
    elif key in (("apps", "deployments"), ("apps", "replicasets")):
        obj.pop("status", None)
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        if key == ("apps", "deployments"):
            spec.setdefault("progressDeadlineSeconds", 600)
            strategy = spec.setdefault("strategy", {})  # protobuf bodies carry an empty strategy
            if not strategy.get("type"):
                strategy["type"] = "RollingUpdate"
            if strategy["type"] == "RollingUpdate":
                rolling = strategy.setdefault("rollingUpdate", {})
                rolling.setdefault("maxUnavailable", "25%")
                rolling.setdefault("maxSurge", "25%")
    elif key == ("batch", "cronjobs"):
        obj.pop("status", None)
        spec = obj.setdefault("spec", {})
        spec.setdefault("concurrencyPolicy", "Allow")
        spec.setdefault("suspend", False)
        spec.setdefault("successfulJobsHistoryLimit", 3)
        spec.setdefault("failedJobsHistoryLimit", 1)
    elif key == ("apps", "daemonsets"):
        obj.pop("status", None)
        spec = obj.setdefault("spec", {})
        spec.setdefault("revisionHistoryLimit", 10)
        strategy = spec.setdefault("updateStrategy", {})  # protobuf bodies carry an empty strategy
        if not strategy.get("type"):
            strategy["type"] = "RollingUpdate"
        if strategy["type"] == "RollingUpdate":
            strategy.setdefault("rollingUpdate", {}).setdefault("maxUnavailable", 1)
            strategy["rollingUpdate"].setdefault("maxSurge", 0)
    elif key == ("", "replicationcontrollers"):
        obj.pop("status", None)
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not spec.get("selector") and template_labels:  # upstream defaults both from the template's labels
            spec["selector"] = dict(template_labels)
        if not obj["metadata"].get("labels") and template_labels:
            obj["metadata"]["labels"] = dict(template_labels)
    return prepare_write(rtype, obj)


def prepare_update(rtype: registry.ResourceType, obj: dict[str, Any], old: dict[str, Any]) -> list[errors.Cause]:
    """Keep fields the main endpoint may not change; normalise the rest in place."""
    key = (rtype.group, rtype.plural)
    if key == ("", "namespaces"):
        obj.setdefault("spec", {})["finalizers"] = list((old.get("spec") or {}).get("finalizers") or [])
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
    elif key == ("", "services"):
        spec = obj.setdefault("spec", {})
        old_spec = old.get("spec") or {}
        for field in ("clusterIP", "clusterIPs"):
            if field in old_spec:
                spec[field] = old_spec[field]
        spec.setdefault("type", old_spec.get("type", "ClusterIP"))
    elif key == ("batch", "jobs"):
        spec, old_spec = obj.setdefault("spec", {}), old.get("spec") or {}
        for field in ("selector", "template", "completions", "completionMode"):
            if field in old_spec and spec.get(field) != old_spec[field]:
                return [errors.Cause("FieldValueInvalid", f"Invalid value: {field} is immutable", f"spec.{field}")]
    return prepare_write(rtype, obj)


def prepare_write(rtype: registry.ResourceType, obj: dict[str, Any]) -> list[errors.Cause]:
    """Normalisations every write gets (create, update, patch, /status)."""
    key = (rtype.group, rtype.plural)
    found: list[errors.Cause] = []
    if key == ("", "secrets"):
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None) or {}
        if string_data:
            data = obj.setdefault("data", {})
            for name, value in string_data.items():
                data[name] = base64.b64encode(str(value).encode()).decode()
    elif key == ("", "events"):
        for field in ("firstTimestamp", "lastTimestamp"):
            found.extend(filter(None, [metadata.normalise_time(obj, field)]))
        found.extend(filter(None, [metadata.normalise_time(obj, "eventTime", micro=True)]))
        if isinstance(obj.get("series"), dict):
            found.extend(filter(None, [metadata.normalise_time(obj["series"], "lastObservedTime", micro=True)]))
    elif key == ("events.k8s.io", "events"):
        found.extend(filter(None, [metadata.normalise_time(obj, "eventTime", micro=True)]))
        for field in ("deprecatedFirstTimestamp", "deprecatedLastTimestamp"):
            found.extend(filter(None, [metadata.normalise_time(obj, field)]))
    elif key == ("coordination.k8s.io", "leases"):
        spec = obj.get("spec")
        if isinstance(spec, dict):
            for field in ("acquireTime", "renewTime"):
                found.extend(filter(None, [metadata.normalise_time(spec, field, micro=True)]))
    return found


def _default_job(job: dict[str, Any]) -> None:
    spec = job.setdefault("spec", {})
    if "completions" not in spec and "parallelism" not in spec:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    uid, name = job["metadata"]["uid"], job["metadata"]["name"]
    if not spec.get("manualSelector"):
        labels = {
            "batch.kubernetes.io/controller-uid": uid,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": uid,
            "job-name": name,
        }
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        template_meta = spec.setdefault("template", {}).setdefault("metadata", {})
        template_meta.setdefault("labels", {}).update(labels)
    spec.setdefault("template", {}).setdefault("spec", {}).setdefault("restartPolicy", "Never")


def _prepare_service(service: dict[str, Any], services: Iterable[dict[str, Any]], network_seed: str) -> list[errors.Cause]:
    service["status"] = {"loadBalancer": {}}  # as upstream answers a create (clients read `status` as present)
    spec = service.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
    if spec.get("clusterIP") == "None":
        spec["clusterIPs"] = ["None"]
        return []
    used = {(s.get("spec") or {}).get("clusterIP") for s in services}
    requested = spec.get("clusterIP")
    if requested:
        if requested in used:
            return [
                errors.Cause(
                    "FieldValueInvalid",
                    f'Invalid value: []string{{"{requested}"}}: failed to allocate '
                    f"IP {requested}: provided IP is already allocated",
                    "spec.clusterIPs",
                )
            ]
        spec["clusterIPs"] = [requested]
        return []
    size = int(CLUSTER_IP_LAST) - int(CLUSTER_IP_FIRST) + 1
    start = hashlib.sha256(network_seed.encode()).digest()[0] * 256 if network_seed else 0
    for offset in range(size):
        address = CLUSTER_IP_FIRST + (start + offset) % size
        if str(address) not in used and not str(address).endswith((".0", ".255")):
            break
    else:
        return [
            errors.Cause("FieldValueInvalid", "Invalid value: range is full: no clusterIP left to allocate", "spec.clusterIP")
        ]
    spec["clusterIP"] = str(address)
    spec["clusterIPs"] = [str(address)]
    return []

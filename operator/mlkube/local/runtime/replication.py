"""The ReplicationController (core/v1) and DaemonSet (apps/v1) controllers of the one-node runtime.

Owns which pods each needs (:func:`plan_replication`, :func:`plan_daemonset`, pure) and their
application. A ReplicationController keeps `spec.replicas` pods of its template (no rollout:
a changed template applies to pods created afterwards, as upstream). A DaemonSet runs one pod
on the local node when its template's `nodeSelector` matches the node's labels, bound with
`spec.nodeName`; with the `RollingUpdate` strategy (the default) a changed template replaces
that pod (old first: one node, `maxUnavailable` 1), with `OnDelete` only a deleted pod is
replaced by the new template. Finished pods are replaced. Crashed containers are restarted by
the kubelet, not here.

Also plays the ServiceAccount controller's one visible duty: every active namespace gets a
`default` ServiceAccount (clients wait for it before creating pods, as on a real cluster).
"""

from __future__ import annotations

import copy
import dataclasses
import logging

from mlkube.local.runtime import events, kube, machine, objects, store

log = logging.getLogger(__name__)

REVISION_LABEL = "controller-revision-hash"


@dataclasses.dataclass
class Plan:
    status: dict
    create: list[dict] = dataclasses.field(default_factory=list)
    delete: list[dict] = dataclasses.field(default_factory=list)


def pod_for(owner: dict, *, labels: dict[str, str] | None = None, node_name: str = "") -> dict:
    meta, template = owner["metadata"], copy.deepcopy(owner["spec"]["template"])
    template_meta = template.get("metadata") or {}
    spec = template["spec"]
    if node_name:
        spec["nodeName"] = node_name
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": f"{meta['name']}-",
            "namespace": meta.get("namespace") or "default",
            "labels": {**(template_meta.get("labels") or {}), **(labels or {})},
            "annotations": dict(template_meta.get("annotations") or {}),
            "ownerReferences": [objects.owner_reference(owner)],
        },
        "spec": spec,
    }


def _split(pods: list[dict]) -> tuple[list[dict], list[dict]]:
    """(live pods, finished pods), ignoring pods being deleted."""
    live = [p for p in pods if not objects.is_terminating(p)]
    finished = [p for p in live if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed")]
    return [p for p in live if p not in finished], finished


def _ready(pod: dict) -> bool:
    return objects.is_true(pod, "Ready")


def plan_replication(controller: dict, pods: list[dict]) -> Plan:
    """The pods to create and delete, and the status, of a ReplicationController."""
    spec = controller["spec"]
    replicas = spec.get("replicas", 1)
    live, finished = _split(pods)
    result = Plan(status={}, delete=list(finished))
    if len(live) < replicas:
        result.create = [pod_for(controller) for _ in range(replicas - len(live))]
    elif len(live) > replicas:
        newest_first = sorted(live, key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True)
        result.delete += sorted(newest_first, key=_ready)[: len(live) - replicas]
    selector = spec.get("selector") or (spec.get("template", {}).get("metadata") or {}).get("labels") or {}
    ready = sum(map(_ready, live))
    result.status = {
        "observedGeneration": controller["metadata"].get("generation", 1),
        "replicas": len(live),
        "fullyLabeledReplicas": sum(objects.matches(selector, p["metadata"].get("labels")) for p in live),
        "readyReplicas": ready,
        "availableReplicas": ready,
    }
    return result


def schedulable(template_spec: dict, node_labels: dict[str, str]) -> bool:
    """Whether the pod template's nodeSelector matches the node (affinity and taints are not modelled)."""
    return all(node_labels.get(k) == v for k, v in (template_spec.get("nodeSelector") or {}).items())


def plan_daemonset(daemonset: dict, pods: list[dict], *, node_name: str, node_labels: dict[str, str]) -> Plan:
    """The pods to create and delete, and the status, of a DaemonSet on the one local node."""
    spec = daemonset["spec"]
    revision = objects.template_hash(spec["template"])
    live, finished = _split(pods)
    current = [p for p in live if (p["metadata"].get("labels") or {}).get(REVISION_LABEL) == revision]
    old = [p for p in live if p not in current]
    result = Plan(status={}, delete=list(finished))
    wanted = schedulable(spec["template"].get("spec") or {}, node_labels)
    on_delete = (spec.get("updateStrategy") or {}).get("type") == "OnDelete"
    if not wanted:
        result.delete += live
    else:
        result.delete += current[1:]
        if not on_delete:
            result.delete += old
        if not live and not any(objects.is_terminating(p) for p in pods):  # the old pod is gone first
            result.create = [pod_for(daemonset, labels={REVISION_LABEL: revision}, node_name=node_name)]
    scheduled = 1 if live else 0
    ready = 1 if any(map(_ready, live)) else 0
    result.status = {
        "observedGeneration": daemonset["metadata"].get("generation", 1),
        "desiredNumberScheduled": 1 if wanted else 0,
        "currentNumberScheduled": scheduled if wanted else 0,
        "numberMisscheduled": 0 if wanted else scheduled,
        "numberReady": ready,
        "numberAvailable": ready,
        "numberUnavailable": (1 - ready) if wanted else 0,
        "updatedNumberScheduled": 1 if current else 0,
    }
    return result


async def _apply(cluster: store.Store, owner: dict, decided: Plan, resource: kube.Resource, recorder: events.Recorder) -> None:
    for pod in decided.delete:
        await cluster.delete(kube.PODS, pod)
        recorder.record(owner, "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}")
    for pod in decided.create:
        created = await cluster.create(kube.PODS, pod)
        recorder.record(owner, "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")
    await cluster.write_status(resource, owner, decided.status)


def missing_default_accounts(namespaces: list[dict], accounts: list[dict]) -> list[dict]:
    """The `default` ServiceAccounts that active namespaces lack (pure)."""
    have = {(a["metadata"].get("namespace"), a["metadata"]["name"]) for a in accounts}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns["metadata"]["name"]}}
        for ns in namespaces
        if (ns.get("status") or {}).get("phase", "Active") == "Active"
        and not objects.is_terminating(ns)
        and (ns["metadata"]["name"], "default") not in have
    ]


async def sync(cluster: store.Store, replication_events: events.Recorder, daemonset_events: events.Recorder) -> None:
    """Reconcile every ReplicationController and DaemonSet (and each namespace's default ServiceAccount)."""
    for account in missing_default_accounts(cluster.list(kube.NAMESPACES), cluster.list(kube.SERVICEACCOUNTS)):
        try:
            await cluster.create(kube.SERVICEACCOUNTS, account)
        except kube.APIError as e:  # created meanwhile, or the namespace is going away
            log.debug("default ServiceAccount in %s: %s", account["metadata"]["namespace"], e)
    for controller in cluster.list(kube.REPLICATIONCONTROLLERS):
        if not objects.is_terminating(controller):
            decided = plan_replication(controller, cluster.owned(kube.PODS, controller))
            await _apply(cluster, controller, decided, kube.REPLICATIONCONTROLLERS, replication_events)
    name, labels = machine.node_name(), machine.labels()
    for daemonset in cluster.list(kube.DAEMONSETS):
        if not objects.is_terminating(daemonset):
            decided = plan_daemonset(daemonset, cluster.owned(kube.PODS, daemonset), node_name=name, node_labels=labels)
            await _apply(cluster, daemonset, decided, kube.DAEMONSETS, daemonset_events)

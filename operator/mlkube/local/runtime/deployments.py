"""The Deployment controller (apps/v1): replicas, rolling replacement, status.

Owns the decision of which pods a Deployment needs (:func:`plan`, pure) and its application.
Pods are owned by the Deployment directly (no ReplicaSet objects: the embedded API server
need not serve them); each carries the ``pod-template-hash`` of the template it was made
from, which is how old and new revisions are told apart. ``RollingUpdate`` follows the
upstream arithmetic (``maxSurge`` rounded up, ``maxUnavailable`` rounded down, 25% each by
default): new pods are added within the surge, old pods removed only while the available
count stays at ``replicas - maxUnavailable``. ``Recreate`` removes every old pod first.
Crashed containers are restarted by the kubelet, not here.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import math

from mlkube.local.runtime import events, kube, objects, store

HASH_LABEL = "pod-template-hash"


@dataclasses.dataclass
class Plan:
    status: dict
    create: list[dict] = dataclasses.field(default_factory=list)
    delete: list[dict] = dataclasses.field(default_factory=list)


def scaled(value: int | str | None, replicas: int, *, default: str, round_up: bool) -> int:
    """An int-or-percent field (``maxSurge``/``maxUnavailable``) as a pod count."""
    value = default if value is None else value
    if isinstance(value, str) and value.endswith("%"):
        exact = int(value[:-1]) * replicas / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value)


def pod_for(deployment: dict, template_hash: str) -> dict:
    meta, template = deployment["metadata"], copy.deepcopy(deployment["spec"]["template"])
    template_meta = template.get("metadata") or {}
    labels = {**(template_meta.get("labels") or {}), HASH_LABEL: template_hash}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": f"{meta['name']}-{template_hash}-",
            "namespace": meta.get("namespace") or "default",
            "labels": labels,
            "annotations": dict(template_meta.get("annotations") or {}),
            "ownerReferences": [objects.owner_reference(deployment)],
        },
        "spec": template["spec"],
    }


def _ready(pod: dict) -> bool:
    return objects.is_true(pod, "Ready")


def _by_readiness(pods: list[dict]) -> list[dict]:
    """Unready pods first, then the newest: the order in which pods are given up."""
    newest_first = sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True)
    return sorted(newest_first, key=_ready)


def plan(deployment: dict, pods: list[dict], *, now: datetime.datetime) -> Plan:
    """The pods to create and delete, and the status, of ``deployment`` at ``now``."""
    spec, meta = deployment["spec"], deployment["metadata"]
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    replicas = spec.get("replicas", 1)
    current_hash = objects.template_hash(spec["template"])
    live = [p for p in pods if not objects.is_terminating(p)]
    finished = [p for p in live if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed")]
    live = [p for p in live if p not in finished]
    new = [p for p in live if (p["metadata"].get("labels") or {}).get(HASH_LABEL) == current_hash]
    old = [p for p in live if p not in new]
    result = Plan(status={}, delete=list(finished))

    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        result.delete += old
        if not old and not any(objects.is_terminating(p) for p in pods):
            result.create = [pod_for(deployment, current_hash) for _ in range(replicas - len(new))]
        surplus = _by_readiness(new)[: max(len(new) - replicas, 0)]
        result.delete += surplus
        unavailable_allowed = replicas
    else:
        rolling = strategy.get("rollingUpdate") or {}
        surge = scaled(rolling.get("maxSurge"), replicas, default="25%", round_up=True)
        unavailable_allowed = scaled(rolling.get("maxUnavailable"), replicas, default="25%", round_up=False)
        if surge == 0 and unavailable_allowed == 0:
            unavailable_allowed = 1
        total = len(new) + len(old)
        room = replicas + surge - total
        result.create = [pod_for(deployment, current_hash) for _ in range(max(0, min(replicas - len(new), room)))]
        if len(new) > replicas:
            result.delete += _by_readiness(new)[: len(new) - replicas]
        new_unavailable = sum(not _ready(p) for p in new)
        budget = total - (replicas - unavailable_allowed) - new_unavailable
        for pod in _by_readiness(old):
            if budget <= 0:
                break
            result.delete.append(pod)
            budget -= 1

    ready = sum(_ready(p) for p in live)
    available = ready
    counts = {
        "observedGeneration": meta.get("generation", 1),
        "replicas": len(live),
        "updatedReplicas": len(new),
        "readyReplicas": ready,
        "availableReplicas": available,
        "unavailableReplicas": max(replicas - available, 0),
    }
    complete = len(new) == replicas and len(live) == replicas and sum(map(_ready, new)) == replicas
    has_minimum = available >= replicas - unavailable_allowed
    previous = deployment.get("status") or {}
    result.status = {
        **counts,
        "conditions": [
            objects.condition(
                "Available",
                has_minimum,
                "MinimumReplicasAvailable" if has_minimum else "MinimumReplicasUnavailable",
                "Deployment has minimum availability." if has_minimum else "Deployment does not have minimum availability.",
                previous=previous.get("conditions"),
                at=stamp,
            ),
            _progressing(
                deployment,
                f"{meta['name']}-{current_hash}",
                complete=complete,
                moved=any(previous.get(k, 0) != v for k, v in counts.items()),
                now=now,
            ),
        ],
    }
    return result


def _progressing(deployment: dict, revision: str, *, complete: bool, moved: bool, now: datetime.datetime) -> dict:
    """The ``Progressing`` condition: its ``lastUpdateTime`` moves with any change of the
    replica counts, and a rollout that has not moved for ``progressDeadlineSeconds``
    (600 by default) is reported as ``ProgressDeadlineExceeded``."""
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    previous = objects.find_condition(deployment, "Progressing") or {}
    updated = stamp if moved or not previous else previous.get("lastUpdateTime", stamp)
    deadline = deployment["spec"].get("progressDeadlineSeconds", 600)
    stalled = not complete and (now - objects.parse_time(updated)).total_seconds() >= deadline
    if complete:
        reason, state = "NewReplicaSetAvailable", "has successfully progressed"
    elif stalled:
        reason, state = "ProgressDeadlineExceeded", "has timed out progressing"
    else:
        reason, state = "ReplicaSetUpdated", "is progressing"
    message = f'ReplicaSet "{revision}" {state}.'
    condition = objects.condition(
        "Progressing", not stalled, reason, message, previous=deployment.get("status", {}).get("conditions"), at=stamp
    )
    condition["lastUpdateTime"] = updated
    return condition


async def sync(cluster: store.Store, recorder: events.Recorder) -> None:
    """Reconcile every Deployment in the cluster."""
    for deployment in cluster.list(kube.DEPLOYMENTS):
        if objects.is_terminating(deployment):
            continue
        decided = plan(deployment, cluster.owned(kube.PODS, deployment), now=datetime.datetime.now(datetime.UTC))
        for pod in decided.delete:
            await cluster.delete(kube.PODS, pod)
            recorder.record(deployment, "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}")
        for pod in decided.create:
            created = await cluster.create(kube.PODS, pod)
            recorder.record(deployment, "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")
        await cluster.write_status(kube.DEPLOYMENTS, deployment, decided.status)

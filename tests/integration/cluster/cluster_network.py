"""NetworkPolicy semantics, offline: which pods a policy selects and which connections pass.

Owns the rules of networking.k8s.io/v1 as the Kubernetes documentation states them: a pod
selected by a policy listing Ingress (Egress) in ``policyTypes`` is isolated in that direction
and admits only what some rule of some selecting policy allows (policies add up; there is no
deny); a connection needs the source's egress and the target's ingress. In a peer, a
``podSelector`` alone means pods of the policy's namespace, a ``namespaceSelector`` alone every
pod of the matching namespaces, both together the matching pods of the matching namespaces; an
``ipBlock`` matches addresses (here also a pod's own address, the stricter reading). Namespaces
carry ``kubernetes.io/metadata.name``. Traffic from a pod's own node (kubelet probes) is always
allowed and is not modelled. A named port is the receiving pod's container port of that name.
Must not talk to a cluster.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    labels: Mapping[str, str]
    ip: str
    ports: Mapping[str, int] = dataclasses.field(default_factory=dict)  # named container ports

    @property
    def namespace_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace}


Endpoint = Pod | str  # a pod, or an address outside the cluster's pods


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A LabelSelector's verdict on ``labels`` (an empty selector selects everything)."""
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        verdict = {
            "In": present and labels[key] in values,
            "NotIn": not present or labels[key] not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }[operator]
        if not verdict:
            return False
    return True


def selected_by(policy: dict[str, Any], pod: Pod) -> bool:
    return policy["metadata"]["namespace"] == pod.namespace and selects(policy["spec"]["podSelector"], pod.labels)


def _types(policy: dict[str, Any]) -> list[str]:
    spec = policy["spec"]
    return spec.get("policyTypes") or ["Ingress"] + (["Egress"] if spec.get("egress") else [])


def _isolating(policies: list[dict[str, Any]], pod: Pod, direction: str) -> list[dict[str, Any]]:
    return [p for p in policies if selected_by(p, pod) and direction in _types(p)]


def _address_in(block: Mapping[str, Any], address: str) -> bool:
    ip = ipaddress.ip_address(address)
    network = ipaddress.ip_network(block["cidr"])
    if ip.version != network.version or ip not in network:
        return False
    return not any(
        ip in ipaddress.ip_network(e) for e in block.get("except", []) if ipaddress.ip_network(e).version == ip.version
    )


def _peer_matches(peer: Mapping[str, Any], policy_namespace: str, other: Endpoint) -> bool:
    if "ipBlock" in peer:
        return _address_in(peer["ipBlock"], other.ip if isinstance(other, Pod) else other)
    if not isinstance(other, Pod):
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], other.namespace_labels):
            return False
    elif other.namespace != policy_namespace:
        return False
    return selects(peer.get("podSelector") or {}, other.labels)


def _port_matches(ports: list[Mapping[str, Any]] | None, port: int, protocol: str, receiver: Endpoint) -> bool:
    if not ports:
        return True
    named = receiver.ports if isinstance(receiver, Pod) else {}
    for entry in ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        low = entry.get("port")
        if isinstance(low, str):
            low = named.get(low, -1)
        if low is None or low <= port <= entry.get("endPort", low):
            return True
    return False


def _admits(policies: list[dict[str, Any]], pod: Pod, other: Endpoint, port: int, protocol: str, direction: str) -> bool:
    isolating = _isolating(policies, pod, direction)
    if not isolating:
        return True
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for policy in isolating:
        for rule in policy["spec"].get(key) or []:
            peers = rule.get(peers_key)
            peer_ok = not peers or any(_peer_matches(p, policy["metadata"]["namespace"], other) for p in peers)
            receiver = pod if direction == "Ingress" else other
            if peer_ok and _port_matches(rule.get("ports"), port, protocol, receiver):
                return True
    return False


def connects(policies: list[dict[str, Any]], source: Endpoint, target: Endpoint, port: int, *, protocol: str = "TCP") -> bool:
    """Whether ``source`` may open a connection to ``target``:``port`` under ``policies``."""
    egress = not isinstance(source, Pod) or _admits(policies, source, target, port, protocol, "Egress")
    ingress = not isinstance(target, Pod) or _admits(policies, target, source, port, protocol, "Ingress")
    return egress and ingress

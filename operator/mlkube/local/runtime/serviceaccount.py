"""The in-cluster identity of a local pod: what the kubelet mounts for a ServiceAccount.

On a cluster the kubelet projects ``token``, ``ca.crt`` and ``namespace`` into
``/var/run/secrets/kubernetes.io/serviceaccount`` and sets ``KUBERNETES_SERVICE_HOST`` and
``KUBERNETES_SERVICE_PORT``, so a client inside the pod (``load_incluster_config``) reaches
the API server. Here the same three files go under the container's root (read through
``mlkube.common.containerpath``) with the runtime's own bearer token and the embedded server's CA,
and the variables point at the server's loopback address.

Owns writing those files and naming those variables. Must not decide which pods get them
beyond ``automountServiceAccountToken``, nor talk to the API server.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import urllib.parse

from mlkube.local.runtime import kube

MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"


@dataclasses.dataclass(frozen=True)
class Identity:
    """What a pod needs to reach the API server: its address, a bearer token and the CA (PEM)."""

    server: str
    token: str
    ca_pem: bytes


def identity(credentials: kube.Credentials) -> Identity | None:
    """The identity the runtime lends its pods: its own token and CA (None without either)."""
    if not credentials.token or not credentials.ca_pem:
        return None
    return Identity(server=credentials.server, token=credentials.token, ca_pem=credentials.ca_pem)


def wants_token(pod: dict) -> bool:
    """The kubelet's rule as far as the pod says: mount unless ``automountServiceAccountToken`` is false."""
    return (pod.get("spec") or {}).get("automountServiceAccountToken") is not False


def mount(pod: dict, root: pathlib.Path, identity: Identity | None) -> dict[str, str]:
    """Write the service-account files under the container ``root``; return the variables to set.

    Nothing is written (and ``{}`` returned) when the pod opts out or the runtime has no token.
    """
    if identity is None or not wants_token(pod):
        return {}
    address = urllib.parse.urlsplit(identity.server)
    if not address.hostname or not address.port:
        raise ValueError(f"API server address {identity.server!r} has no host and port")
    directory = root / pathlib.PurePosixPath(MOUNT_PATH).relative_to("/")
    directory.mkdir(parents=True, exist_ok=True)
    namespace = pod["metadata"].get("namespace") or "default"
    for name, content in (("token", identity.token.encode()), ("ca.crt", identity.ca_pem), ("namespace", namespace.encode())):
        _private_write(directory / name, content)
    return {
        "KUBERNETES_SERVICE_HOST": address.hostname,
        "KUBERNETES_SERVICE_PORT": str(address.port),
        "KUBERNETES_SERVICE_PORT_HTTPS": str(address.port),
    }


def _private_write(path: pathlib.Path, content: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)

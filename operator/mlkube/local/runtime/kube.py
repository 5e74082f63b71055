"""The runtime's only connection to the API server: a small async REST client.

Owns the kubeconfig reading, the HTTP session, the resource paths and the mapping of API
errors to :class:`APIError` (with ``NotFound`` and ``Conflict`` refinements). Everything else
in the runtime takes and returns plain dicts. Must not hold any cache or decide anything.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import yaml


@dataclasses.dataclass(frozen=True)
class Resource:
    """One API resource type, e.g. ``Resource("batch", "v1", "jobs")``."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, sub: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if sub:
            base += f"/{sub}"
        return base


PODS = Resource("", "v1", "pods")
SERVICES = Resource("", "v1", "services")
ENDPOINTS = Resource("", "v1", "endpoints")
CONFIGMAPS = Resource("", "v1", "configmaps")
SECRETS = Resource("", "v1", "secrets")
SERVICEACCOUNTS = Resource("", "v1", "serviceaccounts")
EVENTS = Resource("", "v1", "events")
JOBS = Resource("batch", "v1", "jobs")
DEPLOYMENTS = Resource("apps", "v1", "deployments")
DAEMONSETS = Resource("apps", "v1", "daemonsets")
REPLICATIONCONTROLLERS = Resource("", "v1", "replicationcontrollers")
NODES = Resource("", "v1", "nodes", namespaced=False)
NAMESPACES = Resource("", "v1", "namespaces", namespaced=False)
INFERENCESERVICES = Resource("serving.kserve.io", "v1beta1", "inferenceservices")
SERVINGRUNTIMES = Resource("serving.kserve.io", "v1alpha1", "servingruntimes")
CLUSTERSERVINGRUNTIMES = Resource("serving.kserve.io", "v1alpha1", "clusterservingruntimes", namespaced=False)


class APIError(Exception):
    """A failed API call; ``code`` is the HTTP status, ``reason`` the Status reason."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason


class NotFound(APIError):
    pass


class Conflict(APIError):
    pass


class Gone(APIError):
    """The watch's resourceVersion is too old: list again."""


class Unavailable(APIError):
    """The API server could not be reached or did not answer in time."""


@dataclasses.dataclass(frozen=True)
class Credentials:
    server: str
    token: str | None = None
    ssl_context: ssl.SSLContext | bool | None = None
    ca_pem: bytes | None = None  # the cluster's CA, handed to pods as their ca.crt


def credentials(kubeconfig_path: str) -> Credentials:
    """Server and bearer token of the kubeconfig's current context."""
    with open(kubeconfig_path, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    try:
        contexts = {c["name"]: c["context"] for c in config["contexts"]}
        context = contexts[config.get("current-context") or next(iter(contexts))]
        cluster = {c["name"]: c["cluster"] for c in config["clusters"]}[context["cluster"]]
        users = {u["name"]: u.get("user") or {} for u in config.get("users") or []}
        user = users.get(context.get("user"), {})
    except (KeyError, TypeError, StopIteration) as e:
        raise ValueError(f"{kubeconfig_path}: no usable current context ({e!r})") from e
    return Credentials(
        server=cluster["server"].rstrip("/"),
        token=user.get("token"),
        ssl_context=_ssl_context(cluster, user),
        ca_pem=_ca_pem(cluster),
    )


def _ca_pem(cluster: dict) -> bytes | None:
    if cluster.get("certificate-authority-data"):
        return base64.b64decode(cluster["certificate-authority-data"])
    if cluster.get("certificate-authority"):
        with open(cluster["certificate-authority"], "rb") as f:
            return f.read()
    return None


def _ssl_context(cluster: dict, user: dict) -> ssl.SSLContext | bool | None:
    """TLS settings of a kubeconfig cluster: its CA (inline or file), client certificate."""
    if cluster.get("insecure-skip-tls-verify"):
        return False
    authority = cluster.get("certificate-authority-data")
    authority_file = cluster.get("certificate-authority")
    if not (authority or authority_file or user.get("client-certificate")):
        return None
    context = ssl.create_default_context(
        cafile=authority_file, cadata=base64.b64decode(authority).decode() if authority else None
    )
    if user.get("client-certificate") and user.get("client-key"):
        context.load_cert_chain(user["client-certificate"], user["client-key"])
    return context


class Client:
    """Async REST calls against one API server. Use as ``async with Client(path) as c``."""

    def __init__(self, kubeconfig_path: str) -> None:
        self._credentials = credentials(kubeconfig_path)
        self._session: aiohttp.ClientSession | None = None

    @property
    def credentials(self) -> Credentials:
        return self._credentials

    async def __aenter__(self) -> Client:
        headers = {"Accept": "application/json", "User-Agent": "mlkube-local-runtime"}
        if self._credentials.token:
            headers["Authorization"] = f"Bearer {self._credentials.token}"
        self._session = aiohttp.ClientSession(
            base_url=self._credentials.server,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def _call(
        self, method: str, path: str, *, body: Any = None, content_type: str = "application/json", **params: Any
    ) -> dict:
        assert self._session is not None, "use Client as an async context manager"
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if body is not None else {}
        query = {k: str(v) for k, v in params.items() if v is not None}
        try:
            async with self._session.request(
                method,
                path,
                data=data,
                headers=headers,
                params=query,
                ssl=self._credentials.ssl_context,
                timeout=aiohttp.ClientTimeout(total=30),
            ) as response:
                text = await response.text()
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            raise Unavailable(0, "Unavailable", f"{method} {path}: {e!r}") from e
        payload = json.loads(text) if text else {}
        if response.status >= 400:
            raise _error(response.status, payload, f"{method} {path}")
        return payload

    async def get(self, resource: Resource, namespace: str | None, name: str) -> dict:
        return await self._call("GET", resource.path(namespace, name))

    async def list(self, resource: Resource, namespace: str | None = None, **params: Any) -> dict:
        return await self._call("GET", resource.path(namespace), **params)

    async def create(self, resource: Resource, namespace: str | None, body: dict) -> dict:
        return await self._call("POST", resource.path(namespace), body=body)

    async def patch(self, resource: Resource, namespace: str | None, name: str, body: dict, *, sub: str = "") -> dict:
        """JSON merge patch (RFC 7386) of the object or of its ``sub`` subresource."""
        return await self._call(
            "PATCH", resource.path(namespace, name, sub), body=body, content_type="application/merge-patch+json"
        )

    async def delete(
        self, resource: Resource, namespace: str | None, name: str, *, grace_seconds: int | None = None, uid: str | None = None
    ) -> dict:
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        if grace_seconds is not None:
            options["gracePeriodSeconds"] = grace_seconds
        if uid is not None:
            options["preconditions"] = {"uid": uid}
        return await self._call("DELETE", resource.path(namespace, name), body=options)

    async def watch(self, resource: Resource, resource_version: str) -> AsyncIterator[dict]:
        """Yield watch events from ``resource_version`` until the server ends the stream.

        Raises :class:`Gone` on a 410 ERROR event (the caller lists again).
        """
        assert self._session is not None, "use Client as an async context manager"
        params = {"watch": "true", "allowWatchBookmarks": "true", "resourceVersion": resource_version, "timeoutSeconds": "300"}
        # The server sends a bookmark at least every minute: a longer silence is a dead peer.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120)
        async with self._session.get(
            resource.path(), params=params, timeout=timeout, ssl=self._credentials.ssl_context
        ) as response:
            if response.status >= 400:
                raise _error(response.status, await _json_or_empty(response), "watch")
            async for line in response.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    raise _error(int(status.get("code") or 500), status, "watch")
                yield event


async def _json_or_empty(response: aiohttp.ClientResponse) -> dict:
    try:
        return await response.json(content_type=None)
    except (TimeoutError, ValueError, aiohttp.ContentTypeError):
        return {}


def _error(code: int, status: dict, what: str) -> APIError:
    reason = str(status.get("reason") or "Unknown")
    message = f"{what}: {status.get('message') or status}"
    kind = {404: NotFound, 409: Conflict, 410: Gone}.get(code, APIError)
    return kind(code, reason, message)

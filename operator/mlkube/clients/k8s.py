"""The only module that talks to the Kubernetes API.

A small asynchronous client over aiohttp: get, list, server-side apply, create, status patch,
delete and pod logs, for the handful of resources the operator manages. Credentials come
from the kubeconfig (``KUBECONFIG`` or ``~/.kube/config``) or, inside a pod, from the
service account, through the official client's loaders. API errors are mapped here, once, to
:class:`ApiError` and its subclasses; callers never see HTTP.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import pathlib
import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from mlkube.api import base, kinds
from mlkube.common import timestamps

FIELD_MANAGER = "mlkube"
SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


@dataclasses.dataclass(frozen=True)
class Resource:
    """A resource type of the API: where its objects live."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if subresource:
            base += f"/{subresource}"
        return base


def of_kind(kind: kinds.Kind) -> Resource:
    """The resource of one of our kinds, from its single definition in ``api.kinds``."""
    return Resource(base.GROUP, base.VERSION, kind.plural, kind.kind)


MLPROJECTS = of_kind(kinds.MLPROJECT)
TRAININGJOBS = of_kind(kinds.TRAININGJOB)
MODELVERSIONS = of_kind(kinds.MODELVERSION)
MODELDEPLOYMENTS = of_kind(kinds.MODELDEPLOYMENT)
DRIFTMONITORS = of_kind(kinds.DRIFTMONITOR)
BATCHPREDICTIONS = of_kind(kinds.BATCHPREDICTION)
EVENTS = Resource("", "v1", "events", "Event")
NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
PODS = Resource("", "v1", "pods", "Pod")
SERVICES = Resource("", "v1", "services", "Service")
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap")
SECRETS = Resource("", "v1", "secrets", "Secret")
SERVICEACCOUNTS = Resource("", "v1", "serviceaccounts", "ServiceAccount")
JOBS = Resource("batch", "v1", "jobs", "Job")
DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployment")
ROLES = Resource("rbac.authorization.k8s.io", "v1", "roles", "Role")
ROLEBINDINGS = Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding")
INFERENCESERVICES = Resource("serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService")
HORIZONTALPODAUTOSCALERS = Resource("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler")

_BY_KIND = {
    (r.api_version, r.kind): r
    for r in (
        MLPROJECTS,
        TRAININGJOBS,
        MODELVERSIONS,
        MODELDEPLOYMENTS,
        DRIFTMONITORS,
        BATCHPREDICTIONS,
        EVENTS,
        NAMESPACES,
        PODS,
        SERVICES,
        CONFIGMAPS,
        SECRETS,
        SERVICEACCOUNTS,
        JOBS,
        DEPLOYMENTS,
        ROLES,
        ROLEBINDINGS,
        INFERENCESERVICES,
        HORIZONTALPODAUTOSCALERS,
    )
}


def resource_of(obj: dict[str, Any]) -> Resource:
    """The resource type of a manifest, from its apiVersion and kind."""
    try:
        return _BY_KIND[obj["apiVersion"], obj["kind"]]
    except KeyError:
        raise ValueError(f"mlkube does not manage {obj.get('apiVersion')}/{obj.get('kind')}") from None


class ApiError(Exception):
    """The API refused a request. ``status`` is the HTTP code, ``reason`` the Status reason."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


class NotFound(ApiError):
    """404: the object (or its namespace) does not exist."""


class Conflict(ApiError):
    """409: the object changed meanwhile, or already exists."""


class Invalid(ApiError):
    """422: the object failed validation."""


_ERRORS = {404: NotFound, 409: Conflict, 422: Invalid}


@dataclasses.dataclass(frozen=True)
class Credentials:
    """How to reach the API server: shared by our client and Kopf's (see controllers.setup)."""

    server: str
    token: str | None = None
    ca_path: str | None = None
    cert_path: str | None = None
    key_path: str | None = None
    insecure: bool = False

    @classmethod
    def load(cls, kubeconfig: str | None = None, *, context: str | None = None) -> Credentials:
        """From a kubeconfig file, ``KUBECONFIG``, ``~/.kube/config``, or the in-cluster service
        account; ``context`` picks a kubeconfig context other than the current one."""
        from kubernetes import client, config  # loaded once at start-up; the loaders handle every auth form

        configuration = client.Configuration()
        try:
            config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
        except config.ConfigException:
            if kubeconfig or context:
                raise
            config.load_incluster_config(client_configuration=configuration)
        token = configuration.api_key.get("authorization") or configuration.api_key.get("BearerToken")
        return cls(
            server=configuration.host.rstrip("/"),
            token=token.removeprefix("Bearer ") if token else None,
            ca_path=configuration.ssl_ca_cert,
            cert_path=configuration.cert_file,
            key_path=configuration.key_file,
            insecure=not configuration.verify_ssl,
        )

    @property
    def headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "mlkube-operator"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not self.server.startswith("https"):
            return False
        context = ssl.create_default_context(cafile=self.ca_path)
        if self.cert_path:
            context.load_cert_chain(self.cert_path, self.key_path)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


def default_namespace(kubeconfig: str | None = None, *, context: str | None = None) -> str:
    """The namespace kubectl would use: the kubeconfig context's, inside a pod its own, else ``default``."""
    from kubernetes import config

    try:
        contexts, current = config.list_kube_config_contexts(config_file=kubeconfig)
    except config.ConfigException:
        if kubeconfig or context:
            raise
        try:
            return pathlib.Path(SERVICE_ACCOUNT_NAMESPACE).read_text().strip() or "default"
        except OSError:
            return "default"
    chosen = next((c for c in contexts if c["name"] == context), None) if context else current
    if chosen is None:
        raise config.ConfigException(f"context {context!r} is not in the kubeconfig")
    return (chosen.get("context") or {}).get("namespace") or "default"


class Client:
    """An asynchronous API client bound to one event loop."""

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._credentials.ssl_context(), limit=32)
            self._session = aiohttp.ClientSession(
                base_url=self._credentials.server,
                headers=self._credentials.headers,
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=60),
            )
        return self._session

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        text: bool = False,
    ) -> Any:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else None
        for attempt in range(5):
            try:
                async with self._http().request(method, path, params=params, data=data, headers=headers) as response:
                    payload = await response.text()
                    if response.status < 300:
                        return payload if text else json.loads(payload)
                    if response.status in (429, 500, 502, 503, 504) and attempt < 4:
                        await asyncio.sleep(0.2 * 2**attempt)
                        continue
                    raise _error(response.status, payload)
            except aiohttp.ClientConnectionError:
                if attempt == 4:
                    raise
                await asyncio.sleep(0.2 * 2**attempt)
        raise AssertionError("unreachable")

    async def get(self, resource: Resource, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return await self._request("GET", resource.path(namespace, name))
        except NotFound:
            return None

    async def list(
        self, resource: Resource, namespace: str | None = None, *, labels: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """Objects of a type, optionally in one namespace and matching labels."""
        params = {"labelSelector": ",".join(f"{k}={v}" for k, v in labels.items())} if labels else None
        result = await self._request("GET", resource.path(namespace), params=params)
        return result.get("items", [])

    async def snapshot(self, resource: Resource, namespace: str | None = None) -> tuple[list[dict[str, Any]], str]:
        """Objects of a type and the list's resourceVersion, the point a ``watch`` resumes from."""
        result = await self._request("GET", resource.path(namespace))
        return result.get("items", []), (result.get("metadata") or {}).get("resourceVersion", "")

    async def watch(
        self, resource: Resource, namespace: str | None, *, resource_version: str, timeout: int = 300
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """The changes after ``resource_version`` as (type, object): ADDED, MODIFIED, DELETED,
        BOOKMARK (only its resourceVersion is meaningful) and ERROR (a Status; 410 Expired means
        list again). Ends when the server closes the stream, after about ``timeout`` seconds."""
        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout),
        }
        limits = aiohttp.ClientTimeout(total=None, sock_read=timeout + 30)
        async with self._http().get(resource.path(namespace), params=params, timeout=limits) as response:
            if response.status >= 300:
                raise _error(response.status, await response.text())
            pending = b""
            async for chunk in response.content.iter_any():  # lines of any length (readline stops at 64 KiB)
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for line in complete:
                    if line.strip():
                        event = json.loads(line)
                        yield event.get("type", ""), event.get("object") or {}

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply of a whole desired object under mlkube's field manager."""
        resource = resource_of(obj)
        meta = obj["metadata"]
        return await self._request(
            "PATCH",
            resource.path(meta.get("namespace"), meta["name"]),
            params={"fieldManager": FIELD_MANAGER, "force": "true"},
            body=obj,
            content_type="application/apply-patch+yaml",
        )

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create; raises Conflict when it already exists."""
        resource = resource_of(obj)
        return await self._request(
            "POST", resource.path(obj["metadata"].get("namespace")), params={"fieldManager": FIELD_MANAGER}, body=obj
        )

    async def patch_status(
        self, resource: Resource, name: str, namespace: str | None, status: dict[str, Any], *, resource_version: str | None = None
    ) -> dict[str, Any]:
        """Merge-patch the status subresource; with ``resource_version`` it fails with Conflict if the object changed."""
        body: dict[str, Any] = {"status": status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        return await self._request(
            "PATCH",
            resource.path(namespace, name, "status"),
            body=body,
            params={"fieldManager": FIELD_MANAGER},
            content_type="application/merge-patch+json",
        )

    async def patch(
        self, resource: Resource, name: str, namespace: str | None, patch: dict[str, Any], *, field_manager: str = FIELD_MANAGER
    ) -> dict[str, Any]:
        """Merge-patch the main resource (metadata such as labels and annotations); ``field_manager``
        names the writer in managedFields (a person's tool writes under its own name)."""
        return await self._request(
            "PATCH",
            resource.path(namespace, name),
            body=patch,
            params={"fieldManager": field_manager},
            content_type="application/merge-patch+json",
        )

    async def delete(
        self, resource: Resource, name: str, namespace: str | None = None, *, propagation: str = "Background"
    ) -> bool:
        """Delete; False when it was already gone."""
        try:
            await self._request("DELETE", resource.path(namespace, name), body={"propagationPolicy": propagation})
            return True
        except NotFound:
            return False

    async def post_event(self, obj: dict[str, Any], *, type_: str, reason: str, message: str) -> None:
        """Post a core/v1 Event about ``obj`` (what ``kubectl describe`` and ``kubectl events`` show).

        Best effort, as Kopf's and client-go's recorders are: an Event that cannot be posted is
        dropped rather than failing the pass that already wrote its status.
        """
        meta = obj["metadata"]
        stamp = timestamps.format(timestamps.now())
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta.get("namespace") or "default"},
            "involvedObject": {
                "apiVersion": obj["apiVersion"],
                "kind": obj["kind"],
                "name": meta["name"],
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
            },
            "reason": reason,
            "message": message[:1024],
            "type": type_,
            "source": {"component": "mlkube"},
            "reportingComponent": "mlkube",
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            await self._request("POST", EVENTS.path(event["metadata"]["namespace"]), body=event)
        except (ApiError, aiohttp.ClientError):
            pass

    async def read_log(self, pod: str, namespace: str, *, container: str | None = None, tail_lines: int | None = None) -> str:
        """The text of a pod's log ("" when there is none yet)."""
        params = {}
        if container:
            params["container"] = container
        if tail_lines:
            params["tailLines"] = str(tail_lines)
        try:
            return await self._request("GET", PODS.path(namespace, pod, "log"), params=params, text=True)
        except (NotFound, ApiError) as error:
            if isinstance(error, NotFound) or error.status == 400:
                return ""
            raise


def _error(status: int, payload: str) -> ApiError:
    try:
        body = json.loads(payload)
        reason, message = body.get("reason", ""), body.get("message", payload)
    except ValueError:
        reason, message = "", payload
    return _ERRORS.get(status, ApiError)(status, reason, message)

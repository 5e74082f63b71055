"""The embedded API server: the aiohttp application, routing, auth, startup and shutdown.

Owns the process-level lifecycle (the state directory's exclusive lock, store, registry reload
of CRDs, seeded namespaces, the report of quarantined rows, garbage collector, kubeconfig written
after listening), the bearer-token check, the request size limit, errors rendered as Status, the
durability barrier (no response leaves before the writes it reflects are on disk), the
discovery/OpenAPI/version routes, and the helpers other code uses to run it (`APIServer`,
`run_in_thread`, `install_crds`). Must not hold resource semantics.

Local mode stores Secrets unencrypted in the state directory (state.db, 0600 in a 0700 directory).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Iterable
from typing import Any

import yaml
from aiohttp import web

from mlkube.local.apiserver import (
    authorization,
    collector,
    crds,
    discovery,
    endpoints,
    errors,
    kubeconfig,
    limits,
    logs,
    objects,
    openapi,
    registry,
    reviews,
    statedir,
    storage,
    tls,
    watch,
)

logger = logging.getLogger(__name__)
OPEN_PATHS = ("/healthz", "/readyz", "/livez")
SEED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-mlkube",
    "gitCommit": "mlkube-embedded",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.23 (emulated by Python)",
    "compiler": "gc",
    "platform": "linux/amd64",
}


class APIServer:
    """One embedded API server on 127.0.0.1, persisted under `state_dir`."""

    def __init__(
        self,
        state_dir: str,
        *,
        port: int = 0,
        history: int = storage.DEFAULT_HISTORY,
        history_bytes: int = storage.DEFAULT_HISTORY_BYTES,
        bookmark_interval: float = 15.0,
    ) -> None:
        self.state_dir = os.path.abspath(state_dir)
        self._port = port
        self.store = storage.Store(os.path.join(self.state_dir, "state.db"), history=history, history_bytes=history_bytes)
        self.registry = registry.Registry()
        self.objects = objects.Objects(self.store, self.registry)
        self.watches = watch.Watches(self.store, self.objects, bookmark_interval=bookmark_interval)
        self.collector = collector.Collector(self.objects)
        self.documents = openapi.Documents(self.registry)
        self.token = ""
        self.url = ""
        self.kubeconfig_path = os.path.join(self.state_dir, kubeconfig.KUBECONFIG_FILE)
        self.ca_path = tls.ca_path(self.state_dir)
        self._runner: web.AppRunner | None = None
        self._collector_task: asyncio.Task | None = None
        self._lock: statedir.Lock | None = None

    async def start(self) -> None:
        """Lock the state directory (statedir.Locked if another server has it), load it, listen, write the kubeconfig.

        storage.Unreadable when state.db is not a database; unreadable rows are quarantined and reported.
        """
        kubeconfig.ensure_state_dir(self.state_dir)
        self._lock = statedir.lock(self.state_dir)
        try:
            await self._start_locked()
        except BaseException:
            await self.stop()  # a failed start leaves nothing held: the lock, the database, the port
            raise

    async def _start_locked(self) -> None:
        self.token = kubeconfig.load_or_create_token(self.state_dir)
        tls.ensure(self.state_dir)
        self.store.open()
        for crd in self.store.list("apiextensions.k8s.io/customresourcedefinitions"):
            try:
                self.registry.set_crd(crd["metadata"]["name"], crds.resource_types(crd))
            except Exception:
                logger.exception("stored CRD %s cannot be served; fix or delete it", crd["metadata"]["name"])
        self._seed_namespaces()
        self._report_quarantine()
        await self.store.sync()
        self.store.subscribe(self.collector.notify)
        self._collector_task = asyncio.get_running_loop().create_task(self.collector.run())
        self._runner = web.AppRunner(self._application(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port, ssl_context=tls.server_context(self.state_dir))
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"https://127.0.0.1:{port}"
        kubeconfig.write(self.state_dir, self.url, self.token, ca_data=tls.ca_data(self.state_dir))
        logger.info("API server listening on %s (state in %s)", self.url, self.state_dir)

    async def stop(self) -> None:
        await self.watches.close_all()
        if self._collector_task is not None:
            self._collector_task.cancel()
            await asyncio.gather(self._collector_task, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.store.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _seed_namespaces(self) -> None:
        namespace_type = self.registry.lookup("", "v1", "namespaces")
        for name in SEED_NAMESPACES:
            if self.store.get(namespace_type.storage_key, "", name) is None:
                self.objects.create(
                    namespace_type, "", {"metadata": {"name": name}}, objects.WriteOptions(field_manager="kube-apiserver")
                )

    def _report_quarantine(self) -> None:
        """Log the rows the store quarantined and record a Warning Event in `default` that kubectl shows."""
        if not self.store.quarantined:
            return
        listed = "; ".join(f"{q.key} {q.namespace}/{q.name}: {q.error}" for q in self.store.quarantined)
        message = (
            f"{len(self.store.quarantined)} stored object(s) could not be read and were moved to "
            f"{self.store.quarantine_path}: {listed}"
        )
        logger.warning("%s", message)
        event = {
            "metadata": {"generateName": "mlkube-storage-quarantine-"},
            "involvedObject": {"apiVersion": "v1", "kind": "Namespace", "name": "default"},
            "reason": "StorageQuarantined",
            "message": message[:4000],
            "type": "Warning",
            "source": {"component": "kube-apiserver"},
        }
        self.objects.create(
            self.registry.lookup("", "v1", "events"), "default", event, objects.WriteOptions(field_manager="kube-apiserver")
        )

    # -- HTTP ------------------------------------------------------------------------------

    def _application(self) -> web.Application:
        # aiohttp refuses a body of client_max_size bytes or more; kube-apiserver refuses more than its limit.
        app = web.Application(middlewares=[self._durable, self._errors, self._auth], client_max_size=limits.MAX_REQUEST_BYTES + 1)
        app[logs.OBJECTS] = self.objects
        resources = endpoints.Endpoints(self.store, self.registry, self.objects, self.watches, self.state_dir)
        for path in OPEN_PATHS:
            app.router.add_get(path, _ok)
        app.router.add_get("/version", _version)
        app.router.add_get("/api", self._api)
        app.router.add_get("/apis", self._apis)
        app.router.add_get("/api/{version}", self._resource_list)
        app.router.add_get("/apis/{group}", self._group)
        app.router.add_get("/apis/{group}/{version}", self._resource_list)
        app.router.add_get("/openapi/v2", self._openapi_v2)
        app.router.add_get("/openapi/v3", self._openapi_index)
        app.router.add_get("/openapi/v3/{path:.+}", self._openapi_document)
        reviews.add_routes(app, self.store)
        app.router.add_route("*", "/api/{version}/{tail:.+}", resources.core)
        app.router.add_route("*", "/apis/{group}/{version}/{tail:.+}", resources.grouped)
        return app

    @web.middleware
    async def _durable(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Hold every response until the writes it may reflect are on disk (group commit: see durability.py).

        Streams (watch, logs) are already sent; watch.py waits before each chunk itself.
        """
        response = await handler(request)
        if not response.prepared and self.store.durable_rv < self.store.rv:
            try:
                await self.store.sync()
            except errors.APIError as exc:
                return endpoints.json_response(exc.status(), status=exc.code)
        return response

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path not in OPEN_PATHS:
            scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), self.token.encode()):
                raise errors.unauthorized()
            authorization.authorize(request, self.store)  # 403 for an impersonated identity RBAC does not allow
        return await handler(request)

    @web.middleware
    async def _errors(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)
        except errors.APIError as exc:
            return endpoints.json_response(exc.status(), status=exc.code)
        except web.HTTPException as exc:
            if exc.status == 404:
                return endpoints.json_response(errors.path_not_found().status(), status=404)
            if exc.status == 405:
                return endpoints.json_response(errors.method_not_allowed().status(), status=405)
            if exc.status == 413:
                return endpoints.json_response(errors.request_too_large(limits.MAX_REQUEST_BYTES).status(), status=413)
            raise
        except Exception as exc:
            logger.exception("%s %s failed", request.method, request.path_qs)
            return endpoints.json_response(errors.internal(str(exc)).status(), status=500)

    async def _api(self, request: web.Request) -> web.Response:
        media_type = discovery.wants_aggregated(request.headers.get("Accept", ""))
        if media_type:
            return endpoints.json_response(
                discovery.aggregated(self.registry, core=True, media_type=media_type), content_type=media_type
            )
        return endpoints.json_response(discovery.api_versions(request.host))

    async def _apis(self, request: web.Request) -> web.Response:
        media_type = discovery.wants_aggregated(request.headers.get("Accept", ""))
        if media_type:
            return endpoints.json_response(
                discovery.aggregated(self.registry, core=False, media_type=media_type), content_type=media_type
            )
        return endpoints.json_response(discovery.api_group_list(self.registry))

    async def _group(self, request: web.Request) -> web.Response:
        body = discovery.api_group(self.registry, request.match_info["group"])
        if body is None:
            raise errors.path_not_found()
        return endpoints.json_response(body)

    async def _resource_list(self, request: web.Request) -> web.Response:
        body = discovery.api_resource_list(self.registry, request.match_info.get("group", ""), request.match_info["version"])
        if body is None:
            raise errors.path_not_found()
        return endpoints.json_response(body)

    async def _openapi_v2(self, request: web.Request) -> web.Response:
        accept = request.headers.get("Accept", "")
        if accept and "json" not in accept and "*/*" not in accept:  # kubectl asks for protobuf first: it falls back
            raise errors.APIError(406, "NotAcceptable", "only the following media types are accepted: application/json")
        return web.Response(body=self.documents.v2(), content_type="application/json")

    async def _openapi_index(self, request: web.Request) -> web.Response:
        return endpoints.json_response(self.documents.index())

    async def _openapi_document(self, request: web.Request) -> web.Response:
        document = self.documents.document(request.match_info["path"])
        if document is None:
            raise errors.path_not_found()
        return web.Response(
            body=document,
            content_type="application/json",
            headers={"Cache-Control": "public, immutable" if request.query.get("hash") else "no-cache, private"},
        )


async def _ok(_: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _version(_: web.Request) -> web.Response:
    return endpoints.json_response(VERSION)


class ServerThread:
    """An APIServer running on its own event loop in a daemon thread (for tests and `mlkube local up`)."""

    def __init__(self, state_dir: str, **kwargs: Any) -> None:
        self.server = APIServer(state_dir, **kwargs)
        self.loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mlkube-apiserver", daemon=True)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def token(self) -> str:
        return self.server.token

    @property
    def kubeconfig_path(self) -> str:
        return self.server.kubeconfig_path

    @property
    def ca_path(self) -> str:
        return self.server.ca_path

    def start(self) -> ServerThread:
        self._thread.start()
        self._started.wait()
        if self._failure is not None:
            raise self._failure
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.server.start())
        except BaseException as exc:
            self._failure = exc
            self._started.set()
            return
        self._started.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.server.stop())
        self.loop.close()

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)


def run_in_thread(state_dir: str, **kwargs: Any) -> ServerThread:
    """Start an APIServer in a daemon thread; returns once it listens and the kubeconfig is written."""
    return ServerThread(state_dir, **kwargs).start()


def install_crds(server: Any, token: str | None = None, paths: Iterable[str] = (), *, ca_file: str | None = None) -> list[str]:
    """Create or replace the CRDs in the given YAML files; returns their names.

    `server` is a ServerThread/APIServer, or a base URL (then pass `token` and `ca_file`, the
    state directory's ca.crt).
    """
    url = server if isinstance(server, str) else server.url
    token = token if token is not None else server.token
    context = ssl.create_default_context(cafile=ca_file or server.ca_path)
    names = []
    for path in paths:
        with open(path) as handle:
            documents = [doc for doc in yaml.safe_load_all(handle) if doc]
        for crd in documents:
            if crd.get("kind") != "CustomResourceDefinition":
                raise ValueError(f"{path}: expected only CustomResourceDefinition documents, found {crd.get('kind')}")
            names.append(_create_or_replace(url, token, crd, path, context))
    return names


def _create_or_replace(url: str, token: str, crd: dict[str, Any], path: str, context: ssl.SSLContext) -> str:
    base = f"{url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    name = crd["metadata"]["name"]
    status, body = _request("POST", base, token, context, crd)
    if status == 409:
        _, current = _request("GET", f"{base}/{name}", token, context)
        crd = {**crd, "metadata": {**crd["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]}}
        status, body = _request("PUT", f"{base}/{name}", token, context, crd)
    if status >= 300:
        raise ValueError(f"{path}: CRD {name} was rejected: {body.get('message', body)}")
    return name


def _request(method: str, url: str, token: str, context: ssl.SSLContext, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")

"""HTTP handlers of the resource endpoints: get, list, watch, create, update, patch, delete, deletecollection.

Owns the mapping of HTTP verbs on resource URLs to objects.Objects operations, list pagination
and resourceVersion semantics, Table responses, Warning headers and status codes. Must not hold
semantics of its own: writes go through objects.py, streams through watch.py, logs through logs.py,
exec and port-forward through execstream.py and portforward.py, metrics.k8s.io through metrics.py.
"""

from __future__ import annotations

import base64
import datetime
import json
import logging
from typing import Any

from aiohttp import web

from mlkube.local.apiserver import (
    decoding,
    errors,
    execstream,
    logs,
    metrics,
    objects,
    portforward,
    registry,
    scale,
    storage,
    tables,
    watch,
)

logger = logging.getLogger(__name__)
CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can start "
    "a new list without the continue parameter, or use the continue token in this response to "
    "retrieve the remainder of the results. Continuing with the provided token results in an "
    "inconsistent list - objects that were created, modified, or deleted between the time the first "
    "chunk was returned and now may show up in the list."
)


def _log_warnings(request: web.Request, warnings: list[str]) -> None:
    """Dropped fields usually mean a client bug (e.g. an operator writing a misspelt field): make them visible."""
    if warnings:
        logger.warning(
            "%s %s (%s): %s",
            request.method,
            request.path,
            request.query.get("fieldManager") or request.headers.get("User-Agent", ""),
            "; ".join(warnings),
        )


def json_response(
    body: Any, *, status: int = 200, warnings: list[str] | None = None, content_type: str = "application/json"
) -> web.Response:
    # kube-apiserver's encoder (Go's json.Encoder) ends every body with a newline; clients that compare
    # error bodies as text (the Python client's utils.FailToCreateError) see it.
    response = web.Response(
        body=json.dumps(body, separators=(",", ":")).encode() + b"\n", status=status, content_type=content_type
    )
    for warning in warnings or []:
        response.headers.add("Warning", '299 - "' + warning.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return response


class Endpoints:
    def __init__(
        self, store: storage.Store, types: registry.Registry, objects_: objects.Objects, watches: watch.Watches, state_dir: str
    ) -> None:
        self._store = store
        self._registry = types
        self._objects = objects_
        self._watches = watches
        self._state_dir = state_dir
        self._metrics = metrics.Metrics(store, state_dir)

    async def core(self, request: web.Request) -> web.StreamResponse:
        return await self._dispatch(request, "", request.match_info["version"], request.match_info["tail"])

    async def grouped(self, request: web.Request) -> web.StreamResponse:
        info = request.match_info
        return await self._dispatch(request, info["group"], info["version"], info["tail"])

    async def _dispatch(self, request: web.Request, group: str, version: str, tail: str) -> web.StreamResponse:
        target = decoding.resolve(self._registry, group, version, tail.split("/"))
        if group == metrics.GROUP:
            return json_response(await self._metrics.answer(request, target))
        if target.subresource in ("exec", "portforward") and request.method in ("GET", "POST"):
            pod = self._objects.get(target.rtype, target.namespace, target.name)
            if target.subresource == "exec":
                return await execstream.serve(request, pod, state_dir=self._state_dir)
            return await portforward.serve(request, pod)
        verb = f"{request.method} {'item' if target.name else 'collection'}"
        handler = {
            "GET collection": self._list_or_watch,
            "POST collection": self._create,
            "DELETE collection": self._delete_collection,
            "GET item": self._get,
            "PUT item": self._replace,
            "PATCH item": self._patch,
            "DELETE item": self._delete,
        }.get(verb)
        if handler is None or (target.subresource and request.method == "DELETE"):
            raise errors.method_not_allowed()
        if not target.subresource and _VERBS[verb] not in target.rtype.verbs:
            raise errors.method_not_allowed()  # e.g. listing SelfSubjectAccessReviews, which are create-only
        return await handler(request, target)

    # -- reads -----------------------------------------------------------------------------

    async def _get(self, request: web.Request, target: decoding.Target) -> web.StreamResponse:
        if target.subresource == "log":
            return await logs.serve(
                request, self._objects.get(target.rtype, target.namespace, target.name), state_dir=self._state_dir
            )
        if target.subresource == "finalize":
            raise errors.method_not_allowed()
        obj = self._objects.get(target.rtype, target.namespace, target.name)
        if target.subresource == "scale":
            return json_response(scale.view(obj))
        if decoding.wants_table(request) and not target.subresource:
            return json_response(
                tables.table(
                    target.rtype,
                    [obj],
                    now=_now(),
                    resource_version=obj["metadata"]["resourceVersion"],
                    include_object=request.query.get("includeObject", "Metadata"),
                )
            )
        return json_response(obj)

    async def _list_or_watch(self, request: web.Request, target: decoding.Target) -> web.StreamResponse:
        rtype = target.rtype
        selector = decoding.selector(request, rtype)
        is_watch = decoding.flag(request.query.get("watch"))
        decoding.list_options_causes(request, watch=is_watch)
        decoding.number(request, "resourceVersion")
        if is_watch:
            timeout = decoding.number(request, "timeoutSeconds", kind=float)
            return await self._watches.serve(
                request,
                watch.WatchRequest(
                    rtype=rtype,
                    namespace=target.namespace,
                    selector=selector,
                    resource_version=request.query.get("resourceVersion", ""),
                    send_initial_events=decoding.flag(request.query.get("sendInitialEvents")),
                    bookmarks=decoding.flag(request.query.get("allowWatchBookmarks")),
                    timeout=timeout or None,
                    table=decoding.wants_table(request),
                    include_object=request.query.get("includeObject", "Metadata"),
                ),
            )
        items, list_rv, token, remaining = self._page(request, target, selector)
        items = [self._objects.view(rtype, obj) for obj in items]
        if decoding.wants_table(request):
            return json_response(
                tables.table(
                    rtype,
                    items,
                    now=_now(),
                    resource_version=list_rv,
                    continue_token=token,
                    include_object=request.query.get("includeObject", "Metadata"),
                )
            )
        meta: dict[str, Any] = {"resourceVersion": list_rv, "continue": token}
        if remaining:
            meta["remainingItemCount"] = remaining
        return json_response({"kind": rtype.list_kind, "apiVersion": rtype.api_version, "metadata": meta, "items": items})

    def _page(self, request: web.Request, target: decoding.Target, selector: Any) -> tuple[list[dict[str, Any]], str, str, int]:
        """Matching objects of one page, the list RV, the continue token and the remaining count."""
        query = request.query
        requested_rv = query.get("resourceVersion", "")
        if query.get("resourceVersionMatch") == "Exact" and requested_rv and int(requested_rv) != self._store.rv:
            raise errors.expired(int(requested_rv), self._store.rv)
        list_rv, start = self._store.rv, None
        if token := query.get("continue"):
            try:
                decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
                list_rv, start = int(decoded["rv"]), tuple(decoded["start"])
            except (ValueError, KeyError, TypeError) as exc:
                raise errors.bad_request(f"continue key is not valid: {exc}") from exc
            if list_rv < self._store.floor:
                raise errors.APIError(410, "Expired", CONTINUE_EXPIRED)
        items = [obj for obj in self._store.list(target.rtype.storage_key, target.namespace or None) if selector.matches(obj)]
        if start is not None:
            items = [obj for obj in items if (obj["metadata"].get("namespace", ""), obj["metadata"]["name"]) > start]
        limit = decoding.number(request, "limit") or 0
        if limit <= 0 or len(items) <= limit:
            return items, str(list_rv), "", 0
        page, last = items[:limit], items[limit - 1]["metadata"]
        token = base64.urlsafe_b64encode(
            json.dumps({"rv": list_rv, "start": [last.get("namespace", ""), last["name"]]}).encode()
        ).decode()
        return page, str(list_rv), token, len(items) - limit

    # -- writes ----------------------------------------------------------------------------

    async def _create(self, request: web.Request, target: decoding.Target) -> web.StreamResponse:
        _, payload = await decoding.body(request)
        result = self._objects.create(target.rtype, target.namespace, payload, decoding.write_options(request))
        _log_warnings(request, result.warnings)
        return json_response(result.obj, status=201, warnings=result.warnings)

    async def _replace(self, request: web.Request, target: decoding.Target) -> web.StreamResponse:
        if target.subresource == "log":
            raise errors.method_not_allowed()
        _, payload = await decoding.body(request)
        if target.subresource == "scale":
            result = self._objects.scale(
                target.rtype, target.namespace, target.name, "application/json", payload, decoding.write_options(request)
            )
            return json_response(result.obj)
        result = self._objects.replace(
            target.rtype, target.namespace, target.name, payload, decoding.write_options(request), subresource=target.subresource
        )
        _log_warnings(request, result.warnings)
        return json_response(result.obj, warnings=result.warnings)

    async def _patch(self, request: web.Request, target: decoding.Target) -> web.StreamResponse:
        if target.subresource in ("log", "finalize"):
            raise errors.method_not_allowed()
        content_type, payload = await decoding.body(request, patch=True)
        if target.subresource == "scale":
            result = self._objects.scale(
                target.rtype, target.namespace, target.name, content_type, payload, decoding.write_options(request)
            )
            return json_response(result.obj)
        result = self._objects.patch(
            target.rtype,
            target.namespace,
            target.name,
            content_type,
            payload,
            decoding.write_options(request),
            subresource=target.subresource,
        )
        _log_warnings(request, result.warnings)
        return json_response(result.obj, status=201 if result.created else 200, warnings=result.warnings)

    async def _delete(self, request: web.Request, target: decoding.Target) -> web.StreamResponse:
        _, payload = await decoding.body(request) if await decoding.read(request) else ("", None)
        options = decoding.delete_options(request, payload)
        result = self._objects.delete(
            target.rtype,
            target.namespace,
            target.name,
            propagation=options.propagation,
            preconditions=options.preconditions,
            dry_run=options.dry_run,
        )
        return json_response(result.obj)

    async def _delete_collection(self, request: web.Request, target: decoding.Target) -> web.StreamResponse:
        _, payload = await decoding.body(request) if await decoding.read(request) else ("", None)
        options = decoding.delete_options(request, payload)
        selector = decoding.selector(request, target.rtype)
        matches = [obj for obj in self._store.list(target.rtype.storage_key, target.namespace or None) if selector.matches(obj)]
        deleted = self._objects.delete_collection(
            target.rtype, target.namespace, matches, propagation=options.propagation, dry_run=options.dry_run
        )
        return json_response(
            {
                "kind": target.rtype.list_kind,
                "apiVersion": target.rtype.api_version,
                "metadata": {"resourceVersion": str(self._store.rv)},
                "items": [self._objects.view(target.rtype, obj) for obj in deleted],
            }
        )


_VERBS = {
    "GET collection": "list",
    "POST collection": "create",
    "DELETE collection": "deletecollection",
    "GET item": "get",
    "PUT item": "update",
    "PATCH item": "patch",
    "DELETE item": "delete",
}


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)

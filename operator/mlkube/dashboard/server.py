"""The dashboard's HTTP server: read-only, a handful of paths, on loopback unless told otherwise.

What it accepts is bounded before anything is looked up: GET and HEAD only (405 otherwise), no
request body, the paths ``links.route`` knows (404 otherwise; the query string is ignored), and
when bound to loopback only a loopback Host header (so a page elsewhere cannot read it through
DNS rebinding). Every answer carries a Content-Security-Policy that forbids scripts, frames and
outside resources; the pages are escaped by ``pages``.

Model cards and drift reports are the HTML files the trainer and the drift check wrote. The
server serves the one file an object's status names (``ModelVersion.status.cardUri``,
``DriftMonitor.status.reportUri`` or a report URI recorded in the watched history), never a path
from the request: a ``file://`` URI is read when it is a regular ``.html`` file, an ``http(s)``
URI is redirected to, and any other (``s3://``) is named on a page for the user's own client.
"""

from __future__ import annotations

import asyncio
import dataclasses
import pathlib
import urllib.parse
from collections.abc import Awaitable, Callable

from aiohttp import web

from mlkube.common import timestamps
from mlkube.dashboard import links, pages, store

MAX_FILE = 50 * 1024 * 1024
PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
FILE_POLICY = "sandbox; " + PAGE_POLICY  # a report is shown as a document, with no script and no origin
LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclasses.dataclass(frozen=True)
class Settings:
    """How the server answers: the page refresh period and what the index says it watches."""

    refresh: int = 5
    scope: str = ""
    loopback_only: bool = True


def application(data: store.Store, settings: Settings) -> web.Application:
    """The aiohttp application serving ``data``'s pages."""
    app = web.Application(middlewares=[_bounded(settings)], client_max_size=1024)
    app.router.add_route("*", "/{tail:.*}", _handler(data, settings))
    return app


def _bounded(settings: Settings) -> Callable:
    @web.middleware
    async def bounded(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            response: web.StreamResponse = _html(405, pages.message("Method not allowed", "The dashboard is read-only."))
            response.headers["Allow"] = "GET, HEAD"
        elif request.can_read_body:
            response = _html(400, pages.message("Bad request", "A GET carries no body."))
        elif settings.loopback_only and _host(request.host) not in LOOPBACK:
            response = _html(421, pages.message("Misdirected request", "This dashboard answers on loopback only."))
        else:
            response = await handler(request)
        response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    return bounded


def _host(host: str) -> str:
    """The name in a Host header without its port (``[::1]:3100`` -> ``::1``)."""
    if host.startswith("["):
        return host[1 : host.find("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _handler(data: store.Store, settings: Settings) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        where = links.route(request.path)
        if where is None:
            return _not_found("No such page.")
        now = timestamps.now()
        if where.page == "index":
            return _html(200, pages.index(data, namespaces=settings.scope, now=now, refresh=settings.refresh))
        if where.page == "project":
            page = pages.project(data, where.namespace, where.name, now=now, refresh=settings.refresh)
            return _html(200, page) if page else _not_found(f"No MLProject {where.name} in namespace {where.namespace}.")
        if where.page == "card":
            mv = data.get("modelversions", where.namespace, where.name)
            uri = ((mv or {}).get("status") or {}).get("cardUri")
            return await _document(uri, f"ModelVersion {where.name} has no model card.")
        return await _document(_report_uri(data, where), f"DriftMonitor {where.name} has no such report.")

    return handle


def _report_uri(data: store.Store, where: links.Route) -> str | None:
    if where.at is None:
        dmon = data.get("driftmonitors", where.namespace, where.name)
        return ((dmon or {}).get("status") or {}).get("reportUri")
    samples = data.drift.get((where.namespace, where.name), ())
    return next((s.report_uri for s in samples if s.at == where.at), None)


async def _document(uri: str | None, missing: str) -> web.StreamResponse:
    """The HTML file at ``uri`` (a URI an object's status names; see the module docstring)."""
    if not uri:
        return _not_found(missing)
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme in ("http", "https"):
        raise web.HTTPFound(uri)
    if parsed.scheme != "file":
        return _html(
            200, pages.message("Stored outside this machine", f"The document is at {uri}: open it with your storage client.")
        )
    path = pathlib.Path(urllib.parse.unquote(parsed.path))
    body = await asyncio.to_thread(_read_html, path)
    if body is None:
        return _not_found(f"{uri} is not a readable HTML file (any more).")
    response = web.Response(body=body, content_type="text/html", charset="utf-8")
    response.headers["Content-Security-Policy"] = FILE_POLICY
    return response


def _read_html(path: pathlib.Path) -> bytes | None:
    if path.suffix.lower() not in (".html", ".htm") or not path.is_file() or path.stat().st_size > MAX_FILE:
        return None
    try:
        return path.read_bytes()
    except OSError:
        return None


def _html(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/html", charset="utf-8")


def _not_found(text: str) -> web.Response:
    return _html(404, pages.message("Not found", text))

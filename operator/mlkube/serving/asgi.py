"""The model server's ASGI middleware: a request id on every response, and a bound on request bodies.

Owns two wrappers around KServe's FastAPI app, applied by `server.BoundModelServer`:
`RequestIdMiddleware` gives every response an `x-request-id` (the client's, or a new one), and
`BodyLimitMiddleware` answers 413 to a request whose body is larger than the server's limit,
before the app reads any of it: a `Content-Length` over the limit is refused at once, and a body
without one (chunked) is read only up to the limit. Both answer in KServe's error shape,
`{"error": "..."}`.

Must not: know about models, predictions or the KServe data plane.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

REQUEST_ID = "x-request-id"
_REQUEST_ID_BYTES = REQUEST_ID.encode()
_CONTENT_LENGTH = b"content-length"


class RequestIdMiddleware:
    """ASGI middleware: a response that carries no `x-request-id` (errors, health) gets the client's or a new one.

    Successful predictions set the header themselves (`VersionModel.postprocess`); this covers the
    responses KServe's exception handlers build, so a 400 can be correlated with its request too.
    """

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_id(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                if not any(name.lower() == _REQUEST_ID_BYTES for name, _ in headers):
                    sent = next((v for k, v in scope["headers"] if k == _REQUEST_ID_BYTES), None)
                    message = {**message, "headers": [*headers, (_REQUEST_ID_BYTES, sent or uuid.uuid4().hex.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_id)


class BodyLimitMiddleware:
    """ASGI middleware: 413 for a request body over `max_bytes`, naming the limit and `option` (the flag that sets it).

    A declared `Content-Length` is trusted for the decision (the HTTP server never delivers more
    than it declares) and such a request streams to the app untouched. A body without one is
    read here up to the limit and handed to the app in one message.
    """

    def __init__(self, app: Any, *, max_bytes: int, option: str = "--max_request_bytes"):
        if max_bytes < 1:
            raise ValueError(f"{option}: expected a positive number of bytes, got {max_bytes}")
        self.app = app
        self.max_bytes = max_bytes
        self.option = option

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((value for name, value in scope["headers"] if name == _CONTENT_LENGTH), None)
        if declared is not None:
            size = int(declared) if declared.isdigit() else None
            if size is None:
                await _answer(send, 400, "Content-Length: expected a number of bytes")
            elif size > self.max_bytes:
                await _answer(send, 413, self.refusal(f"{size} bytes"))
            else:
                await self.app(scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing to answer
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _answer(send, 413, self.refusal(f"more than {self.max_bytes} bytes"))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    def refusal(self, size: str) -> str:
        """The 413 message: the body's size, the limit and what to do."""
        return (
            f"request body is {size}, over this server's limit of {self.max_bytes} bytes ({self.option}): "
            "send fewer rows per request, or raise the limit"
        )


async def _answer(send: Any, status: int, message: str) -> None:
    body = orjson.dumps({"error": message})
    # No `connection: close`: the HTTP server reads and discards the rest of the body, so the
    # client, still sending, gets this answer instead of a reset connection.
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

"""What a feedback request must pass before the router reads it: a bearer token, a per-client rate, a size.

Owns: the optional bearer token (`Token`: read from a file, re-read when the file changes as a
mounted Secret is rotated, or given as a value, e.g. from `$MLKUBE_FEEDBACK_TOKEN`), the
per-client token buckets (`RateLimiter`; time comes in as `now`, so it is a plain function of
its calls), reading a body no larger than a limit (`read_limited`), and `Gate`, the three
together as the router applies them to `POST /v1/feedback`.

Clients are told apart by their address as the router's socket sees it (`request.remote`);
`X-Forwarded-For` is not trusted, since any client can set it.

Must not: know about routing tables, feedback records or storage.
"""

from __future__ import annotations

import collections
import dataclasses
import hmac
import logging
import math
import os

from aiohttp import web

from mlkube.serving import feedback

log = logging.getLogger("mlkube.serving.gate")

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_RATE = 100.0
DEFAULT_BURST = 200.0
DEFAULT_MAX_CLIENTS = 10_000


class TooLarge(Exception):
    """A body over the limit; the message is its size as far as it was read ("more than N bytes")."""


class Token:
    """The bearer token a request must present; from a file (re-read when it changes) or a value."""

    def __init__(self, *, value: str | None = None, path: str | None = None):
        if (value is None) == (path is None):
            raise ValueError("feedback token: give exactly one of a value and a file")
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._value = value.strip() if value is not None else self._read()
        if not self._value:
            raise ValueError(f"feedback token: {'file ' + path if path else 'the value'} is empty")

    def _read(self) -> str:
        with open(self.path, encoding="utf-8") as f:  # type: ignore[arg-type]
            stat = os.fstat(f.fileno())
            self._stamp = (stat.st_mtime_ns, stat.st_size)
            return f.read().strip()

    def current(self) -> str:
        """The token in force: the file's content when it changed and is readable and non-empty, else the last one."""
        if self.path is None:
            return self._value
        try:
            stat = os.stat(self.path)
            if (stat.st_mtime_ns, stat.st_size) != self._stamp:
                value = self._read()
                if value:
                    self._value = value
                else:
                    log.warning("feedback token file %s is empty; keeping the previous token", self.path)
        except OSError as e:
            log.warning("feedback token file %s cannot be read (%s); keeping the previous token", self.path, e.strerror or e)
        return self._value

    def accepts(self, authorization: str | None) -> bool:
        """Whether an `Authorization` header value is `Bearer <the token>` (compared in constant time)."""
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(presented.strip().encode(), self.current().encode())


class RateLimiter:
    """A token bucket per client: `rate` requests per second, bursts of up to `burst`.

    At most `max_clients` buckets are kept; the least recently seen is forgotten first (a
    forgotten client starts again with a full bucket). A `rate` of 0 turns the limit off."""

    def __init__(self, rate: float = DEFAULT_RATE, burst: float = DEFAULT_BURST, *, max_clients: int = DEFAULT_MAX_CLIENTS):
        if rate < 0 or (rate > 0 and burst < 1) or max_clients < 1:
            raise ValueError(
                f"rate limit: expected rate >= 0, burst >= 1 and max_clients >= 1, got {rate}, {burst}, {max_clients}"
            )
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self._buckets: collections.OrderedDict[str, tuple[float, float]] = collections.OrderedDict()

    def wait(self, client: str, *, now: float) -> float:
        """0.0 when `client` may go ahead (one token is taken), else the seconds until it may."""
        if self.rate == 0:
            return 0.0
        tokens, last = self._buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - last) * self.rate)
        wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
        self._buckets[client] = (tokens - 1 if wait == 0 else tokens, now)
        if len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait

    def __len__(self) -> int:
        return len(self._buckets)


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The request body, read only up to `limit` bytes; raises TooLarge beyond that."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise TooLarge(f"{declared} bytes")
    chunks, size = [], 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"more than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@dataclasses.dataclass
class Gate:
    """The checks of `POST /v1/feedback`, in order: token (when one is set), the client's rate, the body's size."""

    token: Token | None = None
    limiter: RateLimiter = dataclasses.field(default_factory=RateLimiter)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_truth_bytes: int = feedback.DEFAULT_MAX_TRUTH_BYTES

    def refusal(self, request: web.Request, *, now: float) -> tuple[str, web.Response] | None:
        """None when the request may be read; else (the counter to raise, the answer: 401 or 429)."""
        if self.token is not None and not self.token.accepts(request.headers.get("authorization")):
            message = "feedback needs 'Authorization: Bearer <token>' with this router's feedback token"
            answer = web.json_response({"error": message}, status=401, headers={"www-authenticate": 'Bearer realm="feedback"'})
            return "unauthorized", answer
        wait = self.limiter.wait(request.remote or "", now=now)
        if wait > 0:
            message = (
                f"feedback: more than {self.limiter.rate:g} requests/s from {request.remote}; retry after the Retry-After delay"
            )
            answer = web.json_response({"error": message}, status=429, headers={"retry-after": str(max(1, math.ceil(wait)))})
            return "rateLimited", answer
        return None

    async def body(self, request: web.Request) -> bytes:
        """The body within `max_body_bytes`; raises TooLarge."""
        return await read_limited(request, self.max_body_bytes)

    def too_large(self, error: TooLarge) -> web.Response:
        message = (
            f"feedback body is {error}, over this router's limit of {self.max_body_bytes} bytes "
            "(--feedback-max-bytes): send fewer items per request"
        )
        return web.json_response({"error": message}, status=413)

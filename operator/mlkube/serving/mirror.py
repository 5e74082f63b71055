"""Mirrored traffic: copies of primary requests sent to a shadow, or to the stable to judge a canary.

Owns: sending copies off the request path, in micro-batches, and counting what they found. A
mirror costs the router an HTTP exchange (a send, a receive, parsing) and the mirrored version
a model call per request, on the same cores that answer clients. So copies of V1 `:predict`
requests whose body is `{"instances": [...]}` wait up to `max_wait` seconds or `max_batch`
requests, then go as ONE call with their instances concatenated; the predictions are split
back by row counts and each copy is compared with its own primary response. Objects keyed by
feature name and arrays in feature order are never mixed in one call; any other body (V2, other
keys, not JSON) goes alone, and so does each copy of a batch the version answered with a 4xx (a
row it refuses must not fail the others). Every copy counts as one request of the mirrored version, with
the batch call's status and latency (so a shadow's latency figures are those of batch calls,
an upper bound of its single-request latency). At most `limit` calls are in flight; a copy
offered beyond that is skipped and counted in `mirrorsDropped`. Memory: at most `max_batch`
waiting copies per target, plus those in flight.

Must not: delay or fail a primary response (`offer` does no I/O and never raises), or know
about HTTP (the router's `call` does the exchange).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from mlkube.serving import agreement, stats

MAX_BATCH = 32
MAX_WAIT_SECONDS = 0.02


@dataclasses.dataclass(frozen=True)
class Target:
    """Where copies go: `version` in `role` (shadow | compare); agreement counts for `judged`."""

    version: int
    role: str
    judged: int


@dataclasses.dataclass(frozen=True)
class Copy:
    """One primary request as it is mirrored: its V1/V2 body, headers, and the primary's answer."""

    protocol: str
    body: bytes
    headers: dict[str, str]
    primary: bytes


# (target version, protocol, body, headers, timeout) -> (status, body); status 0: no answer.
Call = Callable[[int, str, bytes, dict[str, str], float], Awaitable[tuple[int, bytes]]]


class Mirrors:
    """The copies waiting per target, and the calls in flight."""

    def __init__(
        self,
        call: Call,
        counters: stats.Stats,
        *,
        limit: int = 64,
        timeout_seconds: float = 10.0,
        max_batch: int = MAX_BATCH,
        max_wait_seconds: float = MAX_WAIT_SECONDS,
        score: Callable[[int, bytes], None] | None = None,
    ):
        self.call = call
        self.score = score  # (version, answer body): a shadow's answers add to its scores
        self.stats = counters
        self.limit = limit
        self.timeout = timeout_seconds
        self.max_batch = max_batch
        self.max_wait = max_wait_seconds
        self._waiting: dict[Target, list[Copy]] = {}
        self._timers: dict[Target, asyncio.TimerHandle] = {}
        self._in_flight: set[asyncio.Task] = set()

    def offer(self, target: Target, copy: Copy) -> None:
        """Queue one copy for `target`; sent within `max_wait` seconds. Call from the event loop."""
        if len(self._in_flight) >= self.limit:
            self.stats.mirrors_dropped += 1
            return
        waiting = self._waiting.setdefault(target, [])
        waiting.append(copy)
        if len(waiting) >= self.max_batch:
            self._flush(target)
        elif target not in self._timers:
            self._timers[target] = asyncio.get_running_loop().call_later(self.max_wait, self._flush, target)

    def _flush(self, target: Target) -> None:
        timer = self._timers.pop(target, None)
        if timer is not None:
            timer.cancel()
        copies = self._waiting.pop(target, [])
        if not copies:
            return
        if len(self._in_flight) >= self.limit:
            self.stats.mirrors_dropped += len(copies)
            return
        task = asyncio.get_running_loop().create_task(self._send(target, copies))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _send(self, target: Target, copies: list[Copy]) -> None:
        batches, alone = _batchable(copies)
        for batch in batches:
            if len(batch) > 1:
                await self._send_batch(target, batch)
            else:
                alone.extend(copy for copy, _ in batch)
        for copy in alone:
            await self._send_one(target, copy)

    async def _send_one(self, target: Target, copy: Copy) -> None:
        clock = time.perf_counter()
        status, payload = await self.call(target.version, copy.protocol, copy.body, copy.headers, self.timeout)
        self.stats.record(target.version, target.role, status=status, latency_ms=(time.perf_counter() - clock) * 1000.0)
        if status == 200 and self.score is not None and target.role == "shadow":
            self.score(target.version, payload)
        if status == 200:
            agreed = agreement.agrees(copy.primary, payload)
            if agreed is not None:
                self.stats.record_agreement(target.judged, agreed)

    async def _send_batch(self, target: Target, batch: list[tuple[Copy, list]]) -> None:
        instances = [row for _, rows in batch for row in rows]
        body = orjson.dumps({"instances": instances})
        headers = {"content-type": "application/json"}
        clock = time.perf_counter()
        status, payload = await self.call(target.version, "v1", body, headers, self.timeout)
        latency_ms = (time.perf_counter() - clock) * 1000.0
        if 400 <= status < 500:
            # A row this version refuses (its schema may differ from the primary's) fails the whole
            # call: resend one by one, so that only the copies it really refuses count as errors.
            for copy, _ in batch:
                await self._send_one(target, copy)
            return
        found = agreement.predictions(payload) if status == 200 else None
        if status == 200 and self.score is not None and target.role == "shadow":
            self.score(target.version, payload)
        start = 0
        for copy, rows in batch:
            self.stats.record(target.version, target.role, status=status, latency_ms=latency_ms)
            if found is not None and len(found) == len(instances):
                agreed = agreement.same_predictions(agreement.predictions(copy.primary), found[start : start + len(rows)])
                if agreed is not None:
                    self.stats.record_agreement(target.judged, agreed)
            start += len(rows)

    async def close(self) -> None:
        """Drop what waits and cancel what is in flight."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._waiting.clear()
        for task in list(self._in_flight):
            task.cancel()
        await asyncio.gather(*self._in_flight, return_exceptions=True)


def _batchable(copies: list[Copy]) -> tuple[list[list[tuple[Copy, list]]], list[Copy]]:
    """(groups of copies that can share one V1 call, with their instances; the others).

    Instances keyed by feature name and instances as arrays in feature order go in separate
    groups, so that every call carries one form."""
    objects, arrays, alone = [], [], []
    for copy in copies:
        rows = _instances(copy) if copy.protocol == "v1" else None
        if rows and all(isinstance(row, dict) for row in rows):
            objects.append((copy, rows))
        elif rows and all(isinstance(row, list) for row in rows):
            arrays.append((copy, rows))
        else:
            alone.append(copy)
    return [group for group in (objects, arrays) if group], alone


def _instances(copy: Copy) -> list[Any] | None:
    try:
        doc = orjson.loads(copy.body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(doc, dict) and doc.keys() == {"instances"} and isinstance(doc["instances"], list):
        return doc["instances"]
    return None

"""Adaptive micro-batching: concurrent requests scored in one model call, each keeping its own result.

Owns `Batcher`: requests `submit()` an item (one request's validated rows) and wait; the batcher
hands the items of several requests to one `score(items)` call and gives each request its own
result, or its own exception. KServe's batcher idea, in-process and without the extra hop.

When a batch is scored (the event loop never waits longer than `max_latency` for one):
- at once, when the waiting items hold `max_rows` rows (a single larger request is scored alone);
- in the next turn of the event loop, when as many requests wait as the previous batch held (the
  recent concurrency): requests whose bytes arrived in the same turn still join it;
- otherwise when the first waiting request has waited `max_latency`.
The expected count follows the load: a batch flushed by the timer lowers it to what came, a
turn that brought more raises it. After `max_latency` without requests it is back to one, so a
lone request on an idle server is scored in the next turn of the loop, not delayed.

`score` runs on the event loop's thread, as KServe runs a synchronous `predict`: while it runs,
new requests queue in the sockets and join the next batch. It must return one result or one
exception per item, in order (that is how one bad request fails alone); should it raise
instead, every request of that batch gets the exception.

Must not: know about HTTP, schemas or models; start threads.
"""

from __future__ import annotations

import asyncio
import collections
import math
from collections.abc import Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Batcher(Generic[Item, Result]):
    """Gathers submitted items into batches for `score` (see the module docstring for when)."""

    def __init__(
        self,
        score: Callable[[list[Item]], list[Result | Exception]],
        *,
        max_rows: int,
        max_latency: float,
        rows_of: Callable[[Item], int] = lambda _: 1,
    ):
        if max_rows < 1:
            raise ValueError(f"maxBatchSize: expected at least 1 row, got {max_rows}")
        if not max_latency >= 0:
            raise ValueError(f"maxLatency: expected a duration of 0 or more, got {max_latency}s")
        self.score = score
        self.max_rows = max_rows
        self.max_latency = max_latency
        self.rows_of = rows_of
        self._waiting: collections.deque[tuple[Item, asyncio.Future]] = collections.deque()
        self._waiting_rows = 0
        self._flush_handle: asyncio.Handle | None = None
        self._flush_is_timer = False
        self._expected = 1
        self._last_flush = -math.inf

    async def submit(self, item: Item) -> Result:
        """`item`'s result, once its batch is scored; raises the exception `score` gave for it."""
        loop = asyncio.get_running_loop()
        if not self._waiting and loop.time() - self._last_flush > self.max_latency:
            self._expected = 1  # idle: nobody else is coming, do not wait for them
        future = loop.create_future()
        self._waiting.append((item, future))
        self._waiting_rows += self.rows_of(item)
        if self._waiting_rows >= self.max_rows:
            self._flush()
        elif len(self._waiting) >= self._expected or self.max_latency == 0:
            self._schedule(loop, timer=False)
        elif self._flush_handle is None:
            self._schedule(loop, timer=True)
        return await future

    def _schedule(self, loop: asyncio.AbstractEventLoop, *, timer: bool) -> None:
        if self._flush_handle is not None:
            if not self._flush_is_timer or timer:
                return  # already due in the next turn, or the timer already runs
            self._flush_handle.cancel()
        if timer:
            self._flush_handle = loop.call_later(self.max_latency, self._flush)
        else:
            self._flush_handle = loop.call_soon(self._flush)
        self._flush_is_timer = timer

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        batch: list[tuple[Item, asyncio.Future]] = []
        rows = 0
        while self._waiting:
            item, future = self._waiting[0]
            count = self.rows_of(item)
            if batch and rows + count > self.max_rows:
                break
            self._waiting.popleft()
            self._waiting_rows -= count
            if not future.done():  # a cancelled request is not scored
                batch.append((item, future))
                rows += count
        loop = asyncio.get_running_loop()
        if self._waiting:
            self._schedule(loop, timer=False)
        if batch:
            self._expected = len(batch)
            self._answer(batch)
        self._last_flush = loop.time()

    def _answer(self, batch: list[tuple[Item, asyncio.Future]]) -> None:
        try:
            results = self.score([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"the batch scorer returned {len(results)} results for {len(batch)} requests")
        except Exception as e:  # a scorer that failed as a whole: every request of the batch hears it
            for _, future in batch:
                future.set_exception(e)
            return
        for (_, future), result in zip(batch, results):
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

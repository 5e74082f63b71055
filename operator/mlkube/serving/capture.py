"""Batched, durable capture of inference records (and the feedback files) to a store.

Owns: the object layout under the capture URI (`capture.uri` of the routing table, normally the
project's storage root), one JSON object per line:

    {uri}/inference-log/{namespace}/{deployment}/date=YYYY-MM-DD/{unix_ts}-{host}-{seq}.jsonl
    {uri}/feedback/{namespace}/{deployment}/date=YYYY-MM-DD/{unix_ts}-{host}-{seq}.jsonl

`unix_ts` is the write time in whole seconds, `host` the router's host name and `seq` a
per-process counter, so names never collide across replicas and sort by time. The date is the
UTC date of the records' own timestamps. Objects are written whole (atomically for files, one PUT
for S3) through `mlkube.ml.storage`, so a reader never sees a partial batch.

`Recorder` never blocks the request path: `offer()` appends to an in-memory buffer and returns;
a background task writes a batch every `flush_seconds` or as soon as `batch_records` are
waiting, serialising and writing in a worker thread. Memory is bounded: beyond `max_buffered`
records (including a batch whose write failed and is being retried) new records are dropped and
counted in `stats.capture["dropped"]`.

Must not: decide what is sampled (the router does) or parse HTTP.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import logging
import socket
import time
from typing import Any

import orjson

from mlkube.ml import errors as ml_errors
from mlkube.ml import storage
from mlkube.serving import stats as stats_module

log = logging.getLogger("mlkube.serving.capture")

INFERENCE_LOG = "inference-log"
FEEDBACK = "feedback"
_sequence = itertools.count()


def object_uri(base_uri: str, kind: str, *, namespace: str, deployment: str, date: str, host: str, now: float) -> str:
    """Where one batch of `kind` (INFERENCE_LOG or FEEDBACK) records is written."""
    name = f"{int(now)}-{host}-{next(_sequence):06d}.jsonl"
    return storage.join(base_uri, f"{kind}/{namespace}/{deployment}/date={date}/{name}")


def utc_date(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).strftime("%Y-%m-%d")


def rfc3339(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def jsonl(records: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(record) + b"\n" for record in records)


def json_or_text(body: bytes | None) -> Any:
    """A captured body: its JSON document, or its text when it is not JSON."""
    if not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", errors="replace")


def write_records(
    base_uri: str, kind: str, records: list[dict[str, Any]], *, namespace: str, deployment: str,
    options: storage.Options | None = None, host: str | None = None,
) -> list[str]:
    """Write `records` (each with a float `_ts`) as one object per UTC date; returns the URIs."""
    host = host or socket.gethostname()
    by_date: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_date.setdefault(utc_date(record.pop("_ts")), []).append(record)
    uris, now = [], time.time()
    for date, batch in sorted(by_date.items()):
        uri = object_uri(base_uri, kind, namespace=namespace, deployment=deployment, date=date, host=host, now=now)
        storage.write_bytes(uri, jsonl(batch), options=options)
        uris.append(uri)
    return uris


class Recorder:
    """The inference-log writer of one router: bounded buffer, periodic batched writes."""

    def __init__(
        self, stats: stats_module.Stats, *, flush_seconds: float = 1.0, batch_records: int = 1000,
        max_buffered: int = 20_000,
    ):
        self.stats = stats
        self.flush_seconds = flush_seconds
        self.batch_records = batch_records
        self.max_buffered = max_buffered
        self.target: tuple[str, str, str, storage.Options] | None = None
        self._buffer: list[dict[str, Any]] = []
        self._retry: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task | None = None

    def set_target(self, base_uri: str | None, *, namespace: str, deployment: str, endpoint: str | None) -> None:
        """Where the next batches go (records already buffered follow the new target)."""
        self.target = (base_uri, namespace, deployment, storage.Options(endpoint=endpoint)) if base_uri else None

    def offer(self, record: dict[str, Any]) -> bool:
        """Queue one record (raw `request`/`response` bytes are decoded at write time); never blocks."""
        if len(self._buffer) + len(self._retry) >= self.max_buffered:
            self.stats.capture["dropped"] += 1
            return False
        self._buffer.append(record)
        self.stats.capture["captured"] += 1
        if len(self._buffer) >= self.batch_records:
            self._wake.set()
        return True

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Let a write in progress finish, then write what is buffered."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        await self.flush()

    async def _run(self) -> None:
        while not self._closing:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.flush_seconds)
            except TimeoutError:
                pass
            self._wake.clear()
            if not self._closing:
                await self.flush()

    async def flush(self) -> None:
        """Write the retried batch and the buffered records, if any, in a worker thread."""
        batch, self._buffer = self._retry + self._buffer, []
        self._retry = []
        if not batch:
            return
        if self.target is None:  # capture was switched off after these were queued
            self.stats.capture["dropped"] += len(batch)
            return
        base_uri, namespace, deployment, options = self.target
        try:
            await asyncio.to_thread(
                write_records, base_uri, INFERENCE_LOG, [_decoded(r) for r in batch],
                namespace=namespace, deployment=deployment, options=options,
            )
        except (ml_errors.MLError, OSError) as e:
            self.stats.capture["writeErrors"] += 1
            log.warning("capture: writing %d records to %s failed, will retry: %s", len(batch), base_uri, e)
            self._retry = batch
            return
        self.stats.capture["written"] += len(batch)


def _decoded(record: dict[str, Any]) -> dict[str, Any]:
    out = dict(record)
    out["timestamp"] = rfc3339(out["_ts"])
    out["request"] = json_or_text(out.get("request"))
    out["response"] = json_or_text(out.get("response"))
    return out

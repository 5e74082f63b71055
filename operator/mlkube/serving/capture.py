"""Batched, durable capture of inference records (and the feedback files) to a store.

Owns writing the inference log whose records and layout `mlkube.api.inference_log` defines:
batches of JSON lines, one object per UTC date of the records' timestamps, named by
`inference_log.object_name` with this process's host name and a per-process counter. Objects
are written whole (atomically for files, one PUT for S3) through `mlkube.ml.storage`, so a
reader never sees a partial batch.

`Recorder` never blocks the request path: `offer()` appends the router's record to an
in-memory buffer and returns; a background task writes a batch every `flush_seconds` or as soon
as `batch_records` are waiting, decoding the bodies, building each line with
`inference_log.capture_line` and serialising with orjson in a worker thread. Lines are not
validated here (see `inference_log` for why); the readers validate them. Memory is bounded:
beyond `max_buffered` records (including a batch whose write failed and is being retried) new
records are dropped and counted in `stats.capture["dropped"]`.

Must not: decide what is sampled (the router does) or parse HTTP.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import time
from collections.abc import Sequence
from typing import Any

import orjson

from mlkube.api import inference_log
from mlkube.ml import errors as ml_errors
from mlkube.ml import storage
from mlkube.serving import stats as stats_module

log = logging.getLogger("mlkube.serving.capture")

# The router names the log kinds through this module.
_sequence = itertools.count()


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


def json_or_text(body: bytes | None) -> Any:
    """A captured body: its JSON document, or its text when it is not JSON."""
    if not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", errors="replace")


def line_of(offered: dict[str, Any]) -> dict[str, Any]:
    """The capture line of a record as the router offers it (see `Recorder.offer`)."""
    return inference_log.capture_line(
        request_id=offered.get("requestId"),
        timestamp=inference_log.record_time(offered["_ts"]),
        namespace=offered.get("namespace"),
        deployment=offered.get("deployment"),
        project=offered.get("project"),
        version=offered.get("version"),
        role=offered.get("role"),
        protocol=offered.get("protocol"),
        verb=offered.get("verb"),
        status=offered.get("status"),
        latency_ms=offered.get("latencyMs"),
        request=json_or_text(offered.get("request")),
        response=json_or_text(offered.get("response")),
    )


def write_lines(
    base_uri: str,
    kind: inference_log.LogKind,
    lines: list[dict[str, Any]],
    *,
    namespace: str,
    deployment: str,
    options: storage.Options | None = None,
    host: str | None = None,
) -> list[str]:
    """Write records' wire forms as one object per UTC date of their `timestamp`; returns the URIs."""
    host = host or socket.gethostname()
    by_date: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_date.setdefault(inference_log.date_of(line), []).append(line)
    uris, now = [], time.time()
    directory = storage.join(base_uri, inference_log.prefix(kind, namespace=namespace, deployment=deployment))
    for date, batch in sorted(by_date.items()):
        name = inference_log.object_name(date=date, written=now, host=host, sequence=next(_sequence))
        uri = storage.join(directory, name)
        storage.write_bytes(uri, jsonl(batch), options=options)
        uris.append(uri)
    return uris


def write_records(
    base_uri: str,
    kind: inference_log.LogKind,
    records: Sequence[inference_log.Record],
    *,
    namespace: str,
    deployment: str,
    options: storage.Options | None = None,
    host: str | None = None,
) -> list[str]:
    """Write validated records (the feedback writers') like `write_lines`; returns the URIs."""
    return write_lines(
        base_uri, kind, [r.wire() for r in records], namespace=namespace, deployment=deployment, options=options, host=host
    )


class Recorder:
    """The inference-log writer of one router: bounded buffer, periodic batched writes."""

    def __init__(
        self,
        stats: stats_module.Stats,
        *,
        flush_seconds: float = 1.0,
        batch_records: int = 1000,
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
        """Queue one record; never blocks.

        `record` holds `CaptureRecord`'s fields under their wire names, except that the time is
        `_ts` (POSIX seconds) and `request`/`response` are the raw bodies: formatting and
        decoding wait for the worker thread (`line_of`)."""
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
                _write_batch,
                base_uri,
                batch,
                namespace=namespace,
                deployment=deployment,
                options=options,
            )
        except (ml_errors.MLError, OSError) as e:
            self.stats.capture["writeErrors"] += 1
            log.warning("capture: writing %d records to %s failed, will retry: %s", len(batch), base_uri, e)
            self._retry = batch
            return
        self.stats.capture["written"] += len(batch)


def _write_batch(
    base_uri: str, batch: list[dict[str, Any]], *, namespace: str, deployment: str, options: storage.Options
) -> list[str]:
    lines = [line_of(record) for record in batch]
    return write_lines(base_uri, inference_log.INFERENCE_LOG, lines, namespace=namespace, deployment=deployment, options=options)

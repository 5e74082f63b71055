"""Batched, durable capture of inference records (and the feedback files) to a store.

Owns writing the inference log whose records and layout `mlkube.api.inference_log` defines:
batches of JSON lines, one object per UTC date of the records' timestamps, named by
`inference_log.object_name` with this process's host name, a per-process random token and a
per-process counter. Objects
are written whole (atomically for files, one PUT for S3) through `mlkube.ml.storage`, so a
reader never sees a partial batch.

`Recorder` never blocks the request path: `offer()` appends the router's record to an
in-memory buffer and returns; a background task writes a batch every `flush_seconds` or as soon
as `batch_records` are waiting, decoding the bodies, building each line with
`inference_log.capture_line` and serialising with orjson in a worker thread. Lines are not
validated here (see `inference_log` for why); the readers validate them.

One record never stops the others: a line orjson cannot serialise (a body nested deeper than
its limit of 254 levels) is written with its bodies as text and `"bodiesAsText": true`
(counted in `stats.capture["unserializable"]`), a record that cannot be written even so is
dropped and counted in `errors`, and the rest of its batch is written. An unexpected failure
of a whole write drops that batch (counted in `errors` and `dropped`, with a log line), and if
the background task itself dies it is restarted (counted in `restarts` and `errors`, logged).

Memory is bounded by count and by bytes: a body longer than `max_body_bytes` is kept (and
written) as its first `max_body_bytes` bytes, as text, with `"truncated": true` on its line
(counted in `truncated`); beyond `max_buffered` records or `max_buffered_bytes` of bodies
(including a batch being written, or whose write failed and is being retried) new records are
dropped and counted in `dropped`. What a SIGKILL loses is what is held: at most the records of
the last `flush_seconds` (or `batch_records`), plus a batch being written or retried.

Must not: decide what is sampled (the router does) or parse HTTP.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
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

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024 * 1024
TRUNCATED = "truncated"
"""The line key (true) of a record with a truncated body."""
BODIES_AS_TEXT = "bodiesAsText"
"""The line key (true) of a record whose bodies are written as text because their JSON could not be."""
_RECORD_OVERHEAD = 512  # bytes a buffered record costs besides its bodies (the dict, ids, numbers)

# The router names the log kinds through this module.
_sequence = itertools.count()
_writer = secrets.token_hex(4)  # a restarted container keeps its host name; this keeps its names new


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


def json_or_text(body: bytes | None) -> Any:
    """A captured body: its JSON document, or its text when it is not JSON."""
    if not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return _text(body)


def _text(body: bytes | None) -> str | None:
    return body.decode("utf-8", errors="replace") if body else None


def line_of(offered: dict[str, Any], *, as_text: bool = False) -> dict[str, Any]:
    """The capture line of a record as the router offers it (see `Recorder.offer`).

    Bodies are decoded as JSON, except a truncated body (always text) and, with `as_text`,
    both bodies; the line then carries `"truncated": true` or `"bodiesAsText": true`."""
    truncated = offered.get("_truncated", ())
    request, response = offered.get("request"), offered.get("response")
    line = inference_log.capture_line(
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
        request=_text(request) if as_text or "request" in truncated else json_or_text(request),
        response=_text(response) if as_text or "response" in truncated else json_or_text(response),
    )
    if truncated:
        line[TRUNCATED] = True
    if as_text:
        line[BODIES_AS_TEXT] = True
    return line


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
    encoded = [(inference_log.date_of(line), orjson.dumps(line)) for line in lines]
    return _write_encoded(base_uri, kind, encoded, namespace=namespace, deployment=deployment, options=options, host=host)


def _write_encoded(
    base_uri: str,
    kind: inference_log.LogKind,
    encoded: list[tuple[str, bytes]],
    *,
    namespace: str,
    deployment: str,
    options: storage.Options | None = None,
    host: str | None = None,
) -> list[str]:
    """Write (date, serialised line) pairs as one object per date; returns the URIs."""
    host = host or socket.gethostname()
    by_date: dict[str, list[bytes]] = {}
    for date, data in encoded:
        by_date.setdefault(date, []).append(data)
    uris, now = [], time.time()
    directory = storage.join(base_uri, inference_log.prefix(kind, namespace=namespace, deployment=deployment))
    for date, batch in sorted(by_date.items()):
        name = inference_log.object_name(date=date, written=now, host=host, writer=_writer, sequence=next(_sequence))
        uri = storage.join(directory, name)
        storage.write_bytes(uri, b"".join(data + b"\n" for data in batch), options=options)
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
    """The inference-log writer of one router: bounded buffer, periodic batched writes, a supervised task."""

    def __init__(
        self,
        stats: stats_module.Stats,
        *,
        flush_seconds: float = 1.0,
        batch_records: int = 1000,
        max_buffered: int = 20_000,
        max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ):
        if flush_seconds <= 0 or batch_records < 1 or max_buffered < 1 or max_buffered_bytes < 1 or max_body_bytes < 1:
            raise ValueError(
                "capture: flush_seconds must be > 0 and batch_records, max_buffered, max_buffered_bytes and "
                f"max_body_bytes >= 1, got {flush_seconds}, {batch_records}, {max_buffered}, {max_buffered_bytes}, "
                f"{max_body_bytes}"
            )
        self.stats = stats
        self.flush_seconds = flush_seconds
        self.batch_records = batch_records
        self.max_buffered = max_buffered
        self.max_buffered_bytes = max_buffered_bytes
        self.max_body_bytes = max_body_bytes
        self.target: tuple[str, str, str, storage.Options] | None = None
        self.held = 0  # records buffered, being written or waiting for a retry
        self.held_bytes = 0  # their bodies plus a fixed overhead each
        self._buffer: list[dict[str, Any]] = []
        self._retry: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task | None = None

    def set_target(self, base_uri: str | None, *, namespace: str, deployment: str, endpoint: str | None) -> None:
        """Where the next batches go (records already buffered follow the new target)."""
        self.target = (base_uri, namespace, deployment, storage.Options(endpoint=endpoint)) if base_uri else None

    def offer(self, record: dict[str, Any]) -> bool:
        """Queue one record; never blocks. False when it was dropped (the buffer is full).

        `record` holds `CaptureRecord`'s fields under their wire names, except that the time is
        `_ts` (POSIX seconds) and `request`/`response` are the raw bodies: formatting and
        decoding wait for the worker thread (`line_of`). A body over `max_body_bytes` is cut
        to that many bytes here, so the buffer holds no more than that of it."""
        request, response = record.get("request"), record.get("response")
        cap, truncated = self.max_body_bytes, ()
        if request is not None and len(request) > cap:
            request = record["request"] = request[:cap]
            truncated = ("request",)
        if response is not None and len(response) > cap:
            response = record["response"] = response[:cap]
            truncated = (*truncated, "response")
        size = _RECORD_OVERHEAD + (len(request) if request else 0) + (len(response) if response else 0)
        if self.held >= self.max_buffered or self.held_bytes + size > self.max_buffered_bytes:
            self.stats.capture["dropped"] += 1
            return False
        if truncated:
            record["_truncated"] = truncated
            self.stats.capture["truncated"] += 1
        record["_bytes"] = size
        self.held += 1
        self.held_bytes += size
        self._buffer.append(record)
        self.stats.capture["captured"] += 1
        if len(self._buffer) >= self.batch_records:
            self._wake.set()
        return True

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._supervise())

    async def close(self) -> None:
        """Let a write in progress finish, then write what is buffered."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        await self.flush()

    async def _supervise(self) -> None:
        """Run the flush loop; if it dies, log, count and restart it after `flush_seconds`."""
        while not self._closing:
            try:
                await self._run()
            except Exception:  # whatever killed it, capture must go on
                self.stats.capture["errors"] += 1
                self.stats.capture["restarts"] += 1
                log.exception("capture: the recorder task failed; restarting it in %gs", self.flush_seconds)
                await asyncio.sleep(self.flush_seconds)

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
            self._release(batch, dropped=len(batch))
            return
        base_uri, namespace, deployment, options = self.target
        try:
            written, as_text, failed = await asyncio.to_thread(
                _write_batch, base_uri, batch, namespace=namespace, deployment=deployment, options=options
            )
        except (ml_errors.MLError, OSError) as e:
            self.stats.capture["writeErrors"] += 1
            log.warning("capture: writing %d records to %s failed, will retry: %s", len(batch), base_uri, e)
            self._retry = batch
            return
        except Exception:  # not the store's failure: retrying the batch would fail again
            self.stats.capture["errors"] += 1
            log.exception("capture: writing %d records to %s failed unexpectedly; they are dropped", len(batch), base_uri)
            self._release(batch, dropped=len(batch))
            return
        self.stats.capture["unserializable"] += as_text
        self.stats.capture["errors"] += failed
        self._release(batch, dropped=failed)
        self.stats.capture["written"] += written

    def _release(self, batch: list[dict[str, Any]], *, dropped: int) -> None:
        self.held -= len(batch)
        self.held_bytes -= sum(record["_bytes"] for record in batch)
        self.stats.capture["dropped"] += dropped


def encoded_line(offered: dict[str, Any]) -> tuple[str, bytes, bool]:
    """(partition date, serialised line, whether its bodies had to be written as text) of one offered record.

    Raises only when even the text form cannot be serialised or the record is malformed."""
    line = line_of(offered)
    try:
        return inference_log.date_of(line), orjson.dumps(line), False
    except orjson.JSONEncodeError:  # e.g. nested deeper than orjson writes (254 levels)
        line = line_of(offered, as_text=True)
        return inference_log.date_of(line), orjson.dumps(line), True


def _write_batch(
    base_uri: str, batch: list[dict[str, Any]], *, namespace: str, deployment: str, options: storage.Options
) -> tuple[int, int, int]:
    """Write what of `batch` can be serialised; (written, written with text bodies, dropped)."""
    encoded, as_text, failed = [], 0, 0
    for record in batch:
        try:
            date, data, fallback = encoded_line(record)
        except Exception as e:  # one bad record must not cost the batch
            failed += 1
            log.error("capture: dropping record %s: cannot serialise it: %s: %s", record.get("requestId"), type(e).__name__, e)
            continue
        encoded.append((date, data))
        as_text += fallback
    if encoded:
        _write_encoded(
            base_uri, inference_log.INFERENCE_LOG, encoded, namespace=namespace, deployment=deployment, options=options
        )
    return len(encoded), as_text, failed

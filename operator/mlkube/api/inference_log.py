"""The inference log: the records the router writes and their layout in the project's storage.

One contract between processes, used by both sides. The writers are the router
(``mlkube.serving.capture`` for captured requests, ``mlkube.serving.feedback`` for ground truth)
and ``mlkube feedback import``; the readers are drift analysis and retraining
(``mlkube.ml.traffic``) and ``mlkube feedback export``.

Layout, relative to the storage root (``capture.uri`` of the routing table, normally the
project's ``spec.storage.uri``), one JSON object per line::

    inference-log/{namespace}/{deployment}/date=YYYY-MM-DD/{unix_ts}-{host}-{writer}-{seq}.jsonl
    feedback/{namespace}/{deployment}/date=YYYY-MM-DD/{unix_ts}-{host}-{writer}-{seq}.jsonl

``date`` is the UTC date of the records' own ``timestamp``; ``unix_ts`` the write time in
whole seconds, ``host`` the writer's host name, ``writer`` a random token drawn once per
process and ``seq`` a per-process counter, so names sort by time and never collide: not across
replicas, and not when a restarted container (same pod, same host name, counter back at 0)
writes its first batch in the same second as its predecessor.

Records: :class:`CaptureRecord` (one routed request) and :class:`FeedbackRecord` (one ground
truth), camelCase on the wire. Times are UTC RFC 3339 with ``Z`` (:func:`record_time`), so
they compare as strings. Readers ignore fields they do not know, so a newer writer can add one
without breaking an older reader. Fields a reader can do without have defaults, so a log
written by another tool reads as long as it carries what the readers use.

Where validation happens, and why. The capture writer sits behind the router's request path:
per captured request it only builds a dict, and its worker thread decodes the bodies and
serialises with orjson. Validating and dumping each record with pydantic there costs about
6 µs of CPU per captured request (against about 0.8 µs for :func:`capture_line` and about
13 µs for the worker's whole decode-serialise-write, measured on a development machine), under
the GIL the event loop shares, for records whose every value the router itself produced. So the
capture side builds the wire form with :func:`capture_line` (a plain dict with the model's wire
names; a unit test holds the two equal) and the readers validate every line with the models,
which costs them nothing measurable (``model_validate_json`` replaces ``json.loads``). Feedback
is not on the request path: its writers construct :class:`FeedbackRecord` and write its
:meth:`Record.wire`.

Must not: do I/O, read the clock (times are arguments) or import anything but pydantic and the
standard library.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Any, Literal

import pydantic
from pydantic import alias_generators

INFERENCE_LOG = "inference-log"
FEEDBACK = "feedback"
LogKind = Literal["inference-log", "feedback"]
SUFFIX = ".jsonl"

TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$"
Timestamp = Annotated[str, pydantic.Field(pattern=TIMESTAMP_PATTERN)]


class Record(pydantic.BaseModel):
    """Base of the log records: camelCase on the wire, unknown fields ignored, immutable."""

    model_config = pydantic.ConfigDict(
        alias_generator=alias_generators.to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
        extra="ignore",
        frozen=True,
    )

    def wire(self) -> dict[str, Any]:
        """The line as written: camelCase keys, every field (nulls included)."""
        return self.model_dump(by_alias=True, mode="json")


class CaptureRecord(Record):
    """One routed request, as captured (``inference-log/``)."""

    request_id: str
    """The request id (``x-request-id``) the client got back; feedback refers to it."""
    timestamp: Timestamp
    """When the router received the request."""
    namespace: str | None = None
    """The ModelDeployment's namespace."""
    deployment: str | None = None
    """The ModelDeployment's name."""
    project: str | None = None
    """The MLProject the deployment serves."""
    version: int
    """The model version that answered."""
    role: str
    """The version's role: stable, canary, preview, or a variant of an A/B test."""
    protocol: str | None = None
    """v1 or v2 (KServe's inference protocols)."""
    verb: str = "predict"
    """predict or explain."""
    status: int
    """The HTTP status the client got (502 when the version could not be reached)."""
    latency_ms: float | None = None
    """Time spent waiting for the version, in milliseconds."""
    request: Any = None
    """The request body: its JSON document, or its text when it is not JSON."""
    response: Any = None
    """The response body, likewise."""
    truncated: bool | None = None
    """True when a body was over the router's capture limit and is stored cut, as text; written
    only when true. Readers treat such a request as unreadable for drift analysis."""
    bodies_as_text: bool | None = None
    """True when the bodies could not be written as JSON (too deeply nested) and are stored as
    text; written only when true."""

    def wire(self) -> dict[str, Any]:
        """The line as written: every field, nulls included, except the flags that are not set."""
        line = super().wire()
        for flag in ("truncated", "bodiesAsText"):
            if line[flag] is None:
                del line[flag]
        return line


class FeedbackRecord(Record):
    """One ground truth for a request id (``feedback/``); for a request id the latest one wins."""

    request_id: str
    """The request id the ground truth is for."""
    ground_truth: Any
    """The true outcome, any JSON value (null is recorded but not scored)."""
    version: int | None = None
    """The version that answered the request."""
    role: str | None = None
    """That version's role."""
    request_timestamp: Timestamp | None = None
    """When the request was received."""
    timestamp: Timestamp
    """When the ground truth arrived."""


def capture_line(
    *,
    request_id: str,
    timestamp: str,
    namespace: str,
    deployment: str,
    project: str | None,
    version: int,
    role: str,
    protocol: str,
    verb: str,
    status: int,
    latency_ms: float | None,
    request: Any,
    response: Any,
) -> dict[str, Any]:
    """``CaptureRecord(...).wire()`` built without validation, for the capture writer (see the module docstring).

    The keyword arguments are the model's fields; the keys, its wire names in field order.
    """
    return {
        "requestId": request_id,
        "timestamp": timestamp,
        "namespace": namespace,
        "deployment": deployment,
        "project": project,
        "version": version,
        "role": role,
        "protocol": protocol,
        "verb": verb,
        "status": status,
        "latencyMs": latency_ms,
        "request": request,
        "response": response,
    }


def record_time(seconds: float) -> str:
    """A record's time from POSIX seconds: UTC RFC 3339 to the millisecond, ``2026-11-24T06:52:00.910Z``."""
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").removesuffix("+00:00") + "Z"


def date_of(line: dict[str, Any]) -> str:
    """The partition date of a record's wire form: the UTC date of its ``timestamp``."""
    return line["timestamp"][:10]


def prefix(kind: LogKind, *, namespace: str, deployment: str) -> str:
    """``inference-log/ml/churn-prod/``: where one deployment's records of ``kind`` live, under the storage root."""
    return f"{kind}/{namespace}/{deployment}/"


def object_name(*, date: str, written: float, host: str, writer: str, sequence: int) -> str:
    """``date=2026-11-24/1795000000-router-0-3f9a1c2e-000042.jsonl``: one batch's object, relative to :func:`prefix`."""
    return f"date={date}/{int(written)}-{host}-{writer}-{sequence:06d}{SUFFIX}"


def is_since(name: str, *, since: datetime.date) -> bool:
    """Whether ``name`` (relative to :func:`prefix`) is a batch object of a partition dated ``since`` or later."""
    partition, _, rest = name.partition("/")
    return partition.startswith("date=") and partition >= f"date={since.isoformat()}" and rest.endswith(SUFFIX)

"""Ground-truth feedback: which request ids the router knows, and what a feedback call means.

Owns: the bounded index of recent request ids (the id, version, role and time of the last
`capacity` primary requests this router process served; older ids are forgotten first, and a
restarted router starts empty), turning a `POST /v1/feedback` body (`{"requestId",
"groundTruth"}` or `{"items": [...]}`) into the `inference_log.FeedbackRecord`s written under
`feedback/` (see `mlkube.api.inference_log`; the router writes them with `capture.write_records`)
plus one result per item: 200 when recorded, 404 when the id is unknown, 400 when the item is
malformed, 413 when its ground truth is over `max_truth_bytes` serialised, 409 when the id
already has its label, and scoring accepted feedback against the prediction the version gave.

One label per request id, the first: `judge` answers 409 for an id whose entry is labeled (or
that an earlier item of the same body names), and the router claims the accepted ids
(`RequestIndex.claim`) before it awaits the write, releasing them if the write fails, so two
concurrent bodies cannot both label an id and a failed write can be retried. A null ground
truth is a label too (recorded, not scored). An entry is never replaced (`remember`), so a
request reusing an id cannot reset its label, and a restarted router knows no ids, so it cannot
take a second label for an old id either.

Scoring (the A/B test's quality counters): the index entry of a successful predict keeps a
reference to the raw response body the client got; nothing is parsed on the request path. When
feedback for the id arrives, the body is parsed (`agreement.predictions`) and the entry's body
dropped; the entry stays, marked scored, so feedback for the id counts once. Only a
response holding exactly one prediction is scored: a batch response of several rows cannot say
which row the ground truth is for, so its feedback is recorded but not scored (`unscored`), as
is feedback for an id whose body was not kept.

Memory: at most `capacity` entries of about 200 bytes, plus the kept bodies, which together
never exceed `response_budget` bytes (default 32 MiB; a body over `MAX_KEPT_RESPONSE` is never
kept). Once the budget is spent, new entries keep no body (their feedback is recorded, not
scored) until evictions and scoring free it. Default: about 20 MB of entries + 32 MiB of bodies.

Fresh ids (`RequestIds`) for requests that came without one, or with one the index already
knows: 128 random bits from the OS each, read 4 KiB at a time.

Must not: write to storage or know about HTTP (the router does both).
"""

from __future__ import annotations

import collections
import dataclasses
import os
from typing import Any

import orjson

from mlkube.api import inference_log
from mlkube.serving import agreement

DEFAULT_CAPACITY = 100_000
DEFAULT_RESPONSE_BUDGET = 32 * 1024 * 1024
MAX_KEPT_RESPONSE = 16 * 1024  # a single row's answer is far smaller; larger bodies are batches
DEFAULT_MAX_TRUTH_BYTES = 16 * 1024  # a label, a number, a small object: far below this


class FeedbackError(ValueError):
    """The feedback body as a whole is malformed; the message names the field."""


@dataclasses.dataclass(slots=True)
class Served:
    """A request the router answered. Never changed in place: `RequestIndex` replaces an entry
    (`dataclasses.replace`), so a reference handed out stays what it was (not frozen: a frozen
    dataclass costs twice the time to build, once per request)."""

    version: int
    role: str
    timestamp: float
    response: bytes | None = None  # the successful predict's body, until its feedback is scored
    scored: bool = False
    labeled: bool = False  # its (one) ground truth was accepted, or is being written


@dataclasses.dataclass(frozen=True)
class Scored:
    """One labeled prediction: what `version` answered and what the truth was."""

    version: int
    prediction: Any
    truth: Any
    response: bytes | None = dataclasses.field(default=None, compare=False)  # the answer, for its probabilities


class RequestIds:
    """Fresh request ids: 128 random bits from the OS each, like uuid4().hex without the object,
    read 4 KiB at a time instead of one system call per request."""

    CHUNK = 4096

    def __init__(self):
        self._random = b""
        self._position = 0

    def next(self) -> str:
        position = self._position
        if position + 16 > len(self._random):
            self._random, position = os.urandom(self.CHUNK), 0
        self._position = position + 16
        return self._random[position : position + 16].hex()


class RequestIndex:
    """The last `capacity` request ids served, oldest evicted first, with the bodies kept for
    scoring within `response_budget` bytes (see the module docstring)."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY, *, response_budget: int = DEFAULT_RESPONSE_BUDGET):
        if capacity < 1 or response_budget < 0:
            raise ValueError(f"request index: capacity must be >= 1 and response_budget >= 0, got {capacity}, {response_budget}")
        self.capacity = capacity
        self.response_budget = response_budget
        self.kept_bytes = 0
        self._entries: collections.OrderedDict[str, Served] = collections.OrderedDict()

    def remember(self, request_id: str, served: Served) -> bool:
        """Remember a served request; False (and nothing changes) when the id is already known.

        An entry is never replaced: a request that reuses an id (a client's choice) can neither
        take over another request's feedback nor reset a label. The router gives a request whose
        id it knows a fresh one, so this only refuses two concurrent requests with one new id."""
        if request_id in self._entries:
            return False
        body = served.response
        if body is not None:
            size = len(body)
            if size > MAX_KEPT_RESPONSE or self.kept_bytes + size > self.response_budget:
                served = dataclasses.replace(served, response=None)
            else:
                self.kept_bytes += size
        self._entries[request_id] = served
        if len(self._entries) > self.capacity:
            _, evicted = self._entries.popitem(last=False)
            if evicted.response is not None:
                self.kept_bytes -= len(evicted.response)
        return True

    def __contains__(self, request_id: str) -> bool:
        return request_id in self._entries

    def lookup(self, request_id: str) -> Served | None:
        return self._entries.get(request_id)

    def mark_scored(self, request_id: str) -> Served | None:
        """The entry as it was before it was marked scored (its body dropped; its place in the
        eviction order unchanged), or None for an unknown id."""
        served = self._entries.get(request_id)
        if served is None:
            return None
        if served.response is not None:
            self.kept_bytes -= len(served.response)
        self._entries[request_id] = dataclasses.replace(served, response=None, scored=True)
        return served

    def claim(self, request_ids: list[str]) -> None:
        """Mark the ids labeled: `judge` answers 409 to later feedback for them."""
        self._set_labeled(request_ids, True)

    def release(self, request_ids: list[str]) -> None:
        """Undo `claim` (the labels could not be stored): the ids take feedback again."""
        self._set_labeled(request_ids, False)

    def _set_labeled(self, request_ids: list[str], labeled: bool) -> None:
        for request_id in request_ids:
            served = self._entries.get(request_id)
            if served is not None:
                self._entries[request_id] = dataclasses.replace(served, labeled=labeled)

    def __len__(self) -> int:
        return len(self._entries)


def items_of(body: Any) -> tuple[list[Any], bool]:
    """The feedback items of a body and whether it was a batch; raises FeedbackError."""
    if not isinstance(body, dict):
        raise FeedbackError('feedback: expected {"requestId", "groundTruth"} or {"items": [...]}')
    if "items" in body:
        if not isinstance(body["items"], list) or not body["items"]:
            raise FeedbackError("items: expected a non-empty list of {requestId, groundTruth}")
        return body["items"], True
    return [body], False


def judge(
    items: list[Any], index: RequestIndex, *, now: float, max_truth_bytes: int = DEFAULT_MAX_TRUTH_BYTES
) -> tuple[list[inference_log.FeedbackRecord], list[dict]]:
    """The records to write and one result per item, in order. Reads the index, never changes it."""
    records, results, named = [], [], set()
    for i, item in enumerate(items):
        where = f"items[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("requestId"), str) or not item["requestId"]:
            results.append({"status": 400, "error": f"{where}.requestId: expected a non-empty string"})
            continue
        request_id = item["requestId"]
        if "groundTruth" not in item:
            results.append({"requestId": request_id, "status": 400, "error": f"{where}.groundTruth: missing"})
            continue
        served = index.lookup(request_id)
        if served is None:
            results.append(
                {
                    "requestId": request_id,
                    "status": 404,
                    "error": f"unknown requestId {request_id!r}: not among the last {index.capacity} requests this router served",
                }
            )
            continue
        if served.labeled or request_id in named:
            results.append(
                {
                    "requestId": request_id,
                    "status": 409,
                    "error": f"requestId {request_id!r} already has its ground truth: the first one sent is kept",
                }
            )
            continue
        size = _size(item["groundTruth"])
        if size is None or size > max_truth_bytes:
            what = "cannot be serialised as JSON" if size is None else f"is {size} bytes as JSON"
            results.append(
                {
                    "requestId": request_id,
                    "status": 413,
                    "error": f"{where}.groundTruth: {what}, over the limit of {max_truth_bytes} bytes; send the label itself",
                }
            )
            continue
        named.add(request_id)
        records.append(
            inference_log.FeedbackRecord(
                request_id=request_id,
                ground_truth=item["groundTruth"],
                version=served.version,
                role=served.role,
                request_timestamp=inference_log.record_time(served.timestamp),
                timestamp=inference_log.record_time(now),  # when the ground truth arrived: the latest answer wins
            )
        )
        results.append({"requestId": request_id, "status": 200})
    return records, results


def _size(value: Any) -> int | None:
    try:
        return len(orjson.dumps(value))
    except orjson.JSONEncodeError:
        return None


def score(records: list[inference_log.FeedbackRecord], index: RequestIndex) -> tuple[list[Scored], int]:
    """The labeled predictions of accepted feedback records, and how many records could not be
    scored (already scored, no body kept, not exactly one prediction, or a null ground truth).
    Marks each record's entry scored."""
    scored, unscored = [], 0
    for record in records:
        served = None if record.ground_truth is None else index.mark_scored(record.request_id)
        if served is None or served.scored or served.response is None:
            unscored += 1
            continue
        predictions = agreement.predictions(served.response)
        if predictions is None or len(predictions) != 1:
            unscored += 1
            continue
        scored.append(Scored(served.version, predictions[0], record.ground_truth, served.response))
    return scored, unscored

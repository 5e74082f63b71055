"""Ground-truth feedback: which request ids the router knows, and what a feedback call means.

Owns: the bounded index of recent request ids (the id, version, role and time of the last
`capacity` primary requests this router process served; older ids are forgotten first, and a
restarted router starts empty), and turning a `POST /v1/feedback` body (`{"requestId",
"groundTruth"}` or `{"items": [...]}`) into the records written under `feedback/` (see
`capture.py`) plus one result per item: 200 when recorded, 404 when the id is unknown, 400 when
the item is malformed.

Must not: write to storage or know about HTTP (the router does both).
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

from mlkube.serving import capture

DEFAULT_CAPACITY = 100_000


class FeedbackError(ValueError):
    """The feedback body as a whole is malformed; the message names the field."""


@dataclasses.dataclass(frozen=True)
class Served:
    version: int
    role: str
    timestamp: float


class RequestIndex:
    """The last `capacity` request ids served, oldest evicted first (about 200 bytes each)."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY):
        self.capacity = capacity
        self._entries: collections.OrderedDict[str, Served] = collections.OrderedDict()

    def remember(self, request_id: str, served: Served) -> None:
        self._entries[request_id] = served
        self._entries.move_to_end(request_id)
        if len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def lookup(self, request_id: str) -> Served | None:
        return self._entries.get(request_id)

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


def judge(items: list[Any], index: RequestIndex, *, now: float) -> tuple[list[dict], list[dict]]:
    """The records to write and one result per item, in order."""
    records, results = [], []
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
            results.append({
                "requestId": request_id, "status": 404,
                "error": f"unknown requestId {request_id!r}: not among the last {index.capacity} requests this router served",
            })
            continue
        records.append({
            "_ts": now,
            "requestId": request_id,
            "groundTruth": item["groundTruth"],
            "version": served.version,
            "role": served.role,
            "requestTimestamp": capture.rfc3339(served.timestamp),
            "timestamp": capture.rfc3339(now),  # when the ground truth arrived: the latest answer wins
        })
        results.append({"requestId": request_id, "status": 200})
    return records, results

"""The dashboard's memory: the API's objects as last seen, and the history the dashboard watched.

``Store`` holds every object of the watched kinds by (namespace, name), replaced whole by a list
and changed by watch events, exactly as the API server reports them; nothing is persisted (a
restarted dashboard starts from the API's current state). The one thing the API does not keep
is the past of a status, so the store records it while it watches, in bounded rings:

- per ModelDeployment, a ``TrafficSample`` each time its split, step, phase or verdict changes;
- per DriftMonitor, a ``DriftSample`` per analysis (each new ``status.lastCheckTime``), with every
  feature's score and the report written for that analysis.

Events are kept too, the newest ``events`` of them. Pure data: the caller passes the time of
each change; no I/O, no clock.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import math
from collections.abc import Iterable, Sequence
from typing import Any

from mlkube.common import timestamps

KINDS = ("mlprojects", "modelversions", "modeldeployments", "driftmonitors", "trainingjobs", "events")
"""The plurals the dashboard watches (``clients.k8s`` resources of the same names)."""
HISTORY = 240
EVENTS = 1000

Key = tuple[str, str]


@dataclasses.dataclass(frozen=True)
class TrafficSample:
    """A ModelDeployment's rollout at one moment."""

    at: str
    phase: str
    split: tuple[tuple[int, str, int], ...]
    """(version, role, percent) per served version."""
    step: int | None
    candidate: int | None
    verdict: str | None
    requests: int
    error_rate: float | None

    def same_as(self, other: TrafficSample) -> bool:
        return dataclasses.replace(self, at=other.at) == other


@dataclasses.dataclass(frozen=True)
class DriftSample:
    """One analysis of a DriftMonitor."""

    at: str
    """Its ``status.lastCheckTime``."""
    phase: str
    model_version: int | None
    samples: int | None
    drift_share: float | None
    scores: tuple[tuple[str, float | None, bool], ...]
    """(feature, severity, drifted) per feature: ``severity`` of its score, None without a threshold."""
    report_uri: str | None


class Store:
    """Objects by kind and (namespace, name), plus the watched history. See the module docstring."""

    def __init__(self, *, history: int = HISTORY, events: int = EVENTS) -> None:
        self._objects: dict[str, dict[Key, dict[str, Any]]] = {kind: {} for kind in KINDS}
        self._history = history
        self._events = events
        self.traffic: dict[Key, collections.deque[TrafficSample]] = {}
        self.drift: dict[Key, collections.deque[DriftSample]] = {}
        self.synced: set[str] = set()
        """The kinds whose first list has arrived."""

    def replace(self, kind: str, items: Iterable[dict[str, Any]], *, now: datetime.datetime) -> None:
        """The whole collection of ``kind`` from a list (objects not in it are gone)."""
        fresh = {_key(obj): obj for obj in items}
        self._objects[kind] = fresh
        for obj in fresh.values():
            self._record(kind, obj, now)
        self._trim(kind)
        self.synced.add(kind)

    def apply(self, kind: str, event_type: str, obj: dict[str, Any], *, now: datetime.datetime) -> None:
        """One watch event (ADDED, MODIFIED or DELETED; others are ignored)."""
        if event_type == "DELETED":
            self._objects[kind].pop(_key(obj), None)
        elif event_type in ("ADDED", "MODIFIED"):
            self._objects[kind][_key(obj)] = obj
            self._record(kind, obj, now)
            self._trim(kind)

    def all(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """The objects of ``kind`` (in ``namespace`` when given), by namespace and name."""
        return [obj for key, obj in sorted(self._objects[kind].items()) if namespace is None or key[0] == namespace]

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self._objects[kind].get((namespace, name))

    def _record(self, kind: str, obj: dict[str, Any], now: datetime.datetime) -> None:
        status = obj.get("status") or {}
        if kind == "modeldeployments":
            sample = traffic_sample(status, at=timestamps.format(now))
            ring = self.traffic.setdefault(_key(obj), collections.deque(maxlen=self._history))
            if not ring or not sample.same_as(ring[-1]):
                ring.append(sample)
        elif kind == "driftmonitors" and status.get("lastCheckTime"):
            ring = self.drift.setdefault(_key(obj), collections.deque(maxlen=self._history))
            if not ring or ring[-1].at != status["lastCheckTime"]:
                ring.append(drift_sample(status))

    def _trim(self, kind: str) -> None:
        """Events beyond the newest ``events`` are dropped (the API keeps them for an hour anyway)."""
        events = self._objects["events"]
        if kind == "events" and len(events) > self._events:
            for key, _ in sorted(events.items(), key=lambda item: event_time(item[1]))[: len(events) - self._events]:
                del events[key]


def traffic_sample(status: dict[str, Any], *, at: str) -> TrafficSample:
    analysis = status.get("analysis") or {}
    return TrafficSample(
        at=at,
        phase=status.get("phase") or "Pending",
        split=tuple((int(t["version"]), str(t["role"]), int(t["percent"])) for t in status.get("traffic") or ()),
        step=status.get("currentStep"),
        candidate=status.get("candidateVersion"),
        verdict=analysis.get("verdict"),
        requests=int(analysis.get("requests") or 0),
        error_rate=analysis.get("errorRate"),
    )


def drift_sample(status: dict[str, Any]) -> DriftSample:
    return DriftSample(
        at=status["lastCheckTime"],
        phase=status.get("phase") or "Pending",
        model_version=status.get("modelVersion"),
        samples=status.get("samples"),
        drift_share=status.get("driftShare"),
        scores=tuple(
            (str(f["name"]), severity(str(f.get("method", "")), float(f["score"]), f.get("threshold")), bool(f.get("drifted")))
            for f in status.get("features") or ()
        ),
        report_uri=status.get("reportUri"),
    )


P_VALUE_METHODS = frozenset({"ks", "chi2"})
SMALLEST_P = 1e-300


def severity(method: str, score: float, threshold: float | None) -> float | None:
    """How far past its threshold a feature's score is, 1.0 at the threshold, on one scale for p-values
    (``log p / log threshold``: lower p is worse) and distances (``score / threshold``): the scale
    ``ml.drift_methods.severity`` ranks features on, here without the ML stack. None without a threshold."""
    if not threshold or threshold <= 0 or (method in P_VALUE_METHODS and threshold >= 1):
        return None
    if method in P_VALUE_METHODS:
        return math.log(max(score, SMALLEST_P)) / math.log(threshold)
    return score / threshold


def event_time(event: dict[str, Any]) -> str:
    """The newest time an Event names (lastTimestamp, eventTime, or its creation), for ordering."""
    meta = event.get("metadata") or {}
    return event.get("lastTimestamp") or event.get("eventTime") or meta.get("creationTimestamp") or ""


def _key(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", meta.get("name") or ""


def features_over_time(samples: Sequence[DriftSample]) -> list[tuple[str, list[float | None]]]:
    """Per feature, its severity at each sample (None where an analysis did not score it), features
    ordered by their highest severity so the ones that moved most come first."""
    names: dict[str, float] = {}
    for sample in samples:
        for name, score, _ in sample.scores:
            if score is not None:
                names[name] = max(names.get(name, score), score)
    ordered = sorted(names, key=lambda name: (-names[name], name))
    return [(name, [dict((n, s) for n, s, _ in sample.scores).get(name) for sample in samples]) for name in ordered]

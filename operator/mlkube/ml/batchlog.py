"""Scored batch rows as inference-log records, so drift analysis reads them like served traffic.

A shard keeps a uniform sample of its scored rows (reservoir sampling: memory bounded by the
sample, whatever the input) and writes it, when it ends, as one JSONL object of
``api.inference_log.CaptureRecord`` lines in the log of the DriftMonitor's ModelDeployment
(``api.scoring.Capture``): one record per row, a V1 request of one instance and its answer, role
``batch``, stamped with the run's start. The object's name is fixed by the run and the shard, so
a retried shard replaces its sample instead of adding a second one.

Kubernetes-free; storage through ``storage`` only.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from mlkube.api import inference_log, scoring
from mlkube.common import timestamps
from mlkube.ml import storage


class Sample:
    """A uniform sample of at most ``size`` scored rows (Vitter's algorithm R, seeded)."""

    def __init__(self, size: int, *, seed: int) -> None:
        self.size = size
        self.seen = 0
        self.slots: list[tuple[dict[str, Any], Any, dict[str, float] | None] | None] = [None] * size
        self._random = np.random.default_rng(seed)

    def offer(self, frame: pd.DataFrame, labels: np.ndarray, proba: np.ndarray | None, classes: list[str] | None) -> None:
        """Consider the scored rows of one chunk: their features, labels and probabilities."""
        count = len(frame)
        if count == 0 or self.size == 0:
            return
        positions = np.arange(self.seen, self.seen + count)
        draws = self._random.integers(0, positions + 1)
        slots = np.where(positions < self.size, positions, draws)
        chosen = np.flatnonzero(slots < self.size)
        if len(chosen):
            rows = frame.iloc[chosen].to_dict("records")
            for offset, row in zip(chosen.tolist(), rows):
                probabilities = dict(zip(classes, proba[offset].tolist())) if proba is not None and classes else None
                self.slots[int(slots[offset])] = ({k: _plain(v) for k, v in row.items()}, _plain(labels[offset]), probabilities)
        self.seen += count

    def rows(self) -> list[tuple[dict[str, Any], Any, dict[str, float] | None]]:
        return [row for row in self.slots if row is not None]


def shard_size(capture: scoring.Capture, shards: int) -> int:
    """The rows one shard samples: its share of the rows the run writes."""
    return math.ceil(capture.rows / shards)


def write(
    sample: Sample, request: scoring.ScoringRequest, *, index: int, token: str, options: storage.Options | None = None
) -> str | None:
    """Write ``sample`` as shard ``index``'s inference-log object; its URI (None: nothing to write)."""
    capture = request.capture
    rows = sample.rows()
    if capture is None or not rows:
        return None
    started = request.run.started_at
    lines = []
    for number, (instance, label, probabilities) in enumerate(rows):
        response: dict[str, Any] = {"predictions": [label]}
        if probabilities is not None:
            response["probabilities"] = [probabilities]
        record = inference_log.CaptureRecord(
            request_id=f"{request.run.name}-{token}-{index}-{number}",
            timestamp=started,
            namespace=capture.namespace,
            deployment=capture.deployment,
            project=capture.project,
            version=request.model.version,
            role=scoring.ROLE,
            protocol="v1",
            verb="predict",
            status=200,
            request={"instances": [instance]},
            response=response,
        )
        lines.append(json.dumps(record.wire(), allow_nan=False))
    name = inference_log.object_name(
        date=started[:10], written=timestamps.parse(started).timestamp(), host=request.run.name, writer=token, sequence=index
    )
    uri = storage.join(
        capture.uri,
        inference_log.prefix(inference_log.INFERENCE_LOG, namespace=capture.namespace, deployment=capture.deployment) + name,
    )
    storage.write_bytes(uri, ("\n".join(lines) + "\n").encode(), options=options)
    return uri


def _plain(value: Any) -> Any:
    """A JSON value: NumPy scalars as Python ones, NaN as null."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value

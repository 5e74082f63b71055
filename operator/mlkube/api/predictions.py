"""The shape of a prediction record: what one row's prediction is when it is more than a value.

Tasks whose prediction has several parts answer one JSON object per row (KServe V1
`{"predictions": [{"anomaly": 1, "score": 0.83}]}`), with the task's fields in a fixed order;
the FIRST field is the prediction proper: the value that prediction drift, agreement between
versions, feedback outcomes and the reference sample (`__prediction__`) use. In V2 the first
field is the `predict` output (its `parameters.field` names it) and every other field is an
output of its own name. The model server writes this shape, the router and the inference log
pass it through unchanged, and drift analysis reads it back (`mlkube.ml.traffic`).

Must not: import anything but the standard library.
"""

from __future__ import annotations

from typing import Any

FIELDS: dict[str, tuple[str, ...]] = {
    "anomaly_detection": ("anomaly", "score"),
    "clustering": ("cluster", "distance"),
}
"""The record fields of each task that answers records, the prediction first."""


def is_record(value: Any) -> bool:
    """Whether one row's prediction is a record (a non-empty JSON object)."""
    return isinstance(value, dict) and bool(value)


def primary(value: Any) -> Any:
    """The prediction proper of one row: a record's first field, or the value itself."""
    return next(iter(value.values())) if is_record(value) else value

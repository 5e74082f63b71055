"""Whether two model versions gave the same answer to the same request, and whether a
prediction matches the ground truth.

Owns: extracting the predictions from a KServe V1 (`predictions`) or V2 (the `predict` output,
else the first output) response body, and comparing them. Labels must be equal; numbers (a
regressor's values) agree when within 5 % of each other (`math.isclose(rel_tol=0.05)`), so a
retrained regressor is not counted as disagreeing over rounding; integers (a classifier's
classes) only when equal. A pair agrees when every row agrees. A prediction is correct under
the same rule; a ground truth sent as a string matches a numeric prediction with the same text
("1" and 1). A record prediction (`{"anomaly": 1, "score": 0.83}`, see `mlkube.api.predictions`)
is compared by its first field, the prediction proper. Must not: do I/O or know about HTTP.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from mlkube.api import predictions as records

RELATIVE_TOLERANCE = 0.05


def predictions(body: bytes) -> list[Any] | None:
    """The predictions in a V1 or V2 response body, or None when it holds none."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    if isinstance(doc.get("predictions"), list):
        return [records.primary(p) for p in doc["predictions"]]
    outputs = doc.get("outputs")
    if isinstance(outputs, list) and outputs:
        chosen = next((o for o in outputs if isinstance(o, dict) and o.get("name") == "predict"), outputs[0])
        data = chosen.get("data") if isinstance(chosen, dict) else None
        return data if isinstance(data, list) else None
    return None


def agrees(first: bytes, second: bytes) -> bool | None:
    """True/False when both bodies hold comparable predictions, None when they cannot be compared."""
    return same_predictions(predictions(first), predictions(second))


def same_predictions(a: list[Any] | None, b: list[Any] | None) -> bool | None:
    """Whether two lists of predictions agree row by row; None when they cannot be compared."""
    if a is None or b is None or len(a) != len(b):
        return None
    return all(_same(x, y) for x, y in zip(a, b))


def _same(x: Any, y: Any) -> bool:
    numbers = (int, float)
    if isinstance(x, numbers) and isinstance(y, numbers) and not isinstance(x, bool) and not isinstance(y, bool):
        if isinstance(x, int) and isinstance(y, int):
            return x == y
        return math.isclose(x, y, rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-12)
    return x == y


def outcome(prediction: Any, truth: Any) -> tuple[bool, float | None]:
    """(correct, prediction - truth): the error only when both are numbers (a regressor's)."""
    prediction = records.primary(prediction)
    if _is_number(prediction) and _is_number(truth):
        return _same(prediction, truth), float(prediction) - float(truth)
    if (isinstance(truth, str) and _is_number(prediction)) or (isinstance(prediction, str) and _is_number(truth)):
        return str(prediction) == str(truth), None
    return _same(prediction, truth), None


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

"""Captured traffic as a table: the router's inference log joined with ground-truth feedback.

Reads the records and layout of ``mlkube.api.inference_log``::

    {uri}/inference-log/{namespace}/{deployment}/date=YYYY-MM-DD/*.jsonl
    {uri}/feedback/{namespace}/{deployment}/date=YYYY-MM-DD/*.jsonl

Every line is validated with the record model (the writers do not validate, see
``inference_log``); a line that is not a record is a ``DataError`` naming the object and line.
One row per predicted instance: the feature columns (named by the model card's feature
schema), ``__prediction__``, ``__probabilities__`` (classifiers: ``{class: probability}`` in the
served order, else missing), ``__record__`` (a model that answers records, see
``mlkube.api.predictions``: the row's whole record, whose first field is ``__prediction__``; else
missing), ``__target__`` (missing until feedback arrives), ``__request_id__``,
``__version__``, ``__role__`` and ``__time__``. Only successful predictions count. Kubernetes-free.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable
from typing import Any, TypeVar

import pandas as pd
import pydantic

from mlkube.api import errors as api_errors
from mlkube.api import inference_log
from mlkube.api import predictions as prediction_records
from mlkube.common import timestamps
from mlkube.ml import errors, storage

META_COLUMNS = (
    "__prediction__",
    "__probabilities__",
    "__record__",
    "__target__",
    "__request_id__",
    "__version__",
    "__role__",
    "__time__",
)


Record = TypeVar("Record", inference_log.CaptureRecord, inference_log.FeedbackRecord)


def _files(
    root: str,
    kind: inference_log.LogKind,
    namespace: str,
    deployment: str,
    since: datetime.datetime,
    *,
    options: storage.Options | None,
) -> list[str]:
    base = storage.join(root, inference_log.prefix(kind, namespace=namespace, deployment=deployment))
    names = storage.list_prefix(base, options=options)
    since_date = datetime.date.fromisoformat(timestamps.format(since)[:10])  # partitions are UTC dates
    return sorted((storage.join(base, n) for n in names if inference_log.is_since(n, since=since_date)), reverse=True)


def records(model: type[Record], files: Iterable[str], *, options: storage.Options | None = None) -> Iterable[Record]:
    """The records in ``files``, each line validated with ``model``; raises ``DataError`` on a line that is not one."""
    for uri in files:
        for number, line in enumerate(storage.read_bytes(uri, options=options).splitlines(), start=1):
            if not line.strip():
                continue
            try:
                yield model.model_validate_json(line)
            except pydantic.ValidationError as e:
                raise errors.DataError(
                    f"{uri}, line {number}: not a {model.__name__}: {api_errors.describe(e, root='record')}"
                ) from e


def _captured(
    root: str, namespace: str, deployment: str, since: datetime.datetime, *, options: storage.Options | None
) -> Iterable[inference_log.CaptureRecord]:
    files = _files(root, inference_log.INFERENCE_LOG, namespace, deployment, since, options=options)
    return records(inference_log.CaptureRecord, files, options=options)


def _rows(record: inference_log.CaptureRecord, features: list[str]) -> list[dict[str, Any]]:
    """One row per instance of a captured predict call."""
    request, response = record.request, record.response
    if not isinstance(request, dict) or not isinstance(response, dict):
        return []
    if "instances" in request:
        instances = request["instances"]
        rows = [dict(i) if isinstance(i, dict) else dict(zip(features, i)) for i in instances]
        predictions = response.get("predictions", [])
        probabilities = response.get("probabilities") or [None] * len(predictions)
    elif "inputs" in request:
        rows = _v2_rows(request["inputs"], features)
        predictions = _v2_records(response.get("outputs", []))
        if predictions is None:
            predictions = next((o.get("data", []) for o in response.get("outputs", []) if o.get("name") == "predict"), [])
        probabilities = _v2_probabilities(response.get("outputs", []), len(predictions))
    else:
        return []
    if len(predictions) != len(rows) or len(probabilities) != len(rows):
        return []
    for row, prediction, probability in zip(rows, predictions, probabilities):
        row.update(
            {
                "__prediction__": prediction_records.primary(prediction),
                "__probabilities__": probability,
                "__record__": prediction if prediction_records.is_record(prediction) else None,
                "__request_id__": record.request_id,
                "__version__": record.version,
                "__role__": record.role,
                "__time__": record.timestamp,
            }
        )
    return rows


def _v2_rows(inputs: list[dict[str, Any]], features: list[str]) -> list[dict[str, Any]]:
    if len(inputs) == 1 and len(inputs[0].get("shape", [])) == 2:
        data, (n, width) = inputs[0]["data"], inputs[0]["shape"]
        flat = data if not data or not isinstance(data[0], list) else [v for row in data for v in row]
        return [dict(zip(features, flat[i * width : (i + 1) * width])) for i in range(n)]
    columns = {i["name"]: i.get("data", []) for i in inputs}
    count = max((len(v) for v in columns.values()), default=0)
    return [{name: values[k] for name, values in columns.items() if k < len(values)} for k in range(count)]


def _v2_records(outputs: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """Per instance the record of a V2 response whose ``predict`` output names its field, else None."""
    predict = next((o for o in outputs if o.get("name") == "predict"), None)
    first = ((predict or {}).get("parameters") or {}).get("field")
    if not isinstance(first, str):
        return None
    columns = {first: predict.get("data", [])}
    columns.update({o["name"]: o.get("data", []) for o in outputs if o is not predict and isinstance(o.get("name"), str)})
    count = len(columns[first])
    if any(len(values) != count for values in columns.values()):
        return None
    return [{name: values[i] for name, values in columns.items()} for i in range(count)]


def _v2_probabilities(outputs: list[dict[str, Any]], count: int) -> list[dict[str, float] | None]:
    """Per instance ``{class: probability}`` from the V2 ``probabilities`` output (classes in its parameters)."""
    output = next((o for o in outputs if o.get("name") == "probabilities"), None)
    try:
        classes = json.loads((output or {}).get("parameters", {}).get("classes", "null"))
    except (TypeError, ValueError):
        classes = None
    if not output or not isinstance(classes, list) or not classes:
        return [None] * count
    data = output.get("data", [])
    flat = data if not data or not isinstance(data[0], list) else [v for row in data for v in row]
    width = len(classes)
    if len(flat) != count * width:
        return [None] * count
    return [{str(c): flat[i * width + k] for k, c in enumerate(classes)} for i in range(count)]


def window(
    root: str,
    *,
    namespace: str,
    deployment: str,
    features: list[str],
    since: datetime.datetime,
    size: int,
    versions: list[int] | None = None,
    options: storage.Options | None = None,
) -> pd.DataFrame:
    """The most recent ``size`` predicted instances since ``since``, with their feedback."""
    rows: list[dict[str, Any]] = []
    cutoff = timestamps.format(since)[:19]  # record times are UTC with Z, so they compare as text
    for record in _captured(root, namespace, deployment, since, options=options):
        if record.status != 200 or record.verb != "predict":
            continue
        if record.role in ("shadow", "compare"):  # mirror copies, not client requests
            continue
        if versions is not None and record.version not in versions:
            continue
        if record.timestamp[:19] < cutoff:
            continue
        rows.extend(_rows(record, features))
    table = pd.DataFrame(rows, columns=[*features, *(c for c in META_COLUMNS if c != "__target__")])
    table = table.sort_values("__time__", kind="stable").tail(size).reset_index(drop=True)
    labels = feedback(root, namespace=namespace, deployment=deployment, since=since, options=options)
    table["__target__"] = table["__request_id__"].map(labels)
    return table


def instance_keys(
    root: str, *, namespace: str, deployment: str, since: datetime.datetime, options: storage.Options | None = None
) -> list[str]:
    """Feature names the clients sent (keys of object instances since ``since``), in first-seen order."""
    keys: dict[str, None] = {}
    for record in _captured(root, namespace, deployment, since, options=options):
        request = record.request
        for instance in (request.get("instances") or []) if isinstance(request, dict) else []:
            if isinstance(instance, dict):
                keys.update(dict.fromkeys(instance))
    return list(keys)


def feedback(
    root: str, *, namespace: str, deployment: str, since: datetime.datetime, options: storage.Options | None = None
) -> dict[str, Any]:
    """Ground truth by request id (the latest answer wins)."""
    labels: dict[str, Any] = {}
    files = _files(root, inference_log.FEEDBACK, namespace, deployment, since, options=options)
    for record in sorted(records(inference_log.FeedbackRecord, files, options=options), key=lambda r: r.timestamp):
        labels[record.request_id] = record.ground_truth
    return labels


def labeled(
    root: str,
    *,
    namespace: str,
    deployments: list[str],
    features: list[str],
    target: str,
    since: datetime.datetime,
    options: storage.Options | None = None,
) -> pd.DataFrame:
    """Captured instances that received ground truth, as training rows (features + target), oldest first."""
    frames = []
    for deployment in deployments:
        table = window(
            root, namespace=namespace, deployment=deployment, features=features, since=since, size=10**9, options=options
        )
        table = table[table["__target__"].notna()]
        frames.append(table[[*features, "__time__"]].assign(**{target: table["__target__"].to_numpy()}))
    if not frames:
        return pd.DataFrame(columns=[*features, target])
    rows = pd.concat(frames, ignore_index=True).sort_values("__time__", kind="stable")
    return rows.drop(columns="__time__").reset_index(drop=True)

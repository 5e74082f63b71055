"""Captured traffic as a table: the router's inference log joined with ground-truth feedback.

Reads the layout the router writes (see ``mlkube.serving.capture``)::

    {uri}/inference-log/{namespace}/{deployment}/date=YYYY-MM-DD/*.jsonl
    {uri}/feedback/{namespace}/{deployment}/date=YYYY-MM-DD/*.jsonl

One row per predicted instance: the feature columns (named by the model card's feature
schema), ``__prediction__``, ``__probabilities__`` (classifiers: ``{class: probability}`` in the
served order, else missing), ``__target__`` (missing until feedback arrives), ``__request_id__``,
``__version__``, ``__role__`` and ``__time__``. Only successful predictions count. Kubernetes-free.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable
from typing import Any

import pandas as pd

from mlkube.ml import storage

INFERENCE_LOG = "inference-log"
FEEDBACK = "feedback"
META_COLUMNS = ("__prediction__", "__probabilities__", "__target__", "__request_id__", "__version__", "__role__", "__time__")


def _files(root: str, kind: str, namespace: str, deployment: str, since: datetime.datetime, *,
           options: storage.Options | None) -> list[str]:
    base = storage.join(root, f"{kind}/{namespace}/{deployment}/")
    names = storage.list_prefix(base, options=options)
    first = f"date={since.date().isoformat()}"
    return sorted((storage.join(base, n) for n in names if n.split("/", 1)[0] >= first and n.endswith(".jsonl")), reverse=True)


def _records(files: Iterable[str], *, options: storage.Options | None) -> Iterable[dict[str, Any]]:
    for uri in files:
        for line in storage.read_bytes(uri, options=options).splitlines():
            if line.strip():
                yield json.loads(line)


def _rows(record: dict[str, Any], features: list[str]) -> list[dict[str, Any]]:
    """One row per instance of a captured predict call."""
    request, response = record.get("request"), record.get("response")
    if not isinstance(request, dict) or not isinstance(response, dict):
        return []
    if "instances" in request:
        instances = request["instances"]
        rows = [dict(i) if isinstance(i, dict) else dict(zip(features, i)) for i in instances]
        predictions = response.get("predictions", [])
        probabilities = response.get("probabilities") or [None] * len(predictions)
    elif "inputs" in request:
        rows = _v2_rows(request["inputs"], features)
        predictions = next((o.get("data", []) for o in response.get("outputs", []) if o.get("name") == "predict"), [])
        probabilities = _v2_probabilities(response.get("outputs", []), len(predictions))
    else:
        return []
    if len(predictions) != len(rows) or len(probabilities) != len(rows):
        return []
    for row, prediction, probability in zip(rows, predictions, probabilities):
        row.update({"__prediction__": prediction, "__probabilities__": probability, "__request_id__": record.get("requestId"),
                    "__version__": record.get("version"), "__role__": record.get("role"), "__time__": record.get("timestamp")})
    return rows


def _v2_rows(inputs: list[dict[str, Any]], features: list[str]) -> list[dict[str, Any]]:
    if len(inputs) == 1 and len(inputs[0].get("shape", [])) == 2:
        data, (n, width) = inputs[0]["data"], inputs[0]["shape"]
        flat = data if not data or not isinstance(data[0], list) else [v for row in data for v in row]
        return [dict(zip(features, flat[i * width:(i + 1) * width])) for i in range(n)]
    columns = {i["name"]: i.get("data", []) for i in inputs}
    count = max((len(v) for v in columns.values()), default=0)
    return [{name: values[k] for name, values in columns.items() if k < len(values)} for k in range(count)]


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


def window(root: str, *, namespace: str, deployment: str, features: list[str], since: datetime.datetime,
           size: int, versions: list[int] | None = None, options: storage.Options | None = None) -> pd.DataFrame:
    """The most recent ``size`` predicted instances since ``since``, with their feedback."""
    rows: list[dict[str, Any]] = []
    cutoff = since.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    for record in _records(_files(root, INFERENCE_LOG, namespace, deployment, since, options=options), options=options):
        if record.get("status") != 200 or record.get("verb", "predict") != "predict":
            continue
        if record.get("role") in ("shadow", "compare"):  # mirror copies, not client requests
            continue
        if versions is not None and record.get("version") not in versions:
            continue
        if (record.get("timestamp") or "")[:19] < cutoff:
            continue
        rows.extend(_rows(record, features))
    table = pd.DataFrame(rows, columns=[*features, *(c for c in META_COLUMNS if c != "__target__")])
    table = table.sort_values("__time__", kind="stable").tail(size).reset_index(drop=True)
    labels = feedback(root, namespace=namespace, deployment=deployment, since=since, options=options)
    table["__target__"] = table["__request_id__"].map(labels)
    return table


def instance_keys(root: str, *, namespace: str, deployment: str, since: datetime.datetime,
                  options: storage.Options | None = None) -> list[str]:
    """Feature names the clients sent (keys of object instances since ``since``), in first-seen order."""
    keys: dict[str, None] = {}
    for record in _records(_files(root, INFERENCE_LOG, namespace, deployment, since, options=options), options=options):
        request = record.get("request")
        for instance in (request.get("instances") or []) if isinstance(request, dict) else []:
            if isinstance(instance, dict):
                keys.update(dict.fromkeys(instance))
    return list(keys)


def feedback(root: str, *, namespace: str, deployment: str, since: datetime.datetime,
             options: storage.Options | None = None) -> dict[str, Any]:
    """Ground truth by request id (the latest answer wins)."""
    labels: dict[str, Any] = {}
    files = _files(root, FEEDBACK, namespace, deployment, since, options=options)
    for record in sorted(_records(files, options=options), key=lambda r: r.get("timestamp") or ""):
        if record.get("requestId") is not None:
            labels[record["requestId"]] = record.get("groundTruth")
    return labels


def labeled(root: str, *, namespace: str, deployments: list[str], features: list[str], target: str,
            since: datetime.datetime, options: storage.Options | None = None) -> pd.DataFrame:
    """Captured instances that received ground truth, as training rows (features + target), oldest first."""
    frames = []
    for deployment in deployments:
        table = window(root, namespace=namespace, deployment=deployment, features=features, since=since,
                       size=10**9, options=options)
        table = table[table["__target__"].notna()]
        frames.append(table[[*features, "__time__"]].assign(**{target: table["__target__"].to_numpy()}))
    if not frames:
        return pd.DataFrame(columns=[*features, target])
    rows = pd.concat(frames, ignore_index=True).sort_values("__time__", kind="stable")
    return rows.drop(columns="__time__").reset_index(drop=True)

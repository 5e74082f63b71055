"""Bulk labeling of captured traffic: ``mlkube feedback export`` and ``mlkube feedback import``.

Owns the offline side of ground truth. ``export`` lists the captured predictions of a
ModelDeployment that are still waiting for ground truth (one row per instance: ``requestId``,
``timestamp``, ``version``, ``prediction``, an empty ``groundTruth`` column, then the features),
as CSV or Parquet, for a labeling tool or a person. ``import`` reads a CSV or Parquet file of
``requestId`` and ``groundTruth`` (for example the exported file with its ``groundTruth`` column
filled in) and writes the labels of known request ids as ``inference_log.FeedbackRecord``s to the
feedback layout the router writes (``{storage}/feedback/{namespace}/{deployment}/date=.../*.jsonl``,
see ``mlkube.api.inference_log`` and docs/serving.md), so the DriftMonitor and retraining read them
exactly like online feedback. Unknown request ids are reported and not written.

Must not: talk to the router or change the inference log. The only cluster reads are in
:func:`locate`, which finds where a ModelDeployment's project stores its traffic, through the
operator's own client (``mlkube.clients.k8s``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import math
import os
import pathlib
import socket
import sys
import time
from typing import Any

import pandas as pd
import pydantic

from mlkube.api import base, inference_log, kinds
from mlkube.api import errors as api_errors
from mlkube.clients import k8s
from mlkube.ml import errors, storage, traffic
from mlkube.serving import capture

REQUEST_ID, GROUND_TRUTH = "requestId", "groundTruth"
FORMATS = (".csv", ".parquet")


class LabelingError(ValueError):
    """The input cannot be used; the message names the file, column or row and what to fix."""


@dataclasses.dataclass(frozen=True)
class Traffic:
    """Where one ModelDeployment's captured traffic lives."""

    storage: str
    """The project's storage root (``spec.storage.uri``)."""
    namespace: str
    deployment: str
    endpoint: str | None = None
    """S3-compatible endpoint (``spec.storage.endpoint``)."""

    @property
    def options(self) -> storage.Options:
        return storage.Options(endpoint=self.endpoint)


@dataclasses.dataclass(frozen=True)
class ImportReport:
    """What an import did."""

    written: int
    """Labels written to the feedback layout."""
    unlabeled: int
    """Rows whose ground truth was empty (skipped)."""
    unknown: list[str]
    """Request ids that are not in the captured traffic (not written)."""
    uri: str | None
    """The feedback object written, if any."""


def locate(deployment: str, namespace: str, *, kubeconfig: str | None = None) -> Traffic:
    """The storage of ``deployment``'s project, read from the cluster (ModelDeployment, then MLProject)."""
    return asyncio.run(_locate(deployment, namespace, kubeconfig=kubeconfig))


async def _locate(deployment: str, namespace: str, *, kubeconfig: str | None) -> Traffic:
    client = k8s.Client(k8s.Credentials.load(kubeconfig))
    where = f"{namespace}/{deployment}"
    try:
        mdep = await client.get(k8s.MODELDEPLOYMENTS, deployment, namespace)
        if mdep is None:
            raise LabelingError(f"ModelDeployment {where} not found")
        project = kinds.MODELDEPLOYMENT.parse_spec(mdep["spec"]).project_ref
        mlp = await client.get(k8s.MLPROJECTS, project, namespace)
        if mlp is None:
            raise LabelingError(f"MLProject {namespace}/{project} of ModelDeployment {where} not found")
        stored = kinds.MLPROJECT.parse_spec(mlp["spec"]).storage
    except k8s.ApiError as error:
        raise LabelingError(f"cannot read the ModelDeployment {where} or its MLProject: {error.status} {error.reason}") from error
    except pydantic.ValidationError as error:
        raise LabelingError(f"the ModelDeployment {where} or its MLProject: {api_errors.describe(error)}") from error
    except OSError as error:
        raise LabelingError(f"cannot reach the Kubernetes API server: {error}") from error
    finally:
        await client.close()
    return Traffic(storage=stored.uri, namespace=namespace, deployment=deployment, endpoint=stored.endpoint)


def pending(source: Traffic, *, features: list[str] | None, since: datetime.datetime) -> pd.DataFrame:
    """Captured predictions since ``since`` without ground truth, oldest first, in the export's columns."""
    features = features if features is not None else _captured_features(source, since)
    table = traffic.window(
        source.storage,
        namespace=source.namespace,
        deployment=source.deployment,
        features=features,
        since=since,
        size=10**9,
        options=source.options,
    )
    table = table[table["__target__"].isna()]
    return pd.DataFrame(
        {
            REQUEST_ID: table["__request_id__"].to_numpy(),
            "timestamp": table["__time__"].to_numpy(),
            "version": table["__version__"].to_numpy(),
            "prediction": table["__prediction__"].to_numpy(),
            GROUND_TRUTH: pd.Series([None] * len(table), dtype="object"),
            **{name: table[name].to_numpy() for name in features},
        }
    )


def export(source: Traffic, output: pathlib.Path, *, since: datetime.datetime, features: list[str] | None = None) -> int:
    """Write the pending predictions to ``output`` (.csv or .parquet); returns the number of rows."""
    table = pending(source, features=features, since=since)
    suffix = _format_of(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        table.to_csv(output, index=False)
    else:
        table.to_parquet(output, index=False)
    return len(table)


def read_labels(path: pathlib.Path) -> tuple[dict[str, Any], int]:
    """Ground truth by request id from a CSV or Parquet file, and the count of rows left unlabeled."""
    suffix = _format_of(path)
    try:
        # CSV cells stay text here and are typed by _json_value, so "1" and "1.0" are not confused.
        table = pd.read_csv(path, dtype=str, keep_default_na=False) if suffix == ".csv" else pd.read_parquet(path)
    except (OSError, ValueError) as error:
        raise LabelingError(f"{path}: cannot read it as {suffix[1:]}: {error}") from error
    missing = [c for c in (REQUEST_ID, GROUND_TRUTH) if c not in table.columns]
    if missing:
        raise LabelingError(
            f"{path}: missing column(s) {', '.join(missing)}; the file needs {REQUEST_ID} and {GROUND_TRUTH} "
            f"(columns found: {', '.join(map(str, table.columns))})"
        )
    labels: dict[str, Any] = {}
    unlabeled = 0
    for row, (request_id, truth) in enumerate(zip(table[REQUEST_ID], table[GROUND_TRUTH]), start=2):
        if not isinstance(request_id, str) or not request_id.strip():
            raise LabelingError(f"{path}: row {row}: {REQUEST_ID} is empty")
        value = _json_value(truth)
        if value is None:
            unlabeled += 1
            continue
        if request_id in labels and labels[request_id] != value:
            raise LabelingError(
                f"{path}: row {row}: request {request_id} has two ground truths, {labels[request_id]!r} and "
                f"{value!r}; a request has one (label requests of one instance each)"
            )
        labels[request_id] = value
    return labels, unlabeled


def import_labels(source: Traffic, path: pathlib.Path, *, since: datetime.datetime, now: float | None = None) -> ImportReport:
    """Write the labels in ``path`` for request ids captured since ``since``; report the unknown ones."""
    labels, unlabeled = read_labels(path)
    served = _served(source, since)
    now = time.time() if now is None else now
    records, unknown = [], []
    for request_id, truth in labels.items():
        meta = served.get(request_id)
        if meta is None:
            unknown.append(request_id)
            continue
        records.append(
            inference_log.FeedbackRecord(
                request_id=request_id,
                ground_truth=truth,
                version=meta["version"],
                role=meta["role"],
                request_timestamp=meta["time"],
                timestamp=inference_log.record_time(now),
            )
        )
    uris = []
    if records:
        uris = capture.write_records(
            source.storage,
            inference_log.FEEDBACK,
            records,
            namespace=source.namespace,
            deployment=source.deployment,
            options=source.options,
            host=f"import-{socket.gethostname()}-{os.getpid()}",
        )
    return ImportReport(written=len(records), unlabeled=unlabeled, unknown=unknown, uri=uris[0] if uris else None)


def _served(source: Traffic, since: datetime.datetime) -> dict[str, dict[str, Any]]:
    """Version, role and time of each captured primary prediction since ``since``, by request id."""
    table = traffic.window(
        source.storage,
        namespace=source.namespace,
        deployment=source.deployment,
        features=[],
        since=since,
        size=10**9,
        options=source.options,
    )
    return {
        rid: {"version": _plain(v), "role": r, "time": t}
        for rid, v, r, t in zip(table["__request_id__"], table["__version__"], table["__role__"], table["__time__"])
    }


def _captured_features(source: Traffic, since: datetime.datetime) -> list[str]:
    return traffic.instance_keys(
        source.storage, namespace=source.namespace, deployment=source.deployment, since=since, options=source.options
    )


def _format_of(path: pathlib.Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise LabelingError(f"{path}: unsupported file type {suffix or '(none)'!r}; use .csv or .parquet")
    return suffix


def _json_value(value: Any) -> Any:
    """A ground truth as the feedback endpoint would receive it in JSON; None when empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text
    return _plain(value)


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value JSON can hold."""
    return value.item() if hasattr(value, "item") else value


def command(args: Any) -> int:
    """``mlkube feedback export|import`` with parsed arguments (see ``mlkube.cli``); the exit code."""
    try:
        since = datetime.datetime.now(datetime.UTC) - base.parse_duration(args.since)
    except ValueError as error:
        print(f"error: --since: {error}", file=sys.stderr)
        return 2
    try:
        if args.storage:
            source = Traffic(storage=args.storage, namespace=args.namespace, deployment=args.deployment, endpoint=args.endpoint)
        else:
            source = locate(args.deployment, args.namespace, kubeconfig=args.kubeconfig)
        if args.feedback_command == "export":
            rows = export(source, args.output, since=since)
            print(
                f"wrote {rows} captured request(s) waiting for ground truth to {args.output}; fill in {GROUND_TRUTH} and run "
                f"`mlkube feedback import {args.output} -d {args.deployment} -n {args.namespace}`"
            )
            return 0
        report = import_labels(source, args.file, since=since)
    except (LabelingError, errors.MLError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"imported {report.written} ground truth label(s)"
        + (f" to {report.uri}" if report.uri else "")
        + (f"; {report.unlabeled} row(s) had no {GROUND_TRUTH} and were skipped" if report.unlabeled else "")
    )
    if report.unknown:
        shown = ", ".join(report.unknown[:10]) + (f" and {len(report.unknown) - 10} more" if len(report.unknown) > 10 else "")
        print(
            f"{len(report.unknown)} unknown request id(s), not written (not captured for {args.namespace}/{args.deployment} "
            f"within --since {args.since}): {shown}",
            file=sys.stderr,
        )
        return 1
    return 0

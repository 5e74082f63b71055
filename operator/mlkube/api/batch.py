"""BatchPrediction: offline scoring of a dataset with a registered model version, in Job pods.

A run reads a file or a prefix of files (CSV, CSV.gz, Parquet), scores every row with the same
fitted pipeline, input validation and postprocessing as the model server, and writes its output
(one part per shard, a failures file per shard, and a manifest of the parts written last) under
``output.uri``. It runs as an Indexed Job of ``parallelism`` shards (``control/manifests/batch.py``;
the contract with the scoring pods is ``api/scoring.py``). With ``schedule``, the object is a
schedule instead: each tick creates a run, a BatchPrediction of its own named after the tick.

The spec is the user's; the status is the operator's.
"""

from __future__ import annotations

from typing import Literal

import pydantic

from mlkube.api import base, deployment

InputFormat = Literal["csv", "csv.gz", "parquet"]
OutputFormat = Literal["parquet", "csv"]
Include = Literal["prediction", "probabilities", "modelVersion"]
Phase = Literal["Pending", "Running", "Succeeded", "Failed"]

DATE_PLACEHOLDER = "{date}"
"""In ``input.uri`` and ``output.uri`` of a scheduled BatchPrediction: replaced in each run by
the UTC date of its tick (YYYY-MM-DD)."""

OUTPUT_COLUMNS = {"prediction": "prediction", "modelVersion": "model_version"}
"""Output columns of the ``include`` fields; ``probabilities`` becomes ``probability_<class>``
per class."""
PROBABILITY_PREFIX = "probability_"


class Input(base.ApiModel):
    """The rows to score."""

    uri: str = pydantic.Field(pattern=r"^(s3|file)://")
    """A file, or a prefix (ending in /) of files: s3://bucket/score/2026-12-01/ or file:///data/score.csv.
    Under a prefix, every object whose name ends in the format's suffix is read, in name order."""
    format: InputFormat | None = None
    """csv, csv.gz or parquet; default: from the file name's suffix (a prefix needs it set)."""
    credentials_secret: base.ObjectName | None = None
    """Secret in the same namespace with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."""
    endpoint: str | None = None
    """Endpoint of an S3-compatible store such as MinIO."""

    @pydantic.model_validator(mode="after")
    def _format_known(self) -> Input:
        if self.format is None and format_of(self.uri) is None:
            raise ValueError("format: set csv, csv.gz or parquet (the uri does not end in .csv, .csv.gz or .parquet)")
        return self

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.format) || self.uri.endsWith('.csv') || self.uri.endsWith('.csv.gz')"
                    " || self.uri.endsWith('.parquet')",
                    "message": "format: set csv, csv.gz or parquet (the uri does not end in .csv, .csv.gz or .parquet)",
                }
            ]
        }
    )


def format_of(uri: str) -> InputFormat | None:
    """The format a file name's suffix says (None: no known suffix, e.g. a prefix)."""
    for suffix, fmt in ((".csv.gz", "csv.gz"), (".csv", "csv"), (".parquet", "parquet")):
        if uri.endswith(suffix):
            return fmt
    return None


def is_reserved(column: str) -> bool:
    """Whether ``column`` is a name the output's own columns use (never a passthrough column)."""
    return column in OUTPUT_COLUMNS.values() or column.startswith(PROBABILITY_PREFIX)


class Output(base.ApiModel):
    """Where the predictions go: ``part-NNNNN-<run>.<format>`` per shard, ``failures/`` and
    ``_manifest.json`` (written last) under ``uri``."""

    uri: str = pydantic.Field(pattern=r"^(s3|file)://")
    """A prefix this run owns, e.g. s3://data/pred/2026-12-01/."""
    format: OutputFormat = "parquet"
    """parquet or csv."""
    passthrough: list[str] = pydantic.Field([], max_length=100, json_schema_extra={"x-kubernetes-list-type": "set"})
    """Input columns copied to the output next to the predictions, e.g. an id that recovers the
    input order."""
    include: list[Include] = pydantic.Field(
        ["prediction", "probabilities"], min_length=1, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """What each output row carries: prediction (the label or value, after postprocessing),
    probabilities (classifiers: one probability_<class> column per class), modelVersion."""
    mode: Literal["overwrite", "error"] = "error"
    """What a run does when the prefix already holds something of another run: error refuses to
    start writing; overwrite replaces it (its manifest is removed first, the new one written last)."""
    credentials_secret: base.ObjectName | None = None
    """Secret with the keys for the output store (one Secret serves input, output and model)."""
    endpoint: str | None = None
    """Endpoint of an S3-compatible store such as MinIO."""

    @pydantic.model_validator(mode="after")
    def _columns_do_not_collide(self) -> Output:
        for column in self.passthrough:
            if is_reserved(column):
                raise ValueError(f"passthrough: column {column!r} is a name of the output's own columns; rename it in the input")
        if len(set(self.passthrough)) != len(self.passthrough):
            raise ValueError("passthrough: a column is listed twice")
        if len(set(self.include)) != len(self.include):
            raise ValueError("include: a field is listed twice")
        return self

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.passthrough) || self.passthrough.all(c, c != 'prediction' && c != 'model_version'"
                    " && !c.startsWith('probability_'))",
                    "message": "passthrough: prediction, model_version and probability_* are the output's own columns",
                }
            ]
        }
    )


class Monitor(base.ApiModel):
    """Drift monitoring of the scored rows."""

    drift_monitor_ref: base.ObjectName | None = None
    """A DriftMonitor in the same namespace: a sample of the scored rows (at most its window.size)
    is written to the inference log of its ModelDeployment, where its next analysis reads them."""


class BatchPredictionSpec(base.ApiModel):
    """Desired state of a BatchPrediction."""

    project_ref: base.ObjectName
    """Name of the MLProject in the same namespace."""
    model: deployment.ModelSelector
    """Which version scores: {version: N}, {track: champion} (resolved when the run starts and
    recorded in status.modelVersion) or {alias: NAME}; it must be eligible or approved."""
    input: Input
    """The rows to score."""
    output: Output
    """Where the predictions go."""
    parallelism: int = pydantic.Field(1, ge=1, le=1000)
    """Shards scored at once: the Indexed Job's completions and parallelism. Files are split
    between shards, and Parquet row groups split one file."""
    max_failed_rows: float = pydantic.Field(0.0, ge=0, le=1)
    """Share of rows that may fail validation (each written with its reason to the failures
    file); above it the run fails, naming the most common reason."""
    postprocessing: deployment.Postprocessing = pydantic.Field(default_factory=deployment.Postprocessing)
    """Decision threshold and label names, as a ModelDeployment's: use the same block as the
    deployment whose online answers the batch must equal."""
    schedule: base.Cron | None = None
    """Five-field cron schedule (UTC): this object becomes a schedule and each tick creates a run
    named <name>-sched-<YYYYMMDDhhmm>; {date} in the URIs becomes the tick's date."""
    successful_runs_history_limit: int = pydantic.Field(3, ge=0, le=1000)
    """Scheduled runs kept after they succeeded."""
    failed_runs_history_limit: int = pydantic.Field(1, ge=0, le=1000)
    """Scheduled runs kept after they failed."""
    monitor: Monitor = pydantic.Field(default_factory=Monitor)
    """Drift monitoring of the scored rows."""
    resources: base.ResourceRequirements | None = None
    """Resources of each shard's container."""
    timeout: base.Duration = "6h"
    """Deadline of the whole run (the Job's activeDeadlineSeconds)."""
    retries: int = pydantic.Field(3, ge=0, le=100)
    """Shard pods that may fail (and be replaced) before the run fails (the Job's backoffLimit)."""
    queue_name: base.QueueName | None = None
    """Kueue LocalQueue of the scoring Job; defaults to the project's spec.queueName."""


class Shards(base.ApiModel):
    """Shards finished out of all."""

    done: int = 0
    """Shards that wrote their part."""
    total: int = 0
    """Shards of the run (spec.parallelism)."""


class FailureReason(base.ApiModel):
    """One reason rows failed validation, and how many did."""

    reason: str
    """The reason without the value, e.g. ``feature 'bill_length_mm' expects a number``."""
    rows: int = pydantic.Field(ge=0)
    """Rows that failed for it."""


class BatchPredictionStatus(base.StatusBase):
    """Observed state of a BatchPrediction (of its latest run, for a schedule)."""

    phase: Phase | None = None
    """Pending, Running, Succeeded or Failed."""
    model_version: int | None = None
    """The version that scores the run, fixed when it starts."""
    job_name: str | None = None
    """The Indexed Job running the shards."""
    start_time: str | None = None
    """When the run started."""
    completion_time: str | None = None
    """When it finished."""
    shards: Shards | None = None
    """Shards done out of all."""
    rows_scored: int | None = None
    """Rows scored and written (live while running)."""
    rows_failed: int | None = None
    """Rows that failed validation, each in a failures file with its reason."""
    failure_reasons: list[FailureReason] = []
    """The most common reasons rows failed, most frequent first."""
    output_uri: str | None = None
    """Where the output is; its _manifest.json lists the parts."""
    last_run: str | None = None
    """A schedule: the BatchPrediction of the latest tick."""
    last_schedule_time: str | None = None
    """A schedule: the latest tick that created a run."""
    next_schedule_time: str | None = None
    """A schedule: the next tick."""

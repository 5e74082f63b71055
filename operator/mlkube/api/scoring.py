"""The batch-scoring contract: what the BatchPrediction reconciler hands ``python -m mlkube.batch``
and what each shard answers.

The run is an Indexed Job (``control/manifests/batch.py``); every pod gets the same
:class:`ScoringRequest` as JSON in :data:`REQUEST_ENV`, its shard in ``JOB_COMPLETION_INDEX`` and
the version's registered digest in ``api.artifact.DIGEST_ENV``. While it scores it prints
``MLKUBE_PROGRESS {"rowsScored": n, "rowsFailed": m}`` lines (the operator reads the tail of the
log of running pods); when it ends it writes one :class:`ShardResult` to its termination message
(at most :data:`RESULT_LIMIT_BYTES`) and to the last stdout line. A shard that cannot run
(bad input, an output prefix that belongs to another run) answers with ``ok: false`` and exits
:data:`EXIT_INVALID_INPUT`, which fails the Job at once (its pod failure policy).

The output layout, relative to ``output.uri``, for a run whose token is ``t`` (:func:`run_token`)::

    part-00003-t.parquet          the scored rows of shard 3 (or .csv)
    failures/part-00003-t.csv     the rows of shard 3 that failed validation: source,row,column,reason
    _shards/00003-t.json          shard 3's ShardResult, written after its part (the commit record)
    _manifest.json                the Manifest of the run, written last, by the shard that finds
                                  every shard's record (and never when the run failed validation)

Both sides use these models.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from typing import Literal

import pydantic

from mlkube.api import base, batch, deployment

REQUEST_ENV = "MLKUBE_SCORING_REQUEST"
INDEX_ENV = "JOB_COMPLETION_INDEX"  # set by the Job controller in every pod of an Indexed Job
RESULT_LIMIT_BYTES = 4096  # what the kubelet keeps of a termination message
EXIT_INVALID_INPUT = 2  # retrying cannot help: the Job's pod failure policy fails the run
TOP_REASONS = 5  # failure reasons reported, most frequent first
PROGRESS_PREFIX = "MLKUBE_PROGRESS "
MANIFEST = "_manifest.json"
SHARDS_DIR = "_shards/"
FAILURES_DIR = "failures/"
ROLE = "batch"
"""The role of the scored rows in the inference log (``CaptureRecord.role``)."""


def run_token(uid: str) -> str:
    """The token in a run's object names: the first 8 characters of its uid."""
    return uid.replace("-", "")[:8]


def part_name(index: int, token: str, fmt: str) -> str:
    """``part-00003-1a2b3c4d.parquet``: shard ``index``'s scored rows."""
    return f"part-{index:05d}-{token}.{fmt}"


def failures_name(index: int, token: str) -> str:
    """``failures/part-00003-1a2b3c4d.csv``: shard ``index``'s failed rows."""
    return f"{FAILURES_DIR}part-{index:05d}-{token}.csv"


def record_name(index: int, token: str) -> str:
    """``_shards/00003-1a2b3c4d.json``: shard ``index``'s record, written after its part."""
    return f"{SHARDS_DIR}{index:05d}-{token}.json"


class Run(base.ApiModel):
    """The BatchPrediction the shards belong to."""

    name: str
    """Its name."""
    namespace: str
    """Its namespace."""
    uid: str
    """Its uid: the token in the output's object names comes from it."""
    started_at: str
    """When the run started (RFC 3339): the time of its inference-log records."""


class Model(base.ApiModel):
    """The version that scores (its digest travels in ``api.artifact.DIGEST_ENV``)."""

    version: int = pydantic.Field(ge=1)
    """Its number."""
    uri: str
    """Its artifact directory (s3:// or file://)."""
    endpoint: str | None = None
    """Endpoint of an S3-compatible store such as MinIO."""


class Capture(base.ApiModel):
    """Where a sample of the scored rows goes for drift analysis (the inference-log layout)."""

    uri: str
    """Root of the project's storage (``api.inference_log``)."""
    endpoint: str | None = None
    """Endpoint of an S3-compatible store such as MinIO."""
    namespace: str
    """Namespace of the ModelDeployment whose log the rows join."""
    deployment: str
    """The ModelDeployment whose log the rows join (the DriftMonitor's deploymentRef)."""
    project: str
    """The MLProject."""
    rows: int = pydantic.Field(ge=1)
    """Rows of the whole run to write (the DriftMonitor's window.size), split between the shards."""


class ScoringRequest(base.ApiModel):
    """One run, as every shard reads it."""

    run: Run
    """The BatchPrediction."""
    model: Model
    """The version that scores."""
    input: batch.Input
    """The rows to score (``credentialsSecret`` travels as the pod's environment, by reference)."""
    output: batch.Output
    """Where the output goes."""
    shards: int = pydantic.Field(ge=1)
    """How many shards split the input (the Job's completions)."""
    max_failed_rows: float = pydantic.Field(0.0, ge=0, le=1)
    """Share of rows that may fail validation; above it no manifest is written."""
    postprocessing: deployment.Postprocessing = pydantic.Field(default_factory=deployment.Postprocessing)
    """Decision threshold and label names."""
    capture: Capture | None = None
    """Where a sample of the scored rows goes for drift analysis, if anywhere."""
    default_credentials: bool = False
    """Whether S3 may be reached with the pod's default AWS credential chain when no keys are given
    (the project's ``spec.storage.useDefaultCredentials``); off: the Secret's keys, else anonymous."""


class Reason(base.ApiModel):
    """A reason rows failed validation (without the value), and how many did."""

    reason: str
    """E.g. ``feature 'bill_length_mm' expects a number``."""
    rows: int = pydantic.Field(ge=0)
    """How many rows failed for it."""


class Totals(base.ApiModel):
    """The whole run's counts, as the committing shard summed them from every shard's record."""

    rows_scored: int = pydantic.Field(ge=0)
    """Rows scored by every shard."""
    rows_failed: int = pydantic.Field(ge=0)
    """Rows that failed validation in every shard."""
    reasons: list[Reason] = []
    """The most common reasons, most frequent first."""
    manifest: str | None = None
    """The manifest written (None: the run failed validation and has none)."""


class ShardResult(base.ApiModel):
    """What one shard answers: its counts, or why it could not run."""

    ok: bool
    """Whether the shard scored its input and wrote its part."""
    index: int = pydantic.Field(ge=0)
    """The shard (``JOB_COMPLETION_INDEX``)."""
    rows_scored: int = pydantic.Field(0, ge=0)
    """Rows scored and written."""
    rows_failed: int = pydantic.Field(0, ge=0)
    """Rows that failed validation, each in the failures file."""
    reasons: list[Reason] = []
    """The shard's most common failure reasons, most frequent first."""
    part: str | None = None
    """The part written (relative to output.uri)."""
    totals: Totals | None = None
    """Set by a shard that found every shard's record and committed the run."""
    peak_memory_mib: float | None = pydantic.Field(None, alias="peakMemoryMiB")
    """The shard process's peak resident memory, in MiB."""
    seconds: dict[str, float] = {}
    """Where the shard's time went: ``load`` (verify and load the version), ``score`` (list, read,
    validate, predict and write the input, upload the part), ``commit`` (record and manifest)."""
    reason: Literal["InvalidInput", "OutputExists", "IntegrityError", "ScoringFailed"] | None = None
    """Why the shard could not run (``ok: false``)."""
    message: str | None = None
    """What went wrong and what to fix (``ok: false``)."""

    model_config = pydantic.ConfigDict(extra="ignore")


class Part(base.ApiModel):
    """One part listed in the manifest."""

    name: str
    """Object name relative to output.uri."""
    rows: int = pydantic.Field(ge=0)
    """Rows in it."""
    shard: int = pydantic.Field(ge=0)
    """The shard that wrote it."""


class Manifest(base.ApiModel):
    """``_manifest.json``: the parts of a completed run; a reader reads these and nothing else."""

    run: str
    """namespace/name of the BatchPrediction."""
    token: str
    """The run's token (in every object name it wrote)."""
    model_version: int
    """The version that scored."""
    digest: str
    """That version's registered digest."""
    format: batch.OutputFormat
    """parquet or csv."""
    rows_scored: int
    """Rows in the parts."""
    rows_failed: int
    """Rows in the failures files."""
    parts: list[Part]
    """The parts, by shard."""
    failures: list[str] = []
    """The failures files that hold rows."""


def merged(groups: Iterable[Iterable[Reason]]) -> list[Reason]:
    """Reasons of several shards added up: the most frequent first (ties by text), at most
    :data:`TOP_REASONS`. Shards and the operator sum them the same way."""
    counter: collections.Counter[str] = collections.Counter()
    for group in groups:
        for reason in group:
            counter[reason.reason] += reason.rows
    ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:TOP_REASONS]
    return [Reason(reason=text, rows=rows) for text, rows in ranked]


def too_many_failed(scored: int, failed: int, max_failed_rows: float) -> bool:
    """Whether ``failed`` rows of ``scored + failed`` are a larger share than ``max_failed_rows``:
    the run fails and its manifest is not written."""
    rows = scored + failed
    return rows > 0 and failed / rows > max_failed_rows

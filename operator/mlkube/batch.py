"""One shard of a BatchPrediction: ``python -m mlkube.batch [--result PATH]``.

The BatchPrediction controller runs it as the pods of an Indexed Job (``control/manifests/batch.py``),
under the token-less trainers' ServiceAccount with the storage keys by reference. Contract
``mlkube.api.scoring``: the request in ``$MLKUBE_SCORING_REQUEST``, the shard in
``$JOB_COMPLETION_INDEX``, the version's registered digest in ``$MLKUBE_MODEL_DIGEST``.

A shard:

1. makes the output prefix ready (``output.mode``: ``error`` refuses a prefix holding objects
   this run did not write, ``overwrite`` removes another run's manifest; ``ml.parts.prepare``);
2. loads the version with ``mlkube.ml.artifacts.load``, which compares the manifest with the
   pinned digest before it reads anything else (a version without a pinned digest is refused);
3. lists the input and takes its share of it (``ml.shards.assign``: files, and the row groups of
   Parquet files, balanced between shards the same way in every shard);
4. streams its units in chunks of at most ``--chunk-rows`` rows, validating, predicting and
   postprocessing each as the model server would (``serving.scorer``) and streaming the output
   rows and the refused ones (source, row, column, reason) to local files; memory depends on the
   chunk, not the input. Progress goes to stdout: ``MLKUBE_PROGRESS {"rowsScored": n, "rowsFailed": m}``;
5. uploads its part and failures file whole, then a sample of its rows to the DriftMonitor's
   inference log when asked, then its record; and, if every shard's record is there, commits the
   run: the totals, and the manifest written last (``ml.parts.commit``);
6. answers with a ``ShardResult`` in its termination message and on the last stdout line.

Exit codes: 0 when the shard wrote its part (too many refused rows is the operator's call, from
the totals); 2 when retrying cannot help (bad input, an output that belongs to another run, a
version whose digest is not the registry's), which fails the Job at once; 1 otherwise (a storage
error, say), which the Job retries.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import os
import pathlib
import resource
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from typing import TypeVar

import pydantic

from mlkube.api import batch, scoring
from mlkube.common import containerpath, termination
from mlkube.ml import artifacts, batchlog, errors, parts, shards, storage
from mlkube.serving import postprocessing, schema, scorer

TERMINATION_LOG = termination.PATH
RESULT_PREFIX = "MLKUBE_RESULT "
CHUNK_ROWS = 131_072
PROGRESS_SECONDS = 1.0
REASON_CHARS = 200  # a reason in the result is cut to this, so that the result fits its 4096 bytes
EXIT_OK, EXIT_RETRYABLE = 0, 1
DEPTH = 2  # chunks read ahead of, and written behind, the one being scored
_END = object()
T = TypeVar("T")


class Refused(Exception):
    """The shard cannot run and retrying cannot help: ``reason`` and a message saying what to fix."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlkube.batch", description="Score one shard of a BatchPrediction.")
    parser.add_argument("--result", default=TERMINATION_LOG, help="container path of the result file (default: %(default)s)")
    parser.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS, help="rows validated and scored at a time")
    args = parser.parse_args(argv)
    index = int(os.environ.get(scoring.INDEX_ENV) or 0)
    try:
        request = _request()
        result, code = run(request, index=index, chunk_rows=args.chunk_rows), EXIT_OK
    except Refused as refused:
        result, code = _failure(index, refused.reason, str(refused)), scoring.EXIT_INVALID_INPUT
    except errors.MLError as e:
        result, code = _failure(index, "ScoringFailed", str(e)), EXIT_RETRYABLE
    except Exception as e:
        traceback.print_exc(file=sys.stderr)
        result, code = _failure(index, "ScoringFailed", f"unexpected {type(e).__name__}: {e}"), EXIT_RETRYABLE
    emit(result, path=containerpath.resolve(args.result))
    return code


def run(
    request: scoring.ScoringRequest, *, index: int, chunk_rows: int = CHUNK_ROWS, digest: str | None = None
) -> scoring.ShardResult:
    """Score shard ``index`` of ``request``; ``digest`` defaults to the pinned ``$MLKUBE_MODEL_DIGEST``.
    Raises ``Refused`` when retrying cannot help, ``errors.MLError`` when it may."""
    if not 0 <= index < request.shards:
        raise Refused(
            "InvalidInput", f"{scoring.INDEX_ENV}={index}: the run has {request.shards} shards (0 to {request.shards - 1})"
        )
    digest = digest or artifacts.pinned_digest()
    if not digest:
        raise Refused(
            "IntegrityError", "no pinned digest: the scoring pod scores only a version the registry pins (MLKUBE_MODEL_DIGEST)"
        )
    token = scoring.run_token(request.run.uid)
    inputs = storage.Options(endpoint=request.input.endpoint, default_credentials=request.default_credentials)
    outputs = storage.Options(endpoint=request.output.endpoint, default_credentials=request.default_credentials)
    try:
        parts.prepare(request.output.uri, token, mode=request.output.mode, options=outputs)
    except parts.OutputExists as e:
        raise Refused("OutputExists", str(e)) from e
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mlkube-batch-") as scratch:
        work = pathlib.Path(scratch)
        model = _scorer(request, digest=digest, scratch=work / "model")
        loaded = time.monotonic()
        fmt = request.input.format or _format(request.input.uri)
        try:
            mine = shards.assign(
                shards.units(shards.list_inputs(request.input.uri, fmt, options=inputs), fmt, options=inputs), request.shards
            )[index]
        except shards.InputError as e:
            raise Refused("InvalidInput", str(e)) from e
        try:
            part, failures, counts = _score(
                request, model, mine, fmt=fmt, index=index, token=token, work=work, chunk_rows=chunk_rows, options=inputs
            )
        except errors.DataError as e:  # an unreadable file, passthrough columns typed differently in two files
            raise Refused("InvalidInput", str(e)) from e
        uploaded = part.finish(
            storage.join(request.output.uri, scoring.part_name(index, token, request.output.format)), options=outputs
        )
        failures.finish(storage.join(request.output.uri, scoring.failures_name(index, token)), options=outputs)
    scored = time.monotonic()
    result = scoring.ShardResult(
        ok=True,
        index=index,
        rows_scored=part.rows,
        rows_failed=failures.rows,
        reasons=scoring.merged([[scoring.Reason(reason=k[:REASON_CHARS], rows=n) for k, n in counts.items()]]),
        part=scoring.part_name(index, token, request.output.format) if uploaded else None,
    )
    parts.write_record(request.output.uri, result, token, options=outputs)
    totals = parts.commit(request, token, digest=digest, options=outputs)
    seconds = {"load": loaded - started, "score": scored - loaded, "commit": time.monotonic() - scored}
    return result.model_copy(
        update={"totals": totals, "seconds": {k: round(v, 3) for k, v in seconds.items()}, "peak_memory_mib": peak_memory_mib()}
    )


def peak_memory_mib() -> float:
    """This process's peak resident memory in MiB: the kernel's high-water mark of its address space
    (since it was exec'd, so not its parent's), else getrusage's."""
    try:
        for line in pathlib.Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _score(
    request: scoring.ScoringRequest,
    model: scorer.Scorer,
    mine: list[shards.Unit],
    *,
    fmt: str,
    index: int,
    token: str,
    work: pathlib.Path,
    chunk_rows: int,
    options: storage.Options,
) -> tuple[parts.PartWriter, parts.FailureWriter, dict[str, int]]:
    """Stream the shard's units through ``model`` into a part and a failures file (local), sampling
    rows for the inference log; returns the writers and the failure counts by reason."""
    part = parts.PartWriter(work, request.output.format)
    failures = parts.FailureWriter(work)
    sample = batchlog.Sample(batchlog.shard_size(request.capture, request.shards), seed=index) if request.capture else None
    counts: dict[str, int] = {}
    wanted = [*model.features, *(c for c in request.output.passthrough if c not in model.features)]
    for unit in mine:
        present = set(shards.header(unit, fmt, options=options))
        absent = [c for c in wanted if c not in present]
        if absent:
            kind = "feature" if absent[0] in model.features else "passthrough column"
            raise Refused(
                "InvalidInput",
                f"{unit.uri}: no column '{absent[0]}' (a {kind} of the run); the file's columns are {sorted(present)}",
            )
    chunks = (
        (unit, first, chunk)
        for unit in mine
        for first, chunk in shards.read(unit, fmt, wanted, chunk_rows=chunk_rows, options=options)
    )
    scored_rows = failed_rows = 0
    reported = -PROGRESS_SECONDS  # the first chunk is reported at once, then at most once a second
    # Reading the next chunks and writing the last ones run in their own threads (Arrow's readers
    # and writers release the GIL) while this one scores; each keeps at most DEPTH chunks in hand.
    with concurrent.futures.ThreadPoolExecutor(1) as reader, concurrent.futures.ThreadPoolExecutor(1) as writer:
        writes: collections.deque[concurrent.futures.Future] = collections.deque()
        for unit, first, chunk in _ahead(chunks, reader):
            try:
                scored = model.score(chunk)
            except schema.SchemaError as e:
                raise Refused("InvalidInput", f"{unit.uri}: {e}") from e
            writes.append(writer.submit(part.write, scored.table))
            while len(writes) > DEPTH or (writes and writes[0].done()):
                writes.popleft().result()
            for failure in scored.failures:
                failures.write(unit.name, first + failure.row, failure.column, failure.reason)
                counts[failure.kind] = counts.get(failure.kind, 0) + 1
            scored_rows, failed_rows = scored_rows + scored.table.num_rows, failed_rows + len(scored.failures)
            if sample is not None:
                sample.offer(scored.frame, scored.labels, scored.probabilities, model.classes)
            if time.monotonic() - reported >= PROGRESS_SECONDS:
                _progress(scored_rows, failed_rows)
                reported = time.monotonic()
        for pending in writes:
            pending.result()
    _progress(scored_rows, failed_rows)
    if sample is not None:
        log_options = storage.Options(endpoint=request.capture.endpoint, default_credentials=request.default_credentials)
        batchlog.write(sample, request, index=index, token=token, options=log_options)
    return part, failures, counts


def _ahead(items: Iterator[T], reader: concurrent.futures.Executor) -> Iterator[T]:
    """``items``, produced on ``reader`` (one thread, so in order) at most ``DEPTH`` ahead."""
    pending: collections.deque[concurrent.futures.Future] = collections.deque(
        reader.submit(next, items, _END) for _ in range(DEPTH)
    )
    while True:
        item = pending.popleft().result()
        if item is _END:
            return
        pending.append(reader.submit(next, items, _END))
        yield item


def _scorer(request: scoring.ScoringRequest, *, digest: str, scratch: pathlib.Path) -> scorer.Scorer:
    """The version, verified against ``digest`` and loaded, ready to score."""
    options = storage.Options(endpoint=request.model.endpoint, default_credentials=request.default_credentials)
    try:
        if storage.scheme_of(request.model.uri) == "file":
            local = storage.local_path(request.model.uri)
        else:
            local = artifacts.download(request.model.uri, scratch, storage_options=options, expected_digest=digest)
        version = artifacts.load(local, expected_digest=digest)
        block = postprocessing.Postprocessing.parse(request.postprocessing.wire())
        return scorer.Scorer(version.pipeline, version.card, block=block, output=request.output, version=request.model.version)
    except artifacts.IntegrityError as e:
        raise Refused("IntegrityError", f"refusing to score with version {request.model.version}: {e}") from e
    except ValueError as e:  # a card without a usable featureSchema, postprocessing that does not fit the model
        raise Refused("InvalidInput", f"version {request.model.version}: {e}") from e


def _format(uri: str) -> str:
    fmt = batch.format_of(uri)
    if fmt is None:
        raise Refused("InvalidInput", f"input.format: {uri} has no .csv, .csv.gz or .parquet suffix; set the format")
    return fmt


def _request() -> scoring.ScoringRequest:
    text = os.environ.get(scoring.REQUEST_ENV, "")
    if not text.strip():
        raise Refused("InvalidInput", f"no request: set {scoring.REQUEST_ENV} to the scoring request JSON")
    try:
        return scoring.ScoringRequest.model_validate_json(text)
    except pydantic.ValidationError as e:
        raise Refused("InvalidInput", f"invalid request: {e.errors(include_url=False)[0]}") from e


def _progress(scored: int, failed: int) -> None:
    print(scoring.PROGRESS_PREFIX + json.dumps({"rowsScored": scored, "rowsFailed": failed}), flush=True)


def _failure(index: int, reason: str, message: str) -> scoring.ShardResult:
    return scoring.ShardResult(ok=False, index=index, reason=reason, message=message[:2000])


def emit(result: scoring.ShardResult, *, path: pathlib.Path) -> None:
    """Write the result to the termination-message file and as the last stdout line."""
    encoded = result.model_dump_json(by_alias=True, exclude_none=True).encode()
    if not result.ok:
        print(f"{result.reason}: {result.message}", file=sys.stderr, flush=True)
    termination.write(encoded, path)
    print(RESULT_PREFIX + encoded.decode(), flush=True)


if __name__ == "__main__":
    sys.exit(main())

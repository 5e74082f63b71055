"""The replay: ``python -m mlkube.replay [--result PATH]``, a candidate scoring captured requests
before it takes any live traffic (``strategy.replay`` of a ModelDeployment).

The ModelDeployment controller runs it as a batch/v1 Job in the deployment's namespace, under
the token-less trainers' ServiceAccount, with the project's storage credentials (and nothing of
the operator's). It reads the request (``mlkube.api.replay.ReplayRequest``) from
``$MLKUBE_REPLAY_REQUEST`` (stdin when unset, for a replay run by hand), then:

1. reads the newest ``capture.size`` captured requests of the deployment that the stable version
   (``capture.version``) answered with 200 (``predict``, client traffic: no mirrored copies),
   newest batches first (``api/inference_log.py`` layout); a request whose body was stored cut
   or as text is skipped and counted;
2. sends each request body, as captured, to the candidate's InferenceService address directly
   (V1 or V2 as it came; never through the router, so the router's counters never see it) with
   the router's own HTTP client (``serving.upstream``), at most ``concurrency`` at once, each
   within ``timeout_seconds``, and no new one after ``budget_seconds``;
3. counts: errors (any answer but 2xx, a timeout, a refused connection), agreement with the
   response recorded then (``serving.agreement``, the router's rule: labels equal, numbers within
   5 %; a request agrees when every row does), and, for requests with one prediction whose id
   received feedback, the quality of both answers (accuracy: correct ones; mae: absolute errors).

It answers with a ``ReplayResult`` (counts only: the operator judges them) in the termination
message (``--result``, default ``/dev/termination-log``) and on the last stdout line. A replay that
cannot run answers ``{"error": "..."}`` (``ReplayError``) and exits 1.

Must not: load a model, or call anything but the candidate's address and the capture store.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import os
import sys
import time
from typing import Any

import orjson
import pydantic

from mlkube.api import errors as api_errors
from mlkube.api import inference_log
from mlkube.api import replay as replay_api
from mlkube.common import containerpath, termination, timestamps
from mlkube.ml import errors, storage, traffic
from mlkube.serving import agreement, upstream

TERMINATION_LOG = termination.PATH
EXIT_OK, EXIT_FAILED = 0, 1
ERROR_TEXT = 300  # characters of a failed answer kept in firstError


@dataclasses.dataclass(frozen=True)
class Answer:
    """What the candidate did with one replayed request: its body when it answered 2xx, else why not."""

    body: bytes | None
    error: str | None = None


def newest(capture: replay_api.Capture, *, options: storage.Options) -> tuple[list[inference_log.CaptureRecord], int]:
    """The newest ``capture.size`` replayable records ``capture.version`` answered, newest first,
    and how many such records could not be replayed (bodies stored cut or as text). Batches are
    read newest first (their names start with their write time) until enough are found."""
    base = storage.join(
        capture.uri, inference_log.prefix(inference_log.INFERENCE_LOG, namespace=capture.namespace, deployment=capture.deployment)
    )
    names = [n for n in storage.list_prefix(base, options=options) if inference_log.is_since(n, since=datetime.date.min)]
    found: list[inference_log.CaptureRecord] = []
    skipped = 0
    for name in sorted(names, reverse=True):
        for record in traffic.records(inference_log.CaptureRecord, [storage.join(base, name)], options=options):
            if record.version != capture.version or record.status != 200 or record.verb != "predict":
                continue
            if record.role in ("shadow", "compare"):  # mirrored copies, not client requests
                continue
            if record.truncated or record.bodies_as_text or not isinstance(record.request, dict):
                skipped += 1
                continue
            found.append(record)
        if len(found) >= capture.size:
            break
    found.sort(key=lambda r: r.timestamp, reverse=True)
    return found[: capture.size], skipped


def endpoint(candidate: replay_api.Candidate, record: inference_log.CaptureRecord) -> str:
    """The candidate's URL for a record's protocol (V2 when it was V2, or its body has ``inputs``)."""
    url = candidate.url.rstrip("/")
    if record.protocol == "v2" or (record.protocol is None and "inputs" in record.request):
        return f"{url}/v2/models/{candidate.model}/infer"
    return f"{url}/v1/models/{candidate.model}:predict"


async def send_all(
    records: list[inference_log.CaptureRecord], request: replay_api.ReplayRequest, *, pool: upstream.Pool | None = None
) -> list[Answer | None]:
    """Each record's answer, in order; None for a record not sent before the budget ran out.
    ``pool`` (the router's own HTTP client, so the candidate is called as the router calls it,
    with its one retry of a keep-alive connection the server closed) is replaced in tests."""
    answers: list[Answer | None] = [None] * len(records)
    pending = iter(range(len(records)))
    deadline = time.monotonic() + request.budget_seconds
    client = pool or upstream.Pool()

    async def worker() -> None:
        for index in pending:  # the workers share one iterator: each record is sent once
            if time.monotonic() >= deadline:
                return
            answers[index] = await _send(client, records[index], request)

    try:
        await asyncio.gather(*(worker() for _ in range(min(request.concurrency, len(records)) or 1)))
    finally:
        if pool is None:
            client.close()
    return answers


async def _send(pool: upstream.Pool, record: inference_log.CaptureRecord, request: replay_api.ReplayRequest) -> Answer:
    headers = {"content-type": "application/json", "x-request-id": f"replay-{record.request_id}"}
    url = endpoint(request.candidate, record)
    try:
        response = await pool.request(
            "POST", url, body=orjson.dumps(record.request), headers=headers, timeout=request.timeout_seconds
        )
    except TimeoutError:
        return Answer(None, f"no answer within {request.timeout_seconds:g}s")
    except upstream.UpstreamError as failure:
        return Answer(None, f"unreachable: {failure}")
    if 200 <= response.status < 300:
        return Answer(response.body)
    return Answer(None, f"HTTP {response.status}: {response.body.decode(errors='replace').strip()[:ERROR_TEXT]}")


def tally(
    records: list[inference_log.CaptureRecord],
    answers: list[Answer | None],
    *,
    labels: dict[str, Any],
    metric: replay_api.QualityMetric | None,
    skipped: int,
) -> replay_api.ReplayResult:
    """The counts of a replay: ``answers[i]`` is the candidate's answer to ``records[i]``."""
    counts = {"requests": 0, "errors": 0, "compared": 0, "agreed": 0, "labeled": 0}
    scores = [0.0, 0.0]  # candidate, stable
    first_error = None
    for record, answer in zip(records, answers):
        if answer is None:
            continue
        counts["requests"] += 1
        if answer.body is None:
            counts["errors"] += 1
            first_error = first_error or answer.error
            continue
        mine = agreement.predictions(answer.body)
        recorded = agreement.predictions(orjson.dumps(record.response))
        same = agreement.same_predictions(mine, recorded)
        if same is not None:
            counts["compared"] += 1
            counts["agreed"] += same
        truth = labels.get(record.request_id)
        if metric is None or truth is None or not mine or not recorded or len(mine) != 1 or len(recorded) != 1:
            continue
        outcomes = [agreement.outcome(mine[0], truth), agreement.outcome(recorded[0], truth)]
        if metric == "mae" and any(error is None for _, error in outcomes):
            continue  # a prediction or a truth that is not a number: no absolute error
        counts["labeled"] += 1
        for side, (correct, error) in enumerate(outcomes):
            scores[side] += float(correct) if metric == "accuracy" else abs(error)
    return replay_api.ReplayResult(
        **counts,
        candidate_score=scores[0],
        stable_score=scores[1],
        skipped=skipped,
        first_error=first_error,
        budget_exhausted=any(a is None for a in answers),
    )


def replay(request: replay_api.ReplayRequest, *, pool: upstream.Pool | None = None) -> replay_api.ReplayResult:
    """One replay (see the module docstring); ``pool`` replaces the network in tests."""
    capture = request.capture
    options = storage.Options(endpoint=capture.endpoint, default_credentials=request.default_credentials)
    records, skipped = newest(capture, options=options)
    labels: dict[str, Any] = {}
    if request.metric is not None and records:
        oldest = timestamps.parse(records[-1].timestamp)
        labels = traffic.feedback(
            capture.uri, namespace=capture.namespace, deployment=capture.deployment, since=oldest, options=options
        )
    answers = asyncio.run(send_all(records, request, pool=pool))
    return tally(records, answers, labels=labels, metric=request.metric, skipped=skipped)


def answer(request_text: str) -> tuple[dict[str, Any], int]:
    """The answer (a result's or an error's wire form) and exit code of the replay of ``request_text``."""
    if not request_text.strip():
        message = f"no request: set {replay_api.REQUEST_ENV} to the request JSON (or pass it on stdin)"
        return replay_api.ReplayError(error=message).wire(), EXIT_FAILED
    try:
        request = replay_api.ReplayRequest.model_validate_json(request_text)
        return replay(request).wire(), EXIT_OK
    except pydantic.ValidationError as invalid:
        error = f"invalid request: {api_errors.describe(invalid, root='request')}"
    except (errors.MLError, ValueError) as failure:
        error = f"{type(failure).__name__}: {failure}"
    return replay_api.ReplayError(error=error).wire(), EXIT_FAILED


def compact(answer: dict[str, Any]) -> bytes:
    """``answer`` as JSON within the termination message's limit (its text shortened if need be)."""
    encoded = termination.encode(answer)
    limit = replay_api.RESULT_LIMIT_BYTES
    for key in ("firstError", "error"):
        if len(encoded) > limit and isinstance(answer.get(key), str):
            answer = {**answer, key: answer[key][: max(0, len(answer[key]) - (len(encoded) - limit) - 3)] + "..."}
            encoded = termination.encode(answer)
    return encoded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlkube.replay", description=__doc__.split("\n")[0])
    parser.add_argument("--result", default=TERMINATION_LOG, help="container path of the answer file (default: %(default)s)")
    args = parser.parse_args(argv)
    text = os.environ.get(replay_api.REQUEST_ENV)
    result, code = answer(sys.stdin.read() if text is None else text)
    encoded = compact(result)
    if code != EXIT_OK:
        print(result["error"], file=sys.stderr, flush=True)
    path = containerpath.resolve(args.result)
    termination.write(encoded, path)
    print(encoded.decode(), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())

"""The trainer entrypoint, `python -m mlkube.trainer [--spec FILE]`, and the trainer contract.

The trainer contract is what the operator expects of any training container, ours or a user's
own image (`TrainingJob.spec.image` / `command`):

Input
    The resolved spec, a JSON document (`mlkube.api.trainer.TrainerInput`, camelCase) in the
    environment variable `MLKUBE_TRAINING_SPEC` (or a file given with `--spec`):
    `{"project": {name, namespace, goal, problem, successCriteria}, "trainingJob": {name,
    namespace, uid, trigger, parentVersion}, "data": {uri, endpoint, join}, "preprocessing",
    "algorithms", "tuning", "output": {uri, endpoint}, "champion": {version, artifactUri,
    digest, metrics} | null}`. S3 credentials come from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`;
    the image the container runs from `MLKUBE_TRAINER_IMAGE` (recorded in the lineage).
    Trial pods (`tuning.workers` > 1) get the study database's URL in `MLKUBE_STUDY_STORAGE` and
    their index in `JOB_COMPLETION_INDEX`: they share one Optuna study (`mlkube.ml.trialpods`);
    only index 0 writes the version and the result below, the others end with the worker result
    `{"ok": true, "worker": <index>, "trials": <trials it ran>}`.
    The champion's `digest` is the registry's: a champion whose `MANIFEST.json` does not hash to
    it is refused before anything else of it is read (the comparison reports the refusal).

Progress
    Lines on stdout, which the operator tails from the pod log:
    `MLKUBE_PROGRESS {"stage": "tuning", "trialsCompleted": 7, "trialsTotal": 30, "bestScore": 0.84}`
    (stages: loading, processing, tuning, evaluating, writing).

Output
    A model version at `output.uri` in the artifact layout of `mlkube.ml.artifacts`
    (model.joblib, model_card.json, model_card.html, metrics.json, reference.parquet, MANIFEST.json
    written last).

Result
    One compact JSON document (at most 4096 bytes, scalar metrics only) written to the
    termination-message file `/dev/termination-log` (resolved with `mlkube.common.containerpath`) and
    printed as the last stdout line prefixed `MLKUBE_RESULT `:
    success `{"ok": true, "artifactUri", "digest", "algorithm", "params", "metrics":
    {"validation": {...}, "test": {...}}, "successCriteriaMet", "diagnostics": {"trialSeconds":
    {"p50", "max"}, "peakMemoryMiB", "overfitting": {"trainScore", "validationScore", "flagged"},
    "warnings": [...]}, "comparison": {...} | null, "lineage": {"data": [{"uri", "digest":
    "sha256:<hex of the bytes read>", "rows"}], "image", "mlkubeVersion"}, "fairness": {...} | absent}`
    (`api.training.Fairness`, when the project measures fairness), exit code 0;
    failure `{"ok": false, "reason": "DataError" | "InvalidSpec" | "TrainingFailed", "message":
    "<what went wrong and what to fix>"}`, exit code 2 when the input is at fault (retrying
    cannot help) and 1 otherwise; the message is also printed to stderr, without a traceback
    for expected errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from typing import Any

import pydantic

from mlkube.api import trainer as trainer_api
from mlkube.common import containerpath, termination
from mlkube.ml import errors

SPEC_ENV = "MLKUBE_TRAINING_SPEC"
TERMINATION_LOG = termination.PATH
RESULT_LIMIT_BYTES = 4096
PROGRESS_PREFIX = "MLKUBE_PROGRESS "
RESULT_PREFIX = "MLKUBE_RESULT "

EXIT_OK, EXIT_RETRYABLE, EXIT_BAD_INPUT = 0, 1, 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlkube.trainer", description="Train one model version from a resolved spec.")
    parser.add_argument("--spec", help=f"file with the resolved spec JSON (default: the environment variable {SPEC_ENV})")
    parser.add_argument("--result", default=TERMINATION_LOG, help="container path of the result file (default: %(default)s)")
    args = parser.parse_args(argv)
    result, code = outcome_of(args.spec)
    emit(result, path=containerpath.resolve(args.result))
    return code


def outcome_of(spec_file: str | None) -> tuple[dict[str, Any], int]:
    """The result document and exit code of one run."""
    try:
        spec = read_spec(spec_file)
        from mlkube.ml import experiment, tuning  # imported after the spec parses: a bad spec fails fast

        shared = shared_study(spec)
        try:
            outcome, info = experiment.run(
                spec,
                progress=report_progress,
                image=os.environ.get(trainer_api.IMAGE_ENV) or None,
                memory_limit=memory_limit(),
                shared=shared,
            )
        except tuning.WorkerFinished as done:
            return {"ok": True, "worker": shared.index if shared else 0, "trials": done.trials}, EXIT_OK
        diagnostics = experiment.diagnostics(outcome)
        return success(outcome, info, diagnostics), EXIT_OK
    except (errors.DataError, errors.InvalidSpec) as e:
        return failure(type(e).__name__, str(e)), EXIT_BAD_INPUT
    except (errors.ObjectNotFound, errors.AccessDenied) as e:
        return failure("InvalidSpec", f"output: {e}"), EXIT_BAD_INPUT
    except errors.MLError as e:
        return failure("TrainingFailed", str(e)), EXIT_RETRYABLE
    except Exception as e:
        traceback.print_exc(file=sys.stderr)
        return failure("TrainingFailed", f"unexpected {type(e).__name__}: {e}"), EXIT_RETRYABLE


def shared_study(spec: trainer_api.TrainerInput):
    """This pod's part in a study shared with other trial pods (None: a one-pod search)."""
    from mlkube.ml import tuning

    url = os.environ.get(trainer_api.STUDY_STORAGE_ENV, "").strip()
    workers = spec.tuning.workers
    if not url:
        if workers > 1:
            raise errors.InvalidSpec(
                f"tuning.workers: {workers} trial pods share a study database, and none is configured: set "
                f"tuning.storage.secretRef to a Secret holding its URL (or the operator's {trainer_api.STUDY_STORAGE_ENV})"
            )
        return None
    index = os.environ.get(trainer_api.INDEX_ENV, "0")
    run = spec.training_job
    return tuning.SharedStudy(
        url=url,
        name=f"{run.namespace}/{run.name}/{run.uid}",
        index=int(index) if index.isdigit() else 0,
        workers=workers,
    )


def memory_limit() -> int | None:
    """The container's memory limit in bytes, as the operator passes it (None when not given)."""
    value = os.environ.get(trainer_api.MEMORY_LIMIT_ENV, "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def read_spec(spec_file: str | None) -> trainer_api.TrainerInput:
    if spec_file:
        try:
            text = containerpath.resolve(spec_file).read_text()
        except OSError as e:
            raise errors.InvalidSpec(f"--spec {spec_file}: cannot read it: {e.strerror or e}") from e
    else:
        text = os.environ.get(SPEC_ENV, "")
        if not text.strip():
            raise errors.InvalidSpec(
                f"no spec: set the environment variable {SPEC_ENV} to the resolved spec JSON or pass --spec FILE"
            )
    try:
        return trainer_api.TrainerInput.from_json(text)
    except pydantic.ValidationError as e:
        details = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in e.errors()[:10])
        raise errors.InvalidSpec(f"invalid spec: {details}") from e


def report_progress(update: dict[str, Any]) -> None:
    print(PROGRESS_PREFIX + json.dumps(update, separators=(",", ":")), flush=True)


def success(outcome, info, diagnostics: dict[str, Any]) -> dict[str, Any]:
    from mlkube.ml import card

    return {
        "ok": True,
        "artifactUri": info.uri,
        "digest": info.digest,
        "algorithm": outcome.search.best.algorithm,
        "params": card.plain(outcome.search.best.params),
        "metrics": {name: {k: round(v, 6) for k, v in values.items()} for name, values in outcome.metrics.items()},
        "successCriteriaMet": outcome.criteria_met,
        "diagnostics": diagnostics,
        "comparison": outcome.comparison,
        "lineage": outcome.lineage.wire(),
        **({"fairness": outcome.fairness} if outcome.fairness is not None else {}),
    }


def failure(reason: str, message: str) -> dict[str, Any]:
    return {"ok": False, "reason": reason, "message": message}


def compact(result: dict[str, Any]) -> bytes:
    """The result as JSON within RESULT_LIMIT_BYTES: warnings, then long strings, are cut first, then
    the fairness detail the model card keeps in full (data groups, then test groups, then intervals)."""
    result = json.loads(json.dumps(result, default=str))
    encoded = termination.encode(result)
    warnings = result.get("diagnostics", {}).get("warnings")
    while len(encoded) > RESULT_LIMIT_BYTES and warnings:
        warnings.pop()
        encoded = termination.encode(result)
    for key in ("message",):
        if len(encoded) > RESULT_LIMIT_BYTES and isinstance(result.get(key), str):
            excess = len(encoded) - RESULT_LIMIT_BYTES + 3
            result[key] = result[key][: max(0, len(result[key]) - excess)] + "..."
            encoded = termination.encode(result)
    if len(encoded) > RESULT_LIMIT_BYTES and result.get("ok"):
        result["params"] = {k: (v if len(json.dumps(v)) < 64 else str(v)[:60]) for k, v in result.get("params", {}).items()}
        if isinstance(result.get("comparison"), dict):
            result["comparison"].pop("error", None)
        encoded = termination.encode(result)
    fairness = result.get("fairness")
    for path in (("data", "groups"), ("groups",), ("intervals",), ("data",)):
        if len(encoded) <= RESULT_LIMIT_BYTES or not isinstance(fairness, dict):
            break
        holder = fairness
        for key in path[:-1]:
            holder = holder.get(key) if isinstance(holder, dict) else None
        if isinstance(holder, dict) and holder.pop(path[-1], None) is not None:
            encoded = termination.encode(result)
    return encoded


def emit(result: dict[str, Any], *, path) -> None:
    """Write the result file and the last stdout line; the message also goes to stderr on failure."""
    encoded = compact(result)
    if not result["ok"]:
        print(f"{result['reason']}: {result['message']}", file=sys.stderr, flush=True)
    termination.write(encoded, path)
    print(RESULT_PREFIX + encoded.decode(), flush=True)


if __name__ == "__main__":
    sys.exit(main())

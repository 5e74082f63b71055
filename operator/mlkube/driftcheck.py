"""The drift check: ``python -m mlkube.driftcheck [--result PATH]``, one analysis of a DriftMonitor.

The DriftMonitor controller runs it as a batch/v1 Job in the monitor's namespace, under the
token-less trainers' ServiceAccount, with the project's storage credentials (and nothing of the
operator's). It reads the request (``mlkube.api.driftcheck.DriftCheckRequest``) from
``$MLKUBE_DRIFTCHECK_REQUEST`` (stdin when unset, for a check run by hand), reads the served
version's model card and reference profile, verified against the registry's digest and the
manifest, reads the latest window of captured traffic with its feedback, scores data, prediction,
concept drift and (when asked) bias drift across the sensitive features (a forecasting version: the
features but its time column, and concept drift on its point forecasts; no prediction drift), writes the HTML report to the project's storage and answers with a
``DriftCheckResult``: in the termination message (``--result``, default ``/dev/termination-log``,
at most 4096 bytes: the least important features, then the least moved group metrics, are left out
first) and on the last stdout line.
A check that cannot analyse answers ``{"error": "..."}`` (``DriftCheckError``) and exits 1.

Must not: unpickle anything. The model itself (``model.joblib``) is never read: the card holds
what the analysis needs of it, and the reference predictions are in ``reference.parquet``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from typing import Any

import numpy as np
import pandas as pd
import pydantic

from mlkube.api import driftcheck as driftcheck_api
from mlkube.api import errors as api_errors
from mlkube.common import containerpath, termination, timestamps
from mlkube.ml import artifacts, drift, drift_fairness, drift_performance, errors, report, storage, traffic
from mlkube.ml.tasks import anomaly, forecasting, text

# Metrics scored on class probabilities rather than on the predicted labels.
PROBABILITY_METRICS = ("roc_auc", "pr_auc", "log_loss")
TERMINATION_LOG = termination.PATH
EXIT_OK, EXIT_FAILED = 0, 1


def analyse(request: dict[str, Any]) -> dict[str, Any]:
    """The wire form of :func:`check`: a request as JSON-shaped data in, the result's wire form out.
    Raises ``pydantic.ValidationError`` (a ValueError) when ``request`` breaks the contract."""
    return check(driftcheck_api.DriftCheckRequest.model_validate(request)).wire()


def check(request: driftcheck_api.DriftCheckRequest) -> driftcheck_api.DriftCheckResult:
    """One analysis of ``request.traffic`` against ``request.reference``."""
    reference_spec, window_spec = request.reference, request.traffic
    options = storage.Options(endpoint=reference_spec.endpoint, default_credentials=request.default_credentials)
    files = artifacts.read_verified(
        reference_spec.uri, (artifacts.CARD, artifacts.REFERENCE), expected_digest=reference_spec.digest, storage_options=options
    )
    card = json.loads(files[artifacts.CARD])
    reference = pd.read_parquet(io.BytesIO(files[artifacts.REFERENCE]))
    schema = card["featureSchema"]
    features = [f["name"] for f in schema]
    # Sensitive features the model does not take are read from the requests too (clients send them for bias drift).
    sensitive = [c for c in (card.get("fairness") or {}).get("sensitiveFeatures", []) if c not in features]
    window_options = storage.Options(endpoint=window_spec.endpoint, default_credentials=request.default_credentials)
    current = traffic.window(
        window_spec.uri,
        namespace=window_spec.namespace,
        deployment=window_spec.deployment,
        features=[*features, *sensitive] if request.fairness is not None else features,
        since=timestamps.parse(window_spec.since),
        size=window_spec.size,
        versions=window_spec.versions,
        options=window_options,
    )
    samples = len(current)
    if samples < request.min_samples:
        return driftcheck_api.DriftCheckResult(
            phase="InsufficientData",
            samples=samples,
            summary=f"{samples} captured requests in the window; {request.min_samples} are needed (spec.minSamples)",
        )
    data_spec, explain = request.data_drift, request.explainability
    if card["problem"]["task"] == "forecasting":  # a forecast answers {"prediction", "lower", "upper"}
        current["__prediction__"] = forecasting.points(current["__prediction__"])
    # A forecast's time is new by definition: it is no feature whose distribution can drift.
    features = [f["name"] for f in schema if f.get("role") != "time"]
    categorical = [f["name"] for f in schema if f["type"] in ("categorical", "boolean")]
    # Text columns are compared through their length, out-of-vocabulary share and words (text.drift_frames).
    texts = [f["name"] for f in schema if f["type"] == "text"]
    importance = card.get("featureImportance") if explain.enabled else None
    plotted: dict = {}
    plotted_window: dict = {}
    if features:
        compared, window = text.drift_frames(reference[features], current[features], text_columns=texts)
        detector = drift.DriftDetector(
            method=data_spec.method,
            threshold=data_spec.threshold,
            dataset_share=data_spec.dataset_share,
            categorical=categorical,
            importance=text.drift_importance(importance, texts),
        ).fit(compared)
        result = detector.score(window)
        plotted, plotted_window = dict(compared.items()), dict(window.items())
        for name in texts:
            terms, plotted[text.terms_column(name)], plotted_window[text.terms_column(name)] = text.term_drift(
                reference[name], current[name], importance=None if importance is None else importance.get(name, 0.0)
            )
            result = text.with_features(result, [terms])
    else:  # a single series without known-ahead features: concept drift only
        result = drift.DriftResult((), 0.0, False, data_spec.dataset_share, len(reference), samples)
    prediction_spec = request.prediction_drift
    # Classes, anomaly flags and cluster ids are categories: their shares are compared.
    is_classifier = card["problem"]["task"] in ("classification", "anomaly_detection", "clustering")
    # A forecast is a function of the time asked for: its distribution moves with the times clients ask
    # about, not with the world, so a forecasting version is judged on its errors (concept drift) alone.
    prediction = (
        None
        if card["problem"]["task"] == "forecasting"
        else drift.prediction_drift(
            _prediction_baseline(reference),
            current["__prediction__"],
            method=prediction_spec.method,
            threshold=prediction_spec.threshold,
            categorical=is_classifier,
        )
    )
    performance = _performance(request.concept_drift, card, current)
    bias = None if request.fairness is None else drift_fairness.check(request.fairness, card, current)
    status = result.to_status(explain.top_k, prediction=prediction, performance=performance)
    page = report.render(
        result,
        reference=plotted,
        current=plotted_window,
        title=_title(request, card),
        subtitle=_reference_note(card),
        performance=performance,
        prediction=prediction,
        bias=bias,
    )
    storage.write_bytes(request.report.uri, page.encode(), options=window_options)
    drifting = (
        result.dataset_drift
        or bool(prediction and prediction.drifted)
        or bool(performance and performance.drifted)
        or bool(bias and bias.drifted)
    )
    summary = result.explanation(explain.top_k)
    if performance is not None and performance.drifted:
        summary += (
            f" {performance.metric} fell from {performance.baseline:.3f} to {performance.current:.3f}"
            f" on {performance.samples} labeled requests."
        )
    if bias is not None and bias.drifted:
        summary += " " + drift_fairness.summary_sentence(bias)
    return driftcheck_api.DriftCheckResult.model_validate(
        {
            **status,
            "phase": "Drifting" if drifting else "Healthy",
            "samples": samples,
            "summary": summary,
            "reportUri": request.report.uri,
            **({"fairness": bias.wire()} if bias is not None else {}),
        }
    )


def _title(request: driftcheck_api.DriftCheckRequest, card: dict[str, Any]) -> str:
    """``Drift of <deployment> version <n>``: the version is the one the window was restricted to
    (``scope: stable``); a window of every version names the TrainingJob that made the reference's version."""
    deployment, versions = request.traffic.deployment, request.traffic.versions
    if versions is not None and len(versions) == 1:
        return f"Drift of {deployment} version {versions[0]}"
    made_by = card.get("lineage", {}).get("trainingJob")
    return f"Drift of {deployment}, every version" + (f", against the version trained by {made_by}" if made_by else "")


def _reference_note(card: dict[str, Any]) -> str | None:
    """What the reference rows are (the model card's ``reference``), for the report."""
    reference = card.get("reference") or {}
    return f"Reference: {reference['description']}." if reference.get("description") else None


MIN_HOLDOUT_PREDICTIONS = 30


def _prediction_baseline(reference: pd.DataFrame) -> pd.Series:
    """The version's predictions that live predictions are compared with: those on the rows it did
    not learn (``__holdout__``, see ``ml.reference``) when there are enough of them, else all."""
    if drift.HOLDOUT_COLUMN in reference.columns:
        unseen = reference.loc[reference[drift.HOLDOUT_COLUMN].astype(bool), drift.PREDICTION_COLUMN]
        if len(unseen) >= MIN_HOLDOUT_PREDICTIONS:
            return unseen
    return reference[drift.PREDICTION_COLUMN]


def _performance(
    spec: driftcheck_api.ConceptDrift, card: dict[str, Any], current: pd.DataFrame
) -> drift_performance.PerformanceDrift | None:
    labeled = current[current["__target__"].notna()]
    metric = spec.metric
    baseline = (card.get("metrics", {}).get("test") or {}).get(metric)
    if len(labeled) < spec.min_labeled or baseline is None or card["problem"]["task"] == "clustering":
        return None  # clusters have no ground truth to score
    if card["problem"]["task"] == "anomaly_detection":
        return anomaly.performance(
            metric,
            labeled["__target__"].tolist(),
            labeled["__record__"].tolist(),
            baseline=baseline,
            max_drop=spec.max_drop,
            contamination=(card.get("anomaly") or {}).get("contamination"),
        )
    truth, predicted, classes = labeled["__target__"].to_numpy(), labeled["__prediction__"].to_numpy(), card.get("classes")
    if card["problem"]["task"] == "classification":
        # Ground truth arrives as JSON and probability keys are JSON strings: classes are compared by their text.
        truth, predicted = truth.astype(str), predicted.astype(str)
        classes = None if classes is None else [str(c) for c in classes]
        if classes is not None and not set(predicted) <= set(classes):
            classes = None  # predictions renamed by labels postprocessing: the classes are the ones seen
        served = labeled["__probabilities__"]
        if metric in PROBABILITY_METRICS and served.map(lambda p: isinstance(p, dict) and len(p) > 0).all():
            classes = list(served.iloc[0])  # the served order (class names after any labels postprocessing)
            predicted = np.array([[p.get(c, 0.0) for c in classes] for p in served], dtype=float)
    return drift_performance.performance(
        metric,
        truth,
        predicted,
        baseline=baseline,
        max_drop=spec.max_drop,
        classes=classes,
        positive_class=card["problem"].get("positiveClass"),
    )


def answer(request_text: str) -> tuple[dict[str, Any], int]:
    """The answer (a result's or an error's wire form) and exit code of the check of ``request_text``."""
    if not request_text.strip():
        message = f"no request: set {driftcheck_api.REQUEST_ENV} to the request JSON (or pass it on stdin)"
        return driftcheck_api.DriftCheckError(error=message).wire(), EXIT_FAILED
    try:
        return analyse(json.loads(request_text)), EXIT_OK
    except pydantic.ValidationError as invalid:
        error = f"invalid request: {api_errors.describe(invalid, root='request')}"
    except json.JSONDecodeError as invalid:
        error = f"invalid request: not JSON: {invalid}"
    except (errors.MLError, KeyError, ValueError) as failure:
        error = f"{type(failure).__name__}: {failure}"
    return driftcheck_api.DriftCheckError(error=error).wire(), EXIT_FAILED


def compact(answer: dict[str, Any]) -> bytes:
    """``answer`` as JSON within the termination message's limit: the least important features go
    first (they are listed most important first), then the text is shortened."""
    answer = json.loads(json.dumps(answer))
    limit = driftcheck_api.RESULT_LIMIT_BYTES
    encoded = termination.encode(answer)
    while len(encoded) > limit and answer.get("features"):
        answer["features"].pop()
        encoded = termination.encode(answer)
    shifts = (answer.get("fairness") or {}).get("shifts")
    while len(encoded) > limit and shifts:
        shifts.pop()
        encoded = termination.encode(answer)
    for key in ("summary", "error"):
        if len(encoded) > limit and isinstance(answer.get(key), str):
            answer[key] = answer[key][: max(0, len(answer[key]) - (len(encoded) - limit) - 3)] + "..."
            encoded = termination.encode(answer)
    return encoded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlkube.driftcheck", description=__doc__.split("\n")[0])
    parser.add_argument("--result", default=TERMINATION_LOG, help="container path of the answer file (default: %(default)s)")
    args = parser.parse_args(argv)
    text = os.environ.get(driftcheck_api.REQUEST_ENV)
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

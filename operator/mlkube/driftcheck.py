"""The drift worker: ``python -m mlkube.driftcheck`` (request JSON on stdin, result JSON on stdout).

The DriftMonitor controller runs this in a separate process so the operator never loads the ML
stack. It verifies and loads the served version's reference, reads the latest window of captured
traffic with its feedback, scores data, prediction and concept drift, writes the HTML report to
the project's storage and prints what it found. The request and the result are
``mlkube.api.driftcheck.DriftCheckRequest`` and ``DriftCheckResult``, the models the operator
uses too. Errors are printed as ``{"error": "..."}`` with exit code 1.
"""

from __future__ import annotations

import json
import sys
import tempfile
from typing import Any

import numpy as np
import pandas as pd
import pydantic

from mlkube.api import driftcheck as driftcheck_api
from mlkube.api import errors as api_errors
from mlkube.common import timestamps
from mlkube.ml import artifacts, drift, drift_performance, errors, report, storage, traffic

# Metrics scored on class probabilities rather than on the predicted labels.
PROBABILITY_METRICS = ("roc_auc", "pr_auc", "log_loss")


def analyse(request: dict[str, Any]) -> dict[str, Any]:
    """The wire form of :func:`check`: a request as JSON-shaped data in, the result's wire form out.
    Raises ``pydantic.ValidationError`` (a ValueError) when ``request`` breaks the contract."""
    return check(driftcheck_api.DriftCheckRequest.model_validate(request)).wire()


def check(request: driftcheck_api.DriftCheckRequest) -> driftcheck_api.DriftCheckResult:
    """One analysis of ``request.traffic`` against ``request.reference``."""
    reference_spec, window_spec = request.reference, request.traffic
    with tempfile.TemporaryDirectory(prefix="mlkube-drift-") as local:
        options = storage.Options(endpoint=reference_spec.endpoint)
        directory = artifacts.download(reference_spec.uri, local, storage_options=options)
        version = artifacts.load(directory)
        reference = pd.read_parquet(f"{directory}/{artifacts.REFERENCE}")
    card = version.card
    schema = card["featureSchema"]
    features = [f["name"] for f in schema]
    window_options = storage.Options(endpoint=window_spec.endpoint)
    current = traffic.window(
        window_spec.uri,
        namespace=window_spec.namespace,
        deployment=window_spec.deployment,
        features=features,
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
    categorical = [f["name"] for f in schema if f["type"] in ("categorical", "boolean")]
    detector = drift.DriftDetector(
        method=data_spec.method,
        threshold=data_spec.threshold,
        dataset_share=data_spec.dataset_share,
        categorical=categorical,
        importance=card.get("featureImportance") if explain.enabled else None,
    ).fit(reference[features])
    result = detector.score(current[features])
    prediction_spec = request.prediction_drift
    is_classifier = card["problem"]["task"] == "classification"
    prediction = drift.prediction_drift(
        reference["__prediction__"],
        current["__prediction__"],
        method=prediction_spec.method,
        threshold=prediction_spec.threshold,
        categorical=is_classifier,
    )
    performance = _performance(request.concept_drift, card, current)
    status = result.to_status(explain.top_k, prediction=prediction, performance=performance)
    page = report.render(
        result,
        reference=reference[features],
        current=current[features],
        title=f"Drift of {window_spec.deployment} version {card.get('lineage', {}).get('trainingJob', '')}",
        performance=performance,
        prediction=prediction,
    )
    storage.write_bytes(request.report.uri, page.encode(), options=window_options)
    drifting = result.dataset_drift or prediction.drifted or bool(performance and performance.drifted)
    summary = result.explanation(explain.top_k)
    if performance is not None and performance.drifted:
        summary += (
            f" {performance.metric} fell from {performance.baseline:.3f} to {performance.current:.3f}"
            f" on {performance.samples} labeled requests."
        )
    return driftcheck_api.DriftCheckResult.model_validate(
        {
            **status,
            "phase": "Drifting" if drifting else "Healthy",
            "samples": samples,
            "summary": summary,
            "reportUri": request.report.uri,
        }
    )


def _performance(
    spec: driftcheck_api.ConceptDrift, card: dict[str, Any], current: pd.DataFrame
) -> drift_performance.PerformanceDrift | None:
    labeled = current[current["__target__"].notna()]
    metric = spec.metric
    baseline = (card.get("metrics", {}).get("test") or {}).get(metric)
    if len(labeled) < spec.min_labeled or baseline is None:
        return None
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


def main() -> int:
    try:
        result = analyse(json.load(sys.stdin))
    except pydantic.ValidationError as invalid:
        print(json.dumps({"error": f"invalid request: {api_errors.describe(invalid, root='request')}"}))
        return 1
    except (errors.MLError, KeyError, ValueError) as error:
        print(json.dumps({"error": f"{type(error).__name__}: {error}"}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

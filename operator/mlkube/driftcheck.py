"""The drift worker: ``python -m mlkube.driftcheck`` (request JSON on stdin, result JSON on stdout).

The DriftMonitor controller runs this in a separate process so the operator never loads the ML
stack. It verifies and loads the served version's reference, reads the latest window of captured
traffic with its feedback, scores data, prediction and concept drift, writes the HTML report to
the project's storage and prints the status fields (see ``mlkube.control.manifests.drift``). Errors are
printed as ``{"error": "..."}`` with exit code 1.
"""

from __future__ import annotations

import datetime
import json
import sys
import tempfile
from typing import Any

import numpy as np
import pandas as pd

from mlkube.ml import artifacts, drift, drift_performance, errors, report, storage, traffic

# Metrics scored on class probabilities rather than on the predicted labels.
PROBABILITY_METRICS = ("roc_auc", "pr_auc", "log_loss")


def analyse(request: dict[str, Any]) -> dict[str, Any]:
    """The status fields of one analysis."""
    reference_spec, window_spec = request["reference"], request["traffic"]
    with tempfile.TemporaryDirectory(prefix="mlkube-drift-") as local:
        options = storage.Options(endpoint=reference_spec.get("endpoint"))
        directory = artifacts.download(reference_spec["uri"], local, storage_options=options)
        version = artifacts.load(directory)
        reference = pd.read_parquet(f"{directory}/{artifacts.REFERENCE}")
    card = version.card
    schema = card["featureSchema"]
    features = [f["name"] for f in schema]
    since = datetime.datetime.fromisoformat(window_spec["since"].replace("Z", "+00:00"))
    current = traffic.window(window_spec["uri"], namespace=window_spec["namespace"], deployment=window_spec["deployment"],
                             features=features, since=since, size=window_spec["size"], versions=window_spec.get("versions"),
                             options=storage.Options(endpoint=window_spec.get("endpoint")))
    samples = len(current)
    if samples < request["minSamples"]:
        return {"phase": "InsufficientData", "samples": samples,
                "summary": f"{samples} captured requests in the window; {request['minSamples']} are needed (spec.minSamples)"}
    data_spec, explain = request["dataDrift"], request["explainability"]
    categorical = [f["name"] for f in schema if f["type"] in ("categorical", "boolean")]
    detector = drift.DriftDetector(
        method=data_spec.get("method", "auto"), threshold=data_spec.get("threshold"),
        dataset_share=data_spec.get("datasetShare", 0.5), categorical=categorical,
        importance=card.get("featureImportance") if explain.get("enabled", True) else None,
    ).fit(reference[features])
    result = detector.score(current[features])
    prediction_spec = request["predictionDrift"]
    is_classifier = card["problem"]["task"] == "classification"
    prediction = drift.prediction_drift(reference["__prediction__"], current["__prediction__"],
                                        method=prediction_spec.get("method", "psi"), threshold=prediction_spec.get("threshold"),
                                        categorical=is_classifier)
    performance = _performance(request["conceptDrift"], card, current)
    top_k = explain.get("topK", 5)
    status = result.to_status(top_k, prediction=prediction, performance=performance)
    page = report.render(result, reference=reference[features], current=current[features],
                         title=f"Drift of {window_spec['deployment']} version {card.get('lineage', {}).get('trainingJob', '')}",
                         performance=performance, prediction=prediction)
    storage.write_bytes(request["report"]["uri"], page.encode(), options=storage.Options(endpoint=window_spec.get("endpoint")))
    drifting = result.dataset_drift or prediction.drifted or bool(performance and performance.drifted)
    summary = result.explanation(top_k)
    if performance is not None and performance.drifted:
        summary += (f" {performance.metric} fell from {performance.baseline:.3f} to {performance.current:.3f}"
                    f" on {performance.samples} labeled requests.")
    return {**status, "phase": "Drifting" if drifting else "Healthy", "samples": samples,
            "reportUri": request["report"]["uri"], "summary": summary}


def _performance(spec: dict[str, Any], card: dict[str, Any], current: pd.DataFrame) -> drift_performance.PerformanceDrift | None:
    labeled = current[current["__target__"].notna()]
    metric = spec["metric"]
    baseline = (card.get("metrics", {}).get("test") or {}).get(metric)
    if len(labeled) < spec.get("minLabeled", 50) or baseline is None:
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
    return drift_performance.performance(metric, truth, predicted, baseline=baseline, max_drop=spec.get("maxDrop", 0.05),
                                         classes=classes, positive_class=card["problem"].get("positiveClass"))


def main() -> int:
    try:
        result = analyse(json.load(sys.stdin))
    except (errors.MLError, KeyError, ValueError) as error:
        print(json.dumps({"error": f"{type(error).__name__}: {error}"}))
        return 1
    print(json.dumps(result, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())

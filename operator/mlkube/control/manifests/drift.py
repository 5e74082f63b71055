"""The request a DriftMonitor hands to the drift worker (``python -m mlkube.driftcheck``).

Request (JSON on the worker's stdin):
``{"reference": {"uri", "endpoint"}, "traffic": {"uri", "endpoint", "namespace", "deployment",
"versions", "size", "since"}, "minSamples", "dataDrift", "predictionDrift", "conceptDrift":
{"metric", "maxDrop", "minLabeled"}, "explainability", "report": {"uri"}}``.
Result (one JSON line on stdout): ``{"phase", "samples", "datasetDrift", "driftShare",
"features", "predictionDrift", "performance", "reportUri", "summary"}`` or ``{"error"}``.
"""

from __future__ import annotations

import datetime
from typing import Any

from mlkube.api import base, project


def drift_request(dmon: dict[str, Any], spec: Any, *, mdep: dict[str, Any], storage: project.Storage,
                  entry: dict[str, Any], primary_metric: str, now: datetime.datetime) -> dict[str, Any]:
    window_start = now - base.parse_duration(spec.window.duration)
    root = storage.uri.rstrip("/")
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    namespace = dmon["metadata"]["namespace"]
    return {
        "reference": {"uri": entry["artifactUri"], "endpoint": storage.endpoint},
        "traffic": {
            "uri": root, "endpoint": storage.endpoint, "namespace": namespace, "deployment": mdep["metadata"]["name"],
            "versions": [entry["version"]] if spec.scope == "stable" else None,
            "size": spec.window.size, "since": window_start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "minSamples": spec.min_samples,
        "dataDrift": spec.data_drift.wire(),
        "predictionDrift": spec.prediction_drift.wire(),
        "conceptDrift": {**spec.concept_drift.wire(), "metric": spec.concept_drift.metric or primary_metric},
        "explainability": spec.explainability.wire(),
        "report": {"uri": f"{root}/reports/{namespace}/{dmon['metadata']['name']}/{stamp}.html"},
    }

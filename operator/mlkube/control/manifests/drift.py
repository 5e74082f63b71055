"""The request a DriftMonitor hands to the drift worker (``python -m mlkube.driftcheck``).

The contract itself (request and result) is ``mlkube.api.driftcheck``; this module only fills a
request from the monitor, its project's storage and the served version. Pure: ``now`` is an
argument.
"""

from __future__ import annotations

import datetime
from typing import Any

from mlkube.api import base, driftcheck, monitor, project
from mlkube.common import timestamps


def drift_request(
    dmon: dict[str, Any],
    spec: monitor.DriftMonitorSpec,
    *,
    storage: project.Storage,
    entry: project.ModelEntry,
    primary_metric: str,
    now: datetime.datetime,
) -> driftcheck.DriftCheckRequest:
    """The analysis of the window ending at ``now`` of ``spec.deploymentRef``'s traffic, against the
    reference of the served version ``entry``; the report is named after ``now``."""
    root = storage.uri.rstrip("/")
    namespace, name = dmon["metadata"]["namespace"], dmon["metadata"]["name"]
    stamp = timestamps.format(now).replace("-", "").replace(":", "")
    return driftcheck.DriftCheckRequest(
        reference=driftcheck.Reference(uri=entry.artifact_uri, endpoint=storage.endpoint),
        traffic=driftcheck.Traffic(
            uri=root,
            endpoint=storage.endpoint,
            namespace=namespace,
            deployment=spec.deployment_ref,
            versions=[entry.version] if spec.scope == "stable" else None,
            size=spec.window.size,
            since=timestamps.format(now - base.parse_duration(spec.window.duration)),
        ),
        min_samples=spec.min_samples,
        data_drift=spec.data_drift,
        prediction_drift=spec.prediction_drift,
        concept_drift=driftcheck.ConceptDrift(
            metric=spec.concept_drift.metric or primary_metric,
            max_drop=spec.concept_drift.max_drop,
            min_labeled=spec.concept_drift.min_labeled,
        ),
        explainability=spec.explainability,
        report=driftcheck.Report(uri=f"{root}/reports/{namespace}/{name}/{stamp}.html"),
    )

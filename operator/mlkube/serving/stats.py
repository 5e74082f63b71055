"""The router's measurements: cumulative per-version counters, as JSON and as Prometheus metrics.

Owns: what the ModelDeployment controller diffs over an analysis interval (`GET /mlkube/stats`)
and what Prometheus scrapes (`GET /metrics`). Both views render the same plain counters, so they
never disagree and the request path pays for a few integer additions, not for metric objects.

Counting rules: every call the router makes to a version counts for that version, whichever
role it played (stable, canary, preview, or a mirrored shadow/compare copy); `byRole` splits the
count. A response with status >= 400, and a connection failure (status 0, answered 502 to the
client), counts as an error. Agreement counts one comparison per mirrored request: agreed when
every prediction in the two responses matches (see `agreement.py`). Quality counts labeled
predictions: one per ground-truth feedback scored against the single prediction that version
returned for the request id (see `feedback.score`): `labeled`, `correct` and, for numeric
predictions, the sums of absolute and squared errors (a regressor's MAE and RMSE, and the
variance of its absolute errors, for the A/B test report). Scores: for the versions the routing
table names, the probabilities they served (see `scores.py`), under `scores` in the JSON view
(absent for a version with none).

Must not: do I/O or know about HTTP.
"""

from __future__ import annotations

import bisect
import dataclasses
import time
from collections.abc import Iterator

from prometheus_client import core as prom_core
from prometheus_client import exposition, registry

from mlkube.serving import scores as scores_mod

LATENCY_BUCKETS_MS = (1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


@dataclasses.dataclass
class VersionStats:
    requests: int = 0
    errors: int = 0
    bucket_counts: list[int] = dataclasses.field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_MS) + 1))
    latency_sum_ms: float = 0.0
    compared: int = 0
    agreed: int = 0
    labeled: int = 0
    correct: int = 0
    abs_error_sum: float = 0.0
    squared_error_sum: float = 0.0
    by_role: dict[str, int] = dataclasses.field(default_factory=dict)
    by_code: dict[tuple[str, int], int] = dataclasses.field(default_factory=dict)
    scores: scores_mod.Scores | None = None  # created by the first scored answer

    def as_json(self) -> dict:
        cumulative, running = [], 0
        for bound, count in zip((*LATENCY_BUCKETS_MS, "+Inf"), self.bucket_counts):
            running += count
            cumulative.append({"le": bound, "count": running})
        return {
            "requests": self.requests,
            "errors": self.errors,
            # The version's own failures (5xx, unreachable), without the clients' bad requests (4xx):
            # what rollout analysis judges a candidate by.
            "serverErrors": sum(n for (_, code), n in self.by_code.items() if code == 0 or code >= 500),
            "byRole": dict(self.by_role),
            "latency": {"unit": "ms", "buckets": cumulative, "sum": round(self.latency_sum_ms, 3), "count": self.requests},
            "agreement": {"compared": self.compared, "agreed": self.agreed},
            "quality": {
                "labeled": self.labeled,
                "correct": self.correct,
                "absErrorSum": self.abs_error_sum,
                "squaredErrorSum": self.squared_error_sum,
            },
            **({"scores": self.scores.as_json()} if self.scores is not None else {}),
        }


class Stats:
    """Every counter of one router process."""

    def __init__(self, deployment: str = ""):
        self.deployment = deployment
        self.started = time.time()
        self.generation: int | None = None
        self.versions: dict[int, VersionStats] = {}
        # Capture: see `capture.Recorder` for what each counter counts.
        self.capture = {
            "captured": 0,
            "written": 0,
            "dropped": 0,
            "writeErrors": 0,
            "truncated": 0,
            "unserializable": 0,
            "errors": 0,
            "restarts": 0,
        }
        self.mirrors_dropped = 0
        # Feedback items accepted, for unknown ids, not scored, refused as a second label for an
        # id (conflicts) or over the size limit; requests refused for a missing or wrong token
        # (unauthorized) or over the client's rate (rateLimited).
        self.feedback = {
            "accepted": 0,
            "unknown": 0,
            "unscored": 0,
            "conflicts": 0,
            "tooLarge": 0,
            "unauthorized": 0,
            "rateLimited": 0,
        }
        self.table_errors = 0

    def version(self, version: int) -> VersionStats:
        stats = self.versions.get(version)
        if stats is None:
            stats = self.versions[version] = VersionStats()
        return stats

    def record(self, version: int, role: str, *, status: int, latency_ms: float) -> None:
        """One call to `version`; status 0 means the backend could not be reached."""
        stats = self.version(version)
        stats.requests += 1
        if status >= 400 or status == 0:
            stats.errors += 1
        stats.bucket_counts[bisect.bisect_left(LATENCY_BUCKETS_MS, latency_ms)] += 1
        stats.latency_sum_ms += latency_ms
        by_role, by_code, key = stats.by_role, stats.by_code, (role, status)
        by_role[role] = by_role.get(role, 0) + 1
        by_code[key] = by_code.get(key, 0) + 1

    def record_scores(self, version: int, body: bytes) -> None:
        """The probabilities in a successful predict answer of `version` (see `scores.observe`)."""
        stats = self.version(version)
        if stats.scores is None:
            stats.scores = scores_mod.Scores()
        scores_mod.observe(stats.scores, body)

    def record_scored_label(self, version: int, body: bytes, truth: object) -> None:
        """A ground truth for `version`'s answer `body`, for its realised ROC AUC (see `scores.label`)."""
        stats = self.version(version)
        if stats.scores is None:
            stats.scores = scores_mod.Scores()
        scores_mod.label(stats.scores, body, truth)

    def record_agreement(self, version: int, agreed: bool) -> None:
        stats = self.version(version)
        stats.compared += 1
        stats.agreed += int(agreed)

    def record_label(self, version: int, *, correct: bool, error: float | None) -> None:
        """One scored feedback: whether `version`'s prediction was correct, and its numeric error."""
        stats = self.version(version)
        stats.labeled += 1
        stats.correct += int(correct)
        if error is not None:
            stats.abs_error_sum += abs(error)
            stats.squared_error_sum += error * error

    def as_json(self) -> dict:
        return {
            "deployment": self.deployment,
            "generation": self.generation,
            "startTime": self.started,
            "versions": {str(v): s.as_json() for v, s in sorted(self.versions.items())},
            "capture": dict(self.capture),
            "mirrorsDropped": self.mirrors_dropped,
            "feedback": dict(self.feedback),
            "tableErrors": self.table_errors,
        }


class _Collector(registry.Collector):
    def __init__(self, stats: Stats):
        self.stats = stats

    def collect(self) -> Iterator[prom_core.Metric]:
        s, labels = self.stats, ["deployment", "version"]
        requests = prom_core.CounterMetricFamily(
            "mlkube_router_requests",
            "Calls to a model version by role and HTTP status (0: unreachable)",
            labels=[*labels, "role", "code"],
        )
        errors = prom_core.CounterMetricFamily("mlkube_router_errors", "Calls answered >= 400 or failed", labels=labels)
        latency = prom_core.HistogramMetricFamily(
            "mlkube_router_request_duration_seconds", "Backend call latency seen by the router", labels=labels
        )
        compared = prom_core.CounterMetricFamily("mlkube_router_agreement_compared", "Mirrored comparisons", labels=labels)
        agreed = prom_core.CounterMetricFamily("mlkube_router_agreement_agreed", "Comparisons that agreed", labels=labels)
        labeled = prom_core.CounterMetricFamily(
            "mlkube_router_quality_labeled", "Predictions scored against ground-truth feedback", labels=labels
        )
        correct = prom_core.CounterMetricFamily(
            "mlkube_router_quality_correct", "Labeled predictions equal to the ground truth", labels=labels
        )
        abs_error = prom_core.CounterMetricFamily(
            "mlkube_router_quality_abs_error", "Sum of |prediction - ground truth| (numeric predictions)", labels=labels
        )
        squared_error = prom_core.CounterMetricFamily(
            "mlkube_router_quality_squared_error", "Sum of (prediction - ground truth)^2 (numeric predictions)", labels=labels
        )
        for version, v in sorted(s.versions.items()):
            values = [s.deployment, str(version)]
            for (role, code), count in sorted(v.by_code.items()):
                requests.add_metric([*values, role, str(code)], count)
            errors.add_metric(values, v.errors)
            running, buckets = 0, []
            for bound, count in zip((*LATENCY_BUCKETS_MS, float("inf")), v.bucket_counts):
                running += count
                buckets.append((_le(bound), running))
            latency.add_metric(values, buckets, v.latency_sum_ms / 1000.0)
            compared.add_metric(values, v.compared)
            agreed.add_metric(values, v.agreed)
            labeled.add_metric(values, v.labeled)
            correct.add_metric(values, v.correct)
            abs_error.add_metric(values, v.abs_error_sum)
            squared_error.add_metric(values, v.squared_error_sum)
        yield from (requests, errors, latency, compared, agreed, labeled, correct, abs_error, squared_error)
        for key, count in s.capture.items():
            name = "mlkube_router_capture_" + _snake(key)
            family = prom_core.CounterMetricFamily(name, f"Capture records {key}", labels=["deployment"])
            family.add_metric([s.deployment], count)
            yield family
        dropped = prom_core.CounterMetricFamily(
            "mlkube_router_mirrors_dropped", "Mirror calls skipped (too many in flight)", labels=["deployment"]
        )
        dropped.add_metric([s.deployment], s.mirrors_dropped)
        yield dropped
        for key, count in s.feedback.items():
            family = prom_core.CounterMetricFamily(
                f"mlkube_router_feedback_{_snake(key)}", f"Feedback {key}", labels=["deployment"]
            )
            family.add_metric([s.deployment], count)
            yield family


def _snake(key: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in key)


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound / 1000.0)


def prometheus_text(stats: Stats) -> tuple[bytes, str]:
    """The Prometheus exposition of `stats` and its content type."""
    reg = registry.CollectorRegistry(auto_describe=False)
    reg.register(_Collector(stats))
    return exposition.generate_latest(reg), exposition.CONTENT_TYPE_LATEST

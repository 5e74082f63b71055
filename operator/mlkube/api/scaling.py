"""How a ModelDeployment's versions and its router are served and scaled.

The ``spec.serving`` and ``spec.router`` models of the ModelDeployment kind (``api/deployment.py``):
KServe's deployment mode, fixed replicas or an autoscaling range per version, the model server's
adaptive batching, and the router's replicas. Plain data with their validation; the CRD schema
is generated from them, so their wire names are the API.
"""

from __future__ import annotations

from typing import Literal

import pydantic

from mlkube.api import base


class Batching(base.ApiModel):
    """Adaptive batching in each model server: concurrent requests scored in one predict call."""

    enabled: bool = True
    """true: requests that arrive together are validated one by one, scored in one pipeline call,
    and answered one by one (each keeps its request id, a bad request fails alone); false: one
    pipeline call per request."""
    max_batch_size: int = pydantic.Field(64, ge=1, le=10000)
    """Rows scored in one call at most; a request with more rows is scored alone."""
    # 1ms to 1s: waiting longer for neighbours would cost more latency than batching saves.
    max_latency: str = pydantic.Field("2ms", pattern=r"^([1-9][0-9]{0,2}ms|1s)$")
    """Longest a request waits for others to join its batch, 1ms to 1s (e.g. 2ms, 10ms). Only
    under concurrent load: an idle server scores a lone request at once."""

    def max_latency_seconds(self) -> float:
        """`max_latency` in seconds."""
        return base.parse_duration(self.max_latency).total_seconds()


class Autoscaling(base.ApiModel):
    """How KServe scales each version's predictor between two bounds."""

    min_replicas: int = pydantic.Field(1, ge=0, le=1000)
    """Fewest replicas per version; 0 (scale to zero) needs deploymentMode Serverless."""
    max_replicas: int = pydantic.Field(ge=1, le=1000)
    """Most replicas per version."""
    metric: Literal["cpu", "memory", "concurrency", "rps"] = "cpu"
    """What the autoscaler holds at the target: cpu or memory utilization (%), in-flight requests
    per replica (concurrency) or requests per second per replica (rps). concurrency and rps are
    Knative's metrics and need deploymentMode Serverless."""
    target: int = pydantic.Field(ge=1)
    """The metric's target per replica: a percentage for cpu and memory, a count for concurrency
    and rps."""
    autoscaler: Literal["hpa", "keda"] = "hpa"
    """RawDeployment's autoscaler class: KServe's HorizontalPodAutoscaler, or a KEDA ScaledObject
    (KEDA installed in the cluster). Serverless uses Knative's autoscaler."""

    @pydantic.model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"minReplicas ({self.min_replicas}) is above maxReplicas ({self.max_replicas})")
        if self.metric in ("cpu", "memory") and self.target > 100:
            raise ValueError(f"target: {self.metric} utilization is a percentage, 1 to 100 (got {self.target})")
        return self

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.minReplicas) || self.minReplicas <= self.maxReplicas",
                    "message": "minReplicas is above maxReplicas",
                }
            ]
        }
    )


class Serving(base.ApiModel):
    """How each version is served by KServe."""

    deployment_mode: Literal["RawDeployment", "Serverless"] = "RawDeployment"
    """KServe deployment mode of the InferenceServices."""
    replicas: int = pydantic.Field(1, ge=0, le=1000)
    """Replicas per version (a fixed count; see autoscaling for a range)."""
    autoscaling: Autoscaling | None = None
    """Scale each version between minReplicas and maxReplicas on a metric (replaces replicas)."""
    resources: base.ResourceRequirements | None = None
    """Resources of the model server container."""
    batching: Batching = pydantic.Field(default_factory=Batching)
    """Adaptive batching of concurrent requests in each model server."""

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.autoscaling) || !has(self.autoscaling.metric) || "
                    "self.autoscaling.metric in ['cpu', 'memory'] || "
                    "(has(self.deploymentMode) && self.deploymentMode == 'Serverless')",
                    "message": "autoscaling.metric concurrency and rps need deploymentMode: Serverless",
                    "fieldPath": ".autoscaling.metric",
                }
            ]
        }
    )

    @pydantic.model_validator(mode="after")
    def _autoscaling_fits_the_mode(self) -> Serving:
        scaling = self.autoscaling
        if scaling is None or self.deployment_mode == "Serverless":
            return self
        if scaling.metric in ("concurrency", "rps"):
            raise ValueError(
                f"autoscaling.metric: {scaling.metric} is a Knative metric; use deploymentMode: Serverless, "
                "or metric cpu or memory in RawDeployment"
            )
        if scaling.min_replicas == 0:
            raise ValueError("autoscaling.minReplicas: scale to zero needs deploymentMode: Serverless")
        return self


class Router(base.ApiModel):
    """The router Deployment in front of the versions: how many replicas share the traffic."""

    replicas: int = pydantic.Field(1, ge=1, le=100)
    """Router replicas (the fewest, with maxReplicas). Every replica routes by the same table and
    hashes sticky A/B keys the same way; analysis sums all replicas' counters."""
    max_replicas: int | None = pydantic.Field(None, ge=1, le=100)
    """With a value above replicas, a HorizontalPodAutoscaler scales the router between the two
    on CPU utilization."""
    target_cpu_utilization: int = pydantic.Field(70, ge=1, le=100)
    """The HorizontalPodAutoscaler's target average CPU utilization (% of the router's request)."""

    @pydantic.model_validator(mode="after")
    def _bounds(self) -> Router:
        if self.max_replicas is not None and self.max_replicas < self.replicas:
            raise ValueError(f"maxReplicas ({self.max_replicas}) is below replicas ({self.replicas})")
        return self

    @property
    def autoscaled(self) -> bool:
        """Whether a HorizontalPodAutoscaler owns the router's replica count."""
        return self.max_replicas is not None and self.max_replicas > self.replicas

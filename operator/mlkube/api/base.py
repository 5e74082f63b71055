"""Building blocks shared by the four kinds: the model base, durations, conditions, metrics.

Every API field is declared once, here and in the kind modules, with its type, bounds, wire
name (camelCase) and an attribute docstring that becomes its CRD description. Nothing here
talks to Kubernetes or reads the clock.
"""

from __future__ import annotations

import datetime
import re
from typing import Annotated, Any, Literal

import pydantic
from pydantic import alias_generators

GROUP = "mlkube.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


class ApiModel(pydantic.BaseModel):
    """Base of every spec and status model: camelCase on the wire, unknown fields refused."""

    model_config = pydantic.ConfigDict(
        alias_generator=alias_generators.to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
        extra="forbid",
        validate_default=False,
    )

    def wire(self) -> dict[str, Any]:
        """The object as it is written to the API: camelCase keys, unset optionals left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


# A positive duration such as 30s, 250ms, 5m, 6h, 7d or 1h30m. The pattern refuses zero and
# negative values, so the API server rejects them before the operator sees them.
DURATION_PATTERN = r"^([0-9]*[1-9][0-9]*(ms|s|m|h|d))+$"
Duration = Annotated[str, pydantic.Field(pattern=DURATION_PATTERN)]

# Five space-separated cron fields; croniter checks each field when the operator parses the spec.
CRON_PATTERN = r"^\S+(\s+\S+){4}$"
Cron = Annotated[str, pydantic.Field(pattern=CRON_PATTERN)]

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
ObjectName = Annotated[str, pydantic.Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")]
# A Kueue LocalQueue's name: it travels as a label value, so a DNS label of at most 63 characters.
QueueName = Annotated[str, pydantic.Field(min_length=1, max_length=63, pattern=DNS_LABEL)]

_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> datetime.timedelta:
    """``"1h30m"`` -> ``timedelta(hours=1, minutes=30)``; raises ValueError on anything else."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a positive duration such as 30s, 5m, 6h or 7d")
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))
    return datetime.timedelta(seconds=seconds)


# Metrics and the direction in which they improve. The ML core computes them; the operator
# compares versions with them; the schema restricts success criteria to them.
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss")
REGRESSION_METRICS = ("rmse", "mae", "r2", "mape")
# anomaly_detection: the label metrics need problem.target (1 = anomaly); anomaly_rate is always reported.
ANOMALY_METRICS = ("roc_auc", "pr_auc", "precision_at_k", "recall_at_k", "f1", "anomaly_rate")
ANOMALY_PRIMARY_METRICS = ("roc_auc", "pr_auc", "precision_at_k", "recall_at_k", "f1")
# clustering: n_clusters is reported, never compared.
CLUSTERING_METRICS = ("silhouette", "davies_bouldin", "calinski_harabasz", "n_clusters")
CLUSTERING_PRIMARY_METRICS = ("silhouette", "davies_bouldin", "calinski_harabasz")
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae", "mape", "davies_bouldin"})
Metric = Literal[
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "pr_auc",
    "log_loss",
    "rmse",
    "mae",
    "r2",
    "mape",
    "precision_at_k",
    "recall_at_k",
    "anomaly_rate",
    "silhouette",
    "davies_bouldin",
    "calinski_harabasz",
    "n_clusters",
]


# Summary fairness metrics (computed by the ML core on the test split, judged by fairness criteria).
FAIRNESS_METRICS = (
    "disparate_impact",
    "demographic_parity_difference",
    "equalized_odds_difference",
    "equal_opportunity_difference",
)
FairnessMetric = Literal[
    "disparate_impact", "demographic_parity_difference", "equalized_odds_difference", "equal_opportunity_difference"
]
_OPS = {
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
    "==": lambda a, b: a == b,
}


def compare(value: float, op: str, threshold: float) -> bool:
    """Whether ``value op threshold`` holds (op is one of >=, >, <=, <, ==)."""
    return _OPS[op](value, threshold)


def is_improvement(metric: str, new: float, old: float, *, min_improvement: float = 0.0) -> bool:
    """Whether ``new`` beats ``old`` on ``metric`` by at least ``min_improvement``."""
    gain = old - new if metric in LOWER_IS_BETTER else new - old
    return gain > 0 and gain >= min_improvement


class Condition(ApiModel):
    """A condition in the Kubernetes shape."""

    type: str
    """Condition type, an adjective such as Ready, Trained or Degraded."""
    status: Literal["True", "False", "Unknown"]
    """True, False or Unknown."""
    reason: str = ""
    """CamelCase reason for the last transition."""
    message: str = ""
    """Human-readable detail: what happened and what to fix."""
    last_transition_time: str | None = None
    """When the status last changed (RFC 3339)."""
    observed_generation: int | None = None
    """The metadata.generation this condition was computed from."""


class ResourceRequirements(ApiModel):
    """CPU and memory for a container, as in a Pod spec."""

    requests: dict[str, int | str] = {}
    """Minimum resources, e.g. {cpu: "1", memory: 1Gi}."""
    limits: dict[str, int | str] = {}
    """Maximum resources, e.g. {memory: 2Gi}."""


class StatusBase(ApiModel):
    """Fields every kind reports."""

    observed_generation: int | None = None
    """The metadata.generation the status describes."""
    conditions: list[Condition] = []
    """Latest observations of the object's state; every kind has Ready."""
    message: str | None = None
    """What went wrong and what to fix, when something did."""

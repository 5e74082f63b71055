"""Each kind: a valid example round-trips through the models; invalid ones are refused with the field path."""

import pathlib

import pydantic
import pytest
import yaml

from mlkube.api import base, errors, kinds

EXAMPLES = pathlib.Path(__file__).parents[3] / "examples"


def example(kind: str) -> dict:
    # The top-level examples first (examples/registry: what the operator creates; one folder per framing).
    for path in sorted(EXAMPLES.rglob("*.yaml"), key=lambda p: (len(p.relative_to(EXAMPLES).parts), p)):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == kind:
                return doc
    raise LookupError(kind)


@pytest.mark.parametrize("kind", kinds.ALL, ids=lambda k: k.kind)
def test_example_round_trips(kind):
    spec = example(kind.kind)["spec"]
    parsed = kind.parse_spec(spec)
    again = kind.parse_spec(parsed.wire())
    assert again == parsed
    # Every field the user wrote survives the trip with its wire name.
    assert _subset(spec, parsed.wire())


def _subset(small, big) -> bool:
    if isinstance(small, dict):
        return isinstance(big, dict) and all(k in big and _subset(v, big[k]) for k, v in small.items())
    if isinstance(small, list):
        return isinstance(big, list) and len(small) == len(big) and all(_subset(a, b) for a, b in zip(small, big))
    return small == big


def refused(kind, spec) -> str:
    with pytest.raises(pydantic.ValidationError) as caught:
        kind.parse_spec(spec)
    return errors.describe(caught.value)


def with_changes(kind_name: str, path: str, value):
    spec = example(kind_name)["spec"]
    node = spec
    *parents, last = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    if value is _DELETE:
        node.pop(last, None)
    else:
        node[last] = value
    return spec


_DELETE = object()

INVALID = [
    ("MLProject", "problem.task", "ranking", "spec.problem.task"),
    ("MLProject", "problem.contamination", 0.7, "spec.problem.contamination"),
    ("MLProject", "problem.contamination", 0, "spec.problem.contamination"),
    ("MLProject", "problem.contamination", 0.1, "spec.problem: contamination: applies to task anomaly_detection"),
    ("MLProject", "problem.clusters", {"min": 2, "max": 5}, "spec.problem: clusters: applies to task clustering"),
    ("MLProject", "problem.primaryMetric", "silhouette", "spec.problem: primaryMetric: silhouette is not a classification"),
    ("MLProject", "problem.target", _DELETE, "spec.problem: target: classification needs the column to predict"),
    ("MLProject", "problem.primaryMetric", "rmse", "spec.problem"),
    ("MLProject", "goal.type", "Fun", "spec.goal.type"),
    ("MLProject", "storage", _DELETE, "spec.storage"),
    ("MLProject", "data.uri", "ftp://x/y.csv", "spec.data.uri"),
    ("MLProject", "retraining.cooldown", "0s", "spec.retraining.cooldown"),
    ("MLProject", "retraining.schedule", "every day", "spec.retraining.schedule"),
    ("MLProject", "successCriteria", [{"metric": "f1", "op": "=>", "threshold": 0.5}], "spec.successCriteria[0].op"),
    ("TrainingJob", "projectRef", _DELETE, "spec.projectRef"),
    ("TrainingJob", "tuning.maxTrials", 0, "spec.tuning.maxTrials"),
    ("TrainingJob", "tuning.strategy", "genetic", "spec.tuning.strategy"),
    ("TrainingJob", "preprocessing.split", {"test": 0.6, "validation": 0.5}, "spec.preprocessing.split"),
    ("TrainingJob", "preprocessing.scale", "log", "spec.preprocessing.scale"),
    ("TrainingJob", "algorithms", [{"name": "xgboost"}], "spec.algorithms[0].name"),
    ("TrainingJob", "timeout", "-5m", "spec.timeout"),
    ("TrainingJob", "unknownField", 1, "spec.unknownField"),
    ("ModelDeployment", "model", {"version": 3, "track": "champion"}, "spec.model"),
    ("ModelDeployment", "model", {}, "spec.model"),
    ("ModelDeployment", "strategy.canary", {"steps": [{"weight": 120}]}, "spec.strategy.canary.steps[0].weight"),
    ("ModelDeployment", "strategy.type", "Linear", "spec.strategy.type"),
    ("ModelDeployment", "logging.sampleRate", 1.5, "spec.logging.sampleRate"),
    ("DriftMonitor", "deploymentRef", _DELETE, "spec: set exactly one of deploymentRef or batchPredictionRef"),
    ("DriftMonitor", "batchPredictionRef", "nightly", "spec: set exactly one of deploymentRef or batchPredictionRef"),
    ("DriftMonitor", "dataDrift.method", "magic", "spec.dataDrift.method"),
    ("DriftMonitor", "interval", "5 minutes", "spec.interval"),
    ("DriftMonitor", "alerting", {"webhook": "alertmanager:9093"}, "spec.alerting.webhook"),
]


@pytest.mark.parametrize(("kind_name", "path", "value", "field"), INVALID, ids=[f"{k}:{p}" for k, p, *_ in INVALID])
def test_invalid_spec_is_refused_naming_the_field(kind_name, path, value, field):
    message = refused(kinds.BY_KIND[kind_name], with_changes(kind_name, path, value))
    assert message.startswith(field), message


def test_parse_duration():
    assert base.parse_duration("1h30m").total_seconds() == 5400
    assert base.parse_duration("250ms").total_seconds() == 0.25
    assert base.parse_duration("7d").days == 7
    with pytest.raises(ValueError, match="positive duration"):
        base.parse_duration("0s")


@pytest.mark.parametrize(
    ("metric", "new", "old", "min_improvement", "better"),
    [
        ("roc_auc", 0.9, 0.8, 0.0, True),
        ("roc_auc", 0.8, 0.8, 0.0, False),
        ("roc_auc", 0.82, 0.8, 0.05, False),
        ("rmse", 1.0, 2.0, 0.5, True),
        ("rmse", 2.0, 1.0, 0.0, False),
        ("log_loss", 0.3, 0.31, 0.02, False),
    ],
)
def test_is_improvement_respects_metric_direction(metric, new, old, min_improvement, better):
    assert base.is_improvement(metric, new, old, min_improvement=min_improvement) is better

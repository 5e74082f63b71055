"""Typed specs for the ML core's tests (imported as `mlspec`; the test directories are not packages)."""

from mlkube.api import preprocessing as preprocessing_api
from mlkube.api import project


def problem(task="classification", target="y", **fields) -> project.Problem:
    metric = fields.pop("primaryMetric", "roc_auc" if task == "classification" else "rmse")
    return project.Problem.model_validate({"task": task, "target": target, "primaryMetric": metric, **fields})


def preprocessing(**fields) -> preprocessing_api.Preprocessing:
    return preprocessing_api.Preprocessing.model_validate(fields)

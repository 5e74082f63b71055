"""The forecasting framing's fields: refused inconsistencies name the field path, in pydantic and in the CRD."""

from __future__ import annotations

import functools
import pathlib

import pydantic
import pytest
import yaml

from mlkube.api import project
from mlkube.local.apiserver import schema

ROOT = pathlib.Path(__file__).parents[3]


@functools.cache
def _crd_schema() -> dict:
    crd = yaml.safe_load((ROOT / "crds/mlkube.io_mlprojects.yaml").read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _project(problem: dict) -> dict:
    return {
        "apiVersion": "mlkube.io/v1alpha1",
        "kind": "MLProject",
        "metadata": {"name": "air", "namespace": "ml", "uid": "1"},
        "spec": {
            "goal": {"description": "plan capacity", "type": "Process"},
            "problem": problem,
            "data": {"uri": "file:///data/air.csv"},
            "storage": {"uri": "file:///models/air"},
        },
    }


FORECAST = {"task": "forecasting", "target": "passengers", "timeColumn": "month", "horizon": 12, "primaryMetric": "mape"}


def test_a_consistent_forecasting_problem_is_accepted():
    problem = project.Problem.model_validate({**FORECAST, "seriesId": "route", "frequency": "MS"})
    assert (problem.time_column, problem.series_id, problem.horizon, problem.frequency) == ("month", "route", 12, "MS")
    assert schema.validate(_project({**FORECAST, "frequency": "W-SUN"}), _crd_schema()) == []


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        ({"timeColumn": None}, "timeColumn", "required by forecasting: the column holding"),
        ({"horizon": None}, "horizon", "required by forecasting: how many steps"),
        (
            {"task": "classification", "primaryMetric": "f1", "timeColumn": None},
            "horizon",
            "applies to task forecasting only",
        ),
        (
            {"task": "regression", "primaryMetric": "rmse", "horizon": None},
            "timeColumn",
            "not a classification or regression field",
        ),
        ({"primaryMetric": "f1"}, "primaryMetric", "primaryMetric must be a metric of the task"),
    ],
)
def test_inconsistent_framings_are_refused_with_the_field_path(change, path, message):
    problem = {k: v for k, v in {**FORECAST, **change}.items() if v is not None}
    causes = schema.validate(_project(problem), _crd_schema())
    assert [c.field for c in causes] == [f"spec.problem.{path}"], causes
    assert message in causes[0].message
    with pytest.raises(pydantic.ValidationError, match=path):
        project.Problem.model_validate(problem)


def test_forecasting_metrics_are_lower_is_better():
    from mlkube.api import base

    assert set(base.FORECASTING_METRICS) <= base.LOWER_IS_BETTER
    assert base.is_improvement("smape", 0.1, 0.2) and not base.is_improvement("mase", 1.2, 0.9)

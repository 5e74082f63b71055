"""data.sample: the search sees a seeded sample of the training partition, the final model all of it."""

import pytest
from sklearn import datasets

from mlkube.api import trainer as trainer_api
from mlkube.ml import errors, experiment


def spec(tmp_path, **data):
    datasets.load_breast_cancer(as_frame=True).frame.to_csv(tmp_path / "cancer.csv", index=False)
    return trainer_api.TrainerInput.model_validate(
        {
            "project": {
                "name": "c",
                "namespace": "ml",
                "goal": {"description": "x", "type": "Process"},
                "problem": {"task": "classification", "target": "target", "primaryMetric": "f1"},
            },
            "trainingJob": {"name": "c-1", "namespace": "ml", "uid": "u"},
            "data": {"uri": f"file://{tmp_path}/cancer.csv", **data},
            "algorithms": [{"name": "logistic_regression"}],
            "tuning": {"strategy": "random", "maxTrials": 2, "cvFolds": 3},
            "output": {"uri": f"file://{tmp_path}/v1/"},
        }
    )


def test_the_search_runs_on_the_sample_and_the_model_is_fit_on_every_training_row(tmp_path):
    outcome, _ = experiment.run(spec(tmp_path, sample={"rows": 120}))
    assert (outcome.rows["searched"], outcome.rows["train"]) == (120, 341)
    assert any(note.startswith("data.sample: the search ran on a seeded sample of 120 of the 341") for note in outcome.notes)
    assert outcome.model.n_features_in_ == 30 and outcome.metrics["test"]["f1"] > 0.9


def test_without_a_sample_the_search_sees_the_whole_partition(tmp_path):
    outcome, _ = experiment.run(spec(tmp_path))
    assert outcome.rows["searched"] == outcome.rows["train"] == 341
    assert not any(note.startswith("data.sample") for note in outcome.notes)


def test_a_sample_on_a_framing_without_a_search_sample_is_refused_naming_the_field(tmp_path):
    refused = spec(tmp_path, sample={"fraction": 0.5})
    refused.project.problem = refused.project.problem.model_copy(
        update={"task": "clustering", "target": None, "primary_metric": "silhouette"}
    )
    with pytest.raises(errors.InvalidSpec, match=r"^data\.sample: "):
        experiment.run(refused)

"""The trainer Job and its input, built from a TrainingJob and its project."""

import datetime
import pathlib

import pytest
import yaml

from mlkube.api import kinds, trainer
from mlkube.control.manifests import meta, training

NOW = datetime.datetime(2026, 11, 24, tzinfo=datetime.UTC)
EXAMPLES = pathlib.Path(__file__).parents[3] / "examples"


def load(name):
    doc = yaml.safe_load((EXAMPLES / name).read_text())
    doc["metadata"].update(namespace="ml", uid="0123456789abcdef", generation=1)
    return doc


@pytest.fixture
def objects():
    return load("trainingjob.yaml"), load("project.yaml")


def build(tj, mlp, **kw):
    spec = training.effective_spec(tj["spec"], mlp["spec"]["training"]["template"])
    mlp_spec = kinds.MLPROJECT.parse_spec(mlp["spec"])
    document = training.trainer_input(tj, spec, mlp, mlp_spec, deployments=["penguins-prod"], now=NOW)
    return (
        spec,
        document,
        training.trainer_job(tj, spec, document, project_name="penguins", image="img:1", **{"secret": None, **kw}),
    )


def test_job_carries_the_contract(objects):
    tj, mlp = objects
    _, document, job = build(tj, mlp)
    assert job["metadata"]["name"] == "penguins-manual-1-train"
    assert job["metadata"]["ownerReferences"][0]["uid"] == "0123456789abcdef"
    assert job["spec"]["backoffLimit"] == 1 and job["spec"]["activeDeadlineSeconds"] == 15 * 60
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "mlkube-trainer" and pod["automountServiceAccountToken"] is False
    container = pod["containers"][0]
    assert container["command"] == ["python", "-m", "mlkube.trainer"] and container["image"] == "img:1"
    sent = trainer.TrainerInput.from_json(container["env"][0]["value"])
    assert sent == document and sent.output.uri == "file:///tmp/mlkube-demo/models/penguins/runs/penguins-manual-1-01234567/"
    assert sent.project.problem.target == "species" and sent.data.uri.endswith("penguins.csv")
    assert job["spec"]["template"]["metadata"]["labels"][meta.PROJECT] == "penguins"


def test_the_trainer_is_told_the_image_it_runs(objects):
    tj, mlp = objects
    *_, job = build(tj, mlp)
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env[trainer.IMAGE_ENV] == "img:1"

    tj["spec"]["image"] = "registry.example/own-trainer:2"
    *_, own = build(tj, mlp)
    container = own["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example/own-trainer:2"
    assert {e["name"]: e.get("value") for e in container["env"]}[trainer.IMAGE_ENV] == "registry.example/own-trainer:2"


def test_template_fills_what_the_run_leaves_out(objects):
    tj, mlp = objects
    del tj["spec"]["tuning"]
    mlp["spec"]["training"]["template"]["tuning"] = {"maxTrials": 3, "strategy": "random"}
    spec, _, _ = build(tj, mlp)
    assert (spec.tuning.max_trials, spec.tuning.strategy) == (3, "random")
    tj["spec"]["tuning"] = {"maxTrials": 5}
    spec, _, _ = build(tj, mlp)
    assert (spec.tuning.max_trials, spec.tuning.strategy) == (5, "random")


def test_credentials_come_only_from_secret_references(objects):
    tj, mlp = objects
    mlp["spec"]["storage"]["credentialsSecret"] = "s3-creds"
    _, _, job = build(tj, mlp, secret="s3-creds")
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    refs = {e["name"]: e["valueFrom"] for e in env if "valueFrom" in e}
    assert refs == {
        **{k: {"secretKeyRef": {"name": "s3-creds", "key": k}} for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")},
        "MLKUBE_MEMORY_LIMIT": {"resourceFieldRef": {"containerName": "trainer", "resource": "limits.memory"}},
    }
    assert "s3-creds" not in env[0]["value"].replace('"credentialsSecret":"s3-creds"', "")


def test_two_different_secrets_are_refused(objects):
    tj, mlp = objects
    mlp["spec"]["storage"]["credentialsSecret"] = "a"
    mlp["spec"]["data"]["credentialsSecret"] = "b"
    spec = training.effective_spec(tj["spec"], {})
    with pytest.raises(training.ResolutionError, match="use one Secret"):
        training.credentials_secret(spec, kinds.MLPROJECT.parse_spec(mlp["spec"]))


def test_long_names_stay_valid_label_values():
    name = meta.child_name("x" * 80, "train")
    assert len(name) <= 63 and name.endswith("-train")
    assert name == meta.child_name("x" * 80, "train")


def test_feedback_joins_when_the_policy_says_so(objects):
    tj, mlp = objects
    mlp["spec"]["retraining"]["includeFeedback"] = False
    mlp["spec"]["promotion"]["evaluateOn"] = "test"
    _, document, _ = build(tj, mlp)
    assert document.feedback is None and document.evaluate_on == "test"
    mlp["spec"]["retraining"].update(includeFeedback=True, feedbackWindow="7d")
    mlp["spec"]["promotion"]["evaluateOn"] = "recent"
    _, document, _ = build(tj, mlp)
    assert document.include_feedback and document.evaluate_on == "recent"
    assert document.feedback.deployments == ["penguins-prod"] and document.feedback.since == "2026-11-17T00:00:00Z"
    assert document.feedback.uri == "file:///tmp/mlkube-demo/models/penguins"


def test_the_job_names_its_run_and_the_generation_it_runs(objects):
    tj, mlp = objects
    tj["metadata"]["generation"] = 4
    _, _, job = build(tj, mlp)
    assert training.trainingjob_of(job) == "penguins-manual-1" and training.generation_of(job) == 4
    assert training.trainingjob_of({"metadata": {}}) is None and training.generation_of({"metadata": {}}) is None


def test_the_champion_joins_the_input_from_the_registry_with_its_pinned_digest(objects):
    tj, mlp = objects
    mlp["status"] = {
        "championVersion": 2,
        "models": [
            {
                "version": v,
                "trainingJob": f"r{v}",
                "createdAt": "2026-11-01T00:00:00Z",
                "artifactUri": f"file:///m/v{v}/",
                "digest": f"sha256:{v}",
                "metrics": {"f1": 0.5 + v / 10},
            }
            for v in (1, 2)
        ],
    }
    _, document, _ = build(tj, mlp)
    assert document.champion == trainer.Champion(version=2, artifact_uri="file:///m/v2/", digest="sha256:2", metrics={"f1": 0.7})
    assert document.training_job.parent_version == 2


def test_trial_pods_are_one_indexed_job_sharing_the_operators_study_database(objects):
    tj, mlp = objects
    tj["spec"]["tuning"] = {"workers": 3}
    *_, job = build(tj, mlp, study_storage="sqlite:////state/studies.db")
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"], spec["backoffLimitPerIndex"]) == (
        "Indexed",
        3,
        3,
        1,
    )
    env = {e["name"]: e for e in spec["template"]["spec"]["containers"][0]["env"]}
    assert env[trainer.STUDY_STORAGE_ENV]["value"] == "sqlite:////state/studies.db"


def test_a_tuning_storage_secret_reaches_the_pods_by_reference_only(objects):
    tj, mlp = objects
    tj["spec"]["tuning"] = {"workers": 2, "storage": {"secretRef": {"name": "studies"}}}
    *_, job = build(tj, mlp, study_storage="sqlite:////state/studies.db")
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env[trainer.STUDY_STORAGE_ENV] == {
        "name": trainer.STUDY_STORAGE_ENV,
        "valueFrom": {"secretKeyRef": {"name": "studies", "key": "url"}},
    }


def test_one_pod_needs_no_study_database_and_several_without_one_are_refused(objects):
    tj, mlp = objects
    *_, job = build(tj, mlp)
    assert "completionMode" not in job["spec"]
    assert trainer.STUDY_STORAGE_ENV not in {e["name"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    tj["spec"]["tuning"] = {"workers": 2}
    with pytest.raises(training.ResolutionError, match=r"tuning.workers: 2 .* set tuning.storage.secretRef"):
        build(tj, mlp)

"""Fairness criteria gate eligibility like success criteria, pure: a version that fails
``fairness.criteria`` is registered (with its fairness on its ModelVersion) but not eligible, never
champion by itself, refused when pinned, and every message names the failed fairness criterion."""

from mdep_cases import PROJECT, mdep
from mdep_cases import registry as status_registry
from test_plan_project import NOW, mlp, observed, registered, run, stored

from mlkube.api import modelversion as modelversion_api
from mlkube.api import project as project_api
from mlkube.control.plans import deployment as plan_deployment
from mlkube.control.plans import modelversion as modelversion_plan
from mlkube.control.plans import project as project_plan
from mlkube.control.policy import eligibility

FAIRNESS = {
    "fairness": {
        "sensitiveFeatures": ["sex"],
        "favorableOutcome": ">50K",
        "criteria": [{"metric": "disparate_impact", "op": ">=", "threshold": 0.8}],
    }
}


def fair_run(name, *, f1, disparate_impact, completed):
    obj = run(name, f1=f1, completed=completed)
    obj["status"]["fairness"] = {
        "sensitiveFeatures": ["sex"],
        "favorableOutcome": ">50K",
        "mitigation": "none",
        "groups": {"sex": {"Female": {"count": 243, "selection_rate": 0.06}, "Male": {"count": 536, "selection_rate": 0.24}}},
        "metrics": {"disparate_impact": disparate_impact, "demographic_parity_difference": 0.18},
        "intervals": {"disparate_impact": [disparate_impact - 0.1, disparate_impact + 0.1]},
        "criteriaMet": disparate_impact >= 0.8,
    }
    return obj


def test_the_unmitigated_and_the_mitigated_runs_are_both_registered_and_only_the_fair_one_is_eligible():
    unfair = fair_run("unmitigated", f1=0.9, disparate_impact=0.25, completed="2026-11-24T09:30:00Z")
    fair = fair_run("mitigated", f1=0.85, disparate_impact=0.86, completed="2026-11-24T09:40:00Z")
    result = project_plan.plan(mlp(**FAIRNESS), observed(unfair, fair), now=NOW)

    models = {m.version: m for m in result.status.models}
    assert (models[1].training_job, models[1].eligible, models[1].fairness["disparate_impact"]) == ("unmitigated", False, 0.25)
    assert (models[2].training_job, models[2].eligible) == ("mitigated", True)
    assert result.status.champion_version == 2  # the better f1 of version 1 does not make an unfair version champion
    registered_events = [e.message for e in result.events if e.reason == "VersionRegistered"]
    assert registered_events == [
        "Version 1 from TrainingJob unmitigated (not eligible: fails disparate_impact >= 0.8 (measured 0.25))",
        "Version 2 from TrainingJob mitigated (eligible)",
    ]
    created = {mv["spec"]["version"]: mv["spec"] for mv in result.create_after_status}
    assert created[1]["fairness"]["metrics"] == {"disparate_impact": 0.25, "demographic_parity_difference": 0.18}
    assert created[1]["fairness"]["groups"]["sex"]["Female"] == {"count": 243, "selection_rate": 0.06}
    assert created[1]["metrics"]["test"] == {"f1": 0.9}  # fairness metrics stay out of the performance metrics

    # The project's next pass judges the versions from their ModelVersions: the same verdict.
    seen = registered(observed(unfair, fair), result)
    again = project_plan.plan(stored(mlp(**FAIRNESS), result), seen, now=NOW)
    assert [(m.version, m.eligible) for m in again.status.models] == [(1, False), (2, True)]


def test_a_modelversion_failing_a_fairness_criterion_says_which_and_stays_registered():
    result = project_plan.plan(
        mlp(**FAIRNESS),
        observed(fair_run("unmitigated", f1=0.9, disparate_impact=0.25, completed="2026-11-24T09:30:00Z")),
        now=NOW,
    )
    version = {**result.create_after_status[0], "metadata": {**result.create_after_status[0]["metadata"], "generation": 1}}
    project = stored(mlp(**FAIRNESS), result)
    status = modelversion_plan.plan(version, modelversion_plan.Observed(project, (version,)), now=NOW).status
    assert status.eligible is False and status.phase == "Registered"
    assert status.failed_criteria == ["disparate_impact >= 0.8 (measured 0.25)"]
    ready = next(c for c in status.conditions if c.type == "Ready")
    assert "fails disparate_impact >= 0.8 (measured 0.25)" in ready.message


def test_a_version_without_fairness_measurements_does_not_meet_a_fairness_criterion():
    result = project_plan.plan(mlp(**FAIRNESS), observed(run("old", f1=0.9)), now=NOW)
    assert result.status.models[0].eligible is False
    assert "fails disparate_impact >= 0.8 (not measured)" in result.events[0].message


def test_a_pinned_version_failing_a_fairness_criterion_is_refused_naming_it():
    fairness_spec = {"metrics": {"test": {"f1": 0.9}, "validation": {}}, "fairness": {"metrics": {"disparate_impact": 0.25}}}
    versions = [
        {
            "metadata": {"name": f"churn-v{v}", "namespace": "ml", "creationTimestamp": "2026-11-24T09:00:00Z"},
            "spec": {
                "projectRef": "churn",
                "version": v,
                "artifactUri": f"file:///s/r{v}/",
                "digest": f"sha256:r{v}",
                "trainingJob": f"r{v}",
                **fairness_spec,
                **({"fairness": {"metrics": {"disparate_impact": 0.9}}} if v == 1 else {}),
            },
        }
        for v in (1, 2)
    ]
    project = type(PROJECT).model_validate({**PROJECT.wire(), **FAIRNESS})
    seen = plan_deployment.Observed(project=project, registry=status_registry(1, 2, champion=1), versions=tuple(versions))
    pinned = plan_deployment.kinds.MODELDEPLOYMENT.parse_spec(mdep(model={"version": 2})["spec"])
    refused = plan_deployment.served_version(pinned, seen)
    assert refused.reason == "VersionNotEligible"
    assert refused.message.startswith(
        "spec.model.version: version 2 does not meet the fairness criteria: disparate_impact >= 0.8 (measured 0.25)."
    )
    assert (
        plan_deployment.served_version(plan_deployment.kinds.MODELDEPLOYMENT.parse_spec(mdep(model={"version": 1})["spec"]), seen)
        == 1
    )


def test_the_refusal_names_both_kinds_when_both_fail():
    criteria = [
        project_api.SuccessCriterion(metric="f1", op=">=", threshold=0.8),
        project_api.FairnessCriterion(metric="equalized_odds_difference", op="<=", threshold=0.1),
    ]
    message = eligibility.refusal(
        3,
        project_name="churn",
        metrics={"f1": 0.7, "equalized_odds_difference": 0.3},
        criteria=criteria,
        approval=modelversion_api.Approval(),
    )
    assert message.startswith(
        "version 3 does not meet the success and fairness criteria: f1 >= 0.8 (measured 0.7); "
        "equalized_odds_difference <= 0.1 (measured 0.3)."
    )
    approved = modelversion_api.Approval(state="Approved", reason="reviewed by the fairness board")
    assert eligibility.refusal(3, project_name="churn", metrics={"f1": 0.9}, criteria=criteria, approval=approved) is None

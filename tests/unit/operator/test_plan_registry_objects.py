"""The registry as ModelVersion objects, pure: numbers never reused, eligibility and approvals on
every path to serving, aliases, retention, and what each ModelVersion's status and Events say."""

import datetime

from mdep_cases import PROJECT, mdep
from mdep_cases import registry as status_registry
from test_plan_project import NOW, STAMP, mlp, observed, ready, registered, run, stored

from mlkube.control.plans import deployment as plan_deployment
from mlkube.control.plans import modelversion as modelversion_plan
from mlkube.control.plans import plan as plans
from mlkube.control.plans import project as project_plan
from mlkube.control.policy import releases

CRITERIA = {"successCriteria": [{"metric": "f1", "op": ">=", "threshold": 0.8}]}


def model_version(version, *, f1=0.9, approval=None, aliases=(), status=None, project="churn"):
    obj = {
        "apiVersion": "mlkube.io/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {
            "name": f"{project}-v{version}",
            "namespace": "ml",
            "generation": 1,
            "creationTimestamp": STAMP,
            "labels": {"mlkube.io/project": project},
        },
        "spec": {
            "projectRef": project,
            "version": version,
            "artifactUri": f"file:///s/runs/r{version}/",
            "digest": f"sha256:r{version}",
            "trainingJob": f"r{version}",
            "algorithm": "random_forest",
            "metrics": {"test": {"f1": f1}, "validation": {}},
            "approval": approval or {"state": "Pending", "reason": ""},
            "aliases": list(aliases),
        },
    }
    if status is not None:
        obj["status"] = status
    return obj


# --- the project pass ----------------------------------------------------------------------------


def test_after_a_status_wipe_the_next_version_is_above_every_modelversion_and_the_champion_is_recovered():
    versions = [model_version(1, f1=0.7), model_version(2, f1=0.9, status={"champion": True})]
    seen = observed(run("r1", f1=0.7, version=1), run("r2", f1=0.9, version=2), versions=versions)
    wiped = project_plan.plan(mlp(), seen, now=NOW)  # no status at all
    assert wiped.status.champion_version == 2 and [m.version for m in wiped.status.models] == [1, 2]
    assert wiped.create_after_status == () and wiped.events == ()  # nothing re-registered, no second ModelVersion

    third = project_plan.plan(
        stored(mlp(), wiped),
        observed(*seen.runs, run("r3", f1=0.95, completed="2026-11-24T09:50:00Z"), versions=versions),
        now=NOW,
    )
    assert [mv["metadata"]["name"] for mv in third.create_after_status] == ["churn-v3"]
    assert third.status.champion_version == 3 and third.status.latest_version == 3


def test_versions_an_older_operator_kept_only_in_status_get_modelversions_with_their_numbers():
    old = status_registry(4, 7, champion=7).wire()
    result = project_plan.plan(mlp(status=old), observed(), now=NOW)
    assert [(mv["metadata"]["name"], mv["spec"]["version"], mv["spec"]["digest"]) for mv in result.create_after_status] == [
        ("churn-v4", 4, "sha256:4"),
        ("churn-v7", 7, "sha256:7"),
    ]
    assert result.status.champion_version == 7
    after = project_plan.plan(stored(mlp(status=old), result), registered(observed(), result), now=NOW)
    assert after.create_after_status == ()


def test_the_champion_annotation_refuses_an_ineligible_version_until_it_is_approved_with_a_reason():
    spec = {"promotion": {"policy": "manual"}, **CRITERIA}
    versions = [model_version(1, f1=0.9), model_version(2, f1=0.7)]
    first = project_plan.plan(mlp(annotations={"mlkube.io/champion": "1"}, **spec), observed(versions=versions), now=NOW)
    assert first.status.champion_version == 1

    annotated = mlp(status=first.status.wire(), annotations={"mlkube.io/champion": "2"}, **spec)
    refused = project_plan.plan(annotated, observed(versions=versions), now=NOW)
    condition = ready(refused.status.wire())
    assert refused.status.champion_version == 1 and condition["status"] == "False"
    assert condition["reason"] == "VersionNotEligible"
    assert (
        "annotation mlkube.io/champion=2: version 2 does not meet the success criteria: f1 >= 0.8 (measured 0.7)"
        in (condition["message"])
    )
    assert "kubectl patch mv churn-v2" in condition["message"]

    approved = [versions[0], model_version(2, f1=0.7, approval={"state": "Approved", "reason": "risk accepted"})]
    accepted = project_plan.plan(annotated, observed(versions=approved), now=NOW)
    assert accepted.status.champion_version == 2 and ready(accepted.status.wire())["status"] == "True"
    assert accepted.events == (
        plans.warning(
            "ChampionByApproval",
            "Version 2 is the champion (was 1) although it fails f1 >= 0.8 (measured 0.7): approved (risk accepted)",
        ),
    )


def test_under_the_manual_policy_a_better_version_waits_for_approval_and_a_rejected_one_never_serves():
    spec = {"promotion": {"policy": "manual"}}
    current = mlp(status={"championVersion": 1}, **spec)
    pending = [model_version(1, f1=0.8), model_version(2, f1=0.95)]
    assert project_plan.plan(current, observed(versions=pending), now=NOW).status.champion_version == 1

    approve = {"state": "Approved", "reason": "reviewed"}
    approved = [pending[0], model_version(2, f1=0.95, approval=approve)]
    result = project_plan.plan(current, observed(versions=approved), now=NOW)
    assert result.status.champion_version == 2
    assert result.events == (plans.info("ChampionChanged", "Version 2 is the champion (was 1)"),)

    reject = {"state": "Rejected", "reason": "leaks the target"}
    rejected = [model_version(1, f1=0.8), model_version(2, f1=0.95, approval=reject)]
    after = project_plan.plan(mlp(status={"championVersion": 2}, **spec), observed(versions=rejected), now=NOW)
    assert after.status.champion_version == 1  # a rejected champion hands over to the best usable version


def test_an_ineligible_run_never_becomes_champion_automatically():
    result = project_plan.plan(mlp(**CRITERIA), observed(run("a", f1=0.7)), now=NOW)
    assert result.status.champion_version is None


def test_an_alias_added_to_another_version_moves_there_with_one_patch():
    versions = [
        model_version(1, aliases=["production"], status={"aliases": ["production"]}),
        model_version(2, aliases=["production"]),  # the user's patch
    ]
    result = project_plan.plan(mlp(), observed(versions=versions), now=NOW)
    assert result.patch == (
        plans.Patch(plans.ObjectRef("mlkube.io/v1alpha1", "ModelVersion", "churn-v1", "ml"), {"spec": {"aliases": []}}),
    )
    assert plans.info("AliasMoved", "Alias production moved to version 2 (removed from churn-v1)") in result.events


def test_an_alias_is_refused_on_a_version_that_is_neither_eligible_nor_approved():
    versions = [
        model_version(1, aliases=["production"], status={"aliases": ["production"]}),
        model_version(2, f1=0.5, aliases=["production"]),
    ]
    resolution = project_plan.plan(mlp(**CRITERIA), observed(versions=versions), now=NOW)
    assert resolution.patch == ()  # it stays on version 1

    mv_pass = modelversion_plan.plan(versions[1], modelversion_plan.Observed(mlp(**CRITERIA), tuple(versions)), now=NOW)
    assert mv_pass.status.aliases == []
    assert ready(mv_pass.status.wire())["reason"] == "AliasRefused"
    assert mv_pass.events[0].reason == "AliasRefused" and "f1 >= 0.8 (measured 0.5)" in mv_pass.events[0].message


# --- the ModelVersion pass -----------------------------------------------------------------------


def deployment_serving(stable, candidate=None, name="churn-prod"):
    status = {"stableVersion": stable, **({"candidateVersion": candidate} if candidate else {})}
    return {**mdep(status=status), "metadata": {"name": name, "namespace": "ml"}}


def test_a_versions_status_says_what_it_is_and_where_it_is_served():
    versions = (model_version(1, f1=0.9), model_version(2, f1=0.7))
    project = mlp(status={"championVersion": 1, "observedGeneration": 2}, **CRITERIA)
    seen = modelversion_plan.Observed(project, versions, (deployment_serving(1, 2), deployment_serving(1, name="churn-b")))
    champion = modelversion_plan.plan(versions[0], seen, now=NOW).status
    assert champion.wire() | {"conditions": []} == {
        "phase": "Champion",
        "primaryMetric": "f1=0.9",
        "eligible": True,
        "failedCriteria": [],
        "champion": True,
        "servedBy": ["churn-b", "churn-prod"],
        "aliases": [],
        "approval": "Pending",
        "cardUri": "file:///s/runs/r1/model_card.html",
        "artifactsDeleted": False,
        "observedGeneration": 1,
        "conditions": [],
    }
    other = modelversion_plan.plan(versions[1], seen, now=NOW).status
    assert (other.phase, other.eligible, other.failed_criteria) == ("Registered", False, ["f1 >= 0.8 (measured 0.7)"])


def test_while_the_projects_status_is_lost_a_version_keeps_the_champion_it_recorded():
    recorded = model_version(2, status={"champion": True, "phase": "Champion"})
    versions = (model_version(1), recorded)
    wiped = modelversion_plan.plan(recorded, modelversion_plan.Observed(mlp(), versions), now=NOW)
    assert wiped.status.champion and wiped.status.phase == "Champion"
    other = modelversion_plan.plan(versions[0], modelversion_plan.Observed(mlp(), versions), now=NOW)
    assert not other.status.champion


def test_the_project_summary_leaves_out_retired_versions_but_keeps_what_is_served():
    versions = [model_version(v) for v in (1, 2, 3, 4)]
    served = deployment_serving(1)
    result = project_plan.plan(
        mlp(status={"championVersion": 4, "observedGeneration": 2}, registry={"keep": 1}),
        project_plan.Observed(versions=tuple(versions), deployments=(served,)),
        now=NOW,
    )
    assert [m.version for m in result.status.models] == [1, 4] and result.status.versions == 4


def test_an_approval_is_announced_once_with_its_reason():
    project = mlp(status={"championVersion": 1, "observedGeneration": 2}, **CRITERIA)
    approved = model_version(2, f1=0.7, approval={"state": "Approved", "reason": "risk accepted"})
    seen = modelversion_plan.Observed(project, (model_version(1), approved))
    first = modelversion_plan.plan(approved, seen, now=NOW)
    assert first.status.phase == "Eligible"
    assert first.events == (
        plans.info("Approved", "Version 2 approved although it fails f1 >= 0.8 (measured 0.7): risk accepted"),
    )
    again = modelversion_plan.plan({**approved, "status": first.status.wire()}, seen, now=NOW + datetime.timedelta(minutes=1))
    assert again.events == () and again.status == first.status

    rejected = model_version(2, approval={"state": "Rejected", "reason": "leaks the target"})
    result = modelversion_plan.plan(rejected, modelversion_plan.Observed(project, (model_version(1), rejected)), now=NOW)
    assert result.status.phase == "Rejected"
    assert result.events == (plans.warning("Rejected", "Version 2 rejected: leaks the target; it is never served"),)


def test_retention_retires_old_versions_but_never_the_champion_a_served_an_approved_or_an_aliased_one():
    approve = {"state": "Approved", "reason": "pinned by the audit"}
    versions = (
        model_version(1),  # champion
        model_version(2),  # served
        model_version(3, approval=approve),
        model_version(4, aliases=["staging"]),
        model_version(5),  # old, nothing keeps it
        model_version(6),  # the newest: kept by registry.keep
    )
    project = mlp(status={"championVersion": 1, "observedGeneration": 2}, registry={"keep": 1})
    seen = modelversion_plan.Observed(project, versions, (deployment_serving(2),))
    phases = {mv["spec"]["version"]: modelversion_plan.plan(mv, seen, now=NOW) for mv in versions}
    assert {v: p.status.phase for v, p in phases.items()} == {
        1: "Champion",
        2: "Eligible",
        3: "Eligible",
        4: "Eligible",
        5: "Retired",
        6: "Eligible",
    }
    assert phases[5].status.retired_at == STAMP
    assert phases[5].events == (plans.info("Retired", "Version 5 retired by the project's retention (registry.keep)"),)


def test_an_alias_resolution_picks_the_newest_claim_by_a_usable_version():
    resolution = releases.resolve(
        [
            releases.Claim(1, ("production",), ("production",)),
            releases.Claim(2, ("production", "staging"), ()),
            releases.Claim(3, ("staging",), (), usable=False),
        ]
    )
    assert resolution.holders == {"production": 2, "staging": 2}
    assert resolution.moved_from == {1: ("production",)} and resolution.refused == {3: ("staging",)}


# --- a ModelDeployment's path to serving ---------------------------------------------------------


def deployment_observed(*versions):
    project = type(PROJECT).model_validate({**PROJECT.wire(), **CRITERIA})
    return plan_deployment.Observed(project=project, registry=status_registry(1, 2, champion=1), versions=tuple(versions))


def test_a_pinned_version_that_fails_its_criteria_is_refused_until_approved_and_a_rejected_one_always():
    spec = plan_deployment.kinds.MODELDEPLOYMENT.parse_spec(mdep(model={"version": 2})["spec"])
    refused = plan_deployment.served_version(spec, deployment_observed(model_version(1), model_version(2, f1=0.7)))
    assert refused.reason == "VersionNotEligible"
    assert refused.message.startswith("spec.model.version: version 2 does not meet the success criteria: f1 >= 0.8")

    approved = model_version(2, f1=0.7, approval={"state": "Approved", "reason": "ok"})
    assert plan_deployment.served_version(spec, deployment_observed(model_version(1), approved)) == 2

    rejected = model_version(2, approval={"state": "Rejected", "reason": "bias"})
    result = plan_deployment.served_version(spec, deployment_observed(model_version(1), rejected))
    assert result.reason == "VersionNotEligible" and "rejected (bias)" in result.message


def test_a_deployment_following_an_alias_serves_the_version_it_resolves_to():
    spec = plan_deployment.kinds.MODELDEPLOYMENT.parse_spec(mdep(model={"alias": "production"})["spec"])
    versions = (model_version(1, aliases=["production"], status={"aliases": ["production"]}), model_version(2))
    assert plan_deployment.served_version(spec, deployment_observed(*versions)) == 1
    moved = (versions[0], model_version(2, aliases=["production"]))
    assert plan_deployment.served_version(spec, deployment_observed(*moved)) == 2
    missing = plan_deployment.served_version(spec, deployment_observed(model_version(1)))
    assert missing.reason == "AliasNotFound" and "kubectl patch mv" in missing.message


def test_a_pinned_version_whose_artifacts_were_deleted_is_refused():
    spec = plan_deployment.kinds.MODELDEPLOYMENT.parse_spec(mdep(model={"version": 2})["spec"])
    purged = model_version(2, status={"retiredAt": STAMP, "artifactsDeleted": True})
    refused = plan_deployment.served_version(spec, deployment_observed(model_version(1), purged))
    assert refused.reason == "VersionRetired" and "artifacts deleted" in refused.message

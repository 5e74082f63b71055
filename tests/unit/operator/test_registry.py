"""The registry allocates versions without gaps or duplicates and picks champions by policy."""

from mlkube.api import project
from mlkube.api import training as training_api
from mlkube.control.policy import registry


def finished(name, t, auc, *, eligible=True, digest=None, comparison=None):
    return registry.Finished(
        name=name,
        completion_time=t,
        algorithm="random_forest",
        test_metrics={"roc_auc": auc},
        eligible=eligible,
        artifact_uri=f"file:///m/{name}/",
        digest=digest or f"sha256:{name}",
        trigger="manual",
        comparison=comparison,
    )


def test_versions_follow_completion_order_without_gaps():
    runs = [finished("b", "2026-01-01T00:00:02Z", 0.8), finished("a", "2026-01-01T00:00:01Z", 0.7)]
    models, added = registry.register([], runs, now="t")
    assert [(m.version, m.training_job) for m in models] == [(1, "a"), (2, "b")]
    assert added == models
    assert models[0].wire() == {
        "version": 1,
        "trainingJob": "a",
        "createdAt": "t",
        "algorithm": "random_forest",
        "metrics": {"roc_auc": 0.7},
        "eligible": True,
        "artifactUri": "file:///m/a/",
        "digest": "sha256:a",
        "trigger": "manual",
    }


def test_registration_is_idempotent_across_passes():
    runs = [finished("a", "1", 0.7)]
    models, _ = registry.register([], runs, now="t")
    again, added = registry.register(models, runs + [finished("c", "3", 0.9)], now="t2")
    assert added == [again[-1]] and [m.version for m in again] == [1, 2]
    assert registry.register(again, runs + [finished("c", "3", 0.9)], now="t3")[1] == []


def test_many_runs_finishing_at_once_get_distinct_consecutive_versions():
    runs = [finished(f"r{i}", "2026-01-01T00:00:00Z", 0.5) for i in range(20)]
    old = project.ModelEntry(version=4, training_job="old", digest="x", artifact_uri="file:///m/old/", created_at="t0")
    models, _ = registry.register([old], runs, now="t")
    assert [m.version for m in models] == list(range(4, 25))


def champion(current, added, models, **promotion):
    return registry.champion_after(
        current, added, models, promotion=project.Promotion(**promotion), primary_metric="roc_auc", comparisons={}
    )


def test_first_eligible_version_becomes_champion_and_ineligible_never_does():
    models, added = registry.register([], [finished("a", "1", 0.99, eligible=False), finished("b", "2", 0.7)], now="t")
    assert champion(None, added, models) == 2


def test_better_version_takes_over_only_by_min_improvement():
    models, _ = registry.register([], [finished("a", "1", 0.80)], now="t")
    models, added = registry.register(models, [finished("a", "1", 0.80), finished("b", "2", 0.82)], now="t")
    assert champion(1, added, models) == 2
    assert champion(1, added, models, min_improvement=0.05) == 1
    worse_models, worse = registry.register(models, [finished("c", "3", 0.70)], now="t")
    assert champion(2, worse, worse_models) == 2
    assert champion(1, added, models, policy="manual") == 1


def test_comparison_on_the_same_holdout_decides_over_registered_metrics():
    models, _ = registry.register([], [finished("a", "1", 0.90)], now="t")
    comparison = training_api.Comparison(champion_version=1, metric="roc_auc", champion=0.60, challenger=0.85)
    models, added = registry.register(models, [finished("b", "2", 0.85, comparison=comparison)], now="t")
    assert (
        registry.champion_after(
            1, added, models, promotion=project.Promotion(), primary_metric="roc_auc", comparisons={"b": comparison}
        )
        == 2
    )
    assert champion(1, added, models) == 1  # on the registered test metrics 0.85 does not beat 0.90


def test_manual_champion_annotation():
    models, _ = registry.register([], [finished("a", "1", 0.8)], now="t")
    assert registry.manual_champion("1", models) == (1, None)
    assert registry.manual_champion("7", models)[1] == "annotation mlkube.io/champion=7: no such version in the registry"
    assert "not a version number" in registry.manual_champion("v1", models)[1]


def test_a_finished_run_is_read_from_its_status_and_only_a_succeeded_one_with_artifacts_counts():
    tj = {
        "metadata": {"name": "r"},
        "spec": {"projectRef": "p", "trigger": "schedule"},
        "status": {
            "phase": "Succeeded",
            "completionTime": "2026-01-01T00:00:00Z",
            "bestAlgorithm": "ridge",
            "metrics": {"test": {"rmse": 1.5}},
            "successCriteriaMet": True,
            "artifactUri": "file:///m/r/",
            "digest": "sha256:r",
            "comparison": {"championVersion": 1, "metric": "rmse", "challenger": 1.5, "champion": 2.0},
        },
    }
    run = registry.Finished.from_trainingjob(tj)
    assert (run.name, run.test_metrics, run.trigger, run.comparison.champion) == ("r", {"rmse": 1.5}, "schedule", 2.0)
    assert registry.Finished.from_trainingjob({**tj, "status": {**tj["status"], "phase": "Failed"}}) is None
    assert registry.Finished.from_trainingjob({**tj, "status": {"phase": "Succeeded"}}) is None
    assert registry.is_pending({"status": {"phase": "Failed"}}) and registry.is_pending({"status": {"phase": "Succeeded"}})
    assert not registry.is_pending({"status": {"phase": "Succeeded", "modelVersion": 1}})
    assert not registry.is_pending({"status": {"phase": "Running"}}) and not registry.is_pending({})

"""The pass loop and the plan executor against a real API server: a status write that conflicts
makes the whole pass start again, and the Events of a transition are posted once."""

from __future__ import annotations

from control_helpers import events_of, project_manifest

from mlkube.api import kinds
from mlkube.clients import k8s
from mlkube.control.plans import plan as plans
from mlkube.control.policy import conditions
from mlkube.control.reconcile import execute


def test_a_conflicting_status_write_replans_and_posts_the_events_once(client, loop, kubectl, namespace):
    loop.run_until_complete(client.create(project_manifest(namespace)))
    passes = []

    async def step(obj):
        passes.append(obj["metadata"]["resourceVersion"])
        if len(passes) == 1:  # someone else writes between our read and our status write
            await client.patch(k8s.MLPROJECTS, "p", namespace, {"metadata": {"labels": {"touched": "yes"}}})
        status = kinds.MLPROJECT.parse_status(obj.get("status"))
        status = conditions.with_ready(
            status.model_copy(update={"phase": "Ready"}),
            ready=True,
            reason="ProjectReady",
            message="ok",
            generation=1,
            now="2026-12-05T10:00:00Z",
        )
        return plans.Plan(status=status, events=(plans.info("ChampionChanged", f"pass {len(passes)}"),))

    loop.run_until_complete(execute.converge(client, k8s.MLPROJECTS, "p", namespace, step))

    assert len(passes) == 2 and passes[0] != passes[1]
    stored = loop.run_until_complete(client.get(k8s.MLPROJECTS, "p", namespace))
    assert stored["status"]["phase"] == "Ready"
    assert events_of(kubectl, namespace, "p") == [("ChampionChanged", "pass 2")]


def test_an_unchanged_plan_writes_nothing_and_an_object_that_keeps_changing_is_retried_later(client, loop, namespace):
    loop.run_until_complete(client.create(project_manifest(namespace)))

    async def same(obj):
        return plans.Plan(status=kinds.MLPROJECT.parse_status(obj.get("status")))

    before = loop.run_until_complete(client.get(k8s.MLPROJECTS, "p", namespace))["metadata"]["resourceVersion"]
    loop.run_until_complete(execute.converge(client, k8s.MLPROJECTS, "p", namespace, same))
    after = loop.run_until_complete(client.get(k8s.MLPROJECTS, "p", namespace))["metadata"]["resourceVersion"]
    assert after == before

    async def always_interrupted(obj):
        await client.patch(k8s.MLPROJECTS, "p", namespace, {"metadata": {"labels": {"n": obj["metadata"]["resourceVersion"]}}})
        return plans.Plan(status=kinds.MLPROJECT.parse_status({"phase": "Ready"}))

    try:
        loop.run_until_complete(execute.converge(client, k8s.MLPROJECTS, "p", namespace, always_interrupted))
    except execute.RetryLater as retry:
        assert "kept changing" in retry.message
    else:
        raise AssertionError("a pass that conflicts every time must ask to be retried")


def test_children_are_applied_created_once_and_deleted(client, loop, namespace):
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": namespace}, "data": {"k": "1"}}
    loop.run_until_complete(client.create(project_manifest(namespace)))
    obj = loop.run_until_complete(client.get(k8s.MLPROJECTS, "p", namespace))
    loop.run_until_complete(execute.execute(client, k8s.MLPROJECTS, obj, plans.Plan(apply=(config,))))
    loop.run_until_complete(client.delete(k8s.CONFIGMAPS, "c", namespace))  # behind the operator's back
    loop.run_until_complete(execute.execute(client, k8s.MLPROJECTS, obj, plans.Plan(apply=(config,))))
    assert loop.run_until_complete(client.get(k8s.CONFIGMAPS, "c", namespace))["data"] == {"k": "1"}

    changed = {**config, "data": {"k": "2"}}
    loop.run_until_complete(execute.execute(client, k8s.MLPROJECTS, obj, plans.Plan(create=(changed,))))
    assert loop.run_until_complete(client.get(k8s.CONFIGMAPS, "c", namespace))["data"] == {"k": "1"}

    ref = plans.ObjectRef("v1", "ConfigMap", "c", namespace)
    loop.run_until_complete(execute.execute(client, k8s.MLPROJECTS, obj, plans.Plan(delete=(ref,))))
    assert loop.run_until_complete(client.get(k8s.CONFIGMAPS, "c", namespace)) is None

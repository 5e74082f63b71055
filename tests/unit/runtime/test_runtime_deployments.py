"""The Deployment controller's decisions: replicas and rolling replacement."""

import datetime

from mlkube.local.runtime import deployments, objects

NOW = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)

TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "a"}]}}


def deployment(replicas=2, template=TEMPLATE, strategy=None):
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "d", "uid": "d1", "generation": 3},
        "spec": {"replicas": replicas, "template": template, **({"strategy": strategy} if strategy else {})},
    }


def pod(name, template=TEMPLATE, *, ready=True, created="2026-01-01T00:00:00Z"):
    return {
        "metadata": {
            "name": name,
            "creationTimestamp": created,
            "labels": {"app": "web", "pod-template-hash": objects.template_hash(template)},
        },
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": str(ready)}]},
    }


def test_creates_the_replicas_from_the_template():
    plan = deployments.plan(deployment(), [], now=NOW)
    assert len(plan.create) == 2 and not plan.delete
    labels = plan.create[0]["metadata"]["labels"]
    assert labels["app"] == "web" and labels["pod-template-hash"] == objects.template_hash(TEMPLATE)
    assert plan.create[0]["metadata"]["ownerReferences"][0]["uid"] == "d1"


def test_status_when_every_replica_is_ready():
    plan = deployments.plan(deployment(), [pod("a"), pod("b")], now=NOW)
    assert not plan.create and not plan.delete
    status = plan.status
    assert (
        status["replicas"],
        status["readyReplicas"],
        status["availableReplicas"],
        status["updatedReplicas"],
        status["observedGeneration"],
    ) == (2, 2, 2, 2, 3)
    reasons = {c["type"]: c["reason"] for c in status["conditions"]}
    assert reasons == {"Available": "MinimumReplicasAvailable", "Progressing": "NewReplicaSetAvailable"}


def test_single_replica_rollout_keeps_the_old_pod_until_the_new_one_is_ready():
    changed = {"metadata": TEMPLATE["metadata"], "spec": {"containers": [{"name": "c", "image": "b"}]}}
    old = pod("old")
    plan = deployments.plan(deployment(1, changed), [old], now=NOW)
    assert len(plan.create) == 1 and not plan.delete  # surge first (maxUnavailable rounds to 0)
    new_unready = pod("new", changed, ready=False)
    plan = deployments.plan(deployment(1, changed), [old, new_unready], now=NOW)
    assert not plan.create and not plan.delete
    assert {c["type"]: c["status"] for c in plan.status["conditions"]}["Available"] == "True"
    plan = deployments.plan(deployment(1, changed), [old, pod("new", changed)], now=NOW)
    assert plan.delete == [old]


def test_scale_down_gives_up_unready_pods_first():
    pods = [pod("a"), pod("b", ready=False), pod("c")]
    plan = deployments.plan(deployment(2), pods, now=NOW)
    assert [p["metadata"]["name"] for p in plan.delete] == ["b"]


def test_recreate_removes_old_pods_before_creating():
    changed = {"metadata": TEMPLATE["metadata"], "spec": {"containers": [{"name": "c", "image": "b"}]}}
    plan = deployments.plan(deployment(2, changed, {"type": "Recreate"}), [pod("a"), pod("b")], now=NOW)
    assert len(plan.delete) == 2 and not plan.create


def test_finished_pods_are_replaced():
    done = pod("a")
    done["status"]["phase"] = "Failed"
    plan = deployments.plan(deployment(1), [done], now=NOW)
    assert plan.delete == [done] and len(plan.create) == 1


def test_percentages_round_like_upstream():
    assert deployments.scaled("25%", 3, default="25%", round_up=True) == 1
    assert deployments.scaled("25%", 3, default="25%", round_up=False) == 0
    assert deployments.scaled(None, 8, default="25%", round_up=False) == 2


def test_a_rollout_that_stops_moving_exceeds_its_progress_deadline():
    stuck = deployment(1)
    stuck["spec"]["progressDeadlineSeconds"] = 60
    unready = pod("a", ready=False)
    first = deployments.plan(stuck, [unready], now=NOW)
    stuck["status"] = first.status
    later = deployments.plan(stuck, [unready], now=NOW + datetime.timedelta(seconds=59))
    assert {c["type"]: c["reason"] for c in later.status["conditions"]}["Progressing"] == "ReplicaSetUpdated"
    stuck["status"] = later.status
    timed_out = deployments.plan(stuck, [unready], now=NOW + datetime.timedelta(seconds=61))
    progressing = next(c for c in timed_out.status["conditions"] if c["type"] == "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")
    stuck["status"] = timed_out.status
    recovered = deployments.plan(stuck, [pod("a")], now=NOW + datetime.timedelta(seconds=62))
    assert {c["type"]: c["reason"] for c in recovered.status["conditions"]}["Progressing"] == "NewReplicaSetAvailable"

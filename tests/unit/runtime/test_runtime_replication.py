"""The ReplicationController and DaemonSet controllers' decisions, and the default ServiceAccounts."""

from mlkube.local.runtime import objects, replication

TEMPLATE = {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "python"}]}}
NODE_LABELS = {"kubernetes.io/hostname": "box", "kubernetes.io/os": "linux"}


def owner(kind="ReplicationController", *, replicas=2, template=TEMPLATE, strategy=None):
    spec = {"template": template, "selector": {"app": "a"}}
    if kind == "ReplicationController":
        spec["replicas"] = replicas
    if strategy:
        spec["updateStrategy"] = {"type": strategy}
    return {
        "apiVersion": "v1" if kind == "ReplicationController" else "apps/v1",
        "kind": kind,
        "metadata": {"name": "o", "namespace": "n", "uid": "u1", "generation": 2},
        "spec": spec,
    }


def pod(name, *, ready=True, revision=None, phase="Running", terminating=False, created="2026-01-01T00:00:00Z"):
    labels = {"app": "a", **({replication.REVISION_LABEL: revision} if revision else {})}
    meta = {"name": name, "labels": labels, "creationTimestamp": created}
    if terminating:
        meta["deletionTimestamp"] = "2026-01-01T00:00:09Z"
    return {"metadata": meta, "status": {"phase": phase, "conditions": [{"type": "Ready", "status": str(ready)}]}}


def test_a_replication_controller_creates_missing_pods_owned_by_it():
    plan = replication.plan_replication(owner(replicas=3), [pod("p1")])
    assert len(plan.create) == 2
    created = plan.create[0]
    assert created["metadata"]["generateName"] == "o-" and created["metadata"]["labels"] == {"app": "a"}
    assert created["metadata"]["ownerReferences"][0]["uid"] == "u1" and created["metadata"]["ownerReferences"][0]["controller"]
    assert plan.status == {
        "observedGeneration": 2,
        "replicas": 1,
        "fullyLabeledReplicas": 1,
        "readyReplicas": 1,
        "availableReplicas": 1,
    }


def test_a_replication_controller_scales_down_unready_and_newest_pods_first_and_replaces_finished_ones():
    pods = [
        pod("old-ready", created="2026-01-01T00:00:00Z"),
        pod("new-ready", created="2026-01-01T00:05:00Z"),
        pod("unready", ready=False),
        pod("done", phase="Succeeded"),
    ]
    plan = replication.plan_replication(owner(replicas=1), pods)
    assert sorted(p["metadata"]["name"] for p in plan.delete) == ["done", "new-ready", "unready"]
    assert plan.create == []


def test_a_daemonset_runs_one_pod_bound_to_the_node():
    daemonset = owner("DaemonSet")
    plan = replication.plan_daemonset(daemonset, [], node_name="box", node_labels=NODE_LABELS)
    assert len(plan.create) == 1
    created = plan.create[0]
    assert created["spec"]["nodeName"] == "box"
    assert created["metadata"]["labels"][replication.REVISION_LABEL] == objects.template_hash(TEMPLATE)
    assert plan.status["desiredNumberScheduled"] == 1 and plan.status["currentNumberScheduled"] == 0


def test_a_changed_template_replaces_the_pod_old_first():
    daemonset = owner("DaemonSet")
    old = pod("old", revision="previous")
    plan = replication.plan_daemonset(daemonset, [old], node_name="box", node_labels=NODE_LABELS)
    assert plan.delete == [old] and plan.create == []
    terminating = pod("old", revision="previous", terminating=True)
    plan = replication.plan_daemonset(daemonset, [terminating], node_name="box", node_labels=NODE_LABELS)
    assert plan.create == []  # the new pod waits until the old one is gone
    plan = replication.plan_daemonset(daemonset, [], node_name="box", node_labels=NODE_LABELS)
    assert len(plan.create) == 1


def test_on_delete_keeps_the_old_pod_and_a_mismatched_node_selector_runs_nothing():
    old = pod("old", revision="previous")
    plan = replication.plan_daemonset(owner("DaemonSet", strategy="OnDelete"), [old], node_name="box", node_labels=NODE_LABELS)
    assert plan.delete == [] and plan.create == []
    assert plan.status["updatedNumberScheduled"] == 0
    template = {**TEMPLATE, "spec": {**TEMPLATE["spec"], "nodeSelector": {"disk": "ssd"}}}
    current = pod("p", revision=objects.template_hash(template))
    plan = replication.plan_daemonset(owner("DaemonSet", template=template), [current], node_name="box", node_labels=NODE_LABELS)
    assert plan.delete == [current] and plan.status["desiredNumberScheduled"] == 0


def test_every_active_namespace_gets_a_default_service_account():
    namespaces = [
        {"metadata": {"name": "has"}, "status": {"phase": "Active"}},
        {"metadata": {"name": "lacks"}, "status": {"phase": "Active"}},
        {"metadata": {"name": "leaving", "deletionTimestamp": "2026-01-01T00:00:00Z"}, "status": {"phase": "Terminating"}},
    ]
    accounts = [{"metadata": {"name": "default", "namespace": "has"}}]
    missing = replication.missing_default_accounts(namespaces, accounts)
    assert [(a["metadata"]["namespace"], a["metadata"]["name"]) for a in missing] == [("lacks", "default")]

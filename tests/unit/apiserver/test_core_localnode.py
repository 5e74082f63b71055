"""The API server's side of the one local node: pods bound to it, DaemonSet and ReplicationController
defaults, and the columns `kubectl get nodes|ds|rc` print."""

import datetime

from mlkube.local.apiserver import kinds, registry, scale, tables

TYPES = registry.Registry()
NOW = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


def meta(name="x"):
    return {"name": name, "namespace": "n", "uid": "u", "creationTimestamp": "2026-01-02T03:00:00Z"}


def test_a_new_pod_is_bound_to_the_schedulable_node_once_one_exists():
    pods = TYPES.lookup("", "v1", "pods")
    unbound = {"metadata": meta(), "spec": {"containers": [{"name": "c"}]}}
    assert kinds.prepare_create(pods, unbound, services=[], nodes=[]) == []
    assert "nodeName" not in unbound["spec"]
    nodes = [{"metadata": {"name": "cordoned"}, "spec": {"unschedulable": True}}, {"metadata": {"name": "box"}}]
    bound = {"metadata": meta(), "spec": {"containers": [{"name": "c"}]}}
    kinds.prepare_create(pods, bound, services=[], nodes=nodes)
    assert bound["spec"]["nodeName"] == "box"
    chosen = {"metadata": meta(), "spec": {"containers": [{"name": "c"}], "nodeName": "elsewhere"}}
    kinds.prepare_create(pods, chosen, services=[], nodes=nodes)
    assert chosen["spec"]["nodeName"] == "elsewhere"


def test_daemonset_and_replication_controller_defaults():
    daemonset = {"metadata": meta(), "spec": {"template": {}}, "status": {"numberReady": 5}}
    kinds.prepare_create(TYPES.lookup("apps", "v1", "daemonsets"), daemonset, services=[])
    assert "status" not in daemonset
    assert daemonset["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    controller = {"metadata": meta(), "spec": {"template": {"metadata": {"labels": {"app": "a"}}}}}
    kinds.prepare_create(TYPES.lookup("", "v1", "replicationcontrollers"), controller, services=[])
    assert controller["spec"]["replicas"] == 1
    assert controller["spec"]["selector"] == {"app": "a"} and controller["metadata"]["labels"] == {"app": "a"}
    assert scale.view({**controller, "status": {"replicas": 1}})["status"]["selector"] == "app=a"


def test_services_answer_with_a_status():
    service = {"metadata": meta(), "spec": {"ports": [{"port": 80}]}}
    kinds.prepare_create(TYPES.lookup("", "v1", "services"), service, services=[])
    assert service["status"] == {"loadBalancer": {}}


def test_node_columns_are_kubectls():
    node = {
        "metadata": {
            "name": "box",
            "creationTimestamp": "2026-01-02T03:00:00Z",
            "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/hostname": "box"},
        },
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "nodeInfo": {
                "kubeletVersion": "v1.32.0-mlkube",
                "osImage": "Debian",
                "kernelVersion": "6.1",
                "containerRuntimeVersion": "mlkube-process://python3.11",
            },
        },
    }
    table = tables.table(TYPES.lookup("", "v1", "nodes"), [node], now=NOW)
    names = [c["name"] for c in table["columnDefinitions"]]
    assert names == [
        "Name",
        "Status",
        "Roles",
        "Age",
        "Version",
        "Internal-IP",
        "External-IP",
        "OS-Image",
        "Kernel-Version",
        "Container-Runtime",
    ]
    assert table["rows"][0]["cells"][:5] == ["box", "Ready,SchedulingDisabled", "control-plane", "4m5s", "v1.32.0-mlkube"]
    assert table["rows"][0]["cells"][5:7] == ["127.0.0.1", "<none>"]


def test_daemonset_and_replication_controller_columns():
    daemonset = {
        "metadata": meta("agent"),
        "spec": {"template": {"spec": {"nodeSelector": {"disk": "ssd"}}}},
        "status": {
            "desiredNumberScheduled": 1,
            "currentNumberScheduled": 1,
            "numberReady": 0,
            "updatedNumberScheduled": 1,
            "numberAvailable": 0,
        },
    }
    row = tables.table(TYPES.lookup("apps", "v1", "daemonsets"), [daemonset], now=NOW)["rows"][0]["cells"]
    assert row == ["agent", 1, 1, 0, 1, 0, "disk=ssd", "4m5s"]
    controller = {"metadata": meta("rc"), "spec": {"replicas": 2}, "status": {"replicas": 2, "readyReplicas": 1}}
    row = tables.table(TYPES.lookup("", "v1", "replicationcontrollers"), [controller], now=NOW)["rows"][0]["cells"]
    assert row == ["rc", 2, 2, 1, "4m5s"]


def test_the_metrics_api_is_discoverable_read_only():
    pod_metrics = TYPES.lookup("metrics.k8s.io", "v1beta1", "pods")
    node_metrics = TYPES.lookup("metrics.k8s.io", "v1beta1", "nodes")
    assert (pod_metrics.kind, pod_metrics.namespaced, pod_metrics.verbs) == ("PodMetrics", True, ("get", "list"))
    assert (node_metrics.kind, node_metrics.namespaced) == ("NodeMetrics", False)
    assert {"exec", "portforward", "log"} <= set(TYPES.lookup("", "v1", "pods").subresources)

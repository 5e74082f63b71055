"""Endpoints of a Service from its pods, and the backends its listeners forward to."""

from mlkube.local.runtime import services

SERVICE = {"metadata": {"name": "web", "namespace": "d", "labels": {"tier": "front"}},
           "spec": {"selector": {"app": "web"}, "clusterIP": "127.1.0.4",
                    "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}


def pod(name, ip, *, ready=True, app="web", port=8080):
    return {"metadata": {"name": name, "uid": name, "labels": {"app": app}},
            "spec": {"containers": [{"ports": [{"name": "http", "containerPort": port}]}]},
            "status": {"phase": "Running", "podIP": ip,
                       "conditions": [{"type": "Ready", "status": str(ready)}]}}


def test_endpoints_split_ready_and_not_ready_and_resolve_named_ports():
    pods = [pod("a", "127.2.0.1"), pod("b", "127.2.0.2", ready=False),
            pod("c", "127.2.0.3", app="other"), pod("d", "127.2.0.4", port=9090)]
    endpoints = services.endpoints_for(SERVICE, pods)
    assert endpoints["metadata"]["labels"]["tier"] == "front"
    by_port = {s["ports"][0]["port"]: s for s in endpoints["subsets"]}
    assert [a["ip"] for a in by_port[8080]["addresses"]] == ["127.2.0.1"]
    assert [a["ip"] for a in by_port[8080]["notReadyAddresses"]] == ["127.2.0.2"]
    assert [a["ip"] for a in by_port[9090]["addresses"]] == ["127.2.0.4"]
    assert services.backends(endpoints, SERVICE["spec"]["ports"][0]) == [
        ("127.2.0.1", 8080), ("127.2.0.4", 9090)]


def test_pods_without_ip_or_finished_are_left_out():
    finished = pod("a", "127.2.0.1")
    finished["status"]["phase"] = "Succeeded"
    waiting = pod("b", None)
    assert services.endpoints_for(SERVICE, [finished, waiting])["subsets"] == []


def test_only_services_with_selector_and_cluster_ip_are_proxied():
    assert services.is_proxied(SERVICE)
    assert not services.is_proxied({"spec": {**SERVICE["spec"], "clusterIP": "None"}})
    assert not services.is_proxied({"spec": {"clusterIP": "127.1.0.9", "ports": []}})

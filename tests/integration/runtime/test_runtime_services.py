"""Endpoints of a Service from its pods, and the backends its listeners forward to."""

import asyncio
import socket

from mlkube.local.runtime import services

SERVICE = {
    "metadata": {"name": "web", "namespace": "d", "labels": {"tier": "front"}},
    "spec": {"selector": {"app": "web"}, "clusterIP": "127.1.0.4", "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
}


def pod(name, ip, *, ready=True, app="web", port=8080):
    return {
        "metadata": {"name": name, "uid": name, "labels": {"app": app}},
        "spec": {"containers": [{"ports": [{"name": "http", "containerPort": port}]}]},
        "status": {"phase": "Running", "podIP": ip, "conditions": [{"type": "Ready", "status": str(ready)}]},
    }


def test_endpoints_split_ready_and_not_ready_and_resolve_named_ports():
    pods = [
        pod("a", "127.2.0.1"),
        pod("b", "127.2.0.2", ready=False),
        pod("c", "127.2.0.3", app="other"),
        pod("d", "127.2.0.4", port=9090),
    ]
    endpoints = services.endpoints_for(SERVICE, pods)
    assert endpoints["metadata"]["labels"]["tier"] == "front"
    by_port = {s["ports"][0]["port"]: s for s in endpoints["subsets"]}
    assert [a["ip"] for a in by_port[8080]["addresses"]] == ["127.2.0.1"]
    assert [a["ip"] for a in by_port[8080]["notReadyAddresses"]] == ["127.2.0.2"]
    assert [a["ip"] for a in by_port[9090]["addresses"]] == ["127.2.0.4"]
    assert services.backends(endpoints, SERVICE["spec"]["ports"][0]) == [("127.2.0.1", 8080), ("127.2.0.4", 9090)]


def test_pods_without_ip_or_finished_are_left_out():
    finished = pod("a", "127.2.0.1")
    finished["status"]["phase"] = "Succeeded"
    waiting = pod("b", None)
    assert services.endpoints_for(SERVICE, [finished, waiting])["subsets"] == []


def test_only_services_with_selector_and_cluster_ip_are_proxied():
    assert services.is_proxied(SERVICE)
    assert not services.is_proxied({"spec": {**SERVICE["spec"], "clusterIP": "None"}})
    assert not services.is_proxied({"spec": {"clusterIP": "127.1.0.9", "ports": []}})


def test_proxy_round_robins_skips_refusing_backends_and_closes_connections():
    async def scenario():
        async def answer(reader, writer, name=b""):
            await reader.read(100)
            writer.write(name)
            await writer.drain()
            writer.close()

        a = await asyncio.start_server(lambda r, w: answer(r, w, b"a"), "127.0.0.1", 0)
        b = await asyncio.start_server(lambda r, w: answer(r, w, b"b"), "127.0.0.1", 0)
        closed = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        refused = closed.sockets[0].getsockname()[1]
        closed.close()
        await closed.wait_closed()
        ports = [s.sockets[0].getsockname()[1] for s in (a, b)]
        proxy = services.Proxy()
        listener = services.Listener("ns", "svc", "127.0.0.1", _free_port())
        await proxy.sync({listener: [("127.0.0.1", ports[0]), ("127.0.0.1", refused), ("127.0.0.1", ports[1])]})
        answers = []
        for _ in range(4):
            reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
            writer.write(b"hi")
            await writer.drain()
            answers.append(await reader.read())  # read() to EOF: the proxy closed its side
            writer.close()
        await proxy.close()
        a.close()
        b.close()
        return answers

    answers = asyncio.run(scenario())
    assert sorted(set(answers)) == [b"a", b"b"] and answers.count(b"a") >= 1


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

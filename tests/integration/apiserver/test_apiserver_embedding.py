"""The in-process entry points `mlkube local up` uses: run_in_thread, install_crds, and a prompt stop."""

from __future__ import annotations

import json
import signal
import ssl
import threading

import httpx
from apiserver_helpers import WIDGET_CRD, client_for
from kubernetes import client, config

CM = "/api/v1/namespaces/default/configmaps"


def test_run_in_thread_installs_crds_and_serves_the_kubernetes_client(tmp_path):
    from mlkube.local.apiserver import server

    handle = server.run_in_thread(str(tmp_path / "state"))
    try:
        assert server.install_crds(handle, paths=[str(WIDGET_CRD)]) == ["widgets.example.com"]
        assert server.install_crds(handle.url, handle.token, [str(WIDGET_CRD)], ca_file=handle.ca_path) == [
            "widgets.example.com"
        ]  # a second install replaces in place
        api = config.new_client_from_config(config_file=handle.kubeconfig_path)
        objects = client.CustomObjectsApi(api)
        objects.create_namespaced_custom_object(
            "example.com",
            "v1",
            "default",
            "widgets",
            {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "t"}, "spec": {"size": 1}},
        )
        listed = objects.list_namespaced_custom_object("example.com", "v1", "default", "widgets")
        assert [item["metadata"]["name"] for item in listed["items"]] == ["t"]
        api.close()
    finally:
        handle.stop()
    with httpx.Client(verify=False) as anonymous:
        try:
            anonymous.get(handle.url + "/healthz", timeout=2)
            still_up = True
        except httpx.HTTPError:
            still_up = False
    assert not still_up


def test_sigterm_ends_open_watches_and_the_process(fresh_apiserver):
    server = fresh_apiserver()
    with client_for(server) as http:
        http.post(CM, json={"metadata": {"name": "x"}})
    ended: list[int] = []
    streaming = [threading.Event() for _ in range(3)]

    def watch(started: threading.Event) -> None:
        with client_for(server) as http, http.stream("GET", CM, params={"watch": "true"}) as response:
            lines = 0
            for _ in response.iter_lines():
                lines += 1
                started.set()  # the synthetic ADDED of x arrived: this watch is open
            ended.append(lines)

    threads = [threading.Thread(target=watch, args=(event,)) for event in streaming]
    for thread in threads:
        thread.start()
    assert all(event.wait(timeout=10) for event in streaming)
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=10) == 0
    for thread in threads:
        thread.join(timeout=10)
    assert len(ended) == 3


def test_log_follow_streams_until_the_container_terminates(apiserver, http, namespace):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "f"}, "spec": {"containers": [{"name": "main", "image": "x"}]}}
    http.post(f"/api/v1/namespaces/{namespace}/pods", json=pod)
    directory = apiserver.state_dir / "logs" / namespace / "f" / "main"
    directory.mkdir(parents=True)
    log = directory / "0.log"
    log.write_text("line 1\n")
    received: list[str] = []
    with http.stream("GET", f"/api/v1/namespaces/{namespace}/pods/f/log", params={"follow": "true"}) as response:
        lines = response.iter_lines()
        received.append(next(lines))
        with open(log, "a") as handle:
            handle.write("line 2\n")
        received.append(next(lines))
        status = {
            "status": {
                "phase": "Succeeded",
                "containerStatuses": [
                    {"name": "main", "ready": False, "restartCount": 0, "state": {"terminated": {"exitCode": 0}}}
                ],
            }
        }
        http.patch(
            f"/api/v1/namespaces/{namespace}/pods/f/status",
            content=json.dumps(status),
            headers={"Content-Type": "application/merge-patch+json"},
        )
        received.extend(lines)  # ends once the container is terminated
    assert received == ["line 1", "line 2"]


def test_a_second_in_process_server_on_the_same_state_directory_is_refused_until_the_first_stops(tmp_path):
    """`mlkube local up` runs the server in a thread: the lock holds there too, and stopping releases it."""
    from mlkube.local.apiserver import server, statedir

    state = str(tmp_path / "state")
    first = server.run_in_thread(state)
    try:
        try:
            server.run_in_thread(state).stop()
            raise AssertionError("a second server started on a locked state directory")
        except statedir.Locked as refused:
            assert state in str(refused) and "another mlkube API server" in str(refused)
        with _client(first) as http:
            assert http.post(CM, json={"metadata": {"name": "kept"}}).status_code == 201
    finally:
        first.stop()
    second = server.run_in_thread(state)
    try:
        with _client(second) as http:
            assert http.get(CM + "/kept").status_code == 200
    finally:
        second.stop()


def _client(handle) -> httpx.Client:
    return httpx.Client(
        base_url=handle.url,
        verify=ssl.create_default_context(cafile=handle.ca_path),
        timeout=30,
        headers={"Authorization": f"Bearer {handle.token}"},
    )

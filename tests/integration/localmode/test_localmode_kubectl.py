"""kubectl 1.32 against `mlkube local up`: the commands that reach into running pods and the machine.

exec (output, exit code, stdin, the pod's environment), port-forward to a pod, a Deployment and a
Service (an HTTP request through the tunnel), get nodes, top pods/nodes, and the DaemonSet and
ReplicationController controllers. One web Deployment is shared by the module. About 30 s.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
import yaml

from localcluster import wait_for

pytestmark = pytest.mark.kubectl

WEB_SERVER = """
import http.server, os
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("hello from " + os.environ["HOSTNAME"] + " " + self.path).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.ThreadingHTTPServer((os.environ["MLKUBE_BIND_HOST"], 8000), Handler).serve_forever()
"""

WEB = [
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "python:3.11-slim",
                            "command": ["python", "-c", WEB_SERVER],
                            "env": [{"name": "GREETING", "value": "hello-from-env"}],
                            "workingDir": "/srv/app",
                            "ports": [{"name": "http", "containerPort": 8000}],
                            "readinessProbe": {"tcpSocket": {"port": 8000}, "periodSeconds": 1},
                        }
                    ]
                },
            },
        },
    },
    {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]},
    },
]


@pytest.fixture(scope="module")
def web(plane) -> Iterator[tuple[str, str]]:
    """(namespace, pod name) of a ready web Deployment and its Service."""
    namespace = f"lm-web-{uuid.uuid4().hex[:6]}"
    plane.kubectl("create", "namespace", namespace)
    plane.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(WEB))
    plane.kubectl("rollout", "status", "-n", namespace, "deploy/web", "--timeout=60s", timeout=90)
    pods = json.loads(plane.kubectl("get", "pods", "-n", namespace, "-l", "app=web", "-o", "json").stdout)["items"]
    yield namespace, pods[0]["metadata"]["name"]
    plane.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_get_nodes_shows_the_machine_as_one_ready_node_and_pods_run_on_it(plane, web):
    namespace, pod = web
    nodes = json.loads(plane.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    assert len(nodes) == 1
    node = nodes[0]
    name = node["metadata"]["name"]
    capacity = node["status"]["capacity"]
    assert int(capacity["cpu"]) >= 1 and capacity["memory"].endswith("Ki") and capacity["pods"] == "110"
    assert node["status"]["allocatable"] == capacity
    assert {"type": "Ready", "status": "True"}.items() <= next(
        c for c in node["status"]["conditions"] if c["type"] == "Ready"
    ).items()
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == name

    table = plane.kubectl("get", "nodes").stdout.splitlines()
    assert table[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert table[1].split()[:3] == [name, "Ready", "control-plane"]
    pod_object = json.loads(plane.kubectl("get", "pod", pod, "-n", namespace, "-o", "json").stdout)
    assert pod_object["spec"]["nodeName"] == name


def test_exec_prints_the_commands_output_in_the_pods_environment_and_exits_with_its_code(plane, web):
    namespace, pod = web
    shown = plane.kubectl("exec", "-n", namespace, "deploy/web", "--", "sh", "-c", 'echo "$GREETING"; pwd; echo oops >&2')
    lines = shown.stdout.splitlines()
    assert lines[0] == "hello-from-env"
    assert lines[1].endswith("/srv/app") and "/runtime/pods/" in lines[1]  # workingDir, under the container root
    assert "oops" in shown.stderr

    failed = plane.kubectl("exec", "-n", namespace, pod, "--", "sh", "-c", "exit 3", check=False)
    assert failed.returncode == 3
    assert "command terminated with exit code 3" in failed.stderr

    missing = plane.kubectl("exec", "-n", namespace, pod, "--", "no-such-program", check=False)
    assert missing.returncode == 127


def test_exec_with_stdin_streams_it_to_the_command(plane, web):
    namespace, pod = web
    shown = plane.kubectl("exec", "-i", "-n", namespace, pod, "--", "wc", "-l", input="one\ntwo\nthree\n")
    assert shown.stdout.strip() == "3"


def test_exec_over_plain_spdy_when_kubectl_is_told_not_to_use_websockets(plane, web):
    """KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false (and kubectl before 1.30) upgrade the connection to SPDY/3.1."""
    namespace, pod = web
    spdy = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"}
    shown = plane.kubectl(
        "exec", "-i", "-n", namespace, pod, "--", "sh", "-c", "wc -l; exit 5", input="a\nb\n", check=False, env=spdy
    )
    assert shown.stdout.strip() == "2" and shown.returncode == 5
    assert "command terminated with exit code 5" in shown.stderr


def test_exec_with_a_terminal_runs_the_command_on_a_pty(plane, web):
    """`kubectl exec -it` needs a terminal on kubectl's side too, so the Python client (same protocol) asks for it."""
    from kubernetes import config
    from kubernetes.client import CoreV1Api
    from kubernetes.stream import stream

    namespace, pod = web
    api_client = config.new_client_from_config(config_file=str(plane.kubeconfig))
    try:
        session = stream(
            CoreV1Api(api_client).connect_get_namespaced_pod_exec,
            pod,
            namespace,
            command=["sh"],
            stdin=True,
            stdout=True,
            stderr=False,
            tty=True,
            _preload_content=False,
        )
        session.write_channel(4, '{"Width":100,"Height":30}')  # the resize channel
        session.write_stdin("tty; stty size; exit 4\n")
        shown = ""

        def exited() -> bool:
            nonlocal shown
            if session.is_open():
                session.update(timeout=1)
            shown += session.read_stdout(timeout=0) or ""
            return not session.is_open()

        wait_for(exited, 30, "the shell to exit")
        assert "/dev/pts/" in shown and "30 100" in shown
        assert session.returncode == 4
    finally:
        api_client.close()


@pytest.mark.parametrize(
    "target, websockets",
    [("pod", "true"), ("deploy/web", "true"), ("svc/web", "true"), ("svc/web", "false")],
    ids=["pod", "deployment", "service", "service-over-plain-spdy"],
)
def test_port_forward_carries_an_http_request_to_the_pods_process(plane, web, target, websockets):
    """kubectl 1.32 tunnels SPDY in a WebSocket; with KUBECTL_PORT_FORWARD_WEBSOCKETS=false (and before
    1.31) it upgrades the connection to SPDY/3.1 itself."""
    namespace, pod = web
    resource = f"pod/{pod}" if target == "pod" else target
    remote = "80" if target.startswith("svc/") else "8000"
    forward = subprocess.Popen(
        plane.kubectl_argv("port-forward", "-n", namespace, resource, f":{remote}"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "KUBECTL_PORT_FORWARD_WEBSOCKETS": websockets},
    )
    try:
        assert forward.stdout is not None
        line = forward.stdout.readline()  # "Forwarding from 127.0.0.1:PORT -> 8000"
        found = re.search(r"127\.0\.0\.1:(\d+) -> 8000", line)
        assert found, (
            f"kubectl port-forward printed {line!r}; stderr: {forward.stderr.read() if forward.poll() is not None else ''}"
        )
        for attempt in ("/first", "/second"):  # two connections through one tunnel
            with urllib.request.urlopen(f"http://127.0.0.1:{found[1]}{attempt}", timeout=20) as response:
                assert response.read().decode() == f"hello from {pod} {attempt}"
    finally:
        forward.terminate()
        forward.wait(timeout=10)


def _top(plane, *args: str) -> list[list[str]]:
    """`kubectl top ...` rows (header dropped), retried while the metrics of a new pod are not there yet."""
    rows: list[list[str]] = []

    def read() -> bool:
        nonlocal rows
        shown = plane.kubectl("top", *args, check=False)
        rows = [line.split() for line in shown.stdout.splitlines()[1:]]
        return shown.returncode == 0 and bool(rows)

    wait_for(read, 30, f"kubectl top {' '.join(args)}")
    return rows


def test_top_reports_the_local_processes_cpu_and_memory(plane, namespace):
    spinner = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "spinner", "labels": {"app": "spinner"}},
        "spec": {"containers": [{"name": "spin", "image": "python", "command": ["python", "-c", "while True: pass"]}]},
    }
    plane.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(spinner))
    plane.kubectl("wait", "-n", namespace, "--for=condition=Ready", "pod/spinner", "--timeout=60s", timeout=90)

    rows = _top(plane, "pods", "-n", namespace, "--containers")
    pod, container, cpu, memory = rows[0]
    assert (pod, container) == ("spinner", "spin")
    assert cpu.endswith("m") and int(cpu[:-1]) > 0  # a busy loop uses CPU in any window
    assert memory.endswith("Mi") and int(memory[:-2]) > 0

    node = json.loads(plane.kubectl("get", "nodes", "-o", "json").stdout)["items"][0]["metadata"]["name"]
    name, cpu, cpu_percent, memory, memory_percent = _top(plane, "nodes")[0]
    assert name == node and cpu.endswith("m") and cpu_percent.endswith("%")
    assert memory.endswith("Mi") and memory_percent.endswith("%")


def _pods(plane, namespace: str, selector: str) -> list[dict]:
    items = json.loads(plane.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json").stdout)["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


SLEEPER = {"name": "main", "image": "python", "command": ["python", "-c", "import time; time.sleep(3600)"]}


def test_a_daemonset_runs_one_pod_on_the_node_and_replaces_it_when_its_template_changes(plane, namespace):
    daemonset = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [SLEEPER]}},
        },
    }
    plane.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(daemonset))
    plane.kubectl("rollout", "status", "-n", namespace, "ds/agent", "--timeout=60s", timeout=90)
    node = json.loads(plane.kubectl("get", "nodes", "-o", "json").stdout)["items"][0]["metadata"]["name"]
    first = _pods(plane, namespace, "app=agent")
    assert [p["spec"]["nodeName"] for p in first] == [node]

    plane.kubectl("set", "env", "-n", namespace, "ds/agent", "MODE=second")
    plane.kubectl("rollout", "status", "-n", namespace, "ds/agent", "--timeout=60s", timeout=90)
    second = wait_for(
        lambda: (
            (pods := _pods(plane, namespace, "app=agent"))
            and pods[0]["metadata"]["name"] != first[0]["metadata"]["name"]
            and pods
        ),
        60,
        "the DaemonSet's pod to be replaced",
    )
    assert len(second) == 1 and second[0]["spec"]["containers"][0]["env"] == [{"name": "MODE", "value": "second"}]
    shown = plane.kubectl("get", "ds", "agent", "-n", namespace).stdout.splitlines()
    assert shown[0].split()[:6] == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE"]
    assert shown[1].split()[:6] == ["agent", "1", "1", "1", "1", "1"]


def test_a_replication_controller_keeps_its_replicas_and_scales(plane, namespace):
    controller = {
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": {"name": "sleepers"},
        "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "sleepers"}}, "spec": {"containers": [SLEEPER]}}},
    }
    plane.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(controller))
    wait_for(lambda: len(_pods(plane, namespace, "app=sleepers")) == 2, 60, "two pods")
    stored = json.loads(plane.kubectl("get", "rc", "sleepers", "-n", namespace, "-o", "json").stdout)
    assert stored["spec"]["selector"] == {"app": "sleepers"}  # defaulted from the template's labels

    plane.kubectl("scale", "-n", namespace, "rc/sleepers", "--replicas=1")
    wait_for(lambda: len(_pods(plane, namespace, "app=sleepers")) == 1, 60, "one pod")
    wait_for(
        lambda: (
            plane.kubectl("get", "rc", "sleepers", "-n", namespace).stdout.splitlines()[1].split()[:4]
            == ["sleepers", "1", "1", "1"]
        ),
        30,
        "the controller's status",
    )

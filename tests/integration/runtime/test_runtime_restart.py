"""Stopping the runtime leaves no process behind; starting it again resumes what should run."""

from __future__ import annotations

import signal
import threading
import urllib.request

import pytest
from runtime_helpers import apply, condition, container_pids, get_json, process_alive, wait_for

from mlkube.local import runtime as local_runtime

pytestmark = pytest.mark.kubectl

WEB = (
    "import http.server, os\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        self.send_response(200); self.end_headers(); self.wfile.write(b'up')\n"
    "    def log_message(self, *a): pass\n"
    "http.server.HTTPServer((os.environ['MLKUBE_BIND_HOST'], 8080), H).serve_forever()\n"
)
# A container that forks a grandchild: the whole process group must go with it.
FORKER = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(300)\n"
)


def workloads() -> list[dict]:
    return [
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
                                "command": ["python", "-c", WEB],
                                "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
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
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 8080}]},
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "forker"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "python:3.11-slim", "command": ["python", "-c", FORKER]}],
            },
        },
    ]


def test_stop_leaves_no_process_and_start_resumes(fresh_apiserver, kubectl_for, runtime_for):
    server = fresh_apiserver()
    kubectl = kubectl_for(server)
    running = runtime_for(server)
    apply(kubectl, "default", *workloads())
    kubectl("rollout", "status", "deployment/web", "--timeout=30s", timeout=40)
    grandchild = int(wait_for(lambda: kubectl("logs", "forker", check=False).stdout.strip(), what="the forker's child pid"))
    pids = container_pids(get_json(kubectl, "pods")["items"]) + [grandchild]
    assert len(pids) == 3 and all(process_alive(pid) for pid in pids)

    assert running.stop() == 0
    wait_for(lambda: not [pid for pid in pids if process_alive(pid)], timeout=5, what="every container process to be gone")

    running.start()
    cluster_ip = get_json(kubectl, "service", "web")["spec"]["clusterIP"]
    wait_for(lambda: _answers(f"http://{cluster_ip}:8080/"), what="the Service to answer again")
    web = get_json(kubectl, "pods", "-l", "app=web")["items"][0]
    assert web["status"]["containerStatuses"][0]["restartCount"] == 1
    forker = wait_for(
        lambda: (lambda p: p["status"]["phase"] == "Failed" and p)(get_json(kubectl, "pod", "forker")),
        what="the Never pod to be failed",
    )
    terminated = forker["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 137 and "runtime stopped" in terminated["message"]
    assert condition(forker, "Ready")["status"] == "False"
    assert condition(forker, "DisruptionTarget")["reason"] == "TerminationByKubelet"


def test_sigkilled_runtime_orphans_are_killed_on_the_next_start(fresh_apiserver, kubectl_for, runtime_for):
    server = fresh_apiserver()
    kubectl = kubectl_for(server)
    running = runtime_for(server)
    apply(kubectl, "default", workloads()[2])
    grandchild = int(wait_for(lambda: kubectl("logs", "forker", check=False).stdout.strip(), what="the forker's child pid"))
    running.process.send_signal(signal.SIGKILL)
    running.process.wait()
    assert process_alive(grandchild)  # a crash cannot clean up...
    running.start()  # ...the next start does
    wait_for(lambda: not process_alive(grandchild), what="the orphan to be killed")


def _answers(url: str) -> bool:
    try:
        return urllib.request.urlopen(url, timeout=2).read() == b"up"
    except OSError:
        return False


def test_run_in_a_thread_as_mlkube_local_up_does(fresh_apiserver, kubectl_for):
    server = fresh_apiserver()
    kubectl = kubectl_for(server)
    stop = threading.Event()
    thread = threading.Thread(
        target=local_runtime.run,
        args=(server.kubeconfig, server.state_dir, stop),
        kwargs={"settings": local_runtime.Settings(job_retry_base=0.2)},
    )
    thread.start()
    try:
        apply(
            kubectl,
            "default",
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": "threaded"},
                "spec": {
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [
                                {"name": "main", "image": "mlkube:dev", "command": ["python", "-c", "print('in thread')"]}
                            ],
                        }
                    }
                },
            },
            workloads()[2],
        )
        wait_for(
            lambda: condition(get_json(kubectl, "job", "threaded"), "Complete").get("status") == "True",
            what="the job to complete",
        )
        assert kubectl("logs", "job/threaded").stdout == "in thread\n"
        pids = wait_for(lambda: container_pids([get_json(kubectl, "pod", "forker")]), what="the forker")
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    wait_for(lambda: not process_alive(pids[0]), timeout=5, what="the forker to be stopped")


def test_a_second_runtime_on_the_same_state_dir_is_refused(fresh_apiserver, runtime_for):
    server = fresh_apiserver()
    first = runtime_for(server)
    lock = server.state_dir / "runtime" / "lock"
    wait_for(lambda: lock.exists() and lock.read_text() == str(first.process.pid), what="the first runtime to hold the lock")
    second = runtime_for(server)
    assert second.process.wait(timeout=20) == 1
    assert "another process runtime" in second.log.read_text()
    assert first.process.poll() is None


def test_runtime_rides_out_an_api_server_restart(fresh_apiserver, kubectl_for, runtime_for):
    server = fresh_apiserver()
    kubectl = kubectl_for(server)
    running = runtime_for(server)
    apply(kubectl, "default", *workloads()[:2])
    kubectl("rollout", "status", "deployment/web", "--timeout=30s", timeout=40)
    pids = container_pids(get_json(kubectl, "pods", "-l", "app=web")["items"])

    server.restart()  # SIGKILL and start again on the same state directory and port
    apply(
        kubectl,
        "default",
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "after"},
            "spec": {
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [
                            {"name": "main", "image": "python:3.11-slim", "command": ["python", "-c", "print('after')"]}
                        ],
                    }
                }
            },
        },
    )
    wait_for(
        lambda: condition(get_json(kubectl, "job", "after"), "Complete").get("status") == "True",
        what="a job created after the restart to complete",
    )
    assert running.process.poll() is None
    assert all(process_alive(pid) for pid in pids)  # running pods were not disturbed


def test_training_job_interrupted_by_a_runtime_stop_runs_again(fresh_apiserver, kubectl_for, runtime_for, tmp_path):
    """mlkube's trainer Jobs ignore DisruptionTarget failures: after `local down`/`up` the
    training starts again instead of using up the Job's retries."""
    server = fresh_apiserver()
    kubectl = kubectl_for(server)
    running = runtime_for(server)
    script = (
        "import pathlib, time\n"
        "from mlkube.common import containerpath\n"
        "seen = containerpath.resolve('/shared/attempts')\n"
        "seen.write_text(seen.read_text() + 'x' if seen.exists() else 'x')\n"
        "print('attempt', len(seen.read_text()), flush=True)\n"
        "time.sleep(60 if len(seen.read_text()) == 1 else 0)\n"
    )
    apply(
        kubectl,
        "default",
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "train"},
            "spec": {
                "backoffLimit": 0,
                "podFailurePolicy": {
                    "rules": [
                        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [2]}},
                        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
                    ]
                },
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "volumes": [{"name": "shared", "hostPath": {"path": str(tmp_path)}}],
                        "containers": [
                            {
                                "name": "trainer",
                                "image": "ghcr.io/mlkube/mlkube:0.1.0",
                                "command": ["python", "-c", script],
                                "volumeMounts": [{"name": "shared", "mountPath": "/shared"}],
                            }
                        ],
                    }
                },
            },
        },
    )
    wait_for(lambda: "attempt 1" in kubectl("logs", "job/train", check=False).stdout, what="the first attempt")
    assert running.stop() == 0
    running.start()
    job = wait_for(
        lambda: (lambda j: condition(j, "Complete").get("status") == "True" and j)(get_json(kubectl, "job", "train")),
        what="the job to complete after the restart",
    )
    assert job["status"]["failed"] == 0 and job["status"]["succeeded"] == 1
    assert (tmp_path / "attempts").read_text() == "xx"

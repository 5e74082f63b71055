"""Jobs, Deployments, Services and pods run as real local processes on the embedded API server."""

from __future__ import annotations

import base64
import json
import random
import urllib.request

import pytest
from runtime_helpers import apply, condition, container_pids, get_json, process_alive, wait_for

pytestmark = pytest.mark.kubectl

# A tiny HTTP server answering with its pod name, on the pod's own loopback address.
WEB = (
    "import http.server, os\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        self.send_response(200); self.end_headers()\n"
    "        self.wfile.write(os.environ['HOSTNAME'].encode())\n"
    "    def log_message(self, *a): pass\n"
    "http.server.HTTPServer((os.environ['MLKUBE_BIND_HOST'], 8080), H).serve_forever()\n"
)


def job(name: str, script: str, **spec) -> str:
    return json.dumps(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name},
            "spec": {
                **spec,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "terminationGracePeriodSeconds": 1,
                        "containers": [{"name": "main", "image": "python:3.11-slim", "command": ["python", "-c", script]}],
                    }
                },
            },
        }
    )


def finished(kubectl, namespace, name):
    def check():
        obj = get_json(kubectl, "-n", namespace, "job", name)
        for type_ in ("Complete", "Failed"):
            if condition(obj, type_).get("status") == "True":
                return obj
        return None

    return wait_for(check, what=f"job {name} to finish")


def test_job_succeeds_and_kubectl_logs_shows_its_output(kubectl, namespace):
    apply(kubectl, namespace, job("hello", "import os; print('hello from', os.environ['HOSTNAME'])"))
    obj = finished(kubectl, namespace, "hello")
    assert condition(obj, "Complete")["reason"] == "CompletionsReached"
    assert obj["status"]["succeeded"] == 1 and obj["status"]["startTime"]
    assert obj["status"]["completionTime"]
    pod = get_json(kubectl, "-n", namespace, "pods", "-l", "job-name=hello")["items"][0]
    assert pod["metadata"]["name"].startswith("hello-")
    assert pod["metadata"]["ownerReferences"][0]["uid"] == obj["metadata"]["uid"]
    assert pod["status"]["phase"] == "Succeeded"
    assert pod["status"]["podIP"].startswith("127.2.")
    logs = kubectl("logs", "-n", namespace, "job/hello").stdout
    assert logs == f"hello from {pod['metadata']['name']}\n"
    job_events = kubectl("events", "-n", namespace, "--for", "job/hello").stdout
    assert f"Created pod: {pod['metadata']['name']}" in job_events and "Job completed" in job_events
    assert "Started container main" in kubectl("describe", "-n", namespace, "pod", pod["metadata"]["name"]).stdout


def test_failing_job_is_retried_until_the_backoff_limit(kubectl, namespace):
    apply(kubectl, namespace, job("fails", "print('trying'); raise SystemExit(3)", backoffLimit=1))
    obj = finished(kubectl, namespace, "fails")
    assert condition(obj, "Failed")["reason"] == "BackoffLimitExceeded"
    assert obj["status"]["failed"] == 2
    pods = get_json(kubectl, "-n", namespace, "pods", "-l", "job-name=fails")["items"]
    assert len(pods) == 2
    assert {p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] for p in pods} == {3}
    assert kubectl("logs", "-n", namespace, "job/fails").stdout == "trying\n"


def test_job_past_its_deadline_fails_and_its_process_is_stopped(kubectl, namespace):
    apply(kubectl, namespace, job("slow", "import time; print('started', flush=True); time.sleep(120)", activeDeadlineSeconds=2))
    running = wait_for(
        lambda: container_pids(get_json(kubectl, "-n", namespace, "pods", "-l", "job-name=slow")["items"]),
        what="the slow job's process",
    )
    obj = finished(kubectl, namespace, "slow")
    assert condition(obj, "Failed")["reason"] == "DeadlineExceeded"
    wait_for(lambda: not any(process_alive(pid) for pid in running), what="the process to stop")


def test_pod_failure_policy_and_termination_message(kubectl, namespace):
    script = (
        "from mlkube.common import containerpath\n"
        "containerpath.resolve('/dev/termination-log').write_text('column y is missing')\n"
        "raise SystemExit(2)\n"
    )
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [2]}}]}
    apply(kubectl, namespace, job("bad-input", script, backoffLimit=3, podFailurePolicy=policy))
    obj = finished(kubectl, namespace, "bad-input")
    assert condition(obj, "Failed")["reason"] == "PodFailurePolicy"
    pod = get_json(kubectl, "-n", namespace, "pods", "-l", "job-name=bad-input")["items"][0]
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["message"]) == (2, "column y is missing")


def test_pod_gets_env_and_volumes_from_configmaps_and_secrets(kubectl, namespace):
    token = base64.b64encode(b"s3cr3t").decode()
    script = (
        "import os, pathlib\n"
        "from mlkube.common import containerpath\n"
        "print(os.environ['MODE'], os.environ['TOKEN'], os.environ['POD_NS'], os.getcwd())\n"
        "print(containerpath.resolve('/etc/app/settings.yaml').read_text())\n"
        "containerpath.resolve('/scratch/out.txt').write_text('ok')\n"
    )
    apply(
        kubectl,
        namespace,
        *(
            [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "settings"},
                    "data": {"MODE": "fast", "settings.yaml": "threshold: 3"},
                },
                {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"}, "data": {"token": token}},
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": "reader"},
                    "spec": {
                        "restartPolicy": "Never",
                        "volumes": [{"name": "cfg", "configMap": {"name": "settings"}}, {"name": "scratch", "emptyDir": {}}],
                        "containers": [
                            {
                                "name": "main",
                                "image": "python:3.11-slim",
                                "workingDir": "/work",
                                "command": ["python", "-c", script],
                                "envFrom": [{"configMapRef": {"name": "settings"}}],
                                "env": [
                                    {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
                                    {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                                ],
                                "volumeMounts": [
                                    {"name": "cfg", "mountPath": "/etc/app"},
                                    {"name": "scratch", "mountPath": "/scratch"},
                                ],
                            }
                        ],
                    },
                },
            ]
        ),
    )
    wait_for(
        lambda: get_json(kubectl, "-n", namespace, "pod", "reader")["status"].get("phase") == "Succeeded",
        what="the reader pod to succeed",
    )
    first, second = kubectl("logs", "-n", namespace, "reader").stdout.splitlines()[:2]
    mode, secret, pod_namespace, cwd = first.split()
    assert (mode, secret, pod_namespace) == ("fast", "s3cr3t", namespace)
    assert cwd.endswith("/work")
    assert second == "threshold: 3"


def test_unknown_image_leaves_the_pod_pending_with_errimagepull(kubectl, namespace):
    apply(
        kubectl,
        namespace,
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "nginx"},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            }
        ),
    )

    def waiting():
        statuses = get_json(kubectl, "-n", namespace, "pod", "nginx")["status"].get("containerStatuses") or []
        return statuses and statuses[0]["state"].get("waiting", {}).get("reason") == "ErrImagePull" and statuses[0]

    status = wait_for(waiting, what="ErrImagePull")
    assert '"nginx:1.27"' in status["state"]["waiting"]["message"]
    assert get_json(kubectl, "-n", namespace, "pod", "nginx")["status"]["phase"] == "Pending"


def test_crashing_deployment_is_restarted_with_back_off(kubectl, namespace):
    apply(
        kubectl,
        namespace,
        json.dumps(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "crash"},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": "crash"}},
                    "template": {
                        "metadata": {"labels": {"app": "crash"}},
                        "spec": {
                            "containers": [
                                {
                                    "name": "c",
                                    "image": "python:3.11-slim",
                                    "command": ["python", "-c", "print('crashing'); raise SystemExit(1)"],
                                }
                            ]
                        },
                    },
                },
            }
        ),
    )
    seen_backoff = []

    def restarted_thrice():
        pods = get_json(kubectl, "-n", namespace, "pods", "-l", "app=crash")["items"]
        status = pods and (pods[0]["status"].get("containerStatuses") or [None])[0]
        if status and "waiting" in status["state"]:
            seen_backoff.append(status["state"]["waiting"]["reason"])
        return status and status["restartCount"] >= 3 and status

    status = wait_for(restarted_thrice, what="three restarts")
    assert "CrashLoopBackOff" in seen_backoff
    assert status["lastState"]["terminated"]["exitCode"] == 1
    pod = get_json(kubectl, "-n", namespace, "pods", "-l", "app=crash")["items"][0]["metadata"]["name"]
    assert kubectl("logs", "-n", namespace, pod, "--previous").stdout == "crashing\n"
    assert "Back-off restarting failed container c" in kubectl("describe", "-n", namespace, "pod", pod).stdout
    backoffs = [
        e
        for e in get_json(kubectl, "-n", namespace, "events")["items"]
        if e["reason"] == "BackOff" and e["involvedObject"]["name"] == pod
    ]
    assert len(backoffs) == 1 and backoffs[0]["count"] >= 2  # repeats are counted, not duplicated
    deployment = get_json(kubectl, "-n", namespace, "deployment", "crash")
    assert condition(deployment, "Available")["status"] == "False"


def test_service_spreads_requests_over_two_ready_replicas(kubectl, namespace):
    apply(
        kubectl,
        namespace,
        *(
            [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": "web"},
                    "spec": {
                        "replicas": 2,
                        "selector": {"matchLabels": {"app": "web"}},
                        "template": {
                            "metadata": {"labels": {"app": "web"}},
                            "spec": {
                                "containers": [
                                    {
                                        "name": "web",
                                        "image": "python:3.11-slim",
                                        "command": ["python", "-c", WEB],
                                        "ports": [{"name": "http", "containerPort": 8080}],
                                        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
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
                    # An explicit address: a local cluster running on this machine may hold the first ones.
                    "spec": {
                        "selector": {"app": "web"},
                        "clusterIP": f"127.1.{random.randint(100, 250)}.{random.randint(1, 254)}",
                        "ports": [{"port": 80, "targetPort": "http"}],
                    },
                },
            ]
        ),
    )
    kubectl("rollout", "status", "-n", namespace, "deployment/web", "--timeout=30s", timeout=40)
    deployment = get_json(kubectl, "-n", namespace, "deployment", "web")
    assert (deployment["status"]["readyReplicas"], deployment["status"]["availableReplicas"]) == (2, 2)
    assert condition(deployment, "Available")["status"] == "True"
    pods = {p["metadata"]["name"] for p in get_json(kubectl, "-n", namespace, "pods", "-l", "app=web")["items"]}
    endpoints = wait_for(
        lambda: (lambda e: len(e.get("subsets", [{}])[0].get("addresses", [])) == 2 and e)(
            get_json(kubectl, "-n", namespace, "endpoints", "web")
        ),
        what="two ready endpoints",
    )
    assert {a["targetRef"]["name"] for a in endpoints["subsets"][0]["addresses"]} == pods
    cluster_ip = get_json(kubectl, "-n", namespace, "service", "web")["spec"]["clusterIP"]
    answers = [urllib.request.urlopen(f"http://{cluster_ip}/", timeout=5).read().decode() for _ in range(6)]
    assert set(answers) == pods


def test_deleting_a_pod_stops_its_process_with_sigterm(kubectl, namespace):
    script = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: (print('got SIGTERM', flush=True), sys.exit(0)))\n"
        "print('up', flush=True)\n"
        "time.sleep(120)\n"
    )
    apply(
        kubectl,
        namespace,
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "graceful"},
                "spec": {
                    "terminationGracePeriodSeconds": 5,
                    "containers": [{"name": "main", "image": "python:3.11-slim", "command": ["python", "-c", script]}],
                },
            }
        ),
    )
    pids = wait_for(lambda: container_pids([get_json(kubectl, "-n", namespace, "pod", "graceful")]), what="the process")
    wait_for(lambda: "up" in kubectl("logs", "-n", namespace, "graceful", check=False).stdout, what="the process to start")
    kubectl("delete", "-n", namespace, "pod", "graceful", "--wait=true", timeout=30)
    wait_for(lambda: not process_alive(pids[0]), what="the process to exit")


def test_terminating_pod_with_a_finalizer_is_stopped_and_then_released(kubectl, namespace):
    apply(
        kubectl,
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "held", "finalizers": ["example.com/hold"]},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {"name": "main", "image": "python:3.11-slim", "command": ["python", "-c", "import time; time.sleep(120)"]}
                ],
            },
        },
    )
    pids = wait_for(lambda: container_pids([get_json(kubectl, "-n", namespace, "pod", "held")]), what="the process")
    kubectl("delete", "-n", namespace, "pod", "held", "--wait=false")
    wait_for(lambda: not process_alive(pids[0]), what="the process to stop")
    assert get_json(kubectl, "-n", namespace, "pod", "held")["metadata"]["deletionTimestamp"]
    kubectl("patch", "-n", namespace, "pod", "held", "--type=json", "-p", '[{"op": "remove", "path": "/metadata/finalizers"}]')
    wait_for(lambda: kubectl("get", "-n", namespace, "pod", "held", check=False).returncode != 0, what="the pod to be gone")


def test_pod_active_deadline_fails_the_pod(kubectl, namespace):
    apply(
        kubectl,
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "bounded"},
            "spec": {
                "activeDeadlineSeconds": 1,
                "terminationGracePeriodSeconds": 1,
                "restartPolicy": "Never",
                "containers": [
                    {"name": "main", "image": "python:3.11-slim", "command": ["python", "-c", "import time; time.sleep(120)"]}
                ],
            },
        },
    )
    pod = wait_for(
        lambda: (lambda p: p["status"].get("phase") == "Failed" and p)(get_json(kubectl, "-n", namespace, "pod", "bounded")),
        what="the pod to fail",
    )
    assert pod["status"]["reason"] == "DeadlineExceeded"
    assert not any(process_alive(pid) for pid in container_pids([pod]))

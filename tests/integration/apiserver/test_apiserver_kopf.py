"""A tiny Kopf operator (`kopf run --standalone`) handling Widgets end to end on the embedded API server."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest
from apiserver_helpers import WIDGET_CRD, eventually, widget

OPERATOR = textwrap.dedent("""
    import kopf

    @kopf.on.startup()
    def configure(settings: kopf.OperatorSettings, **_):
        settings.watching.server_timeout = 5      # reconnects often: exercises resume-from-RV

    @kopf.on.create("example.com", "v1", "widgets")
    def created(body, spec, patch, **_):
        patch.status["phase"] = "Created"
        kopf.info(body, reason="Created", message=f"size={spec['size']}")

    @kopf.on.update("example.com", "v1", "widgets")
    def updated(body, spec, patch, **_):
        patch.status["phase"] = f"Resized-{spec['size']}"

    @kopf.on.delete("example.com", "v1", "widgets")
    def deleted(body, **_):
        kopf.warn(body, reason="Deleting", message="goodbye")
""")


@pytest.fixture
def kopf_operator(apiserver, widgets, namespace, tmp_path: pathlib.Path):
    kopf = shutil.which("kopf", path=str(pathlib.Path(sys.executable).parent))
    if kopf is None:
        pytest.skip("kopf is not installed next to the interpreter")
    script = tmp_path / "operator.py"
    script.write_text(OPERATOR)
    log = tmp_path / "kopf.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [kopf, "run", "--standalone", "--verbose", "--namespace", namespace, str(script)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "KUBECONFIG": apiserver.kubeconfig},
        )
    eventually(lambda: "Initial authentication has finished" in log.read_text(), timeout=20)
    yield log
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=15)


def test_kopf_handles_create_update_delete_with_finalizers_status_and_events(kubectl, namespace, kopf_operator):
    kubectl("apply", "-n", namespace, "-f", "-", input=widget("w1", size=5))

    def status_phase() -> str:
        return json.loads(kubectl("get", "wd", "w1", "-n", namespace, "-o", "json").stdout).get("status", {}).get("phase", "")

    eventually(lambda: status_phase() == "Created", timeout=20)
    obj = json.loads(kubectl("get", "wd", "w1", "-n", namespace, "-o", "json").stdout)
    assert "kopf.zalando.org/KopfFinalizerMarker" in obj["metadata"]["finalizers"]
    assert obj["metadata"]["generation"] == 1
    described = kubectl("describe", "wd", "w1", "-n", namespace).stdout
    assert "Created" in described and "size=5" in described and "kopf" in described

    kubectl("patch", "wd", "w1", "-n", namespace, "--type", "merge", "-p", '{"spec":{"size":9}}')
    eventually(lambda: status_phase() == "Resized-9", timeout=20)

    kubectl("delete", "wd", "w1", "-n", namespace, timeout=30)
    assert "NotFound" in kubectl("get", "wd", "w1", "-n", namespace, check=False).stderr
    eventually(lambda: "Deleted, really deleted, and we are notified." in kopf_operator.read_text(), timeout=10)
    log = kopf_operator.read_text()
    assert "Handler 'deleted' succeeded" in log
    for trouble in ("inconsistencies", "Restarting the watch-stream", "Traceback", "APIClientError"):
        assert trouble not in log, f"Kopf logged {trouble!r}:\n{log[-3000:]}"


def test_kopf_restarts_its_watch_on_410_and_keeps_handling(fresh_apiserver, kubectl_for, tmp_path):
    server = fresh_apiserver(history=3)
    kubectl = kubectl_for(server)
    kubectl("apply", "-f", str(WIDGET_CRD))
    kopf = shutil.which("kopf", path=str(pathlib.Path(sys.executable).parent))
    script = tmp_path / "operator.py"
    script.write_text(OPERATOR.replace("server_timeout = 5", "server_timeout = 1"))
    log = tmp_path / "kopf.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [kopf, "run", "--standalone", "--verbose", "-A", str(script)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "KUBECONFIG": server.kubeconfig},
        )
    try:
        eventually(lambda: "Initial authentication has finished" in log.read_text(), timeout=20)
        kubectl("apply", "-f", "-", input=widget("before", size=1))
        eventually(lambda: "Handler 'created' succeeded" in log.read_text(), timeout=20)
        for index in range(6):  # unrelated writes push Kopf's last RV out of the 3-event history
            kubectl("create", "configmap", f"filler-{index}")
        eventually(lambda: "Restarting the watch-stream" in log.read_text(), timeout=20)
        kubectl("apply", "-f", "-", input=widget("after", size=2))
        eventually(lambda: log.read_text().count("Handler 'created' succeeded") == 2, timeout=20)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
    assert "Traceback" not in log.read_text() and "Resource observer has failed" not in log.read_text()

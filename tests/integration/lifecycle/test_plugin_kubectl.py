"""Issue 23 acceptance: `kubectl mlkube` on the embedded control plane, run by kubectl from PATH.

A penguins project under the manual promotion policy: the first version is approved to champion
with the plugin, a ModelDeployment tracks the champion, a second version is approved with the
plugin and rolls out as a canary; `get project` shows the champion, both versions, the split, the
step and the verdict; `--watch` writes a new block when `promote` moves the canary on; `logs`
prints the trainer's log and `report` says there is no drift report yet. The operator's metrics
then count the two runs and the promotion.

kubectl finds the plugin as `kubectl-mlkube` on PATH: the console script installed next to this
interpreter when there is one (`pip install -e .` makes it), else a two-line shim running
`python -m mlkube.plugin` with this interpreter (a venv installed before the script existed).
"""

from __future__ import annotations

import json
import os
import pathlib
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from lifecycle_helpers import project, trainingjob, wait_for
from prometheus_client import parser

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

AGE = re.compile(r"\s+(\d+[smhd]){1,2}$")  # the age column, the one part of a line that moves with the clock
CANARY = {"type": "Canary", "canary": {"steps": [{"weight": 25, "pause": "1h"}]}, "analysis": {"interval": "2s"}}


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A PATH on which kubectl finds ``kubectl-mlkube`` (this interpreter's, or a shim of it)."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not on PATH")
    installed = pathlib.Path(sys.executable).parent / "kubectl-mlkube"
    directory = installed.parent
    if not installed.exists():
        directory = tmp_path_factory.mktemp("plugin-bin")
        shim = directory / "kubectl-mlkube"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m mlkube.plugin "$@"\n')
        shim.chmod(0o755)
    return f"{directory}{os.pathsep}{os.environ.get('PATH', '')}"


def mlkube(cluster, plugin_path: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``kubectl mlkube ARGS`` as a user types it, with the cluster's kubeconfig in KUBECONFIG."""
    env = {**os.environ, "PATH": plugin_path, "KUBECONFIG": cluster.kubeconfig}
    result = subprocess.run(["kubectl", "mlkube", *args], capture_output=True, text=True, env=env, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl mlkube {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def tree_lines(text: str) -> list[str]:
    """The lines of a tree without their age column."""
    return [AGE.sub("", line) for line in text.splitlines()]


def train(cluster, namespace: str, name: str) -> dict[str, Any]:
    cluster.apply(trainingjob(name, "penguins", preprocessing={"featureSelection": {"method": "none"}}), namespace)

    def registered():
        status = cluster.status("trainingjob", name, namespace)
        return status if status.get("phase") == "Failed" or status.get("modelVersion") is not None else None

    status = wait_for(registered, 240, f"TrainingJob {name} to register a version", interval=0.5)
    assert status["phase"] == "Succeeded", json.dumps(status)
    return status


def champion(cluster, namespace: str) -> int | None:
    return cluster.status("mlproject", "penguins", namespace).get("championVersion")


def mdep_status(cluster, namespace: str) -> dict[str, Any]:
    return cluster.status("mdep", "penguins-prod", namespace)


def test_kubectl_mlkube_shows_and_drives_a_canary(cluster, namespace, penguins_csv, tmp_path, plugin_path):
    cluster.apply(project("penguins", penguins_csv, tmp_path / "models", promotion={"policy": "manual"}), namespace)
    first = train(cluster, namespace, "first")
    assert first["modelVersion"] == 1

    refused = mlkube(cluster, plugin_path, "approve", "mv", "penguins-v1", "-n", namespace, check=False)
    assert refused.returncode == 2 and "--reason is required" in refused.stderr, refused.stderr
    assert cluster.get("mv", "penguins-v1", namespace)["spec"]["approval"]["state"] == "Pending"
    approved = mlkube(cluster, plugin_path, "approve", "mv", "penguins-v1", "--reason", "baseline", "-n", namespace)
    assert approved.stdout.strip() == "modelversion.mlkube.io/penguins-v1 approved: baseline"
    wait_for(lambda: champion(cluster, namespace) == 1, 60, "the approved version 1 to become champion", interval=0.5)

    cluster.apply(
        {
            "apiVersion": "mlkube.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "penguins-prod"},
            "spec": {"projectRef": "penguins", "model": {"track": "champion"}, "strategy": CANARY, "logging": {"enabled": True}},
        },
        namespace,
    )
    cluster.apply(
        {
            "apiVersion": "mlkube.io/v1alpha1",
            "kind": "DriftMonitor",
            "metadata": {"name": "penguins-drift"},
            "spec": {"deploymentRef": "penguins-prod", "interval": "1h"},
        },
        namespace,
    )
    wait_for(lambda: mdep_status(cluster, namespace).get("phase") == "Healthy", 120, "version 1 to serve", interval=0.5)
    second = train(cluster, namespace, "second")
    assert second["modelVersion"] == 2 and champion(cluster, namespace) == 1  # manual policy: it waits

    mlkube(cluster, plugin_path, "approve", "mv", "penguins-v2", "--reason", "better on the holdout", "-n", namespace)
    wait_for(lambda: champion(cluster, namespace) == 2, 60, "the approved version 2 to become champion", interval=0.5)

    def canary_judged():
        status = mdep_status(cluster, namespace)
        return status if status.get("candidateReadyAt") and (status.get("analysis") or {}).get("verdict") else None

    status = wait_for(canary_judged, 120, "the canary of version 2 to take traffic and be judged", interval=0.5)
    for version in (1, 2):  # the registry's record of who serves each version follows the rollout
        wait_for(
            lambda v=version: "penguins-prod" in cluster.status("mv", f"penguins-v{v}", namespace).get("servedBy", []),
            60,
            f"penguins-v{version} to be recorded as served by penguins-prod",
            interval=0.5,
        )
    wait_for(  # no request was sent: nothing captured to analyse
        lambda: cluster.status("dmon", "penguins-drift", namespace).get("phase") == "InsufficientData",
        120,
        "the monitor's first analysis",
        interval=0.5,
    )
    analysis = status["analysis"]
    f1 = {v: cluster.status("mv", f"penguins-v{v}", namespace)["primaryMetric"] for v in (1, 2)}

    shown = mlkube(cluster, plugin_path, "get", "project", "penguins", "-n", namespace)
    assert "\x1b" not in shown.stdout  # not a terminal: no colours
    lines = tree_lines(shown.stdout)
    assert re.fullmatch(rf"penguins\s+MLProject\s+Ready\s+namespace {namespace}", lines[0]), lines
    assert re.fullmatch(rf"├── champion\s+v2\s+{re.escape(f1[2])}\s+promotion manual", lines[1]), lines
    assert lines[2] == "├── versions"
    assert re.fullmatch(
        rf"│   ├── v2\s+{re.escape(f1[2])}\s+eligible\s+approval Approved\s+Champion\s+served by penguins-prod", lines[3]
    ), lines
    assert re.fullmatch(
        rf"│   └── v1\s+{re.escape(f1[1])}\s+eligible\s+approval Approved\s+Eligible\s+served by penguins-prod", lines[4]
    ), lines
    assert lines[5] == "├── deployments"
    verdict = f"verdict {analysis['verdict']} ({analysis['requests']} requests)"
    assert re.fullmatch(
        rf"│   └── penguins-prod\s+Canary\s+Progressing\s+tracks champion\s+split v1=75,v2=25\s+step 1/1\s+{re.escape(verdict)}",
        lines[6],
    ), lines
    assert re.fullmatch(r"│       └── monitor penguins-drift\s+InsufficientData\s+v1\s+drift share -", lines[7]), lines
    assert lines[8] == "└── trainings    none running"

    # --watch on a pipe: one block now, another once `promote` has moved the canary on.
    env = {**os.environ, "PATH": plugin_path, "KUBECONFIG": cluster.kubeconfig}
    watcher = subprocess.Popen(
        ["kubectl", "mlkube", "get", "project", "penguins", "-n", namespace, "--watch", "--interval", "0.5"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    written: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [written.put(line) for line in watcher.stdout], daemon=True).start()

    def read_until(pattern: str) -> list[str]:
        lines, deadline = [], time.monotonic() + 60
        while not any(re.search(pattern, line) for line in lines):
            try:
                lines.append(written.get(timeout=max(deadline - time.monotonic(), 0.01)))
            except queue.Empty:
                raise AssertionError(f"--watch never wrote {pattern!r}; it wrote {lines}") from None
        return lines

    try:
        read_until(r"penguins-prod\s+Canary\s+Progressing\s+tracks champion\s+split v1=75,v2=25\s")
        promoted = mlkube(cluster, plugin_path, "promote", "mdep", "penguins-prod", "-n", namespace)
        assert promoted.stdout.strip() == "modeldeployment.mlkube.io/penguins-prod annotated mlkube.io/action=promote (version 2)"
        read_until(r"penguins-prod\s+Canary\s+Healthy\s+tracks champion\s+split v2=100\s")
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)
    status = mdep_status(cluster, namespace)
    assert (status["phase"], status["stableVersion"], status.get("candidateVersion")) == ("Healthy", 2, None)
    assert "Promoted" in cluster.events("penguins-prod", namespace)
    again = mlkube(cluster, plugin_path, "promote", "mdep", "penguins-prod", "-n", namespace, check=False)
    assert again.returncode == 1
    assert again.stderr.strip() == "error: ModelDeployment penguins-prod has no rollout to promote (phase Healthy, serving v2)"

    log = mlkube(cluster, plugin_path, "logs", "tj", "second", "-n", namespace).stdout
    assert "MLKUBE_PROGRESS " in log and second["digest"] in log  # the trainer's progress and its result
    report = mlkube(cluster, plugin_path, "report", "dmon", "penguins-drift", "-n", namespace, check=False)
    assert (report.returncode, report.stderr.strip()) == (
        1,
        "error: DriftMonitor penguins-drift has no report yet (phase InsufficientData): no analysis has written one",
    )
    missing = mlkube(cluster, plugin_path, "get", "project", "nope", "-n", namespace, check=False)
    assert (missing.returncode, missing.stderr.strip()) == (1, f"error: MLProject nope not found in namespace {namespace}")

    # What the operator exported meanwhile (its /metrics, as Prometheus scrapes it).
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in parser.text_string_to_metric_families(cluster.operator_metrics())
        for s in family.samples
    }

    def sample(name: str, **labels: str) -> float | None:
        return samples.get((name, tuple(sorted({"namespace": namespace, **labels}.items()))))

    assert sample("mlkube_training_runs_total", project="penguins", phase="Succeeded") == 2
    assert sample("mlkube_training_duration_seconds_count", project="penguins", phase="Succeeded") == 2
    assert sample("mlkube_rollout_promotions_total", deployment="penguins-prod") == 1
    assert sample("mlkube_rollout_traffic_percent", deployment="penguins-prod", version="2", role="stable") == 100
    assert sample("mlkube_rollout_traffic_percent", deployment="penguins-prod", version="1", role="stable") is None
    assert sample("mlkube_rollout_phase", deployment="penguins-prod", phase="Healthy") == 1

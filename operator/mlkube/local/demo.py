"""``mlkube demo``: the ML lifecycle on the embedded control plane, with real offline data.

Starts ``mlkube local up`` as a child process (the demo is a client like kubectl), writes the
Palmer penguins data set (shipped by the ``palmerpenguins`` package) to a local data
directory, applies the scenario in ``examples/`` and prints each stage as it happens.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import yaml

EXAMPLES = pathlib.Path(__file__).resolve().parents[3] / "examples"
GROUP, VERSION = "mlkube.io", "v1alpha1"
NAMESPACE = "default"


def say(stage: str, message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {stage:<10} {message}", flush=True)


@contextlib.contextmanager
def control_plane(state_dir: pathlib.Path) -> Iterator[str]:
    """``mlkube local up`` in a child process; yields its kubeconfig path."""
    kubeconfig = state_dir / "kubeconfig"
    kubeconfig.unlink(missing_ok=True)
    log = open(state_dir.parent / "control-plane.log", "w")
    child = subprocess.Popen([sys.executable, "-m", "mlkube.cli", "local", "up", "--state-dir", str(state_dir), "--port", "0"],
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait(lambda: kubeconfig.exists() or child.poll() is not None, 60, "the control plane to start")
        if child.poll() is not None:
            raise RuntimeError(f"mlkube local up exited with {child.returncode}; see {log.name}")
        yield str(kubeconfig)
    finally:
        child.send_signal(signal.SIGINT)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        log.close()


def _wait(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


class Cluster:
    """The few calls the demo makes, through the official kubernetes client."""

    def __init__(self, kubeconfig: str) -> None:
        from kubernetes import client, config

        api_client = config.new_client_from_config(config_file=kubeconfig)
        self.custom = client.CustomObjectsApi(api_client)

    def apply(self, obj: dict[str, Any]) -> None:
        plural = obj["kind"].lower() + "s"
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, NAMESPACE, plural, obj["metadata"]["name"], obj,
                                                   field_manager="mlkube-demo", force=True,
                                                   _content_type="application/apply-patch+yaml")

    def get(self, plural: str, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, plural, name)


def example(name: str, workdir: pathlib.Path) -> dict[str, Any]:
    """An example manifest with its file:// locations moved under ``workdir``."""
    text = (EXAMPLES / name).read_text().replace("file:///tmp/mlkube-demo", f"file://{workdir}")
    return yaml.safe_load(text)


def write_data(workdir: pathlib.Path) -> pathlib.Path:
    import palmerpenguins

    path = workdir / "data" / "penguins.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    palmerpenguins.load_penguins().to_csv(path, index=False)
    return path


def train(cluster: Cluster, workdir: pathlib.Path) -> dict[str, Any]:
    say("project", "applying MLProject penguins (classify species from field measurements)")
    cluster.apply(example("project.yaml", workdir))
    tj = example("trainingjob.yaml", workdir)
    say("training", f"applying TrainingJob {tj['metadata']['name']}")
    cluster.apply(tj)
    seen: dict[str, Any] = {}

    def finished() -> dict[str, Any] | None:
        status = cluster.get("trainingjobs", tj["metadata"]["name"]).get("status") or {}
        shown = (status.get("phase"), (status.get("progress") or {}).get("summary"))
        if shown != seen.get("shown"):
            seen["shown"] = shown
            best = (status.get("progress") or {}).get("bestScore")
            say("training", f"phase={shown[0]} trials={shown[1] or '-'} best={best if best is not None else '-'}")
        if status.get("phase") == "Failed":
            raise RuntimeError(f"training failed: {status.get('message')}")
        return status if status.get("modelVersion") is not None else None

    status = _wait(finished, 600, "training to finish", interval=1.0)
    say("training", f"version {status['modelVersion']}: {status['bestAlgorithm']} test {status['metrics']['test']}")
    return status


def print_registry(cluster: Cluster) -> None:
    project = cluster.get("mlprojects", "penguins").get("status") or {}
    print(f"\nRegistry of MLProject penguins (champion: version {project.get('championVersion')})")
    print(f"{'VERSION':<8} {'ALGORITHM':<24} {'ELIGIBLE':<9} {'TRIGGER':<9} METRICS")
    for entry in project.get("models", []):
        metrics = ", ".join(f"{k}={v:.3f}" for k, v in sorted(entry.get("metrics", {}).items()))
        print(f"{entry['version']:<8} {entry.get('algorithm') or '-':<24} {str(entry['eligible']):<9} {entry['trigger']:<9} {metrics}")


def main(workdir: pathlib.Path) -> int:
    workdir = workdir.resolve()
    if workdir.exists():
        subprocess.run(["rm", "-rf", str(workdir)], check=True)
    workdir.mkdir(parents=True)
    started = time.monotonic()
    data = write_data(workdir)
    say("data", f"wrote {data} (Palmer penguins, 344 rows)")
    with control_plane(workdir / "state") as kubeconfig:
        say("cluster", f"embedded control plane up; KUBECONFIG={kubeconfig}")
        cluster = Cluster(kubeconfig)
        train(cluster, workdir)
        print_registry(cluster)
    say("done", f"the lifecycle took {time.monotonic() - started:.0f} s; control-plane log: {workdir / 'control-plane.log'}")
    return 0

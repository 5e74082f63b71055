"""``mlkube demo``: the whole ML lifecycle on the embedded control plane, with real offline data.

Starts ``mlkube local up`` as a child process (the demo is a client like kubectl), writes the
Palmer penguins data set (shipped by the ``palmerpenguins`` package) to a local data
directory, applies the scenario in ``examples/`` and prints each stage as it happens (under a
progress bar on a terminal, numbered ``[n/14]`` lines otherwise):
project, training, canary deployment, traffic (labeled in bulk with ``mlkube feedback``),
a bill caliper recalibrated to centimetres (``mlkube.local.scenario``), drift detection, the
alert (to an Alertmanager-compatible receiver on loopback), retraining with the labeled
traffic, the new champion and its canary rollout. It ends with a summary table.

Must not: reach into the operator or the runtime; everything goes through the API and HTTP.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import yaml

from mlkube import feedback as labeling
from mlkube.local import progress, scenario

EXAMPLES = pathlib.Path(__file__).resolve().parents[3] / "examples"
GROUP, VERSION = "mlkube.io", "v1alpha1"
NAMESPACE = "default"


PROJECT, DEPLOYMENT, MONITOR = "penguins", "penguins-prod", "penguins-drift"
STAGES = (
    "data",
    "cluster",
    "project",
    "training",
    "deploy",
    "monitor",
    "traffic",
    "labeling",
    "drift",
    "alert",
    "retraining",
    "champion",
    "rollout",
    "recovered",
)
"""The demo's stages in order: its progress bar (on a terminal) or the [n/14] of each line."""
_progress = progress.Progress(STAGES)  # replaced by main() when the demo starts (its clock starts then)


def say(stage: str, message: str) -> None:
    _progress.line(stage, f"[{time.strftime('%H:%M:%S')}] {stage:<11} {message}")


@contextlib.contextmanager
def control_plane(state_dir: pathlib.Path) -> Iterator[str]:
    """``mlkube local up --no-operator`` and ``mlkube operator`` as child processes; yields the kubeconfig.

    Two processes rather than ``mlkube local up`` alone, so that each stops at once on SIGINT
    and takes its pods and workers with it (measured: the combined command did not exit).
    """
    kubeconfig = state_dir / "kubeconfig"
    kubeconfig.unlink(missing_ok=True)
    log = open(state_dir.parent / "control-plane.log", "w")  # noqa: SIM115 (the children write to it)
    command = [sys.executable, "-m", "mlkube.cli"]
    children = [
        subprocess.Popen(
            [*command, "local", "up", "--no-operator", "--state-dir", str(state_dir), "--port", "0"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    ]
    try:
        _wait(lambda: kubeconfig.exists() or children[0].poll() is not None, 60, "the control plane to start")
        if children[0].poll() is not None:
            raise RuntimeError(f"mlkube local up exited with {children[0].returncode}; see {log.name}")
        _wait(lambda: _serves_crds(str(kubeconfig)), 60, "the CustomResourceDefinitions")
        children.insert(
            0,
            subprocess.Popen(
                [*command, "operator", "--kubeconfig", str(kubeconfig)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            ),
        )
        yield str(kubeconfig)
    finally:
        for child in children:  # the operator first, then the control plane
            child.send_signal(signal.SIGINT)
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        log.close()


def _serves_crds(kubeconfig: str) -> bool:
    from kubernetes import client

    try:
        Cluster(kubeconfig).custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "driftmonitors")
    except client.ApiException:
        return False
    return True


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
        self.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            NAMESPACE,
            plural,
            obj["metadata"]["name"],
            obj,
            field_manager="mlkube-demo",
            force=True,
            _content_type="application/apply-patch+yaml",
        )

    def get(self, plural: str, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, plural, name)

    def status(self, plural: str, name: str) -> dict[str, Any]:
        return self.get(plural, name).get("status") or {}

    def list(self, plural: str, selector: str) -> list[dict[str, Any]]:
        return self.custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, plural, label_selector=selector)["items"]


def example(name: str, workdir: pathlib.Path | None = None) -> dict[str, Any]:
    """An example manifest, with its file:// locations moved under ``workdir`` when given."""
    text = (EXAMPLES / name).read_text()
    if workdir is not None:
        text = text.replace("file:///tmp/mlkube-demo", f"file://{workdir}")
    return yaml.safe_load(text)


def write_data(workdir: pathlib.Path) -> pathlib.Path:
    import palmerpenguins

    path = workdir / "data" / "penguins.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    palmerpenguins.load_penguins().to_csv(path, index=False)
    return path


@dataclasses.dataclass
class Summary:
    """What the summary table shows: one row per stage, with the moment it completed."""

    started: float = dataclasses.field(default_factory=time.monotonic)
    rows: list[tuple[str, float, str]] = dataclasses.field(default_factory=list)

    def add(self, stage: str, outcome: str) -> None:
        self.rows.append((stage, time.monotonic() - self.started, outcome))

    def print(self) -> None:
        print(f"\n{'STAGE':<24} {'AT':>6}  OUTCOME")
        for stage, at, outcome in self.rows:
            print(f"{stage:<24} {at:>5.0f}s  {outcome}")


def follow_training(cluster: Cluster, name: str) -> dict[str, Any]:
    """Print a TrainingJob's phase and progress as they change; its status once it has a version."""
    seen: dict[str, Any] = {}

    def finished() -> dict[str, Any] | None:
        status = cluster.status("trainingjobs", name)
        progress = status.get("progress") or {}
        shown = (status.get("phase"), progress.get("trialsCompleted"), progress.get("trialsTotal"))
        if shown != seen.get("shown") and shown[0]:
            seen["shown"] = shown
            best = progress.get("bestScore")
            best_text = "-" if best is None else best
            say("training", f"{name}: {shown[0]}, trials {shown[1] or 0}/{shown[2] or '-'}, best {best_text}")
        if status.get("phase") == "Failed":
            raise RuntimeError(f"TrainingJob {name} failed: {status.get('message')}")
        return status if status.get("modelVersion") is not None else None

    status = _wait(finished, 600, f"TrainingJob {name} to finish", interval=1.0)
    test = status["metrics"]["test"]
    say(
        "training",
        f"{name}: version {status['modelVersion']}, {status['bestAlgorithm']}, test f1 {test['f1']:.3f}, "
        f"accuracy {test['accuracy']:.3f}",
    )
    return status


def project(workdir: pathlib.Path) -> dict[str, Any]:
    """The example project, retraining on drift with the labeled traffic and judging on the newest of it."""
    body = example("project.yaml", workdir)
    body["spec"]["retraining"].update({"includeFeedback": True, "feedbackWindow": "1d"})
    body["spec"]["promotion"]["evaluateOn"] = "recent"
    return body


def deployment() -> dict[str, Any]:
    """The example canary deployment with shorter pauses, so the demo shows every step in a minute."""
    body = example("deployment.yaml")
    body["spec"]["strategy"]["canary"]["steps"] = [{"weight": 25, "pause": "10s"}, {"weight": 50, "pause": "10s"}]
    # A model retrained for a drift disagrees with the one it replaces exactly where the old one
    # is wrong: agreement only guards against a broken candidate here.
    body["spec"]["strategy"]["analysis"]["minAgreement"] = 0.3
    # Two cores serve training, the control plane and the demo's own traffic at once.
    body["spec"]["strategy"]["analysis"]["maxLatencyP99"] = "1s"
    return body


def monitor(webhook: str) -> dict[str, Any]:
    body = example("driftmonitor.yaml")
    body["spec"].update({"interval": "10s", "window": {"size": 400, "duration": "1h"}})
    body["spec"]["alerting"] = {"webhook": webhook, "severity": "warning"}
    return body


def serving(cluster: Cluster, version: int) -> dict[str, Any]:
    """Wait until the deployment serves ``version`` alone and is Healthy, printing traffic changes."""
    seen: dict[str, Any] = {}

    def done() -> dict[str, Any] | None:
        status = cluster.status("modeldeployments", DEPLOYMENT)
        shown = (status.get("phase"), status.get("trafficSummary"))
        if shown != seen.get("shown") and shown[0]:
            seen["shown"] = shown
            say("rollout", f"{DEPLOYMENT}: {shown[0]}, traffic {shown[1] or '-'}{_verdict(status.get('analysis'))}")
        if status.get("phase") in ("RolledBack", "Degraded"):
            raise RuntimeError(f"ModelDeployment {DEPLOYMENT} is {status['phase']}: {status.get('message')}")
        return status if status.get("phase") == "Healthy" and status.get("stableVersion") == version else None

    return _wait(done, 300, f"{DEPLOYMENT} to serve version {version}", interval=1.0)


def _verdict(measured: dict[str, Any] | None) -> str:
    if not measured or not measured.get("verdict"):
        return ""
    agreement = measured.get("agreement")
    return (
        f"; analysis {measured['verdict']}: {measured.get('requests', 0)} requests, "
        f"error rate {measured.get('errorRate') or 0:.3f}" + (f", agreement {agreement:.2f}" if agreement is not None else "")
    )


def analysis(cluster: Cluster, phase: str, *, labeled: int) -> dict[str, Any]:
    """The DriftMonitor's first analysis in ``phase`` with at least ``labeled`` labeled requests."""

    def done() -> dict[str, Any] | None:
        status = cluster.status("driftmonitors", MONITOR)
        enough = (status.get("performance") or {}).get("samples", 0) >= labeled
        return status if status.get("phase") == phase and enough else None

    return _wait(done, 180, f"a {phase} analysis with {labeled} labeled requests", interval=1.0)


def describe(status: dict[str, Any]) -> str:
    performance = status.get("performance") or {}
    drifted = [f"{f['name']} ({f['method']} {f['score']:.2g})" for f in status.get("features", []) if f["drifted"]]
    return (
        f"{status['phase']}: {status['samples']} requests, drift share {status.get('driftShare', 0):.2f}"
        f"{', drifted ' + ', '.join(drifted) if drifted else ''}; {performance.get('metric')} "
        f"{performance.get('current', float('nan')):.3f} vs baseline {performance.get('baseline', float('nan')):.3f}"
    )


def label_in_bulk(workdir: pathlib.Path, kubeconfig: str, answers: list[scenario.Answer]) -> None:
    """Play the labeling team: ``mlkube feedback export``, fill in the species, ``mlkube feedback import``."""
    import pandas as pd

    pending = workdir / "labels" / "pending.csv"
    where = ["-d", DEPLOYMENT, "-n", NAMESPACE, "--kubeconfig", kubeconfig]
    truth = {a.request_id: a.truth for a in answers}
    source = labeling.locate(DEPLOYMENT, NAMESPACE, kubeconfig=kubeconfig)
    since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
    _wait(
        lambda: set(labeling.pending(source, features=None, since=since)[labeling.REQUEST_ID]) >= set(truth),
        30,
        "the router to write the captured requests",
    )
    say("labeling", f"$ mlkube feedback export -d {DEPLOYMENT} -o {pending}")
    _mlkube("feedback", "export", "-o", str(pending), *where)
    table = pd.read_csv(pending)
    table["groundTruth"] = table["requestId"].map(truth)
    table.to_csv(pending, index=False)
    say("labeling", f"$ mlkube feedback import {pending} -d {DEPLOYMENT}  ({len(table)} species confirmed by the survey team)")
    _mlkube("feedback", "import", str(pending), *where)


def _mlkube(*args: str) -> None:
    """Run the ``mlkube`` command as a user would, showing its output; fail on a non-zero exit."""
    done = subprocess.run([sys.executable, "-m", "mlkube.cli", *args], capture_output=True, text=True, timeout=120)
    for line in (done.stdout + done.stderr).splitlines():
        _progress.note(f"{'':>22}{line}")
    if done.returncode != 0:
        raise RuntimeError(f"mlkube {' '.join(args)} exited with {done.returncode}")


def keep_sending(url: str, rows: Any, stop: Any) -> None:
    """Recalibrated traffic in the background while the canary is analysed (the canary needs requests)."""
    seed = 100
    while not stop.is_set():
        observations = scenario.recalibrated(scenario.stations(rows, 20, seed=seed))
        scenario.predict(url, DEPLOYMENT, observations, feedback=True, parallel=2)
        seed += 1


def lifecycle(cluster: Cluster, workdir: pathlib.Path, kubeconfig: str, summary: Summary) -> str:
    """Every stage of the loop; returns the URI of the drift report."""
    import threading

    table = scenario.penguins()
    say("project", "applying MLProject penguins (classify species from field measurements; retrain on drift with feedback)")
    cluster.apply(project(workdir))
    first = example("trainingjob.yaml", workdir)
    cluster.apply(first)
    trained = follow_training(cluster, first["metadata"]["name"])
    summary.add("training", f"version 1 ({trained['bestAlgorithm']}), test f1 {trained['metrics']['test']['f1']:.3f}")

    say("deploy", f"applying ModelDeployment {DEPLOYMENT} (track the champion, canary 25% -> 50% -> 100%)")
    cluster.apply(deployment())
    url = serving(cluster, 1)["url"]
    summary.add("canary deployment", f"version 1 serves at {url}")

    with scenario.AlertReceiver() as alerts:
        say("monitor", f"applying DriftMonitor {MONITOR} (every 10s; alerts to the receiver at {alerts.url})")
        cluster.apply(monitor(alerts.url))
        answers = scenario.predict(url, DEPLOYMENT, scenario.stations(table, 200, seed=1))
        say("traffic", f"200 observations from the field stations: f1 {scenario.f1(answers):.3f} (answered by version 1)")
        label_in_bulk(workdir, kubeconfig, answers)
        healthy = analysis(cluster, "Healthy", labeled=200)
        say("monitor", describe(healthy))
        summary.add("traffic + labels", describe(healthy))

        say("drift", "the bill caliper is recalibrated to centimetres: bill_length_mm and bill_depth_mm now arrive 10x smaller")
        shifted = scenario.predict(url, DEPLOYMENT, scenario.recalibrated(scenario.stations(table, 300, seed=2)), feedback=True)
        say("traffic", f"300 recalibrated observations, species confirmed on site: f1 {scenario.f1(shifted):.3f} (version 1)")
        drifting = analysis(cluster, "Drifting", labeled=300)
        say("monitor", describe(drifting))
        say("monitor", f"report: {drifting['reportUri']}")
        summary.add("drift detected", describe(drifting))
        _wait(lambda: alerts.firing(), 60, "the alert")
        alert = alerts.firing()[0]
        say(
            "alert",
            f"{alert['labels']['alertname']} {alert['labels']['severity']} project={alert['labels']['project']} "
            f"version={alert['labels']['version']}: {alert['annotations']['topDriftedFeatures']}; "
            f"{alert['annotations']['performanceDrop']}",
        )
        summary.add("alert", f"{alerts.posts} Alertmanager post: {alert['annotations']['topDriftedFeatures']}")

    run = _wait(lambda: cluster.status("driftmonitors", MONITOR).get("retrainingJob"), 60, "the retraining run")
    say("retraining", f"DriftMonitor started TrainingJob {run} (trigger drift; project data + labeled traffic)")
    retrained = follow_training(cluster, run)
    comparison = retrained.get("comparison") or {}
    say(
        "retraining",
        f"on the newest labeled traffic ({comparison.get('holdout')} holdout): challenger f1 "
        f"{comparison.get('challenger', 0):.3f}, champion f1 {comparison.get('champion', 0):.3f}",
    )
    summary.add(
        "retraining",
        f"{run}: version {retrained['modelVersion']}, f1 {comparison.get('challenger', 0):.3f} vs "
        f"{comparison.get('champion', 0):.3f} on recent traffic",
    )
    champion = _wait(
        lambda: cluster.status("mlprojects", PROJECT).get("championVersion") == retrained["modelVersion"], 60, "the new champion"
    )
    say("champion", f"version {retrained['modelVersion']} is the champion")
    summary.add("new champion", f"version {retrained['modelVersion']}" if champion else "-")

    stop = threading.Event()
    sender = threading.Thread(target=keep_sending, args=(url, table, stop), daemon=True)
    sender.start()
    try:
        rolled = serving(cluster, retrained["modelVersion"])
    finally:
        stop.set()
        sender.join()
    summary.add("canary rollout", f"version {rolled['stableVersion']} at 100% after the canary steps passed analysis")
    after = scenario.predict(url, DEPLOYMENT, scenario.recalibrated(scenario.stations(table, 200, seed=3)))
    say(
        "recovered",
        f"200 recalibrated observations: f1 {scenario.f1(after):.3f} (version {after[0].version}), "
        f"was {scenario.f1(shifted):.3f} with version 1",
    )
    summary.add("recovery", f"f1 on recalibrated traffic {scenario.f1(shifted):.3f} -> {scenario.f1(after):.3f}")

    def judged_new_version() -> dict[str, Any] | None:
        status = cluster.status("driftmonitors", MONITOR)
        return status if status.get("modelVersion") == rolled["stableVersion"] and status.get("performance") else None

    latest = _wait(judged_new_version, 120, f"an analysis of version {rolled['stableVersion']}", interval=1.0)
    # Version 2 is judged against its own reference, the newest labeled (recalibrated) traffic it was
    # retrained for, not against the millimetre rows that dominate its training data: the loop ends Healthy.
    note = f" ({latest['message']})" if latest.get("message") else ""
    say("monitor", f"version {rolled['stableVersion']}: {describe(latest)}{note}")
    summary.add("monitor on new version", describe(latest) + note)
    return drifting["reportUri"]


def print_registry(cluster: Cluster) -> None:
    """The project's ModelVersions, as ``kubectl get mv`` would list them, with their metrics."""
    project_status = cluster.status("mlprojects", PROJECT)
    versions = sorted(cluster.list("modelversions", f"mlkube.io/project={PROJECT}"), key=lambda mv: mv["spec"]["version"])
    print(f"\nModelVersions of MLProject {PROJECT} (champion: version {project_status.get('championVersion')})")
    print(f"{'NAME':<14} {'ALGORITHM':<24} {'ELIGIBLE':<9} {'APPROVAL':<9} {'PHASE':<10} {'TRIGGER':<9} METRICS")
    for mv in versions:
        spec, status = mv["spec"], mv.get("status") or {}
        shown = sorted((k, v) for k, v in spec.get("metrics", {}).get("test", {}).items() if k in ("f1", "accuracy", "roc_auc"))
        metrics = ", ".join(f"{k}={v:.3f}" for k, v in shown)
        print(
            f"{mv['metadata']['name']:<14} {spec.get('algorithm') or '-':<24} {status.get('eligible')!s:<9} "
            f"{spec['approval']['state']:<9} {status.get('phase') or '-':<10} {spec.get('trigger', '-'):<9} {metrics}"
        )


def main(workdir: pathlib.Path) -> int:
    global _progress
    _progress = progress.Progress(STAGES)
    workdir = workdir.resolve()
    if workdir.exists():
        subprocess.run(["rm", "-rf", str(workdir)], check=True)
    workdir.mkdir(parents=True)
    summary = Summary()
    data = write_data(workdir)
    say("data", f"wrote {data} (Palmer penguins, 344 rows)")
    with control_plane(workdir / "state") as kubeconfig:
        say("cluster", f"embedded control plane up; KUBECONFIG={kubeconfig}")
        cluster = Cluster(kubeconfig)
        report = lifecycle(cluster, workdir, kubeconfig, summary)
        _progress.finish(f"the lifecycle took {time.monotonic() - summary.started:.0f} s")
        summary.print()
        print_registry(cluster)
    print(f"\nDrift report: {report}\nControl-plane log: {workdir / 'control-plane.log'}")
    return 0

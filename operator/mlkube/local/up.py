"""``mlkube local up``: the embedded control plane and the operator, on one machine, in the foreground.

Starts the API server (persisted under the state directory), installs the project's CRDs, the
local KServe CRDs and our ServingRuntime, starts the process runtime, and runs the operator
against it until Ctrl-C. Stopping leaves no child process running; starting again on the same
state directory restarts what should be running.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import pathlib
import signal
import ssl
import sys
import threading
import urllib.request
from collections.abc import Iterator

from mlkube.api import crds, kinds
from mlkube.control.manifests import servingruntime
from mlkube.local import progress
from mlkube.local.apiserver import server, statedir, storage
from mlkube.local.runtime import manager

LOCAL_CRDS = pathlib.Path(__file__).parent / "crds"
log = logging.getLogger("mlkube.local")


@dataclasses.dataclass
class ControlPlane:
    """A running embedded control plane: API server thread plus runtime thread."""

    api: server.ServerThread
    runtime: threading.Thread
    stop_flag: threading.Event

    @property
    def kubeconfig(self) -> str:
        return self.api.kubeconfig_path

    def stop(self) -> None:
        self.stop_flag.set()
        self.runtime.join(timeout=30)
        self.api.stop()


STAGES = ("state directory", "API server", "CRDs", "serving runtime", "process runtime", "operator")
"""What ``mlkube local up`` reports as it starts (``progress``); ``operator`` only with the operator."""


def start(state_dir: pathlib.Path, *, port: int = 0, shown: progress.Progress | None = None) -> ControlPlane:
    """Start the API server and the process runtime; returns once the CRDs are installed. Each
    stage is reported to ``shown`` when given."""
    report = shown.line if shown is not None else lambda stage, text: None
    report("state directory", f"state directory {state_dir}")
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    api = server.run_in_thread(str(state_dir), port=port)
    report("API server", f"API server listening at {api.url}")
    files = _crd_files(state_dir)
    server.install_crds(api, paths=[str(p) for p in files])
    report("CRDs", f"{len(files)} CustomResourceDefinitions established")
    _apply(api, servingruntime.cluster_serving_runtime())
    report("serving runtime", "ClusterServingRuntime for the model server applied")
    stop_flag = threading.Event()
    runtime = threading.Thread(
        target=manager.run, args=(api.kubeconfig_path, str(state_dir), stop_flag), name="mlkube-runtime", daemon=True
    )
    runtime.start()
    report("process runtime", "process runtime started (kubelet, Job, Deployment, Service and KServe controllers)")
    return ControlPlane(api=api, runtime=runtime, stop_flag=stop_flag)


@contextlib.contextmanager
def running(state_dir: pathlib.Path, *, port: int = 0) -> Iterator[ControlPlane]:
    plane = start(state_dir, port=port)
    try:
        yield plane
    finally:
        plane.stop()


def run(state_dir: pathlib.Path, *, port: int, with_operator: bool = True) -> int:
    """The foreground command; 1 with a one-line reason when the state directory is in use or unreadable."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    shown = progress.Progress(STAGES if with_operator else STAGES[:-1])
    try:
        plane = start(state_dir, port=port, shown=shown)
    except (statedir.Locked, storage.Unreadable) as exc:
        print(f"mlkube local up: {exc}", file=sys.stderr)
        return 1
    try:
        if with_operator:
            shown.line("operator", "starting the operator")
        shown.finish(f"mlkube control plane at {plane.api.url}\n  export KUBECONFIG={os.path.abspath(plane.kubeconfig)}")
        if with_operator:
            from mlkube.control import runner as operator

            os.environ["KUBECONFIG"] = plane.kubeconfig
            # Trial pods (tuning.workers > 1) share their study in an SQLite file here unless configured otherwise.
            os.environ.setdefault("MLKUBE_STUDY_STORAGE", study_storage(state_dir))
            operator.run(kubeconfig=plane.kubeconfig, stop_flag=plane.stop_flag)
        else:
            signal.signal(signal.SIGTERM, lambda *_: plane.stop_flag.set())
            try:
                plane.stop_flag.wait()
            except KeyboardInterrupt:
                pass
    finally:
        plane.stop()
    return 0


def study_storage(state_dir: pathlib.Path) -> str:
    """The default study database of trial pods on the embedded control plane: an SQLite file in
    the state directory (pods are processes of this machine)."""
    return f"sqlite:///{(state_dir / 'studies.db').resolve()}"


def _crd_files(state_dir: pathlib.Path) -> list[pathlib.Path]:
    """The project's CRDs (generated from the models into the state dir) and the local KServe CRDs."""
    generated = state_dir / "crds"
    generated.mkdir(exist_ok=True)
    paths = []
    for kind in kinds.ALL:
        path = generated / crds.file_name(kind)
        path.write_text(crds.render(kind))
        paths.append(path)
    return paths + sorted(LOCAL_CRDS.glob("*.yaml"))


def _apply(api: server.ServerThread, obj: dict) -> None:
    """Server-side apply of one cluster-scoped object."""
    group, version = obj["apiVersion"].split("/")
    plural = obj["kind"].lower() + "s"
    url = f"{api.url}/apis/{group}/{version}/{plural}/{obj['metadata']['name']}?fieldManager=mlkube-local&force=true"
    request = urllib.request.Request(
        url,
        data=json.dumps(obj).encode(),
        method="PATCH",
        headers={"Authorization": f"Bearer {api.token}", "Content-Type": "application/apply-patch+yaml"},
    )
    context = ssl.create_default_context(cafile=api.ca_path) if url.startswith("https") else None
    with urllib.request.urlopen(request, context=context, timeout=30) as response:
        response.read()

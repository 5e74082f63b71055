"""A pod's files and environment as its containers see them (volumes, mounts, contracts)."""

import base64
import pathlib
import stat
import sys

import pytest

from mlkube.common import containerpath
from mlkube.local.runtime import containers, kube, pods, podspec

CONFIGMAP = {"kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a.yaml": "x: 1", "b": "2"}}
SECRET = {"kind": "Secret", "metadata": {"name": "sec"}, "data": {"token": base64.b64encode(b"t").decode()}}


def pod(containers_, volumes, *, restart="Always", status=None):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ns", "uid": "u-1"},
        "spec": {"restartPolicy": restart, "volumes": volumes, "containers": containers_},
        "status": status or {},
    }


KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:9"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


def worker(manifest, tmp_path):
    """A pod worker whose client is never called by the methods under test."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    return pods.PodWorker(
        manifest,
        client=kube.Client(str(kubeconfig)),
        layout=pods.Layout(tmp_path),
        pod_ip="127.2.3.4",
        backoff=containers.Backoff(),
        recorder=None,
    )


def test_volumes_are_mounted_under_the_container_root(tmp_path):
    spec = {
        "name": "main",
        "image": "python",
        "command": ["python"],
        "volumeMounts": [
            {"name": "cfg", "mountPath": "/etc/app"},
            {"name": "cfg", "mountPath": "/etc/one.yaml", "subPath": "a.yaml"},
            {"name": "sec", "mountPath": "/var/run/secrets/s"},
            {"name": "data", "mountPath": "/data"},
            {"name": "scratch", "mountPath": "/tmp/work"},
        ],
    }
    volumes = [
        {"name": "cfg", "configMap": {"name": "cfg"}},
        {"name": "sec", "secret": {"secretName": "sec", "items": [{"key": "token", "path": "t/ok"}]}},
        {"name": "data", "persistentVolumeClaim": {"claimName": "store"}},
        {"name": "scratch", "emptyDir": {}},
    ]
    w = worker(pod([spec], volumes), tmp_path)
    paths = w.materialise_volumes({"cfg": CONFIGMAP}, {"sec": SECRET})
    launch = w.launch(spec, paths, {"cfg": CONFIGMAP}, {"sec": SECRET})
    root = pathlib.Path(launch.env["MLKUBE_CONTAINER_ROOT"])

    def seen(path):  # what the container reads through the contract
        return pathlib.Path(str(root) + path)

    assert seen("/etc/app/a.yaml").read_text() == "x: 1"
    assert seen("/etc/one.yaml").read_text() == "x: 1"
    assert seen("/var/run/secrets/s/t/ok").read_bytes() == b"t"
    # Secret values sit unencrypted on this machine: readable by this user only.
    assert stat.S_IMODE(seen("/var/run/secrets/s/t/ok").stat().st_mode) == 0o600
    assert stat.S_IMODE(paths["sec"].stat().st_mode) == 0o700
    assert stat.S_IMODE((paths["cfg"] / "a.yaml").stat().st_mode) != 0o600  # a ConfigMap is not secret
    seen("/data/model.bin").write_bytes(b"kept")
    assert (tmp_path / "runtime" / "claims" / "ns" / "store" / "model.bin").read_bytes() == b"kept"
    assert seen("/tmp/work").is_dir() and seen("/dev").is_dir()


def test_environment_carries_the_local_contracts(tmp_path, monkeypatch):
    spec = {
        "name": "main",
        "image": "python",
        "command": ["python"],
        "env": [{"name": "MLKUBE_BIND_HOST", "value": "0.0.0.0"}, {"name": "MODE", "value": "x"}],
    }
    w = worker(pod([spec], []), tmp_path)
    launch = w.launch(spec, {}, {}, {})
    assert launch.env["MLKUBE_BIND_HOST"] == "127.2.3.4"  # the contract wins over the pod
    assert launch.env["MODE"] == "x" and launch.env["HOSTNAME"] == "p"
    assert launch.env["PATH"].split(":")[0] == str(pathlib.Path(sys.executable).parent)
    monkeypatch.setenv(containerpath.ROOT_ENV, launch.env["MLKUBE_CONTAINER_ROOT"])
    assert containerpath.resolve("/root") == pathlib.Path(launch.env["HOME"])
    assert launch.argv == [sys.executable]


def test_missing_volume_source_is_a_config_error(tmp_path):
    w = worker(pod([{"name": "main", "image": "python"}], [{"name": "cfg", "configMap": {"name": "nope"}}]), tmp_path)
    with pytest.raises(podspec.ConfigError, match='configmap "nope" not found'):
        w.materialise_volumes({}, {})
    w = worker(pod([{"name": "main", "image": "python"}], [{"name": "x", "csi": {"driver": "d"}}]), tmp_path)
    with pytest.raises(podspec.ConfigError, match="type \\['csi'\\] is not supported"):
        w.materialise_volumes({}, {})


def test_phase_follows_the_containers(tmp_path):
    w = worker(pod([{"name": "a", "image": "python"}, {"name": "b", "image": "python"}], [], restart="Never"), tmp_path)
    assert w.phase() == "Pending"
    w.containers[0].state = {"running": {}}
    assert w.phase() == "Running"
    w.containers[0].state = {"terminated": {"exitCode": 0}}
    w.containers[1].state = {"terminated": {"exitCode": 1}}
    assert w.phase() == "Failed"
    w.containers[1].state = {"terminated": {"exitCode": 0}}
    assert w.phase() == "Succeeded"
    status = w.status()
    assert status["podIP"] == "127.2.3.4"
    assert {c["type"]: c["reason"] for c in status["conditions"]}["Ready"] == "PodCompleted"


def test_never_pod_running_when_the_runtime_stopped_fails_as_a_disruption(tmp_path):
    previous = {
        "containerStatuses": [{"name": "main", "restartCount": 0, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]
    }
    w = worker(pod([{"name": "main", "image": "python"}], [], restart="Never", status=previous), tmp_path)
    assert w.resume_after_restart()
    status = w.status()
    assert status["phase"] == "Failed" and status["reason"] == "Terminated"
    assert status["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 137
    assert {c["type"] for c in status["conditions"]} >= {"DisruptionTarget"}


def test_always_pod_running_when_the_runtime_stopped_restarts_with_a_higher_count(tmp_path):
    previous = {
        "containerStatuses": [{"name": "main", "restartCount": 2, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]
    }
    w = worker(pod([{"name": "main", "image": "python"}], [], status=previous), tmp_path)
    assert not w.resume_after_restart()
    assert w.containers[0].restart_count == 3
    assert "running" in w.containers[0].last_state


def test_a_mount_never_replaces_files_of_another_volume(tmp_path):
    spec = {
        "name": "main",
        "image": "python",
        "command": ["python"],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "scratch", "mountPath": "/data/cache"}],
    }
    volumes = [{"name": "data", "persistentVolumeClaim": {"claimName": "store"}}, {"name": "scratch", "emptyDir": {}}]
    claim = tmp_path / "runtime" / "claims" / "ns" / "store" / "cache"
    claim.mkdir(parents=True)
    (claim / "precious.bin").write_bytes(b"keep me")
    w = worker(pod([spec], volumes), tmp_path)
    with pytest.raises(podspec.ConfigError, match=r"/data/cache: .* already holds files"):
        w.launch(spec, w.materialise_volumes({}, {}), {}, {})
    assert (claim / "precious.bin").read_bytes() == b"keep me"
    root_mount = {**spec, "volumeMounts": [{"name": "scratch", "mountPath": "/"}]}
    with pytest.raises(podspec.ConfigError, match="cannot mount over the container root"):
        w.launch(root_mount, w.materialise_volumes({}, {}), {}, {})


def test_mounts_are_replaced_on_a_restart(tmp_path):
    spec = {"name": "main", "image": "python", "command": ["python"], "volumeMounts": [{"name": "cfg", "mountPath": "/etc/app"}]}
    w = worker(pod([spec], [{"name": "cfg", "configMap": {"name": "cfg"}}]), tmp_path)
    for _ in range(2):
        launch = w.launch(spec, w.materialise_volumes({"cfg": CONFIGMAP}, {}), {"cfg": CONFIGMAP}, {})
    assert pathlib.Path(launch.env["MLKUBE_CONTAINER_ROOT"], "etc/app/b").read_text() == "2"

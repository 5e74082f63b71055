"""A container's argv: programs and scripts inside its volume mounts resolve under the container root;
busybox runs the host's shell."""

import pathlib
import sys

from mlkube.local.runtime import containers, images


def test_a_script_inside_a_volume_mount_points_at_the_mounted_file(tmp_path):
    container = {
        "name": "c",
        "image": "python",
        "command": ["python", "-u", "/opt/port-server.py", "/opt/data", "1234"],
        "volumeMounts": [{"name": "v", "mountPath": "/opt/"}],
    }
    pod = {"metadata": {"uid": "u"}}
    (tmp_path / "opt").mkdir()
    (tmp_path / "opt" / "port-server.py").write_text("")  # what the volume holds
    (tmp_path / "opt" / "run.sh").write_text("")
    launch = containers.launch_for(container, pod=pod, root=tmp_path, env={}, log_dir=tmp_path / "logs", records=tmp_path / "r")
    assert launch.argv[1:] == ["-u", str(tmp_path / "opt" / "port-server.py"), "/opt/data", "1234"]
    program = {**container, "command": ["/opt/run.sh", "/opt/x"]}
    launch = containers.launch_for(program, pod=pod, root=tmp_path, env={}, log_dir=tmp_path / "logs", records=tmp_path / "r")
    assert launch.argv == [str(tmp_path / "opt" / "run.sh"), "/opt/x"]


def test_a_host_program_under_a_mount_path_that_the_volume_does_not_hold_stays_the_hosts(tmp_path, monkeypatch):
    """A virtualenv under /tmp and an emptyDir at /tmp (the router's): the interpreter is the host's."""
    interpreter = "/tmp/some-clone/.venv/bin/python"
    monkeypatch.setattr(sys, "executable", interpreter)  # a checkout under /tmp, as CI's fresh clone
    container = {
        "name": "router",
        "image": "ghcr.io/mlkube/mlkube:0.1.0",
        "command": ["python", "-m", "mlkube.serving.router"],
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    launch = containers.launch_for(
        container, pod={"metadata": {"uid": "u"}}, root=tmp_path, env={}, log_dir=tmp_path / "l", records=tmp_path / "r"
    )
    assert launch.argv[:3] == [interpreter, "-m", "mlkube.serving.router"]


def test_container_path_arguments_of_the_projects_entrypoints_stay_container_paths(tmp_path):
    container = {
        "name": "storage-initializer",
        "image": "kserve/storage-initializer",
        "args": ["s3://bucket/model", "/mnt/models"],
        "volumeMounts": [{"name": "models", "mountPath": "/mnt/models"}],
    }
    launch = containers.launch_for(
        container, pod={"metadata": {"uid": "u"}}, root=tmp_path, env={}, log_dir=tmp_path / "l", records=tmp_path / "r"
    )
    assert launch.argv[-2:] == ["s3://bucket/model", "/mnt/models"]


def test_busybox_runs_the_hosts_shell():
    assert images.argv({"name": "c", "image": "busybox:1.36", "args": ["/bin/sh", "-c", "date"]}) == ["/bin/sh", "-c", "date"]
    assert images.argv({"name": "c", "image": "docker.io/library/busybox"}) == ["sh"]
    assert pathlib.Path("/bin/sh").exists()

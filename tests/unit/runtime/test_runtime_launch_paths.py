"""A container's argv: programs and scripts inside its volume mounts resolve under the container root;
busybox runs the host's shell."""

import pathlib

from mlkube.local.runtime import containers, images


def test_a_script_inside_a_volume_mount_points_at_the_mounted_file(tmp_path):
    container = {
        "name": "c",
        "image": "python",
        "command": ["python", "-u", "/opt/port-server.py", "/opt/data", "1234"],
        "volumeMounts": [{"name": "v", "mountPath": "/opt/"}],
    }
    pod = {"metadata": {"uid": "u"}}
    launch = containers.launch_for(container, pod=pod, root=tmp_path, env={}, log_dir=tmp_path / "logs", records=tmp_path / "r")
    assert launch.argv[1:] == ["-u", str(tmp_path / "opt" / "port-server.py"), "/opt/data", "1234"]
    program = {**container, "command": ["/opt/run.sh", "/opt/x"]}
    launch = containers.launch_for(program, pod=pod, root=tmp_path, env={}, log_dir=tmp_path / "logs", records=tmp_path / "r")
    assert launch.argv == [str(tmp_path / "opt" / "run.sh"), "/opt/x"]


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

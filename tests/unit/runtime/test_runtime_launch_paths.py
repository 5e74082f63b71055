"""A container's argv: programs and scripts inside its volume mounts resolve under the container root;
busybox runs the host's shell."""

import pathlib

from mlkube.local.runtime import containers, images


def test_paths_inside_a_volume_mount_point_at_the_mounted_files(tmp_path):
    container = {
        "name": "c",
        "image": "python",
        "command": ["python", "-u", "/opt/port-server.py", "/opt", "/optional/x", "/etc/hosts"],
        "volumeMounts": [{"name": "v", "mountPath": "/opt/"}],
    }
    pod = {"metadata": {"uid": "u"}}
    launch = containers.launch_for(container, pod=pod, root=tmp_path, env={}, log_dir=tmp_path / "logs", records=tmp_path / "r")
    assert launch.argv[2:] == [str(tmp_path / "opt" / "port-server.py"), str(tmp_path / "opt"), "/optional/x", "/etc/hosts"]


def test_busybox_runs_the_hosts_shell():
    assert images.argv({"name": "c", "image": "busybox:1.36", "args": ["/bin/sh", "-c", "date"]}) == ["/bin/sh", "-c", "date"]
    assert images.argv({"name": "c", "image": "docker.io/library/busybox"}) == ["sh"]
    assert pathlib.Path("/bin/sh").exists()

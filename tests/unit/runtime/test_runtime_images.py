"""The image table and Kubernetes' command/args rules for local processes."""

import re
import sys

import pytest

from mlkube.local.runtime import images


@pytest.mark.parametrize(
    ("reference", "repository"),
    [
        ("ghcr.io/mlkube/mlkube:0.1.0", "mlkube/mlkube"),
        ("mlkube:latest", "mlkube"),
        ("mlkube/mlkube", "mlkube/mlkube"),
        ("localhost:5000/mlkube/mlkube:dev", "mlkube/mlkube"),
        ("python:3.11-slim", "python"),
        ("docker.io/library/python@sha256:abc", "python"),
        ("kserve/storage-initializer:v0.15.0", "kserve/storage-initializer"),
    ],
)
def test_repository_strips_registry_tag_and_digest(reference, repository):
    assert images.repository(reference) == repository


def test_project_image_runs_its_python_entrypoints_with_this_interpreter():
    container = {"image": "ghcr.io/mlkube/mlkube:0.1.0", "command": ["python", "-m", "mlkube.trainer"], "args": ["--spec", "/x"]}
    assert images.argv(container) == [sys.executable, "-m", "mlkube.trainer", "--spec", "/x"]


def test_project_image_without_command_runs_the_mlkube_cli_with_args():
    container = {"image": "mlkube:dev", "args": ["operator", "--all-namespaces"]}
    assert images.argv(container) == [sys.executable, "-m", "mlkube.cli", "operator", "--all-namespaces"]


@pytest.mark.parametrize("python", ["python", "python3", "/usr/local/bin/python3.11"])
def test_any_image_python_becomes_the_running_interpreter(python):
    assert images.argv({"image": "python:3.11-slim", "command": [python, "-c", "1"]}) == [sys.executable, "-c", "1"]


def test_args_alone_replace_the_image_cmd():
    assert images.argv({"image": "python:3.11", "args": ["-V"]}) == ["-V"]
    assert images.argv({"image": "python:3.11"}) == [sys.executable]


def test_other_programs_run_as_written():
    assert images.argv({"image": "python", "command": ["sh", "-c", "echo hi"]}) == ["sh", "-c", "echo hi"]


def test_unknown_image_is_refused_naming_it():
    with pytest.raises(images.ImageNotFound, match=re.escape('"nginx:1.27" has no local equivalent')):
        images.argv({"image": "nginx:1.27", "command": ["nginx"]})


def test_search_path_puts_this_interpreter_first():
    assert images.search_path("/usr/bin").split(":")[0] == str(__import__("pathlib").Path(sys.executable).parent)

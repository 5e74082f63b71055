"""The kind path without Docker: kind-config.yaml, mk/kind.mk's checks, hack/e2e-kind.sh."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess

import cluster_schemas as cs
import pytest
import yaml

KIND_MK = cs.ROOT / "mk" / "kind.mk"
E2E = cs.ROOT / "hack" / "e2e-kind.sh"
MAKE = shutil.which("make")
needs_make = pytest.mark.skipif(MAKE is None, reason="GNU make is not installed")


def _make(target: str, env: dict[str, str], tmp_path: pathlib.Path) -> subprocess.CompletedProcess:
    # From another directory, as `make -f`/include from elsewhere would: paths must not
    # depend on the working directory.
    return subprocess.run([MAKE, "-f", str(KIND_MK), target], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)


def _no_engine_env() -> dict[str, str]:
    """An environment where a docker CLI, if any, reaches no engine."""
    return {**os.environ, "DOCKER_HOST": "unix:///nonexistent/mlkube-test-docker.sock"}


def _path_without(tmp_path: pathlib.Path, *missing: str) -> dict[str, str]:
    """PATH with links to the tools a recipe uses except ``missing``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("sh", "bash", "grep", "make", "docker", "kind", "kubectl", "env", "cat"):
        found = shutil.which(tool)
        if found and tool not in missing and not (bin_dir / tool).exists():
            (bin_dir / tool).symlink_to(found)
    return {**_no_engine_env(), "PATH": str(bin_dir)}


@needs_make
@pytest.mark.parametrize("target", ["e2e-kind", "kind-up", "images", "deploy"])
def test_targets_stop_at_once_without_docker(target, tmp_path):
    result = _make(target, _path_without(tmp_path, "docker"), tmp_path)
    assert result.returncode != 0
    assert "'docker' not found" in result.stderr and "https://docs.docker.com" in result.stderr
    assert "mlkube local up" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "kind create" not in result.stdout


@needs_make
def test_top_level_make_e2e_kind_stops_at_once_without_docker(tmp_path):
    if "mk/kind.mk" not in (cs.ROOT / "Makefile").read_text():
        pytest.skip("the top-level Makefile does not include mk/kind.mk yet")
    result = subprocess.run(
        [MAKE, "-C", str(cs.ROOT), "e2e-kind"], env=_path_without(tmp_path, "docker"), capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0 and "'docker' not found" in result.stderr, result.stderr
    assert "pip install" not in result.stdout, "e2e-kind must check Docker before anything else"


@needs_make
def test_e2e_kind_reports_an_unreachable_engine(tmp_path):
    fake_docker = tmp_path / "bin" / "docker"
    env = _path_without(tmp_path, "docker")
    fake_docker.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    fake_docker.chmod(0o755)
    result = _make("e2e-kind", env, tmp_path)
    assert result.returncode != 0
    assert "no Docker engine is reachable" in result.stderr
    assert "DOCKER_HOST=unix:///nonexistent/mlkube-test-docker.sock" in result.stderr


@needs_make
@pytest.mark.parametrize(("missing", "message"), [("kind", "'kind' not found"), ("kubectl", "'kubectl' not found")])
def test_e2e_kind_names_each_missing_tool(missing, message, tmp_path):
    env = _path_without(tmp_path, "docker", "kind", "kubectl")
    for tool in {"docker", "kind", "kubectl"} - {missing}:  # present and answering
        fake = tmp_path / "bin" / tool
        fake.write_text("#!/bin/sh\nexit 0\n")
        fake.chmod(0o755)
    result = _make("e2e-kind", env, tmp_path)
    assert result.returncode != 0 and message in result.stderr, result.stderr


# --- kind-config.yaml --------------------------------------------------------------------------


def _kind_config() -> dict:
    return yaml.safe_load((cs.ROOT / "kind-config.yaml").read_text())


def test_node_image_is_pinned_to_a_kubernetes_kserve_supports():
    (node,) = _kind_config()["nodes"]
    match = re.fullmatch(r"kindest/node:v1\.(\d+)\.\d+@sha256:[0-9a-f]{64}", node["image"])
    assert match, node["image"]
    assert 33 <= int(match.group(1)) <= 36, "cert-manager 1.21 supports Kubernetes 1.33 to 1.36 (KServe needs >= 1.30)"
    assert f"1.{match.group(1)}" == cs.KUBERNETES_VERSION.rsplit(".", 1)[0], "tests validate against the node's version"


def test_host_ports_reach_the_node_ports_of_router_and_minio():
    (node,) = _kind_config()["nodes"]
    mappings = {m["containerPort"]: m["hostPort"] for m in node["extraPortMappings"]}
    node_ports = {
        p["nodePort"]: (o["metadata"]["name"], p["port"])
        for path in ("overlays/dev", "samples")
        for o in cs.build(path)
        if o["kind"] == "Service" and o["spec"].get("type") == "NodePort"
        for p in o["spec"]["ports"]
        if "nodePort" in p
    }
    assert mappings[30080] == 8080 and node_ports[30080] == ("penguins-prod-external", 8080)
    assert mappings[30900] == 9000 and node_ports[30900] == ("minio", 9000)
    script = E2E.read_text()
    assert "http://localhost:8080" in script and "http://localhost:9000" in script


# --- pinned versions and KServe's configuration -------------------------------------------------


def test_dependency_versions_are_exact():
    text = KIND_MK.read_text()
    versions = dict(re.findall(r"^(CERT_MANAGER_VERSION|KSERVE_VERSION) \?= (\S+)$", text, re.MULTILINE))
    assert re.fullmatch(r"v1\.(1[5-9]|[2-9]\d)\.\d+", versions["CERT_MANAGER_VERSION"]), "KServe needs cert-manager >= 1.15"
    assert re.fullmatch(r"v0\.(1[5-9]|[2-9]\d)\.\d+", versions["KSERVE_VERSION"])
    sdk = re.search(r"^kserve==(\d+\.\d+)\.", (cs.ROOT / "constraints.txt").read_text(), re.MULTILINE).group(1)
    assert versions["KSERVE_VERSION"].startswith(f"v{sdk}."), "the controller and the image's kserve SDK are one release line"


def test_kserve_patch_sets_standard_mode_without_ingress():
    patch = yaml.safe_load((cs.ROOT / "manifests" / "kserve" / "inferenceservice-config-patch.yaml").read_text())
    assert set(patch) == {"data"}
    deploy = json.loads(patch["data"]["deploy"])
    ingress = json.loads(patch["data"]["ingress"])
    assert deploy == {"defaultDeploymentMode": "Standard"}
    assert ingress["disableIngressCreation"] is True and ingress["enableGatewayApi"] is False
    assert "manifests/kserve/inferenceservice-config-patch.yaml" in KIND_MK.read_text()


# --- hack/e2e-kind.sh ---------------------------------------------------------------------------


def test_e2e_script_is_valid_bash_and_executable():
    assert os.access(E2E, os.X_OK)
    subprocess.run(["bash", "-n", str(E2E)], check=True)
    shellcheck = shutil.which("shellcheck")
    if shellcheck:
        result = subprocess.run([shellcheck, str(E2E)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout


def test_e2e_script_only_talks_to_the_kind_context():
    """Every kubectl call goes through k(), which pins --context: never the user's current one."""
    lines = [line.strip() for line in E2E.read_text().splitlines() if not line.strip().startswith("#")]
    direct = [line for line in lines if re.search(r'(^|[;&|(]\s*)("\$KUBECTL"|kubectl)\s', line) and "--context" not in line]
    assert direct == []


def test_e2e_script_applies_the_samples_and_waits_on_each_kind():
    script = E2E.read_text()
    assert 'apply -k "$ROOT/manifests/samples"' in script
    for short in ("mlp/penguins", "tj/penguins-manual-1", "mdep/penguins-prod", "dmon/penguins-drift"):
        assert re.search(rf"(wait --for=\S+|wait_nonempty) {re.escape(short)}\b", script), short


@needs_make
def test_e2e_kind_needs_the_cluster_to_exist(tmp_path):
    env = _path_without(tmp_path, "docker", "kind", "kubectl")
    for tool, script in {"docker": "exit 0", "kind": "echo other-cluster", "kubectl": "exit 0"}.items():
        fake = tmp_path / "bin" / tool
        fake.write_text(f"#!/bin/sh\n{script}\n")
        fake.chmod(0o755)
    result = _make("e2e-kind", env, tmp_path)
    assert result.returncode != 0
    assert "kind cluster 'mlkube' does not exist. Create it with: make kind-up" in result.stderr

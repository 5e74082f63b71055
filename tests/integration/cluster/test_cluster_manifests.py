"""Every kustomization under manifests/ builds, and what it builds is valid and consistent."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import cluster_schemas as cs
import pytest

from mlkube.api import kinds
from mlkube.control.manifests import servingruntime

KUSTOMIZATIONS = ["base", "tenant", "overlays/dev", "overlays/production", "overlays/cluster-wide", "samples", "monitoring"]
INSTALLABLE = ["overlays/dev", "overlays/production", "overlays/cluster-wide"]
PRODUCTION = ["overlays/production", "overlays/cluster-wide"]
RELEASE_IMAGE = "ghcr.io/mlkube/mlkube:0.1.0"
DEV_IMAGE = "mlkube:dev"
# The production overlay's digest until a release fills it in (docs/cluster.md, "Pin the image").
PLACEHOLDER_DIGEST = "sha256:" + "0" * 64
PINNED = f"{RELEASE_IMAGE}@{PLACEHOLDER_DIGEST}"


def _all_objects(path: str) -> list[dict]:
    return cs.build(path)


def _operator(objects: list[dict]) -> dict:
    (deployment,) = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "mlkube-operator"]
    return deployment


@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_kustomization_builds_named_objects(path):
    objects = _all_objects(path)
    assert objects, f"manifests/{path} builds nothing"
    for obj in objects:
        assert obj.get("apiVersion") and obj.get("kind") and obj.get("metadata", {}).get("name"), obj


@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_builtin_kinds_validate_against_kubernetes_schemas(path):
    errors = {
        cs.ident(obj): cs.kubernetes_errors(obj)
        for obj in _all_objects(path)
        if cs.group_of(obj) not in cs.CUSTOM_GROUPS and obj["kind"] != "CustomResourceDefinition"
    }
    assert {k: v for k, v in errors.items() if v} == {}


def test_generated_crds_validate_against_kubernetes_schemas():
    errors = {cs.ident(o): cs.kubernetes_errors(o) for o in _all_objects("base") if o["kind"] == "CustomResourceDefinition"}
    assert {k: v for k, v in errors.items() if v} == {}


def test_base_installs_the_crd_of_every_kind():
    names = {o["metadata"]["name"] for o in _all_objects("base") if o["kind"] == "CustomResourceDefinition"}
    assert names == {kind.crd_name for kind in kinds.ALL}


def test_samples_validate_against_our_crds():
    samples = [o for o in _all_objects("samples") if cs.group_of(o) == "mlkube.io"]
    assert {o["kind"] for o in samples} == {"MLProject", "TrainingJob", "ModelDeployment", "DriftMonitor"}
    errors = {cs.ident(o): cs.crd_errors(o) for o in samples}
    assert {k: v for k, v in errors.items() if v} == {}


def test_samples_mirror_the_examples_apart_from_where_data_lives():
    """manifests/samples is examples/ on the kind environment: same specs, data in MinIO."""
    examples = {}
    for path in sorted((cs.ROOT / "examples").glob("*.yaml")):
        examples |= {(o["kind"], o["metadata"]["name"]): o for o in cs.load_all(path)}
    samples = {(o["kind"], o["metadata"]["name"]): o for o in _all_objects("samples") if cs.group_of(o) == "mlkube.io"}
    assert set(samples) == set(examples)
    for key, sample in samples.items():
        sample_spec, example_spec = dict(sample["spec"]), dict(examples[key]["spec"])
        if key[0] == "MLProject":
            for section in ("data", "storage"):
                assert sample_spec.pop(section)["uri"].startswith("s3://")
                example_spec.pop(section)
        assert sample_spec == example_spec, key


def test_crd_validation_refuses_a_misspelled_field():
    (project,) = [o for o in _all_objects("samples") if o["kind"] == "MLProject"]
    project["spec"]["problem"]["primaryMetrik"] = project["spec"]["problem"].pop("primaryMetric")
    errors = cs.crd_errors(project)
    assert any("primaryMetrik" in e for e in errors) and any("primaryMetric" in e for e in errors), errors


def test_samples_reference_each_other():
    by_kind = {o["kind"]: o for o in _all_objects("samples") if cs.group_of(o) == "mlkube.io"}
    project = by_kind["MLProject"]["metadata"]["name"]
    assert by_kind["TrainingJob"]["spec"]["projectRef"] == project
    assert by_kind["ModelDeployment"]["spec"]["projectRef"] == project
    assert by_kind["DriftMonitor"]["spec"]["deploymentRef"] == by_kind["ModelDeployment"]["metadata"]["name"]
    # The secrets the samples name exist in their namespace on the dev overlay.
    dev_secrets = {
        (o["metadata"]["namespace"], o["metadata"]["name"]) for o in _all_objects("overlays/dev") if o["kind"] == "Secret"
    }
    spec = by_kind["MLProject"]["spec"]
    for section in ("data", "storage"):
        assert ("ml", spec[section]["credentialsSecret"]) in dev_secrets


def test_serving_runtime_fields_are_known_to_kserve():
    (runtime,) = [o for o in _all_objects("base") if o["kind"] == "ClusterServingRuntime"]
    assert runtime["apiVersion"] == "serving.kserve.io/v1alpha1"
    assert list(cs.sdk_errors(runtime, "V1alpha1ClusterServingRuntime")) == []


def test_sdk_check_refuses_an_unknown_serving_runtime_field():
    (runtime,) = [o for o in _all_objects("base") if o["kind"] == "ClusterServingRuntime"]
    runtime["spec"]["supportedModelFormats"][0]["autoselect"] = True
    runtime["spec"]["containers"][0]["imagePullPolicy"] = 3
    errors = sorted(cs.sdk_errors(runtime, "V1alpha1ClusterServingRuntime"))
    assert errors == [
        ".spec.containers[0].imagePullPolicy: expected str, got int",
        ".spec.supportedModelFormats[0].autoselect: unknown field of V1alpha1SupportedModelFormat",
    ]


def test_serving_runtime_runs_our_model_server():
    (runtime,) = [o for o in _all_objects("base") if o["kind"] == "ClusterServingRuntime"]
    spec = runtime["spec"]
    assert runtime["metadata"]["name"] == "mlkube-sklearn"
    assert spec["supportedModelFormats"] == [{"name": "mlkube", "version": "1", "autoSelect": True, "priority": 1}]
    assert spec["protocolVersions"] == ["v1", "v2"]
    (container,) = spec["containers"]
    assert container["name"] == "kserve-container"  # KServe merges the predictor into this name
    assert container["command"] + container["args"] == [
        "python",
        "-m",
        "mlkube.serving.server",
        "--model_name={{.Name}}",
        "--model_dir=/mnt/models",
        "--http_port=8080",
    ]


def test_serving_runtime_manifest_equals_the_builder_local_up_installs():
    (runtime,) = [o for o in _all_objects("base") if o["kind"] == "ClusterServingRuntime"]
    del runtime["metadata"]["labels"]["app.kubernetes.io/part-of"]  # added by the base's kustomization
    assert runtime == servingruntime.cluster_serving_runtime()


@pytest.mark.parametrize(
    ("path", "scope"),
    [
        ("base", []),  # the overlays choose
        ("overlays/dev", ["--all-namespaces"]),
        ("overlays/cluster-wide", ["--all-namespaces"]),
        ("overlays/production", ["--namespace=ml"]),
    ],
)
def test_operator_runs_kopf_with_liveness_and_its_own_image_for_children(path, scope):
    operator = _operator(_all_objects(path))
    pod = operator["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"][0] == "operator"
    assert [a for a in container["args"] if a.startswith(("--namespace", "--all-namespaces", "-n", "-A"))] == scope
    liveness = [a for a in container["args"] if a.startswith("--liveness=")]
    assert liveness == ["--liveness=http://0.0.0.0:8080/healthz"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("livenessProbe", "readinessProbe"):
        http = container[probe]["httpGet"]
        assert http["path"] == "/healthz" and ports[http["port"]] == 8080
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MLKUBE_IMAGE"] == container["image"]
    assert pod["serviceAccountName"] == "mlkube-operator"
    assert operator["spec"]["replicas"] == 1 and operator["spec"]["strategy"]["type"] == "Recreate"


@pytest.mark.parametrize(
    ("path", "image"),
    [("base", RELEASE_IMAGE), ("overlays/production", PINNED), ("overlays/cluster-wide", PINNED), ("overlays/dev", DEV_IMAGE)],
)
def test_every_mlkube_container_uses_the_overlays_image(path, image):
    images = {c["image"] for o in _all_objects(path) for c in cs.containers(o) if "mlkube" in c["image"].split(":")[0]}
    assert images == {image}


@pytest.mark.parametrize("path", PRODUCTION)
def test_production_pins_every_image_by_digest(path):
    """Every image a production install runs, and the one the operator gives the pods it creates,
    is `name[:tag]@sha256:<64 hex>`: what runs cannot change without a reviewed commit."""
    objects = _all_objects(path)
    references = {(cs.ident(o), c["image"]) for o in objects for c in cs.containers(o)}
    (container,) = _operator(objects)["spec"]["template"]["spec"]["containers"]
    references |= {("MLKUBE_IMAGE", e["value"]) for e in container["env"] if e["name"] == "MLKUBE_IMAGE"}
    assert len(references) >= 3
    assert [r for r in references if not re.fullmatch(r"[a-z0-9./-]+(:[\w.-]+)?@sha256:[0-9a-f]{64}", r[1])] == []


def test_digest_placeholder_is_named_and_documented():
    """Until a release replaces it, the digest is one obvious value that docs/cluster.md explains."""
    kustomization = (cs.ROOT / "manifests" / "overlays" / "production" / "kustomization.yaml").read_text()
    assert re.search(rf"digest: {PLACEHOLDER_DIGEST}\s+# MLKUBE_IMAGE_DIGEST$", kustomization, re.MULTILINE)
    docs = (cs.ROOT / "docs" / "cluster.md").read_text()
    assert "MLKUBE_IMAGE_DIGEST" in docs and "crane digest" in docs and "imagetools inspect" in docs


@pytest.mark.parametrize("path", INSTALLABLE + ["base"])
def test_images_are_pinned(path):
    for obj in _all_objects(path):
        for container in cs.containers(obj):
            image = container["image"]
            name, _, tag = image.partition("@")[0].rpartition(":")
            assert name and "/" not in tag, f"{cs.ident(obj)}: image {image} has no tag"
            assert tag != "latest", f"{cs.ident(obj)}: image {image} uses latest"


@pytest.mark.parametrize("path", INSTALLABLE + ["base"])
def test_pods_meet_the_restricted_pod_security_standard(path):
    """Our namespaces enforce `restricted`; a pod that does not meet it is never created."""
    problems = []
    for obj in _all_objects(path):
        for pod in cs.pod_specs(obj):
            pod_context = pod.get("securityContext", {})
            for container in pod.get("initContainers", []) + pod.get("containers", []):
                context = container.get("securityContext", {})
                where = f"{cs.ident(obj)} container {container['name']}"
                if not (context.get("runAsNonRoot") or pod_context.get("runAsNonRoot")):
                    problems.append(f"{where}: runAsNonRoot")
                if context.get("allowPrivilegeEscalation") is not False:
                    problems.append(f"{where}: allowPrivilegeEscalation must be false")
                if context.get("capabilities", {}).get("drop") != ["ALL"]:
                    problems.append(f"{where}: capabilities.drop must be [ALL]")
                seccomp = context.get("seccompProfile") or pod_context.get("seccompProfile") or {}
                if seccomp.get("type") != "RuntimeDefault":
                    problems.append(f"{where}: seccompProfile RuntimeDefault")
                resources = container.get("resources", {})
                if not resources.get("requests") or "memory" not in resources.get("limits", {}):
                    problems.append(f"{where}: requests and a memory limit")
                if obj["kind"] != "ClusterServingRuntime" and not context.get("readOnlyRootFilesystem"):
                    problems.append(f"{where}: readOnlyRootFilesystem")
    assert problems == []


@pytest.mark.parametrize("path", INSTALLABLE)
def test_services_select_pods_and_name_their_ports(path):
    objects = _all_objects(path)
    templates = [
        (o["metadata"]["namespace"], o["spec"]["template"]) for o in objects if o["kind"] in ("Deployment", "StatefulSet")
    ]
    for service in (o for o in objects if o["kind"] == "Service"):
        namespace, selector = service["metadata"]["namespace"], service["spec"]["selector"]
        matches = [t for ns, t in templates if ns == namespace and selector.items() <= t["metadata"]["labels"].items()]
        assert matches, f"{cs.ident(service)} selects no pod of this build"
        port_names = {p["name"] for t in matches for c in t["spec"]["containers"] for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names, f"{cs.ident(service)}: targetPort {port['targetPort']}"


def test_dev_overlay_secrets_exist_where_pods_and_accounts_use_them():
    objects = _all_objects("overlays/dev")
    secrets = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in objects if o["kind"] == "Secret"}
    used = set()
    for obj in objects:
        namespace = obj["metadata"].get("namespace")
        for container in cs.containers(obj):
            used |= {
                (namespace, e["valueFrom"]["secretKeyRef"]["name"])
                for e in container.get("env", [])
                if "secretKeyRef" in e.get("valueFrom", {})
            }
            used |= {(namespace, e["secretRef"]["name"]) for e in container.get("envFrom", []) if "secretRef" in e}
        if obj["kind"] == "ServiceAccount":
            used |= {(namespace, s["name"]) for s in obj.get("secrets", [])}
    assert used and used <= secrets, used - secrets
    study = {
        o["metadata"]["name"]: o
        for o in objects
        if o["kind"] == "Secret" and o["metadata"]["name"] in ("postgres-creds", "study-db")
    }
    assert set(study["postgres-creds"]["data"]) == {"user", "password"} and set(study["study-db"]["data"]) == {"url"}
    for namespace, name in secrets - {("mlkube-system", "postgres-creds"), ("ml", "study-db")}:
        assert name == "s3-creds"
        (secret,) = [
            o
            for o in objects
            if o["kind"] == "Secret" and o["metadata"] == {**o["metadata"], "namespace": namespace, "name": name}
        ]
        assert set(secret["data"]) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
        assert secret["metadata"]["annotations"]["serving.kserve.io/s3-endpoint"] == "minio.mlkube-system:9000"


def test_dev_overlay_creates_the_buckets_the_samples_use():
    (job,) = [o for o in _all_objects("overlays/dev") if o["kind"] == "Job"]
    script = " ".join(job["spec"]["template"]["spec"]["containers"][0]["args"])
    created = set(re.findall(r"local/([a-z0-9.-]+)", script.split("mb", 1)[1]))
    (project,) = [o for o in _all_objects("samples") if o["kind"] == "MLProject"]
    wanted = {project["spec"][s]["uri"].removeprefix("s3://").split("/")[0] for s in ("data", "storage")}
    assert wanted <= created, wanted - created


@pytest.mark.parametrize("path", INSTALLABLE)
def test_namespaced_objects_live_in_namespaces_the_build_creates(path):
    objects = _all_objects(path)
    namespaces = {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"}
    cluster_scoped = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "ClusterServingRuntime"}
    for obj in objects:
        if obj["kind"] in cluster_scoped:
            assert "namespace" not in obj["metadata"], cs.ident(obj)
        else:
            assert obj["metadata"].get("namespace") in namespaces, cs.ident(obj)


def test_production_overlay_ships_no_credentials_and_no_minio():
    kinds_names = {(o["kind"], o["metadata"]["name"]) for o in _all_objects("overlays/production")}
    assert not any(kind == "Secret" for kind, _ in kinds_names)
    assert not any("minio" in name for _, name in kinds_names)


def test_monitors_scrape_named_ports_of_our_pods():
    monitors = {o["kind"]: o for o in _all_objects("monitoring") if o["kind"] in ("ServiceMonitor", "PodMonitor")}
    assert set(monitors) == {"ServiceMonitor", "PodMonitor"}
    for monitor in monitors.values():
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    # ServiceMonitor -> the operator's metrics Service and port.
    (service,) = [o for o in _all_objects("base") if o["kind"] == "Service"]
    service_monitor = monitors["ServiceMonitor"]
    assert service_monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert {e["port"] for e in service_monitor["spec"]["endpoints"]} <= {p["name"] for p in service["spec"]["ports"]}
    # PodMonitor -> routers in every namespace, on their http port's /metrics.
    pod_monitor = monitors["PodMonitor"]["spec"]
    assert pod_monitor["namespaceSelector"] == {"any": True}
    assert pod_monitor["selector"]["matchLabels"]["app.kubernetes.io/component"] == "router"
    assert [(e["port"], e["path"]) for e in pod_monitor["podMetricsEndpoints"]] == [("http", "/metrics")]


def test_documented_command_fills_in_the_published_digest(tmp_path):
    """The `sed` line of docs/cluster.md ("Pin the image"), run on a copy of the manifests."""
    if shutil.which("sed") is None or shutil.which("bash") is None:
        pytest.skip("sed and bash run the documented command")
    docs = (cs.ROOT / "docs" / "cluster.md").read_text()
    (command,) = [line for line in docs.splitlines() if line.startswith("sed -i.bak ") and "MLKUBE_IMAGE_DIGEST" in line]
    for tree in ("manifests", "crds"):
        shutil.copytree(cs.ROOT / tree, tmp_path / tree)
    published = "sha256:" + "5e" * 32
    result = subprocess.run(["bash", "-ec", command], cwd=tmp_path, env={"PATH": os.environ["PATH"], "DIGEST": published})
    assert result.returncode == 0
    images = {
        c["image"] for o in cs.build_directory(tmp_path / "manifests" / "overlays" / "production") for c in cs.containers(o)
    }
    assert images == {f"{RELEASE_IMAGE}@{published}"}

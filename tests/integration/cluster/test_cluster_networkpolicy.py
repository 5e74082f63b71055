"""The tenant's NetworkPolicies against the pods mlkube really runs.

The pods are built by the operator's own manifest builders (mlkube.control.manifests) from the
examples, with the labels Kubernetes and KServe add when they turn a Job, a Deployment or an
InferenceService into pods. The policies are the rendered kustomizations. Each test is a
connection an attacker or a component would open, and whether the policies let it through
(cluster_network.py states the NetworkPolicy rules applied).
"""

from __future__ import annotations

import datetime
import os
import re
import textwrap

import cluster_access as ca
import cluster_network as cn
import cluster_schemas as cs
import pytest
import yaml

from mlkube.api import kinds
from mlkube.api import replay as replay_api
from mlkube.control.manifests import drift, replay, serving, servingruntime, training

NOW = datetime.datetime(2026, 11, 24, tzinfo=datetime.UTC)
TENANT = "ml"
INSTALLS = ["overlays/production", "overlays/cluster-wide", "overlays/dev"]
TENANT_POLICIES = {"mlkube-predictors", "mlkube-routers", "mlkube-jobs", "mlkube-replay"}

S3 = "52.216.8.22"  # a public S3 address
S3_V6 = "2600:1fa0:80a9:6a19::1"
METADATA = "169.254.169.254"  # the cloud instance metadata service
API_SERVER = "10.96.0.1"  # the kubernetes Service
NODE = "172.18.0.2"  # the API server's endpoint on kind
OTHER_NODE = "172.18.0.7"  # a host-network process on a node other than the pod's


def _example(name: str, namespace: str) -> dict:
    doc = yaml.safe_load((cs.ROOT / "examples" / name).read_text())
    doc["metadata"].update(namespace=namespace, uid="0123456789abcdef", generation=1)
    return doc


def _job_pod_labels(job: dict) -> dict[str, str]:
    """What the Job controller (Kubernetes >= 1.27) puts on the pods of ``job``."""
    name = job["metadata"]["name"]
    uid = "5f0c1e9e-0000-4000-8000-000000000001"
    return {
        **job["spec"]["template"]["metadata"]["labels"],
        "batch.kubernetes.io/job-name": name,
        "job-name": name,
        "batch.kubernetes.io/controller-uid": uid,
        "controller-uid": uid,
    }


def _predictor_pod_labels(isvc: dict) -> dict[str, str]:
    """What KServe puts on a predictor pod: the InferenceService's labels, then its own
    (pkg/controller/v1beta1/inferenceservice/components/predictor.go, buildObjectMeta; and the
    raw reconciler's `app` label in Standard mode)."""
    name = isvc["metadata"]["name"]
    return {
        **isvc["metadata"]["labels"],
        "serving.kserve.io/inferenceservice": name,
        "component": "predictor",
        "app": f"isvc.{name}-predictor",
    }


def _drift_check_job(namespace: str) -> dict | None:
    """The Job of one analysis of the examples' DriftMonitor (None before drift checks ran as Jobs)."""
    if not hasattr(drift, "check_job"):
        return None
    dmon, mlp = _example("driftmonitor.yaml", namespace), _example("project.yaml", namespace)
    entry = kinds.MLPROJECT.parse_status(
        {
            "models": [
                {
                    "version": 3,
                    "trainingJob": "penguins-manual-1",
                    "createdAt": "2026-11-24T00:00:00Z",
                    "artifactUri": "s3://models/penguins/v3/",
                    "digest": "sha256:" + "ab" * 32,
                }
            ]
        }
    ).models[0]
    request = drift.drift_request(
        dmon,
        kinds.DRIFTMONITOR.parse_spec(dmon["spec"]),
        storage=kinds.MLPROJECT.parse_spec(mlp["spec"]).storage,
        entry=entry,
        primary_metric="f1",
        now=NOW,
    )
    name = drift.check_job_name(dmon, version=3)
    return drift.check_job(
        dmon, request, name=name, checked_at="2026-11-24T00:00:00Z", project_name="penguins", image="img:1", secret="s3-creds"
    )


def tenant_pods(namespace: str = TENANT) -> dict[str, cn.Pod]:
    """The pods of the examples' project, training run, deployment and drift monitor in ``namespace``."""
    tj, mlp, mdep = (_example(n, namespace) for n in ("trainingjob.yaml", "project.yaml", "deployment.yaml"))
    spec = training.effective_spec(tj["spec"], mlp["spec"]["training"]["template"])
    mlp_spec = kinds.MLPROJECT.parse_spec(mlp["spec"])
    document = training.trainer_input(tj, spec, mlp, mlp_spec, deployments=[mdep["metadata"]["name"]], now=NOW)
    job = training.trainer_job(tj, spec, document, project_name=mlp["metadata"]["name"], image="img:1", secret="s3-creds")
    mdep_spec = kinds.MODELDEPLOYMENT.parse_spec(mdep["spec"])
    router = serving.router_deployment(mdep, mdep_spec, image="img:1", secret="s3-creds")
    isvc = serving.inference_service(mdep, mdep_spec, version=3, storage_uri="s3://models/penguins/v3/")
    check = _drift_check_job(namespace)
    request = replay.replay_request(
        mdep,
        replay_api.Replay(),
        storage=mlp_spec.storage,
        stable=3,
        candidate=4,
        candidate_url="http://penguins-prod-v4-predictor.ml.svc",
        task="classification",
    )
    name = replay.job_name(mdep["metadata"]["name"], candidate=4, since="2026-11-24T00:00:00Z")
    replayer = replay.replay_job(mdep, request, name=name, project_name="penguins", image="img:1", secret="s3-creds")
    return {
        "replay": cn.Pod("replay", namespace, _job_pod_labels(replayer), "10.244.0.16"),
        **({"drift": cn.Pod("drift", namespace, _job_pod_labels(check), "10.244.0.15")} if check else {}),
        "trainer": cn.Pod("trainer", namespace, _job_pod_labels(job), "10.244.0.11"),
        "router": cn.Pod("router", namespace, router["spec"]["template"]["metadata"]["labels"], "10.244.0.12"),
        "predictor": cn.Pod("predictor", namespace, _predictor_pod_labels(isvc), "10.244.0.13"),
        # Anything else a tenant runs: a notebook, a compromised dependency, a debug pod.
        "neighbour": cn.Pod("neighbour", namespace, {"app": "notebook"}, "10.244.0.14"),
    }


def operator_pod(objects: list[dict]) -> cn.Pod:
    deployment = ca.operator_deployment(objects)
    template = deployment["spec"]["template"]
    ports = {p["name"]: p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
    return cn.Pod("operator", deployment["metadata"]["namespace"], template["metadata"]["labels"], "10.244.1.2", ports)


ELSEWHERE = cn.Pod(
    "elsewhere", "team-b", {"app.kubernetes.io/component": "router", "app.kubernetes.io/managed-by": "mlkube"}, "10.244.2.9"
)
KUBE_DNS = cn.Pod("coredns", "kube-system", {"k8s-app": "kube-dns"}, "10.244.0.2")


def policies(path: str) -> list[dict]:
    return [o for o in cs.build(path) if o["kind"] == "NetworkPolicy"]


@pytest.fixture(scope="module")
def production() -> list[dict]:
    return cs.build("overlays/production")


@pytest.fixture(scope="module")
def pods() -> dict[str, cn.Pod]:
    return tenant_pods()


# --- what each policy selects -----------------------------------------------------------------


@pytest.mark.parametrize("path", INSTALLS)
def test_every_install_puts_the_policies_in_each_tenant_namespace_and_they_validate(path):
    objects = cs.build(path)
    namespaces = {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"} - {"mlkube-system"}
    assert namespaces, f"{path} creates no tenant namespace"
    found = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in objects if o["kind"] == "NetworkPolicy"}
    assert {(ns, name) for ns in namespaces for name in TENANT_POLICIES} <= found
    errors = {cs.ident(o): cs.kubernetes_errors(o) for o in objects if o["kind"] == "NetworkPolicy"}
    assert {k: v for k, v in errors.items() if v} == {}


def test_each_policy_selects_exactly_its_pods(pods):
    tenant = {p["metadata"]["name"]: p for p in policies("tenant")}
    assert set(tenant) == TENANT_POLICIES
    selected = {name: {pod.name for pod in pods.values() if cn.selected_by(p, pod)} for name, p in tenant.items()}
    batch = {"trainer", "drift", "replay"} & set(pods)
    assert selected == {
        "mlkube-predictors": {"predictor"},
        "mlkube-routers": {"router"},
        "mlkube-jobs": batch,
        "mlkube-replay": {"replay"},
    }


def test_ports_are_the_ones_the_servers_listen_on():
    (container,) = servingruntime.cluster_serving_runtime()["spec"]["containers"]
    tenant = {p["metadata"]["name"]: p for p in policies("tenant")}
    for name, port in (("mlkube-predictors", container["ports"][0]["containerPort"]), ("mlkube-routers", serving.ROUTER_PORT)):
        assert [p["port"] for rule in tenant[name]["spec"]["ingress"] for p in rule["ports"]] == [port], name


# --- model servers: High 3 of issue 14 --------------------------------------------------------


def test_only_routers_and_a_rollouts_replay_reach_a_model_server(production, pods):
    """`POST /v2/repository/models/<m>/unload` from anything but a router or a replay Job never arrives."""
    rules = policies("overlays/production")
    predictor = pods["predictor"]
    assert cn.connects(rules, pods["router"], predictor, 8080)
    assert cn.connects(rules, pods["replay"], predictor, 8080)
    assert not cn.connects(rules, pods["replay"], pods["router"], serving.ROUTER_PORT)
    assert not cn.connects(rules, pods["replay"], predictor, 9000)
    for intruder in (pods["neighbour"], pods["trainer"], pods["drift"], operator_pod(production), ELSEWHERE, S3, OTHER_NODE):
        assert not cn.connects(rules, intruder, predictor, 8080), intruder


def test_a_router_reaches_no_other_port_of_a_model_server(pods):
    assert not cn.connects(policies("tenant"), pods["router"], pods["predictor"], 9000)


# --- routers ----------------------------------------------------------------------------------


def test_routers_answer_their_namespace_and_the_operator_only(production, pods):
    rules = policies("overlays/production")
    router = pods["router"]
    assert cn.connects(rules, pods["neighbour"], router, serving.ROUTER_PORT)
    assert cn.connects(rules, operator_pod(production), router, serving.ROUTER_PORT)  # /mlkube/stats during rollouts
    not_operator = cn.Pod("minio", "mlkube-system", {"app.kubernetes.io/name": "minio"}, "10.244.1.3")
    for outsider in (ELSEWHERE, not_operator, S3):
        assert not cn.connects(rules, outsider, router, serving.ROUTER_PORT), outsider


def test_a_router_policy_of_ones_own_admits_its_clients(pods):
    """The knob: the sample admits outside clients to the penguins-prod router, and no other."""
    rules = policies("overlays/dev") + policies("samples")
    router = pods["router"]
    assert router.labels["mlkube.io/router"] == "penguins-prod"
    assert cn.connects(rules, S3, router, serving.ROUTER_PORT)
    other = cn.Pod("other-router", TENANT, {**router.labels, "mlkube.io/router": "penguins-staging"}, "10.244.0.20")
    assert not cn.connects(rules, S3, other, serving.ROUTER_PORT)
    assert not cn.connects(rules, S3, pods["predictor"], 8080)


def test_routers_and_model_servers_keep_their_egress(pods):
    """Routers call predictors, the API server and storage; predictors' storage initializer fetches the model."""
    rules = policies("overlays/production")
    for target, port in ((API_SERVER, 443), (S3, 443), (NODE, 6443)):
        assert cn.connects(rules, pods["router"], target, port)
        assert cn.connects(rules, pods["predictor"], target, port)


# --- batch pods: trainers and drift checks ----------------------------------------------------


@pytest.mark.parametrize("batch", ["trainer", "drift"])
def test_batch_pods_reach_dns_and_storage_only(batch, production, pods):
    if batch not in pods:
        pytest.skip("drift checks do not run as Jobs in this tree (mlkube.control.manifests.drift.check_job)")
    rules = policies("overlays/production")
    trainer = pods[batch]
    assert cn.connects(rules, trainer, KUBE_DNS, 53, protocol="UDP")
    assert cn.connects(rules, trainer, KUBE_DNS, 53, protocol="TCP")
    assert cn.connects(rules, trainer, S3, 443)
    assert cn.connects(rules, trainer, S3_V6, 443)
    refused = [
        (METADATA, 80),  # instance credentials
        (METADATA, 443),
        (API_SERVER, 443),
        (NODE, 6443),
        (S3, 80),
        (S3, 22),
        (pods["router"], serving.ROUTER_PORT),
        (pods["predictor"], 8080),
        (pods["neighbour"], 8888),
        (operator_pod(production), 8080),
        (cn.Pod("dns-impostor", TENANT, {"k8s-app": "kube-dns"}, "10.244.0.30"), 53),
    ]
    assert [(t if isinstance(t, str) else t.name, p) for t, p in refused if cn.connects(rules, trainer, t, p)] == []


def test_every_job_mlkube_runs_is_a_batch_pod_and_nothing_else_is(pods):
    """Selected by the Job controller's label, so any Job of the operator (trainer, drift check,
    batch scoring) is covered whatever its component label; a Job of somebody else is not."""
    (jobs,) = [p for p in policies("tenant") if p["metadata"]["name"] == "mlkube-jobs"]
    drift = cn.Pod("drift", TENANT, {**pods["trainer"].labels, "app.kubernetes.io/component": "drift-check"}, "10.244.0.40")
    foreign = cn.Pod("foreign", TENANT, {"batch.kubernetes.io/job-name": "etl", "job-name": "etl"}, "10.244.0.41")
    assert cn.selected_by(jobs, drift) and not cn.selected_by(jobs, foreign)


def test_dev_overlay_lets_batch_pods_reach_its_minio(pods):
    objects = cs.build("overlays/dev")
    (minio,) = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "minio"]
    store = cn.Pod("minio", "mlkube-system", minio["spec"]["template"]["metadata"]["labels"], "10.244.1.5")
    assert cn.connects(policies("overlays/dev"), pods["trainer"], store, 9000)
    assert not cn.connects(policies("overlays/production"), pods["trainer"], store, 9000)
    assert not cn.connects(policies("overlays/dev"), pods["trainer"], store, 9001)  # the console


# --- another team namespace ------------------------------------------------------------------


def test_tenant_reused_for_another_namespace_isolates_it(tmp_path):
    """`namespace: team-a` over manifests/tenant, as docs/cluster.md says to add a team."""
    overlay = tmp_path / "team-a"
    overlay.mkdir()
    tenant = os.path.relpath(cs.ROOT / "manifests" / "tenant", overlay)  # kustomize refuses absolute roots
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({"namespace": "team-a", "resources": [tenant]}))
    objects = cs.build_directory(overlay)
    rules = [o for o in objects if o["kind"] == "NetworkPolicy"]
    assert {o["metadata"]["namespace"] for o in objects if "namespace" in o["metadata"]} == {"team-a"}
    (binding,) = [o for o in objects if o["kind"] == "RoleBinding"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "mlkube-operator", "namespace": "mlkube-system"}]
    team_a, team_ml = tenant_pods("team-a"), tenant_pods(TENANT)
    assert cn.connects(rules, team_a["router"], team_a["predictor"], 8080)
    assert not cn.connects(rules, team_ml["router"], team_a["predictor"], 8080)
    assert not cn.connects(rules, team_ml["neighbour"], team_a["router"], serving.ROUTER_PORT)


# --- the operator (production overlay) -------------------------------------------------------


def test_operator_answers_probes_and_scrapes_only_on_its_ports(production, pods):
    rules = policies("overlays/production")
    operator = operator_pod(production)
    prometheus = cn.Pod("prometheus", "monitoring", {"app": "prometheus"}, "10.244.3.3")
    assert cn.connects(rules, prometheus, operator, operator.ports["metrics"])
    assert not cn.connects(rules, prometheus, operator, 8443)
    assert not cn.connects(rules, pods["trainer"], operator, operator.ports["metrics"])  # batch pods' egress


# --- the knobs docs/cluster.md documents --------------------------------------------------------


def _documented_yaml() -> list[dict]:
    """The YAML examples of docs/cluster.md's "Network policies" section."""
    docs = (cs.ROOT / "docs" / "cluster.md").read_text()
    section = docs.split("### Network policies", 1)[1].split("\n## ", 1)[0]
    return [yaml.safe_load(textwrap.dedent(block)) for block in re.findall(r"```yaml\n(.*?)\n\s*```", section, re.DOTALL)]


def test_documented_router_policy_admits_the_ingress_controller_only():
    (policy,) = [doc for doc in _documented_yaml() if doc.get("kind") == "NetworkPolicy"]
    assert cs.kubernetes_errors(policy) == []
    namespace = policy["metadata"]["namespace"]
    tenant_rules = [{**r, "metadata": {**r["metadata"], "namespace": namespace}} for r in policies("tenant")] + [policy]
    team_a = tenant_pods(namespace)
    controller = cn.Pod("ingress-nginx-controller", "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}, "10.244.4.4")
    assert cn.connects(tenant_rules, controller, team_a["router"], serving.ROUTER_PORT)
    assert not cn.connects(tenant_rules, controller, team_a["predictor"], 8080)
    assert not cn.connects(tenant_rules, ELSEWHERE, team_a["router"], serving.ROUTER_PORT)


def test_documented_storage_patch_narrows_batch_egress_to_the_store(tmp_path):
    (overlay,) = [doc for doc in _documented_yaml() if "patches" in doc]
    overlay |= {"resources": [os.path.relpath(cs.ROOT / "manifests" / "tenant", tmp_path)]}
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    rules = [o for o in cs.build_directory(tmp_path) if o["kind"] == "NetworkPolicy"]
    trainer = tenant_pods()["trainer"]
    assert cn.connects(rules, trainer, "52.217.1.1", 443)
    assert not cn.connects(rules, trainer, "34.117.59.81", 443)  # any other public HTTPS host
    assert cn.connects(rules, trainer, KUBE_DNS, 53, protocol="UDP")

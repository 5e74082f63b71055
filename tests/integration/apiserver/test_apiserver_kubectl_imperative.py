"""Issue 24: the imperative kubectl 1.32 commands people type first (protobuf request bodies),
`kubectl auth can-i|whoami`, `kubectl explain` of built-in kinds, and Status bodies of conflicts."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.kubectl


def _get_json(kubectl, *args: str) -> dict:
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


def test_create_deployment_with_a_command(kubectl, namespace):
    out = kubectl(
        "create", "deployment", "web", "-n", namespace, "--image=x", "--replicas=2", "--", "python", "-m", "http.server"
    )
    assert out.stdout.strip() == "deployment.apps/web created"
    deployment = _get_json(kubectl, "deployment", "web", "-n", namespace)
    spec = deployment["spec"]
    assert spec["replicas"] == 2 and spec["selector"] == {"matchLabels": {"app": "web"}}
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    container = spec["template"]["spec"]["containers"][0]
    assert container["image"] == "x" and container["command"] == ["python", "-m", "http.server"]
    assert deployment["metadata"]["labels"] == {"app": "web"}


def test_create_job_and_cronjob(kubectl, namespace):
    kubectl("create", "job", "j1", "-n", namespace, "--image=x", "--", "echo", "hi")
    job = _get_json(kubectl, "job", "j1", "-n", namespace)
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["echo", "hi"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] == 6
    kubectl("create", "cronjob", "nightly", "-n", namespace, "--image=x", "--schedule=0 3 * * *", "--", "echo", "hi")
    cronjob = _get_json(kubectl, "cronjob", "nightly", "-n", namespace)
    assert cronjob["spec"]["schedule"] == "0 3 * * *" and cronjob["spec"]["concurrencyPolicy"] == "Allow"
    assert cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"
    rows = kubectl("get", "cronjobs", "-n", namespace).stdout.splitlines()
    assert rows[0].split()[:3] == ["NAME", "SCHEDULE", "TIMEZONE"] and rows[1].split()[0] == "nightly"


def test_create_service_and_run_a_pod(kubectl, namespace):
    kubectl("create", "service", "clusterip", "api", "-n", namespace, "--tcp=80:8000")
    service = _get_json(kubectl, "service", "api", "-n", namespace)
    assert service["spec"]["ports"] == [{"name": "80-8000", "port": 80, "protocol": "TCP", "targetPort": 8000}]
    assert service["spec"]["clusterIP"].startswith("127.1.")
    kubectl("run", "p1", "-n", namespace, "--image=x", "--env=MODE=fast", "--port=8080", "--labels=tier=web", "--", "sleep", "1")
    pod = _get_json(kubectl, "pod", "p1", "-n", namespace)
    container = pod["spec"]["containers"][0]
    assert container["args"] == ["sleep", "1"] and container["env"] == [{"name": "MODE", "value": "fast"}]
    assert container["ports"] == [{"containerPort": 8080}] and pod["metadata"]["labels"] == {"tier": "web"}


def test_create_rbac_and_service_account(kubectl, namespace):
    kubectl("create", "serviceaccount", "bot", "-n", namespace)
    kubectl("create", "role", "reader", "-n", namespace, "--verb=get,list", "--resource=pods,deployments.apps")
    kubectl("create", "rolebinding", "bot-reads", "-n", namespace, "--role=reader", f"--serviceaccount={namespace}:bot")
    role = _get_json(kubectl, "role", "reader", "-n", namespace)
    assert {(tuple(rule["apiGroups"]), tuple(rule["resources"])) for rule in role["rules"]} == {
        (("",), ("pods",)),
        (("apps",), ("deployments",)),
    }
    binding = _get_json(kubectl, "rolebinding", "bot-reads", "-n", namespace)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "bot", "namespace": namespace}]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"}


def test_conflicting_create_carries_code_409_like_kube_apiserver(http, namespace):
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "twice"}}
    assert http.post(f"/api/v1/namespaces/{namespace}/configmaps", json=body).status_code == 201
    again = http.post(f"/api/v1/namespaces/{namespace}/configmaps", json=body)
    assert again.status_code == 409
    assert again.text == (
        '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        '"message":"configmaps \\"twice\\" already exists","reason":"AlreadyExists",'
        '"details":{"name":"twice","kind":"configmaps"},"code":409}\n'
    )


def test_auth_can_i_and_whoami_for_the_admin_and_an_impersonated_service_account(kubectl, namespace):
    assert kubectl("auth", "can-i", "create", "pods").stdout.strip() == "yes"
    assert kubectl("auth", "can-i", "delete", "nodes").stdout.strip() == "yes"
    whoami = kubectl("auth", "whoami").stdout
    assert "mlkube-admin" in whoami and "system:masters" in whoami
    kubectl("create", "serviceaccount", "bot", "-n", namespace)
    kubectl("create", "role", "pod-reader", "-n", namespace, "--verb=get", "--resource=pods")
    kubectl("create", "rolebinding", "bot-reads", "-n", namespace, "--role=pod-reader", f"--serviceaccount={namespace}:bot")
    bot = f"--as=system:serviceaccount:{namespace}:bot"
    assert kubectl("auth", "can-i", "get", "pods", "-n", namespace, bot).stdout.strip() == "yes"
    denied = kubectl("auth", "can-i", "create", "pods", "-n", namespace, bot, check=False)
    assert denied.returncode == 1 and denied.stdout.strip() == "no"
    refused = kubectl("run", "p", "-n", namespace, "--image=x", bot, check=False)
    assert f'cannot create resource "pods" in API group "" in the namespace "{namespace}"' in refused.stderr
    assert f"system:serviceaccount:{namespace}:bot" in kubectl("auth", "whoami", bot).stdout
    listed = kubectl("auth", "can-i", "--list", "-n", namespace, bot).stdout
    assert any(line.split()[0] == "pods" and line.split()[-1] == "[get]" for line in listed.splitlines()[1:] if line.strip())


def test_explain_builtin_kinds_from_the_upstream_schemas(kubectl):
    out = kubectl("explain", "deployment.spec.strategy").stdout
    assert "FIELD: strategy <DeploymentStrategy>" in out
    assert "rollingUpdate\t<RollingUpdateDeployment>" in out and 'Can be "Recreate" or "RollingUpdate"' in out
    ports = kubectl("explain", "pods.spec.containers.ports.containerPort").stdout
    assert "<integer>" in ports and "Number of port to expose" in ports
    assert "schedule\t<string> -required-" in kubectl("explain", "cronjob.spec").stdout


def test_client_side_apply_update_of_a_deployment_validates_against_upstream_fields(kubectl, namespace):
    manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "applied"},
        "spec": {
            "selector": {"matchLabels": {"app": "a"}},
            "template": {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
        },
    }
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    manifest["spec"]["template"]["spec"]["containers"][0]["image"] = "y"
    assert "configured" in kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest)).stdout
    manifest["spec"]["strategy"] = {"type": "Recreate", "rollingUpdat": {}}
    refused = kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest), check=False)
    assert 'unknown field "spec.strategy.rollingUpdat"' in refused.stderr


def test_reviews_are_create_only_and_discoverable(http):
    assert http.get("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews").status_code == 405
    resources = {r["name"]: r["verbs"] for r in http.get("/apis/authorization.k8s.io/v1").json()["resources"]}
    assert resources == {"selfsubjectaccessreviews": ["create"], "selfsubjectrulesreviews": ["create"]}
    groups = {group["name"] for group in http.get("/apis").json()["groups"]}
    assert {"authorization.k8s.io", "authentication.k8s.io"} <= groups

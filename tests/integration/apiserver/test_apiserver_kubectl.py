"""Issue 3's kubectl acceptance scenarios, with real kubectl 1.32 against the embedded API server."""

from __future__ import annotations

import json
import pathlib
import queue
import subprocess
import threading

import pytest
import yaml
from apiserver_helpers import eventually, widget

pytestmark = pytest.mark.kubectl


def _get_json(kubectl, *args: str) -> dict:
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


def test_api_resources_lists_builtins_and_custom_resources(kubectl, widgets):
    out = kubectl("api-resources").stdout
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "wd" in rows["widgets"] and "example.com/v1" in rows["widgets"] and "Widget" in rows["widgets"]
    assert {"namespaces", "configmaps", "pods", "services", "jobs", "deployments", "leases", "customresourcedefinitions"} <= set(
        rows
    )


def test_apply_custom_resource_shows_printer_columns_and_defaults(kubectl, widgets, namespace):
    assert "widget.example.com/w1 created" in kubectl("apply", "-n", namespace, "-f", "-", input=widget("w1")).stdout
    lines = kubectl("get", "wd", "-n", namespace).stdout.splitlines()
    assert lines[0].split() == ["NAME", "SIZE", "COLOR", "PHASE", "AGE"]
    assert lines[1].split()[:3] == ["w1", "5", "red"]  # color comes from the schema default
    again = kubectl("apply", "-n", namespace, "-f", "-", input=widget("w1")).stdout
    assert "widget.example.com/w1 unchanged" in again


def test_get_yaml_shows_the_stored_object(kubectl, widgets, namespace):
    kubectl("apply", "-n", namespace, "-f", "-", input=widget("w1", size=4))
    obj = yaml.safe_load(kubectl("get", "wd", "w1", "-n", namespace, "-o", "yaml").stdout)
    assert obj["spec"] == {"size": 4, "color": "red"}
    assert obj["metadata"]["generation"] == 1
    assert int(obj["metadata"]["resourceVersion"]) > 0 and len(obj["metadata"]["uid"]) == 36


def test_get_watch_sees_updates(kubectl, widgets, namespace, apiserver, tmp_path):
    kubectl("apply", "-n", namespace, "-f", "-", input=widget("w1"))
    process = subprocess.Popen(
        [
            "kubectl",
            "--kubeconfig",
            apiserver.kubeconfig,
            "--cache-dir",
            str(tmp_path),
            "get",
            "wd",
            "-n",
            namespace,
            "-w",
            "--no-headers",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    try:
        assert lines.get(timeout=10).split()[:2] == ["w1", "5"]
        kubectl("patch", "wd", "w1", "-n", namespace, "--type", "merge", "-p", '{"spec":{"size":42}}')
        assert lines.get(timeout=10).split()[:2] == ["w1", "42"]
    finally:
        process.terminate()
        process.wait(timeout=5)


def test_describe_shows_events_of_the_object(kubectl, widgets, namespace):
    kubectl("apply", "-n", namespace, "-f", "-", input=widget("w1"))
    uid = _get_json(kubectl, "wd", "w1", "-n", namespace)["metadata"]["uid"]
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": "w1-"},
        "involvedObject": {"apiVersion": "example.com/v1", "kind": "Widget", "name": "w1", "namespace": namespace, "uid": uid},
        "reason": "Polished",
        "message": "shiny now",
        "type": "Normal",
        "source": {"component": "tester"},
        "firstTimestamp": "2026-01-01T00:00:00.123456+00:00",
        "lastTimestamp": "2026-01-01T00:00:00+00:00",
    }
    kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(event))
    out = kubectl("describe", "wd", "w1", "-n", namespace).stdout
    assert "Polished" in out and "shiny now" in out and "tester" in out
    stored = _get_json(kubectl, "events", "-n", namespace)["items"][0]
    assert stored["firstTimestamp"] == "2026-01-01T00:00:00Z"


def test_wait_for_condition_set_through_the_status_subresource(kubectl, widgets, namespace):
    kubectl("apply", "-n", namespace, "-f", "-", input=widget("w1"))
    kubectl(
        "patch",
        "wd",
        "w1",
        "-n",
        namespace,
        "--subresource=status",
        "--type",
        "merge",
        "-p",
        json.dumps({"status": {"phase": "Ready", "conditions": [{"type": "Ready", "status": "True"}]}}),
    )
    out = kubectl("wait", "--for=condition=Ready", "wd/w1", "-n", namespace, "--timeout=10s").stdout
    assert "condition met" in out
    assert kubectl("get", "wd", "w1", "-n", namespace, "--no-headers").stdout.split()[3] == "Ready"


def test_label_and_annotate_keep_generation_and_record_managers(kubectl, widgets, namespace):
    kubectl("apply", "-n", namespace, "-f", "-", input=widget("w1"))
    kubectl("label", "wd", "w1", "-n", namespace, "tier=gold")
    kubectl("annotate", "wd", "w1", "-n", namespace, "note=hello")
    obj = json.loads(kubectl("get", "wd", "w1", "-n", namespace, "-o", "json", "--show-managed-fields").stdout)
    assert obj["metadata"]["labels"] == {"tier": "gold"}
    assert obj["metadata"]["annotations"]["note"] == "hello"
    assert obj["metadata"]["generation"] == 1
    managers = {entry["manager"] for entry in obj["metadata"]["managedFields"]}
    assert {"kubectl-client-side-apply", "kubectl-label", "kubectl-annotate"} <= managers
    selected = kubectl("get", "wd", "-A", "-l", "tier=gold", "--no-headers").stdout.split()
    assert selected[:2] == [namespace, "w1"]


def test_patch_merge_json_and_the_default_strategic_error(kubectl, widgets, namespace):
    kubectl("apply", "-n", namespace, "-f", "-", input=widget("w1"))
    kubectl("patch", "wd", "w1", "-n", namespace, "--type", "merge", "-p", '{"spec":{"size":7}}')
    kubectl(
        "patch", "wd", "w1", "-n", namespace, "--type", "json", "-p", '[{"op":"replace","path":"/spec/color","value":"blue"}]'
    )
    obj = _get_json(kubectl, "wd", "w1", "-n", namespace)
    assert obj["spec"] == {"size": 7, "color": "blue"} and obj["metadata"]["generation"] == 3
    failed = kubectl("patch", "wd", "w1", "-n", namespace, "-p", '{"spec":{"size":8}}', check=False)
    assert failed.returncode != 0
    assert (
        "error: application/strategic-merge-patch+json is not supported by example.com/v1, Kind=Widget: the "
        "body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    ) in failed.stderr


def test_server_side_apply_conflict_force_and_dry_run(kubectl, widgets, namespace):
    kubectl("apply", "-n", namespace, "-f", "-", input=widget("w1", size=5))
    conflict = kubectl("apply", "--server-side", "-n", namespace, "-f", "-", input=widget("w1", size=6), check=False)
    assert conflict.returncode != 0
    assert (
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using example.com/v1: .spec.size'
        in conflict.stderr
    )
    dry = kubectl(
        "apply", "--server-side", "--dry-run=server", "--force-conflicts", "-n", namespace, "-f", "-", input=widget("w1", size=6)
    ).stdout
    assert "serverside-applied (server dry run)" in dry
    assert _get_json(kubectl, "wd", "w1", "-n", namespace)["spec"]["size"] == 5
    kubectl("apply", "--server-side", "--force-conflicts", "-n", namespace, "-f", "-", input=widget("w1", size=6))
    obj = json.loads(kubectl("get", "wd", "w1", "-n", namespace, "-o", "json", "--show-managed-fields").stdout)
    assert obj["spec"]["size"] == 6
    owners = {e["manager"]: e for e in obj["metadata"]["managedFields"]}
    assert owners["kubectl"]["operation"] == "Apply"
    assert "f:size" in json.dumps(owners["kubectl"]["fieldsV1"])


def test_explain_prints_the_crd_descriptions(kubectl, widgets):
    out = kubectl("explain", "widgets.spec.size").stdout
    assert "KIND:       Widget" in out and "How big the widget is." in out


def test_invalid_custom_resource_names_the_field(kubectl, widgets, namespace):
    failed = kubectl("apply", "-n", namespace, "-f", "-", input=widget("bad", size=0), check=False)
    assert failed.returncode != 0
    assert (
        'The Widget "bad" is invalid: spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1'
    ) in failed.stderr
    enum = kubectl("apply", "-n", namespace, "-f", "-", input=widget("bad", color="pink"), check=False)
    assert 'spec.color: Unsupported value: "pink"' in enum.stderr
    cel = kubectl("apply", "-n", namespace, "-f", "-", input=widget("bad", size=101), check=False)
    assert "size too big" in cel.stderr
    unknown = kubectl("apply", "-n", namespace, "-f", "-", input=widget("bad", shape="round"), check=False)
    assert 'unknown field "spec.shape"' in unknown.stderr
    assert kubectl("get", "wd", "bad", "-n", namespace, check=False).returncode != 0


def test_delete_without_and_with_finalizers(kubectl, widgets, namespace):
    kubectl("apply", "-n", namespace, "-f", "-", input=widget("plain"))
    assert 'widget.example.com "plain" deleted' in kubectl("delete", "wd", "plain", "-n", namespace).stdout
    assert "NotFound" in kubectl("get", "wd", "plain", "-n", namespace, check=False).stderr

    kubectl("apply", "-n", namespace, "-f", "-", input=widget("held"))
    kubectl("patch", "wd", "held", "-n", namespace, "--type", "merge", "-p", '{"metadata":{"finalizers":["example.com/hold"]}}')
    kubectl("delete", "wd", "held", "-n", namespace, "--wait=false")
    obj = _get_json(kubectl, "wd", "held", "-n", namespace)
    assert obj["metadata"]["deletionTimestamp"] and obj["metadata"]["generation"] == 2
    blocked = kubectl(
        "patch",
        "wd",
        "held",
        "-n",
        namespace,
        "--type",
        "merge",
        "-p",
        '{"metadata":{"finalizers":["example.com/hold","other"]}}',
        check=False,
    )
    assert "no new finalizers can be added if the object is being deleted" in blocked.stderr
    kubectl("patch", "wd", "held", "-n", namespace, "--type", "json", "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
    assert "NotFound" in kubectl("get", "wd", "held", "-n", namespace, check=False).stderr


def test_delete_namespace_cascades_and_waits_for_finalizers(kubectl, widgets):
    kubectl("create", "namespace", "doomed")
    kubectl("create", "configmap", "cm", "-n", "doomed", "--from-literal=a=b")
    kubectl("apply", "-n", "doomed", "-f", "-", input=widget("held"))
    kubectl("patch", "wd", "held", "-n", "doomed", "--type", "merge", "-p", '{"metadata":{"finalizers":["example.com/hold"]}}')
    kubectl("delete", "namespace", "doomed", "--wait=false")
    assert _get_json(kubectl, "namespace", "doomed")["status"]["phase"] == "Terminating"
    eventually(lambda: kubectl("get", "cm", "-n", "doomed", "-o", "name").stdout.strip() == "")
    refused = kubectl("create", "configmap", "late", "-n", "doomed", check=False)
    assert "because it is being terminated" in refused.stderr
    assert _get_json(kubectl, "wd", "held", "-n", "doomed")["metadata"]["deletionTimestamp"]
    kubectl("patch", "wd", "held", "-n", "doomed", "--type", "json", "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
    eventually(lambda: "NotFound" in kubectl("get", "namespace", "doomed", check=False).stderr)


def test_create_namespace_and_configmap_use_protobuf_bodies(kubectl):
    assert "namespace/proto-ns created" in kubectl("create", "namespace", "proto-ns").stdout
    kubectl("create", "configmap", "settings", "-n", "proto-ns", "--from-literal=mode=fast", "--from-literal=level=3")
    assert _get_json(kubectl, "configmap", "settings", "-n", "proto-ns")["data"] == {"mode": "fast", "level": "3"}
    ns = _get_json(kubectl, "namespace", "proto-ns")
    assert ns["metadata"]["labels"]["kubernetes.io/metadata.name"] == "proto-ns"
    lines = kubectl("get", "cm", "settings", "-n", "proto-ns").stdout.splitlines()
    assert lines[0].split() == ["NAME", "DATA", "AGE"] and lines[1].split()[:2] == ["settings", "2"]


def test_logs_of_a_pod_come_from_the_runtime_log_files(kubectl, apiserver, namespace):
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p1"},
        "spec": {"containers": [{"name": "main", "image": "mlkube"}]},
    }
    kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(pod))
    missing = kubectl("logs", "p1", "-n", namespace, check=False)
    assert "no log has been written yet" in missing.stderr
    directory = pathlib.Path(apiserver.state_dir) / "logs" / namespace / "p1" / "main"
    directory.mkdir(parents=True)
    (directory / "0.log").write_text("first run\n")
    (directory / "1.log").write_text("one\ntwo\nthree\n")
    assert kubectl("logs", "p1", "-n", namespace).stdout == "one\ntwo\nthree\n"
    assert kubectl("logs", "p1", "-n", namespace, "--tail=1").stdout == "three\n"
    assert kubectl("logs", "p1", "-n", namespace, "--previous").stdout == "first run\n"
    wrong = kubectl("logs", "p1", "-n", namespace, "-c", "nope", check=False)
    assert "container nope is not valid for pod p1" in wrong.stderr


def test_unknown_fields_of_builtin_kinds_are_refused_by_kubectl_apply(kubectl, http, namespace):
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "typo"},
        "spec": {
            "replica": 2,
            "selector": {"matchLabels": {"app": "t"}},
            "template": {
                "metadata": {"labels": {"app": "t"}},
                "spec": {"containers": [{"name": "c", "image": "x", "imagee": "y"}]},
            },
        },
    }
    refused = kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(deployment), check=False)
    assert (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field '
        '"spec.replica", unknown field "spec.template.spec.containers[0].imagee"'
    ) in refused.stderr
    warned = http.post(f"/apis/apps/v1/namespaces/{namespace}/deployments", json=deployment)
    assert warned.status_code == 201 and "spec.replica" in warned.headers["Warning"]
    assert "replica" not in warned.json()["spec"] and warned.json()["spec"]["replicas"] == 1


def test_scale_a_deployment_through_the_scale_subresource(kubectl, namespace):
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
        },
    }
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(deployment))
    assert "deployment.apps/web scaled" in kubectl("scale", "deploy", "web", "-n", namespace, "--replicas=4").stdout
    obj = _get_json(kubectl, "deploy", "web", "-n", namespace)
    assert obj["spec"]["replicas"] == 4 and obj["metadata"]["generation"] == 2
    scale = json.loads(kubectl("get", "--raw", f"/apis/apps/v1/namespaces/{namespace}/deployments/web/scale").stdout)
    assert scale["kind"] == "Scale" and scale["spec"] == {"replicas": 4} and scale["status"]["selector"] == "app=web"

"""Environment, volume contents and quantities read from pod specs."""

import base64

import pytest

from mlkube.local.runtime import podspec

POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"app": "a"}}, "spec": {"serviceAccountName": "sa"}}
CONFIGMAP = {"kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"MODE": "fast", "bad key": "x"}}
SECRET = {"kind": "Secret", "metadata": {"name": "s"}, "data": {"TOKEN": base64.b64encode(b"t0k").decode()}}


def env(container, **kw):
    return podspec.environment(
        POD,
        container,
        configmaps=kw.get("configmaps", {"cm": CONFIGMAP}),
        secrets=kw.get("secrets", {"s": SECRET}),
        pod_ip="127.2.0.7",
    )


def test_env_sources_and_precedence():
    container = {
        "envFrom": [{"configMapRef": {"name": "cm"}}, {"secretRef": {"name": "s"}, "prefix": "S_"}],
        "env": [
            {"name": "MODE", "value": "slow"},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "TOKEN"}}},
            {"name": "URL", "value": "http://$(IP):80/$(MISSING)/$$"},
        ],
    }
    assert env(container) == {
        "MODE": "slow",
        "S_TOKEN": "t0k",
        "POD": "p",
        "NS": "ns",
        "IP": "127.2.0.7",
        "APP": "a",
        "KEY": "t0k",
        "URL": "http://127.2.0.7:80/$(MISSING)/$",
    }


def test_missing_secret_names_it():
    container = {"env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}]}
    with pytest.raises(podspec.ConfigError, match='secret "nope" not found'):
        env(container)


def test_missing_key_names_key_and_object():
    container = {"env": [{"name": "K", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "X"}}}]}
    with pytest.raises(podspec.ConfigError, match="couldn't find key X in configmap ns/cm"):
        env(container)


def test_optional_references_are_skipped():
    container = {
        "env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": True}}}],
        "envFrom": [{"configMapRef": {"name": "gone", "optional": True}}],
    }
    assert env(container) == {}


def test_references_cover_env_envfrom_and_volumes():
    pod = {
        "spec": {
            "initContainers": [{"envFrom": [{"secretRef": {"name": "a"}}]}],
            "containers": [{"env": [{"name": "x", "valueFrom": {"configMapKeyRef": {"name": "b", "key": "k"}}}]}],
            "volumes": [{"name": "v", "secret": {"secretName": "c"}}, {"name": "w", "configMap": {"name": "d"}}],
        }
    }
    refs = podspec.references(pod)
    assert refs.secrets == {"a", "c"} and refs.configmaps == {"b", "d"}


def test_volume_files_with_items_and_binary_data():
    cm = {"kind": "ConfigMap", "data": {"a": "1"}, "binaryData": {"b": base64.b64encode(b"\0").decode()}}
    volume = {"name": "v", "configMap": {"name": "cm", "items": [{"key": "b", "path": "dir/b.bin"}]}}
    assert podspec.volume_files(volume, configmaps={"cm": cm}, secrets={}) == {"dir/b.bin": b"\0"}
    assert podspec.volume_files({"name": "e", "emptyDir": {}}, configmaps={}, secrets={}) is None
    with pytest.raises(podspec.ConfigError, match='secret "s" not found'):
        podspec.volume_files({"name": "v", "secret": {"secretName": "s"}}, configmaps={}, secrets={})


@pytest.mark.parametrize(
    ("text", "value"), [("512Mi", 512 * 2**20), ("1G", 1e9), ("100m", 0.1), ("128974848", 128974848), ("1e3", 1000)]
)
def test_quantity(text, value):
    assert podspec.quantity(text) == value


def test_bad_quantity_says_what_is_expected():
    with pytest.raises(ValueError, match="invalid resource quantity '12 MB'"):
        podspec.quantity("12 MB")


def test_container_port_by_number_or_name():
    pod = {"spec": {"containers": [{"ports": [{"name": "http", "containerPort": 8080}]}]}}
    assert podspec.container_port(pod, "http") == 8080
    assert podspec.container_port(pod, 9000) == 9000
    assert podspec.container_port(pod, "grpc") is None


def test_resource_field_refs_give_limits_and_requests_rounded_up_by_divisor():
    container = {
        "resources": {"limits": {"memory": "1536Mi", "cpu": "1500m"}, "requests": {"memory": "1Gi"}},
        "env": [
            {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}},
            {"name": "MEM_MI", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
            {"name": "REQ_GI", "valueFrom": {"resourceFieldRef": {"resource": "requests.memory", "divisor": "1Gi"}}},
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
            {"name": "CPU_REQ_M", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}}},
        ],
    }
    assert env(container) == {"MEM": str(1536 * 2**20), "MEM_MI": "1536", "REQ_GI": "1", "CPU": "2", "CPU_REQ_M": "1500"}


def test_an_unset_limit_is_the_machines_capacity_and_an_unset_request_is_zero():
    container = {
        "env": [
            {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}},
            {"name": "REQ", "valueFrom": {"resourceFieldRef": {"resource": "requests.memory"}}},
        ]
    }
    values = env(container)
    assert int(values["MEM"]) == int(podspec.machine_allocatable("memory")) > 2**28
    assert values["REQ"] == "0"


def test_an_unsupported_resource_field_names_the_variable():
    container = {"env": [{"name": "GPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.nvidia.com/gpu"}}}]}
    with pytest.raises(podspec.ConfigError, match=r"env GPU: unsupported resourceFieldRef\.resource"):
        env(container)

"""Protobuf request bodies: kubectl's own bytes for `create namespace`, and vectors encoded by
the `protobuf` package from descriptors that mirror upstream generated.proto field numbers
(an encoder independent of the decoder under test)."""

import base64

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from mlkube.local.apiserver import protobuf

# Contract §6.1: the body kubectl 1.32 POSTed for `kubectl create namespace probe-ns`.
KUBECTL_CREATE_NAMESPACE = (
    b"k8s\x00"
    + bytes.fromhex("0a0f0a0276311209")
    + b"Namespace"
    + bytes.fromhex("12200a180a08")
    + b"probe-ns"
    + bytes.fromhex("12001a0022002a00320038004200")
    + bytes.fromhex("12001a020a00")
    + bytes.fromhex("1a002200")
)

F = descriptor_pb2.FieldDescriptorProto
STRING, BYTES, BOOL, INT64, INT32, MESSAGE = F.TYPE_STRING, F.TYPE_BYTES, F.TYPE_BOOL, F.TYPE_INT64, F.TYPE_INT32, F.TYPE_MESSAGE
REPEATED, OPTIONAL = F.LABEL_REPEATED, F.LABEL_OPTIONAL

MESSAGES = {
    "TypeMeta": [("apiVersion", 1, STRING), ("kind", 2, STRING)],
    "Unknown": [("typeMeta", 1, ".k.TypeMeta"), ("raw", 2, BYTES), ("contentEncoding", 3, STRING), ("contentType", 4, STRING)],
    "Time": [("seconds", 1, INT64), ("nanos", 2, INT32)],
    "OwnerReference": [
        ("kind", 1, STRING),
        ("name", 3, STRING),
        ("uid", 4, STRING),
        ("apiVersion", 5, STRING),
        ("controller", 6, BOOL),
        ("blockOwnerDeletion", 7, BOOL),
    ],
    "ObjectMeta": [
        ("name", 1, STRING),
        ("generateName", 2, STRING),
        ("namespace", 3, STRING),
        ("creationTimestamp", 8, ".k.Time"),
        ("deletionGracePeriodSeconds", 10, INT64),
        ("labels", 11, "map:string"),
        ("annotations", 12, "map:string"),
        ("ownerReferences", 13, "[.k.OwnerReference"),
        ("finalizers", 14, "[string"),
    ],
    "ConfigMap": [
        ("metadata", 1, ".k.ObjectMeta"),
        ("data", 2, "map:string"),
        ("binaryData", 3, "map:bytes"),
        ("immutable", 4, BOOL),
    ],
    "Secret": [("metadata", 1, ".k.ObjectMeta"), ("data", 2, "map:bytes"), ("type", 3, STRING), ("stringData", 4, "map:string")],
    "LocalObjectReference": [("name", 1, STRING)],
    "ObjectReference": [("kind", 1, STRING), ("namespace", 2, STRING), ("name", 3, STRING)],
    "ServiceAccount": [
        ("metadata", 1, ".k.ObjectMeta"),
        ("secrets", 2, "[.k.ObjectReference"),
        ("imagePullSecrets", 3, "[.k.LocalObjectReference"),
        ("automountServiceAccountToken", 4, BOOL),
    ],
    "Widget": [("metadata", 1, ".k.ObjectMeta")],
    # apps/v1 Deployment and what `kubectl create deployment` fills in (field numbers from upstream).
    "Deployment": [("metadata", 1, ".k.ObjectMeta"), ("spec", 2, ".k.DeploymentSpec")],
    "DeploymentSpec": [
        ("replicas", 1, INT32),
        ("selector", 2, ".k.LabelSelector"),
        ("template", 3, ".k.PodTemplateSpec"),
        ("strategy", 4, ".k.DeploymentStrategy"),
        ("minReadySeconds", 5, INT32),
    ],
    "LabelSelector": [("matchLabels", 1, "map:string")],
    "DeploymentStrategy": [("type", 1, STRING), ("rollingUpdate", 2, ".k.RollingUpdateDeployment")],
    "RollingUpdateDeployment": [("maxUnavailable", 1, ".k.IntOrString"), ("maxSurge", 2, ".k.IntOrString")],
    "IntOrString": [("type", 1, INT64), ("intVal", 2, INT32), ("strVal", 3, STRING)],
    "PodTemplateSpec": [("metadata", 1, ".k.ObjectMeta"), ("spec", 2, ".k.PodSpec")],
    "PodSpec": [("containers", 2, "[.k.Container"), ("terminationGracePeriodSeconds", 4, INT64)],
    "Container": [("name", 1, STRING), ("image", 2, STRING), ("command", 3, "[string"), ("resources", 8, ".k.Resources")],
    "Resources": [("limits", 1, "map:.k.Quantity")],
    "Quantity": [("string", 1, STRING)],
}


def _build_classes():
    file = descriptor_pb2.FileDescriptorProto(name="k.proto", package="k", syntax="proto2")
    for name, fields in MESSAGES.items():
        message = file.message_type.add(name=name)
        for field_name, number, kind in fields:
            field = message.field.add(name=field_name, number=number, label=OPTIONAL)
            if isinstance(kind, int):
                field.type = kind
            elif kind.startswith("map:"):
                entry = message.nested_type.add(name=field_name.capitalize() + "Entry")
                entry.options.map_entry = True
                entry.field.add(name="key", number=1, type=STRING, label=OPTIONAL)
                value = entry.field.add(name="value", number=2, type=BYTES if kind == "map:bytes" else STRING, label=OPTIONAL)
                if kind.startswith("map:."):
                    value.type, value.type_name = MESSAGE, kind[4:]
                field.label, field.type = REPEATED, MESSAGE
                field.type_name = f".k.{name}.{entry.name}"
            elif kind == "[string":
                field.label, field.type = REPEATED, STRING
            else:
                field.label = REPEATED if kind.startswith("[") else OPTIONAL
                field.type, field.type_name = MESSAGE, kind.lstrip("[")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"k.{name}")) for name in MESSAGES}


CLASSES = _build_classes()


def envelope(kind: str, message, api_version: str = "v1", encoding: str = "") -> bytes:
    unknown = CLASSES["Unknown"](raw=message.SerializeToString(), contentEncoding=encoding, contentType="")
    unknown.typeMeta.apiVersion, unknown.typeMeta.kind = api_version, kind
    return protobuf.MAGIC + unknown.SerializeToString()


def test_kubectl_create_namespace_bytes():
    assert protobuf.decode(KUBECTL_CREATE_NAMESPACE) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "probe-ns"},
        "spec": {},
        "status": {},
    }


def test_configmap_with_labels_data_and_binary_data():
    message = CLASSES["ConfigMap"](data={"a": "1", "b": "two"}, binaryData={"blob": b"\x00\xffhi"}, immutable=False)
    message.metadata.name, message.metadata.namespace = "cm1", "default"
    message.metadata.labels["app"] = "demo"
    message.metadata.annotations["note"] = "x"
    assert protobuf.decode(envelope("ConfigMap", message)) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm1", "namespace": "default", "labels": {"app": "demo"}, "annotations": {"note": "x"}},
        "data": {"a": "1", "b": "two"},
        "binaryData": {"blob": base64.b64encode(b"\x00\xffhi").decode()},
        "immutable": False,
    }


def test_secret_bytes_become_base64():
    message = CLASSES["Secret"](type="Opaque", data={"password": b"s3cr\xc3t"}, stringData={"user": "me"})
    message.metadata.generateName = "creds-"
    message.metadata.finalizers.extend(["a", "b"])
    assert protobuf.decode(envelope("Secret", message)) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"generateName": "creds-", "finalizers": ["a", "b"]},
        "type": "Opaque",
        "data": {"password": base64.b64encode(b"s3cr\xc3t").decode()},
        "stringData": {"user": "me"},
    }


def test_service_account_with_references_owner_and_timestamp():
    message = CLASSES["ServiceAccount"](automountServiceAccountToken=False)
    message.metadata.name = "sa"
    message.metadata.creationTimestamp.seconds = 1735689600
    message.metadata.deletionGracePeriodSeconds = 0
    owner = message.metadata.ownerReferences.add(kind="Widget", name="w1", uid="u-1", apiVersion="example.com/v1")
    owner.controller = True
    message.secrets.add(name="tok", kind="Secret")
    message.imagePullSecrets.add(name="registry")
    assert protobuf.decode(envelope("ServiceAccount", message)) == {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": "sa",
            "creationTimestamp": "2025-01-01T00:00:00Z",
            "deletionGracePeriodSeconds": 0,
            "ownerReferences": [
                {"kind": "Widget", "name": "w1", "uid": "u-1", "apiVersion": "example.com/v1", "controller": True}
            ],
        },
        "secrets": [{"kind": "Secret", "name": "tok"}],
        "imagePullSecrets": [{"name": "registry"}],
        "automountServiceAccountToken": False,
    }


def test_deployment_from_the_generic_table():
    message = CLASSES["Deployment"]()
    message.metadata.name = "web"
    message.metadata.labels["app"] = "web"
    spec = message.spec
    spec.replicas = 0  # a pointer in Go: an explicit zero is kept
    spec.minReadySeconds = 0  # omitempty int32: dropped
    spec.selector.matchLabels["app"] = "web"
    spec.strategy.type = "RollingUpdate"
    spec.strategy.rollingUpdate.maxUnavailable.type = 1
    spec.strategy.rollingUpdate.maxUnavailable.strVal = "25%"
    spec.strategy.rollingUpdate.maxSurge.intVal = 2
    spec.template.metadata.labels["app"] = "web"
    spec.template.spec.terminationGracePeriodSeconds = 0
    container = spec.template.spec.containers.add(name="python", image="x", command=["python", "-m", "http.server"])
    container.resources.limits["memory"].string = "64Mi"
    assert protobuf.decode(envelope("Deployment", message, api_version="apps/v1")) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 2}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "terminationGracePeriodSeconds": 0,
                    "containers": [
                        {
                            "name": "python",
                            "image": "x",
                            "command": ["python", "-m", "http.server"],
                            "resources": {"limits": {"memory": "64Mi"}},
                        }
                    ],
                },
            },
        },
    }


def test_table_covers_the_served_builtins():
    for kind in ("v1/Pod", "v1/Service", "apps/v1/Deployment", "apps/v1/ReplicaSet", "batch/v1/Job", "batch/v1/CronJob"):
        assert kind in protobuf.kinds()
    for kind in ("v1/Event", "coordination.k8s.io/v1/Lease", "rbac.authorization.k8s.io/v1/ClusterRoleBinding"):
        assert kind in protobuf.kinds()
    assert "authorization.k8s.io/v1/SelfSubjectAccessReview" in protobuf.kinds()


def test_other_kinds_are_unsupported_and_named():
    message = CLASSES["Widget"]()
    message.metadata.name = "d"
    with pytest.raises(protobuf.Unsupported, match=r"not example\.com/v1 Widget"):
        protobuf.decode(envelope("Widget", message, api_version="example.com/v1"))


def test_content_encoding_is_unsupported():
    with pytest.raises(protobuf.Unsupported, match="gzip"):
        protobuf.decode(envelope("ConfigMap", CLASSES["ConfigMap"](), encoding="gzip"))


@pytest.mark.parametrize(
    "body",
    [
        b'{"kind": "Namespace"}',
        KUBECTL_CREATE_NAMESPACE[:-7],
        protobuf.MAGIC + b"\x0a\x80",
        protobuf.MAGIC + b"\x0b",
        protobuf.MAGIC + b"\x0a\x04\x0a\x02\xff\xfe",
    ],
)
def test_corrupt_bodies_are_bad_bodies(body):
    with pytest.raises(protobuf.BadBody):
        protobuf.decode(body)


def test_bad_body_is_a_value_error_for_the_core():
    assert issubclass(protobuf.BadBody, ValueError)

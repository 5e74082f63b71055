"""Strategic merge patch: one test per strategy and directive, using the patch shapes
kubectl 1.32 sends (client-side apply three-way patches, `kubectl patch`) and the cases of
upstream `strategicpatch/patch_test.go` and the kubectl-patch task page."""

import pytest

from mlkube.local.apiserver import patch, patch_strategic


def smp(live, body, api_version="v1", kind="ConfigMap"):
    return patch.strategic_merge_patch(live, body, api_version=api_version, kind=kind)


def deployment(containers, **spec):
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {**spec, "template": {"spec": {"containers": containers}}},
    }


def containers_of(obj):
    return obj["spec"]["template"]["spec"]["containers"]


def test_supported_kinds():
    assert patch.supports_strategic("v1", "ConfigMap")
    assert patch.supports_strategic("apps/v1", "Deployment")
    assert not patch.supports_strategic("example.com/v1", "Widget")
    with pytest.raises(patch.BadPatch, match="not supported"):
        smp({}, {}, "example.com/v1", "Widget")


def test_configmap_data_behaves_like_a_merge_patch():
    live = {"data": {"a": "1", "b": "2"}, "metadata": {"name": "cm"}}
    result = smp(live, {"data": {"b": None, "c": "3"}})
    assert result["data"] == {"a": "1", "c": "3"}
    assert live["data"] == {"a": "1", "b": "2"}


def test_finalizers_merge_as_a_set_with_patch_items_first():
    result = smp({"metadata": {"finalizers": ["a", "b"]}}, {"metadata": {"finalizers": ["c", "a"]}})
    # Upstream orders patch items first, then server-only items (the kubectl-patch page
    # shows an added container before the existing one); merge patch would give ["c", "a"].
    assert result["metadata"]["finalizers"] == ["c", "a", "b"]


def test_delete_from_primitive_list_and_set_element_order_as_kubectl_sends_them():
    live = {"metadata": {"finalizers": ["a", "b", "c"]}}
    body = {"metadata": {"$setElementOrder/finalizers": ["c", "a"], "$deleteFromPrimitiveList/finalizers": ["b"]}}
    assert smp(live, body)["metadata"]["finalizers"] == ["c", "a"]


def test_owner_references_merge_by_uid():
    live = {"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}, {"uid": "2", "name": "b"}]}}
    result = smp(live, {"metadata": {"ownerReferences": [{"uid": "2", "name": "b2"}, {"$patch": "delete", "uid": "1"}]}})
    assert result["metadata"]["ownerReferences"] == [{"uid": "2", "name": "b2"}]


def test_kubectl_patch_page_adds_a_container_before_the_existing_one():
    live = deployment([{"name": "patch-demo-ctr", "image": "nginx"}])
    body = {"spec": {"template": {"spec": {"containers": [{"name": "patch-demo-ctr-2", "image": "redis"}]}}}}
    assert containers_of(smp(live, body, "apps/v1", "Deployment")) == [
        {"name": "patch-demo-ctr-2", "image": "redis"},
        {"name": "patch-demo-ctr", "image": "nginx"},
    ]


def test_client_side_apply_image_change_keeps_other_fields_and_order():
    live = deployment(
        [{"name": "web", "image": "n:1", "ports": [{"containerPort": 80, "protocol": "TCP"}]}, {"name": "side", "image": "s:1"}]
    )
    body = {
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "web"}, {"name": "side"}],
                    "containers": [{"image": "n:2", "name": "web"}],
                }
            }
        },
    }
    result = smp(live, body, "apps/v1", "Deployment")
    assert containers_of(result) == [
        {"name": "web", "image": "n:2", "ports": [{"containerPort": 80, "protocol": "TCP"}]},
        {"name": "side", "image": "s:1"},
    ]
    assert result["metadata"]["annotations"] == {"kubectl.kubernetes.io/last-applied-configuration": "{}"}


def test_set_element_order_reorders_live_items():
    live = deployment([{"name": "a", "image": "1"}, {"name": "b", "image": "2"}])
    body = {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}}}}
    assert [c["name"] for c in containers_of(smp(live, body, "apps/v1", "Deployment"))] == ["b", "a"]


def test_removing_an_env_var_from_a_container():
    live = deployment([{"name": "web", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}])
    body = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "web"}],
                    "containers": [
                        {"$setElementOrder/env": [{"name": "A"}], "env": [{"$patch": "delete", "name": "B"}], "name": "web"}
                    ],
                }
            }
        }
    }
    assert containers_of(smp(live, body, "apps/v1", "Deployment")) == [{"name": "web", "env": [{"name": "A", "value": "1"}]}]


def test_volume_mounts_merge_by_mount_path():
    live = deployment([{"name": "web", "volumeMounts": [{"mountPath": "/a", "name": "v1"}]}])
    body = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "volumeMounts": [{"mountPath": "/a", "readOnly": True}, {"mountPath": "/b", "name": "v2"}],
                        }
                    ]
                }
            }
        }
    }
    mounts = containers_of(smp(live, body, "apps/v1", "Deployment"))[0]["volumeMounts"]
    assert mounts == [{"mountPath": "/a", "name": "v1", "readOnly": True}, {"mountPath": "/b", "name": "v2"}]


def test_retain_keys_switches_the_deployment_strategy():
    live = deployment([], strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}})
    body = {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": None, "type": "Recreate"}}}
    assert smp(live, body, "apps/v1", "Deployment")["spec"]["strategy"] == {"type": "Recreate"}


def test_retain_keys_switches_a_volume_source():
    live = {"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}}
    body = {"spec": {"volumes": [{"$retainKeys": ["configMap", "name"], "name": "v", "configMap": {"name": "cm"}}]}}
    assert smp(live, body, "v1", "Pod")["spec"]["volumes"] == [{"name": "v", "configMap": {"name": "cm"}}]


def test_retain_keys_must_cover_the_patched_keys():
    with pytest.raises(patch.BadPatch, match="retainKeys"):
        smp(
            {"spec": {"strategy": {}}},
            {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}},
            "apps/v1",
            "Deployment",
        )


def test_patch_replace_on_a_map_and_on_a_list():
    live = {"metadata": {"labels": {"a": "1", "b": "2"}}}
    assert smp(live, {"metadata": {"labels": {"$patch": "replace", "c": "3"}}})["metadata"]["labels"] == {"c": "3"}
    live = deployment([{"name": "a"}, {"name": "b"}])
    body = {"spec": {"template": {"spec": {"containers": [{"name": "c"}, {"$patch": "replace"}]}}}}
    assert containers_of(smp(live, body, "apps/v1", "Deployment")) == [{"name": "c"}]


def test_patch_delete_on_a_map_empties_it():
    assert smp({"data": {"a": "1"}}, {"data": {"$patch": "delete"}}) == {"data": {}}


def test_unknown_directives_are_bad_patches():
    with pytest.raises(patch.BadPatch, match="unknown patch type: frob"):
        smp({"data": {}}, {"data": {"$patch": "frob"}})
    with pytest.raises(patch.PatchError, match="merging lists cannot yet be specified"):
        smp(
            {"metadata": {"ownerReferences": [{"uid": "1"}]}},
            {"metadata": {"ownerReferences": [{"uid": "1", "$patch": "merge"}]}},
        )


def test_lists_without_merge_strategy_are_replaced():
    live = {"spec": {"containers": [{"name": "c", "args": ["a", "b"], "command": ["x"]}]}}
    result = smp(live, {"spec": {"containers": [{"name": "c", "args": ["z"]}]}}, "v1", "Pod")
    assert result["spec"]["containers"] == [{"name": "c", "args": ["z"], "command": ["x"]}]


def test_service_ports_merge_by_port():
    live = {"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443, "targetPort": 8443}]}}
    body = {"spec": {"$setElementOrder/ports": [{"port": 80}, {"port": 443}], "ports": [{"port": 80, "targetPort": 8081}]}}
    assert smp(live, body, "v1", "Service")["spec"]["ports"] == [
        {"port": 80, "targetPort": 8081},
        {"port": 443, "targetPort": 8443},
    ]


def test_status_conditions_merge_by_type():
    live = {"status": {"conditions": [{"type": "Complete", "status": "False"}, {"type": "Failed", "status": "False"}]}}
    result = smp(live, {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}, "batch/v1", "Job")
    assert result["status"]["conditions"] == [{"type": "Complete", "status": "True"}, {"type": "Failed", "status": "False"}]


def test_added_values_lose_nulls_and_directives():
    result = smp({"metadata": {}}, {"metadata": {"labels": {"a": "1", "b": None}}, "data": {"$setElementOrder/x": [], "k": "v"}})
    assert result == {"metadata": {"labels": {"a": "1"}}, "data": {"k": "v"}}


def test_a_null_for_an_absent_key_is_ignored():
    assert smp({"data": {"a": "1"}}, {"data": {"zz": None}, "binaryData": None}) == {"data": {"a": "1"}}


def test_merge_list_items_need_the_merge_key():
    with pytest.raises(patch.PatchError, match="does not contain declared merge key: name"):
        smp(
            deployment([{"name": "a"}]),
            {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}},
            "apps/v1",
            "Deployment",
        )


def test_set_element_order_must_agree_with_the_patch_list():
    body = {"metadata": {"$setElementOrder/finalizers": ["a"], "finalizers": ["b"]}}
    with pytest.raises(patch.BadPatch, match="doesn't match"):
        smp({"metadata": {"finalizers": ["a"]}}, body)


def test_mixed_element_types_cannot_merge():
    with pytest.raises(patch.PatchError, match="not identical"):
        smp({"metadata": {"finalizers": ["a"]}}, {"metadata": {"finalizers": [{"x": 1}]}})


def test_a_value_of_another_shape_replaces():
    assert smp({"data": {"a": "1"}}, {"data": "oops"}) == {"data": "oops"}


def test_nested_crd_validation_rules_merge_by_rule():
    # A CRD schema's `properties` is a map of JSONSchemaProps, whose CEL rules merge by `rule`.
    schema = {
        "properties": {"spec": {"x-kubernetes-validations": [{"rule": "self.a > 0"}, {"rule": "self.b > 0", "message": "b"}]}}
    }
    body = {"properties": {"spec": {"x-kubernetes-validations": [{"rule": "self.b > 0", "message": "B"}]}}}
    merged = patch_strategic.merge(
        patch.copy_json(schema), patch.copy_json(body), "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps"
    )
    assert merged["properties"]["spec"]["x-kubernetes-validations"] == [
        {"rule": "self.a > 0"},
        {"rule": "self.b > 0", "message": "B"},
    ]


def test_crd_updates_from_kubectl_apply_are_strategic():
    live = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "ws.example.com", "finalizers": ["customresourcecleanup.apiextensions.k8s.io"]},
        "spec": {"group": "example.com", "versions": [{"name": "v1", "served": True}]},
    }
    body = {"metadata": {"annotations": {"a": "1"}}, "spec": {"versions": [{"name": "v1", "served": False}]}}
    result = smp(live, body, "apiextensions.k8s.io/v1", "CustomResourceDefinition")
    assert result["spec"]["versions"] == [{"name": "v1", "served": False}]  # versions is an atomic list
    assert result["metadata"]["finalizers"] == ["customresourcecleanup.apiextensions.k8s.io"]

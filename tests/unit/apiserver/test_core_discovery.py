"""Discovery and OpenAPI documents describe the same registry."""

import json

from mlkube.local.apiserver import discovery, openapi, registry


def test_legacy_and_aggregated_discovery_agree():
    types = registry.Registry()
    legacy = {}
    for group in [""] + [g["name"] for g in discovery.api_group_list(types)["groups"]]:
        for version in types.group_versions()[group]:
            for resource in discovery.api_resource_list(types, group, version)["resources"]:
                legacy[(group, version, resource["name"])] = resource["verbs"]
    aggregated = {}
    for core in (True, False):
        for item in discovery.aggregated(types, core=core)["items"]:
            for version in item["versions"]:
                for resource in version["resources"]:
                    aggregated[(item["metadata"]["name"], version["version"], resource["resource"])] = resource["verbs"]
                    for sub in resource.get("subresources", []):
                        aggregated[
                            (item["metadata"]["name"], version["version"], f"{resource['resource']}/{sub['subresource']}")
                        ] = sub["verbs"]
    assert legacy == aggregated
    assert ("", "v1", "namespaces") in legacy and ("apiextensions.k8s.io", "v1", "customresourcedefinitions") in legacy


def test_aggregated_media_type_is_chosen_by_accept():
    assert (
        discovery.wants_aggregated("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json")
        == discovery.AGGREGATED_MEDIA_TYPE
    )
    assert discovery.wants_aggregated("*/*") == ""
    assert discovery.wants_aggregated("application/json") == ""


def test_openapi_patch_operations_advertise_field_validation_for_every_kind():
    types = registry.Registry()
    documents = openapi.Documents(types)
    for path in documents.index()["paths"]:
        document = json.loads(documents.document(path))
        kinds = {
            op["patch"]["x-kubernetes-group-version-kind"]["kind"]
            for op in document["paths"].values()
            if "patch" in op
            if "fieldValidation" in {p["name"] for p in op["patch"]["parameters"]}
        }
        group_version = path.split("/", 1)[1]
        group, _, version = group_version.rpartition("/")
        assert kinds == {t.kind for t in types.resources(group, version)}
        assert openapi.OBJECT_META in document["components"]["schemas"]


def test_index_hash_changes_only_for_the_changed_group_version():
    types = registry.Registry()
    documents = openapi.Documents(types)
    before = documents.index()["paths"]
    types.set_crd(
        "things.g.io",
        [
            registry.ResourceType(
                group="g.io", version="v1", plural="things", kind="Thing", namespaced=True, custom=True, schema={"type": "object"}
            )
        ],
    )
    after = documents.index()["paths"]
    assert "apis/g.io/v1" in after and after["api/v1"] == before["api/v1"]

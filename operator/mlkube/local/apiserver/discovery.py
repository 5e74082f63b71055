"""Discovery documents: legacy (APIVersions, APIGroupList, APIGroup, APIResourceList) and aggregated (apidiscovery v2).

Owns the mapping from the registry to what kubectl, Kopf and the kubernetes client read to find
resources, verbs, short names, categories and subresources. The two formats always describe the
same registry state. Must not know about storage or request handling.
"""

from __future__ import annotations

from typing import Any

from mlkube.local.apiserver import registry

AGGREGATED_MEDIA_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"


def wants_aggregated(accept: str) -> str:
    """The aggregated media type the client asked for, or "" for the legacy format."""
    normalised = accept.replace(" ", "")
    if "g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList" in normalised:
        return AGGREGATED_MEDIA_TYPE
    if "g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList" in normalised:
        return AGGREGATED_V2BETA1
    return ""


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group_version(group: str, version: str) -> dict[str, str]:
    return {"groupVersion": f"{group}/{version}", "version": version}


def api_group(types: registry.Registry, group: str) -> dict[str, Any] | None:
    versions = types.group_versions().get(group)
    if not versions:
        return None
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": [_group_version(group, v) for v in versions],
        "preferredVersion": _group_version(group, versions[0]),
    }


def api_group_list(types: registry.Registry) -> dict[str, Any]:
    groups = [api_group(types, group) for group in types.group_versions() if group]
    for group in groups:
        group.pop("kind")
        group.pop("apiVersion")
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_resource_list(types: registry.Registry, group: str, version: str) -> dict[str, Any] | None:
    resources = types.resources(group, version)
    if not resources:
        return None
    entries = []
    for rtype in resources:
        entry: dict[str, Any] = {
            "name": rtype.plural,
            "singularName": rtype.singular,
            "namespaced": rtype.namespaced,
            "kind": rtype.kind,
            "verbs": list(rtype.verbs),
        }
        if rtype.short_names:
            entry["shortNames"] = list(rtype.short_names)
        if rtype.categories:
            entry["categories"] = list(rtype.categories)
        entries.append(entry)
        for sub in rtype.subresources:
            entry = {
                "name": f"{rtype.plural}/{sub}",
                "singularName": "",
                "namespaced": rtype.namespaced,
                "kind": rtype.kind,
                "verbs": list(registry.SUBRESOURCE_VERBS[sub]),
            }
            if sub in registry.SUBRESOURCE_KINDS:
                entry["group"], entry["version"], entry["kind"] = registry.SUBRESOURCE_KINDS[sub]
            entries.append(entry)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": entries,
    }


def _aggregated_resource(rtype: registry.ResourceType) -> dict[str, Any]:
    kind = {"group": rtype.group, "version": rtype.version, "kind": rtype.kind}
    entry: dict[str, Any] = {
        "resource": rtype.plural,
        "responseKind": kind,
        "scope": "Namespaced" if rtype.namespaced else "Cluster",
        "singularResource": rtype.singular,
        "verbs": list(rtype.verbs),
    }
    if rtype.short_names:
        entry["shortNames"] = list(rtype.short_names)
    if rtype.categories:
        entry["categories"] = list(rtype.categories)
    if rtype.subresources:
        entry["subresources"] = [
            {"subresource": sub, "responseKind": _response_kind(kind, sub), "verbs": list(registry.SUBRESOURCE_VERBS[sub])}
            for sub in rtype.subresources
        ]
    return entry


def _response_kind(parent: dict[str, str], subresource: str) -> dict[str, str]:
    if subresource not in registry.SUBRESOURCE_KINDS:
        return parent
    group, version, kind = registry.SUBRESOURCE_KINDS[subresource]
    return {"group": group, "version": version, "kind": kind}


def aggregated(types: registry.Registry, *, core: bool, media_type: str = AGGREGATED_MEDIA_TYPE) -> dict[str, Any]:
    """`/api` (core only) or `/apis` (every other group) as an APIGroupDiscoveryList."""
    items = []
    for group, versions in types.group_versions().items():
        if (group == "") != core:
            continue
        items.append(
            {
                "metadata": {"name": group, "creationTimestamp": None},
                "versions": [
                    {
                        "version": version,
                        "freshness": "Current",
                        "resources": [_aggregated_resource(t) for t in types.resources(group, version)],
                    }
                    for version in versions
                ],
            }
        )
    api_version = "apidiscovery.k8s.io/v2beta1" if "v2beta1" in media_type else "apidiscovery.k8s.io/v2"
    return {"kind": "APIGroupDiscoveryList", "apiVersion": api_version, "metadata": {}, "items": items}

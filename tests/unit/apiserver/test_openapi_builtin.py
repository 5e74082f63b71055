"""Built-in kinds are documented by the upstream schemas, and every reference resolves in its document."""

import json
import re

from mlkube.local.apiserver import openapi, registry


def _refs(text: str, prefix: str) -> set[str]:
    return set(re.findall(re.escape(prefix) + r'([^"]+)"', text))


def test_group_version_documents_carry_upstream_schemas_and_resolve_every_reference():
    types = registry.Registry()
    documents = openapi.Documents(types)
    for path in documents.index()["paths"]:
        text = documents.document(path).decode()
        schemas = json.loads(text)["components"]["schemas"]
        assert _refs(text, '"#/components/schemas/') <= set(schemas), path
    apps = json.loads(documents.document("apis/apps/v1"))["components"]["schemas"]
    strategy = apps["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"]
    assert strategy["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy"}]
    assert apps["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}
    ]
    assert apps["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"] == "int-or-string"


def test_every_served_builtin_kind_has_its_upstream_schema():
    # metrics.k8s.io is an aggregated API upstream: its schemas are not in the core OpenAPI (a lean one is served).
    served = [t for t in registry.Registry().all() if t.group != "metrics.k8s.io"]
    missing = [t.kind for t in served if openapi.schema_name(t) not in openapi.upstream_definitions()]
    assert missing == []


def test_swagger_v2_holds_the_same_definitions_with_v2_references():
    document = openapi.swagger_v2(registry.Registry())
    text = json.dumps(document)
    assert document["swagger"] == "2.0" and "#/components/" not in text
    assert _refs(text, '"#/definitions/') <= set(document["definitions"])
    assert "io.k8s.api.batch.v1.CronJobSpec" in document["definitions"]

"""Status bodies keep upstream's field order and omitempty: clients print them verbatim."""

import json

from mlkube.local.apiserver import errors


def test_already_exists_in_the_core_group_prints_like_kube_apiserver():
    # The kubernetes package's create_from_yaml prints this body as is (its e2e suite compares the text).
    body = json.dumps(errors.already_exists("services", "", "mock-2").status(), separators=(",", ":"))
    assert body == (
        '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        '"message":"services \\"mock-2\\" already exists","reason":"AlreadyExists",'
        '"details":{"name":"mock-2","kind":"services"},"code":409}'
    )


def test_grouped_details_keep_the_group_and_code_comes_last():
    status = errors.already_exists("deployments", "apps", "web").status()
    assert list(status) == ["kind", "apiVersion", "metadata", "status", "message", "reason", "details", "code"]
    assert status["details"] == {"name": "web", "group": "apps", "kind": "deployments"}


def test_success_status_omits_the_empty_group():
    assert errors.success_status(name="cm", group="", kind="configmaps")["details"] == {"name": "cm", "kind": "configmaps"}

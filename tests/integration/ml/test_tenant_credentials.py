"""Tenant storage is read with the tenant's credentials only: with ``Options(default_credentials=False)``
(drift analysis, unless the project sets ``spec.storage.useDefaultCredentials``) a request carries the
keys from the environment (the project's Secret) or none at all, never credentials from boto3's default
chain (here a shared credentials file standing for the pod's own identity, as an instance profile
would). What the store receives is recorded by a loopback S3 endpoint that refuses everything."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest

from mlkube import driftcheck
from mlkube.ml import errors, storage

DENIED = b"""<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"""


class Store(http.server.ThreadingHTTPServer):
    """An S3 endpoint that answers 403 AccessDenied and records each request's Authorization header."""

    def __init__(self) -> None:
        self.authorizations: list[str | None] = []
        store = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                store.authorizations.append(self.headers.get("Authorization"))
                self.send_response(403)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(DENIED)))
                self.end_headers()
                self.wfile.write(DENIED)

            do_HEAD = do_GET

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def store() -> Iterator[Store]:
    server = Store()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def operator_identity(tmp_path, monkeypatch) -> str:
    """Credentials the default chain would find (the pod's own identity), and no keys in the environment."""
    credentials = tmp_path / "credentials"
    credentials.write_text("[default]\naws_access_key_id = OPERATORKEY\naws_secret_access_key = operator-secret\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    return "OPERATORKEY"


def test_without_the_projects_keys_a_tenant_read_is_anonymous_and_says_what_to_set(store, operator_identity):
    with pytest.raises(errors.AccessDenied) as refused:
        storage.read_bytes(
            "s3://tenant/m/v1/MANIFEST.json", options=storage.Options(endpoint=store.endpoint, default_credentials=False)
        )
    assert store.authorizations == [None], "the request went unsigned: no credentials of the operator's chain"
    assert "no S3 credentials were given and the default credential chain is not used" in str(refused.value)
    assert "spec.storage.credentialsSecret" in str(refused.value) and "spec.storage.useDefaultCredentials" in str(refused.value)


def test_the_projects_keys_are_the_only_credentials_used(store, operator_identity, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "TENANTKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "tenant-secret")
    with pytest.raises(errors.AccessDenied):
        storage.read_bytes("s3://tenant/x", options=storage.Options(endpoint=store.endpoint, default_credentials=False))
    [authorization] = store.authorizations
    assert "Credential=TENANTKEY/" in authorization and operator_identity not in authorization


def test_the_default_chain_is_used_only_when_opted_in(store, operator_identity):
    with pytest.raises(errors.AccessDenied):
        storage.read_bytes("s3://tenant/x", options=storage.Options(endpoint=store.endpoint, default_credentials=True))
    [authorization] = store.authorizations
    assert f"Credential={operator_identity}/" in authorization


def test_drift_analysis_without_a_secret_never_signs_with_the_pods_identity(store, operator_identity):
    request = {
        "reference": {"uri": "s3://tenant/m/v1/", "endpoint": store.endpoint, "digest": "sha256:" + "0" * 64},
        "traffic": {
            "uri": "s3://tenant/m",
            "endpoint": store.endpoint,
            "namespace": "ml",
            "deployment": "prod",
            "size": 100,
            "since": "2026-11-24T00:00:00Z",
        },
        "minSamples": 10,
        "conceptDrift": {"metric": "f1"},
        "report": {"uri": "s3://tenant/m/reports/r.html"},
    }
    body, code = driftcheck.answer(json.dumps(request))
    assert code == 1 and body["error"].startswith("AccessDenied: s3://tenant/m/v1/MANIFEST.json: access denied")
    assert "spec.storage.credentialsSecret" in body["error"]
    assert store.authorizations and set(store.authorizations) == {None}

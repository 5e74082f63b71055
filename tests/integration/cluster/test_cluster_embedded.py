"""The manifests against a running API server: mlkube's embedded control plane.

- ``kubectl apply --dry-run=server`` of the dev overlay and the samples: the server's own
  validation (CRD schemas with CEL rules, defaulting, strict field validation) on every object
  of a kind it serves. KServe's kinds and PersistentVolumeClaims are not served by the embedded
  server; they are validated offline in test_cluster_manifests.py.
- RBAC coverage: the real operator runs against the server through a recording proxy while it
  reconciles the samples; every request it makes must be allowed by what its install grants:
  cluster-wide (overlays/dev), and namespaced (overlays/production: started with --namespace=ml,
  its rules bound in `ml` only). The ModelVersion passes that purge a retired version's
  artifacts (which the samples never reach) are driven one by one through the same proxy.

Skipped, with the reason, until the embedded API server (mlkube.local.apiserver.server) lands
or when kubectl is not on PATH.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import pathlib
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import cluster_access as ca
import cluster_schemas as cs
import pytest
import yaml

apiserver = pytest.importorskip("mlkube.local.apiserver.server", reason="the embedded API server has not landed yet")
pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not on PATH")


@pytest.fixture
def server(tmp_path) -> Iterator[Any]:
    running = apiserver.run_in_thread(str(tmp_path / "state"))
    try:
        yield running
    finally:
        running.stop()


def kubectl(server: Any, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["kubectl", "--kubeconfig", server.kubeconfig_path, *args], input=stdin, capture_output=True, text=True, timeout=120
    )


def install_namespaces_and_crds(server: Any, objects: list[dict]) -> None:
    """What a dry run cannot create for the objects after it: their namespaces and kinds."""
    for kind in ("Namespace", "CustomResourceDefinition"):
        result = kubectl(server, "apply", "-f", "-", stdin=yaml.safe_dump_all([o for o in objects if o["kind"] == kind]))
        assert result.returncode == 0, result.stderr
    result = kubectl(server, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    assert result.returncode == 0, result.stderr


def served_kinds(server: Any) -> set[tuple[str, str]]:
    """(group, kind) of every resource the server serves, from discovery."""
    result = kubectl(server, "api-resources", "--no-headers", "-o", "wide")
    assert result.returncode == 0, result.stderr
    kinds = set()
    for line in result.stdout.splitlines():
        columns = line.split()
        api_version = next(c for c in columns if re.fullmatch(r"([a-z0-9.-]+/)?v\d+\w*", c))
        kind = columns[columns.index(api_version) + 2]
        kinds.add((api_version.rpartition("/")[0], kind))
    return kinds


def dry_run(server: Any, objects: list[dict]) -> subprocess.CompletedProcess:
    served = served_kinds(server)
    wanted = [o for o in objects if (cs.group_of(o), o["kind"]) in served and o["kind"] != "Namespace"]
    assert wanted, "the server serves none of these kinds"
    return kubectl(server, "apply", "--dry-run=server", "--validate=strict", "-f", "-", stdin=yaml.safe_dump_all(wanted))


def test_dev_overlay_dry_runs_on_the_embedded_api_server(server):
    objects = cs.build("overlays/dev")
    install_namespaces_and_crds(server, objects)
    result = dry_run(server, objects)
    assert result.returncode == 0, result.stdout + result.stderr


def test_samples_dry_run_and_a_misspelled_field_is_refused(server):
    install_namespaces_and_crds(server, cs.build("overlays/dev"))
    samples = cs.build("samples")
    result = dry_run(server, samples)
    assert result.returncode == 0, result.stdout + result.stderr
    (project,) = [o for o in samples if o["kind"] == "MLProject"]
    project["spec"]["problem"]["primaryMetrik"] = project["spec"]["problem"].pop("primaryMetric")
    result = dry_run(server, [project])
    assert result.returncode != 0 and "primaryMetrik" in result.stderr, result.stderr


# --- RBAC coverage ----------------------------------------------------------------------------

_RESOURCE_PATH = re.compile(
    r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<namespace>[^/]+))?(?:/(?P<resource>[^/]+)(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?)?$"
)


def rbac_request(method: str, path: str, query: dict[str, str]) -> tuple[str | None, str, str, str] | None:
    """(namespace, group, resource[/subresource], verb) of a request, as RBAC sees it; None for
    discovery. The namespace is None for cluster-scoped resources and requests across namespaces."""
    match = _RESOURCE_PATH.match(path)
    if not match or not match["resource"]:
        return None  # /api, /apis/<group>/<version>, /openapi, /version: allowed to everyone
    group = match["group"] or ""
    if match["namespace"] and not match["resource"]:
        return None
    resource, name, sub = match["resource"], match["name"], match["sub"]
    if path.startswith("/api/v1/namespaces/") and match["namespace"] and resource is None:
        resource, name = "namespaces", match["namespace"]
    verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method)
    if method == "GET":
        verb = "watch" if query.get("watch") in ("true", "1") else ("get" if name else "list")
    if method == "DELETE" and not name:
        verb = "deletecollection"
    return match["namespace"], group, f"{resource}/{sub}" if sub else resource, verb


def allowed(objects: list[dict], namespace: str | None, group: str, resource: str, verb: str) -> bool:
    """Whether the install of ``objects`` lets the operator's ServiceAccount make this request."""
    rules = ca.namespace_rules(objects, namespace) if namespace else ca.cluster_rules(objects)
    return ca.allows(rules, group, resource, verb)


class RecordingProxy:
    """A plain-HTTP reverse proxy to the embedded server that records (method, path, query)."""

    def __init__(self, upstream: Any) -> None:
        self.upstream = upstream
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        assert self._ready.wait(30), "the recording proxy did not start"
        return self

    def __exit__(self, *_: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        import ssl

        import aiohttp
        from aiohttp import web

        asyncio.set_event_loop(self.loop)
        context = ssl.create_default_context(cafile=self.upstream.ca_path)

        async def forward(request: web.Request) -> web.StreamResponse:
            self.requests.append((request.method, request.path, dict(request.query)))
            headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
            headers["Authorization"] = f"Bearer {self.upstream.token}"
            async with session.request(
                request.method, self.upstream.url + request.path_qs, headers=headers, data=await request.read(), ssl=context
            ) as upstream:
                response = web.StreamResponse(
                    status=upstream.status,
                    headers={
                        k: v
                        for k, v in upstream.headers.items()
                        if k.lower() not in ("content-length", "transfer-encoding", "content-encoding", "connection")
                    },
                )
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                return response

        async def start() -> None:
            nonlocal session
            session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", forward)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]

        session = None
        self.loop.run_until_complete(start())
        self._ready.set()
        self.loop.run_forever()


def _wait_for(condition, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def _proxy_kubeconfig(path: pathlib.Path, port: int) -> pathlib.Path:
    """A kubeconfig for the operator that reaches the server through the recording proxy."""
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "proxy",
                "clusters": [{"name": "proxy", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "operator", "user": {"token": "recorded-by-the-proxy"}}],
                "contexts": [{"name": "proxy", "context": {"cluster": "proxy", "user": "operator"}}],
            }
        )
    )
    return path


@contextlib.contextmanager
def running_operator(kubeconfig: pathlib.Path, namespaces: list[str]) -> Iterator[None]:
    from mlkube.control import runner as operator

    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(
        target=operator.run,
        kwargs={"namespaces": namespaces, "kubeconfig": str(kubeconfig), "stop_flag": stop, "ready_flag": ready},
        daemon=True,
    )
    thread.start()
    try:
        assert ready.wait(60), "the operator did not become ready"
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


@pytest.mark.parametrize("install", ["overlays/dev", "overlays/production"])
def test_every_request_of_the_operator_is_allowed_by_its_install(install, server, tmp_path, monkeypatch):
    dev = cs.build("overlays/dev")
    install_namespaces_and_crds(server, dev)
    secrets = [o for o in dev if o["kind"] == "Secret"]
    assert kubectl(server, "apply", "-f", "-", stdin=yaml.safe_dump_all(secrets)).returncode == 0
    granting = cs.build(install)
    watched = ca.watched_namespaces(granting)
    # The operator is started as the install's Deployment starts it.
    namespaces = [] if watched is ca.ALL_NAMESPACES else sorted(watched)

    with RecordingProxy(server) as proxy:
        kubeconfig = _proxy_kubeconfig(tmp_path / "operator-kubeconfig", proxy.port)
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))  # Kopf's own login reads it
        with running_operator(kubeconfig, namespaces):
            samples = [o for o in cs.build("samples") if cs.group_of(o) == "mlkube.io"]
            result = kubectl(server, "apply", "-f", "-", stdin=yaml.safe_dump_all(samples))
            assert result.returncode == 0, result.stderr
            # The TrainingJob controller has created the Job and written status, and the other
            # controllers have reported on their objects.
            _wait_for(
                lambda: kubectl(server, "-n", "ml", "get", "tj", "penguins-manual-1", "-o", "jsonpath={.status.jobName}").stdout,
                60,
                "the trainer Job",
            )
            for kind in ("mlp", "mdep", "dmon"):
                _wait_for(
                    lambda kind=kind: kubectl(server, "-n", "ml", "get", kind, "-o", "jsonpath={.items[*].status.phase}").stdout,
                    60,
                    f"status of the {kind}",
                )

    made = {rbac_request(m, p, q) for m, p, q in proxy.requests} - {None}
    assert ("ml", "batch", "jobs", "create") in made, "the recording missed the Job the operator created"
    assert [r for r in sorted(made, key=str) if not allowed(granting, *r)] == []
    if namespaces:
        # Namespaced: no request reads or writes anything across namespaces but the discovery.
        across = {(g, r, v) for ns, g, r, v in made if ns is None}
        assert {(g, r) for g, r, _ in across} <= {("apiextensions.k8s.io", "customresourcedefinitions"), ("", "namespaces")}
        assert {ns for ns, *_ in made} - {None} == set(namespaces)


@pytest.mark.parametrize("install", ["overlays/dev", "overlays/production"])
def test_the_purge_of_a_retired_versions_artifacts_is_allowed_by_the_install(install, server, tmp_path):
    """The ModelVersion passes that start a purge Job (its ServiceAccount, the credentials Secret's
    existence), read its failure (its pods) and its success (the Job deleted, status, Event), with
    the Job's outcome written by hand (this server runs no Job controller)."""
    from mlkube.clients import k8s
    from mlkube.control.reconcile import modelversion as modelversion_reconcile

    dev = cs.build("overlays/dev")
    install_namespaces_and_crds(server, dev)
    secrets = [o for o in dev if o["kind"] == "Secret"]
    (sample,) = [o for o in cs.build("samples") if o["kind"] == "MLProject"]
    version = {
        "apiVersion": "mlkube.io/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": "penguins-v1", "namespace": "ml", "labels": {"mlkube.io/project": "penguins"}},
        "spec": {
            "projectRef": "penguins",
            "version": 1,
            "artifactUri": sample["spec"]["storage"]["uri"] + "/runs/penguins-manual-1-0a1b2c3d/",
            "digest": "sha256:" + "0" * 64,
            "trainingJob": "penguins-manual-1",
        },
    }
    result = kubectl(server, "apply", "-f", "-", stdin=yaml.safe_dump_all([*secrets, sample, version]))
    assert result.returncode == 0, result.stderr
    retired = {"status": {"phase": "Retired", "retiredAt": "2026-01-01T00:00:00Z"}}  # the grace period has passed
    result = kubectl(
        server, "-n", "ml", "patch", "mv", "penguins-v1", "--subresource=status", "--type=merge", "-p", json.dumps(retired)
    )
    assert result.returncode == 0, result.stderr

    def job_ends(condition: str) -> None:
        # Just now: a failed Job is kept (to be read) before a new one tries again.
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        status = {"status": {"conditions": [{"type": condition, "status": "True", "lastTransitionTime": now}]}}
        result = kubectl(
            server,
            "-n",
            "ml",
            "patch",
            "job",
            "penguins-v1-purge",
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps(status),
        )
        assert result.returncode == 0, result.stderr

    with RecordingProxy(server) as proxy:
        kubeconfig = _proxy_kubeconfig(tmp_path / "operator-kubeconfig", proxy.port)

        async def passes() -> None:
            client = k8s.Client(k8s.Credentials.load(str(kubeconfig)))
            try:
                await modelversion_reconcile.reconcile(client, "penguins-v1", "ml", image="ghcr.io/mlkube/mlkube:test")
                assert await client.get(k8s.JOBS, "penguins-v1-purge", "ml") is not None, "no purge Job"
                job_ends("Failed")
                await modelversion_reconcile.reconcile(client, "penguins-v1", "ml", image="ghcr.io/mlkube/mlkube:test")
                job_ends("Complete")
                await modelversion_reconcile.reconcile(client, "penguins-v1", "ml", image="ghcr.io/mlkube/mlkube:test")
            finally:
                await client.close()

        asyncio.run(passes())

    assert kubectl(server, "-n", "ml", "get", "mv", "penguins-v1", "-o", "jsonpath={.status.artifactsDeleted}").stdout == "true"
    made = {rbac_request(m, p, q) for m, p, q in proxy.requests} - {None}
    expected = [("ml", "", "secrets", "get"), ("ml", "batch", "jobs", "create"), ("ml", "", "pods", "list")]
    for request in (*expected, ("ml", "batch", "jobs", "delete"), ("ml", "", "events", "create")):
        assert request in made, f"the recording missed {request}"
    granting = cs.build(install)
    assert [r for r in sorted(made, key=str) if not allowed(granting, *r)] == []

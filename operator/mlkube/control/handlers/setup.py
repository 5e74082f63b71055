"""Operator start-up and shutdown: Kopf settings and the shared API client."""

from __future__ import annotations

import os
from typing import Any

import kopf

from mlkube.clients import k8s, metrics
from mlkube.control.manifests import meta

# Kopf keeps its own bookkeeping in annotations under our prefix, never in status: status is
# ours, computed whole and validated by the CRD schema (which has no room for Kopf's fields).
ANNOTATION_PREFIX = "kopf.mlkube.io"
WORKERS = 1000  # concurrent per-object workers per kind
IDLE_SECONDS = 1.0  # how long an object's worker waits for its next event before it exits


def image() -> str:
    """The project's image for the trainer Jobs and routers the operator creates; the operator's
    Deployment sets MLKUBE_IMAGE to its own image, so they all run the same code."""
    return os.environ.get("MLKUBE_IMAGE", meta.IMAGE)


def study_storage() -> str | None:
    """The operator's default study database for trial pods (``tuning.workers`` > 1) whose spec
    names no ``tuning.storage``: the URL in MLKUBE_STUDY_STORAGE (``mlkube local up`` sets an
    SQLite file in its state directory); None when not configured."""
    return os.environ.get("MLKUBE_STUDY_STORAGE") or None


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=ANNOTATION_PREFIX)
    settings.persistence.finalizer = "mlkube.io/finalizer"
    settings.posting.level = 20  # Normal events and up
    settings.watching.server_timeout = 600
    # Kopf runs one worker per object and keeps it IDLE_SECONDS for that object's next event; the
    # limit caps concurrent workers per kind, so a burst is served at about WORKERS/IDLE_SECONDS
    # objects a second (64 workers kept 5 s capped it at 13/s). Each worker is one asyncio task
    # and the API client's pool (32 connections) bounds the requests they make at once.
    settings.queueing.worker_limit = WORKERS
    settings.queueing.idle_timeout = IDLE_SECONDS
    memo.k8s = k8s.Client(k8s.Credentials.load(memo.get("kubeconfig")))
    port = os.environ.get("MLKUBE_METRICS_PORT")
    if port:
        metrics.serve(int(port))


@kopf.on.login()
async def login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    """Kopf connects with the same credentials as our client: ``--kubeconfig``, else the usual places."""
    credentials = k8s.Credentials.load(memo.get("kubeconfig"))
    return kopf.ConnectionInfo(
        server=credentials.server,
        token=credentials.token,
        ca_path=credentials.ca_path,
        certificate_path=credentials.cert_path,
        private_key_path=credentials.key_path,
        insecure=credentials.insecure,
    )


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    client = memo.get("k8s")
    if client is not None:
        await client.close()

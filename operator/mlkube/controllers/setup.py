"""Operator start-up and shutdown: Kopf settings and the shared API client."""

from __future__ import annotations

from typing import Any

import kopf

from mlkube import k8s

# Kopf keeps its own bookkeeping in annotations under our prefix, never in status: status is
# ours, computed whole and validated by the CRD schema (which has no room for Kopf's fields).
ANNOTATION_PREFIX = "kopf.mlkube.io"


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=ANNOTATION_PREFIX)
    settings.persistence.finalizer = "mlkube.io/finalizer"
    settings.posting.level = 20  # Normal events and up
    settings.watching.server_timeout = 600
    settings.batching.worker_limit = 64
    memo.k8s = k8s.Client(k8s.Credentials.load(memo.get("kubeconfig")))


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    client = memo.get("k8s")
    if client is not None:
        await client.close()

"""How a reconcile pass that must wait reaches Kopf: ``RetryLater`` becomes ``kopf.TemporaryError``."""

from __future__ import annotations

from collections.abc import Awaitable

import kopf

from mlkube.control.reconcile import execute


async def retried(reconciled: Awaitable[None]) -> None:
    """Await a pass; when it asks to be retried later, Kopf retries the handler after that delay
    and shows the message (what is awaited) in its log."""
    try:
        await reconciled
    except execute.RetryLater as retry:
        raise kopf.TemporaryError(retry.message, delay=retry.delay) from retry

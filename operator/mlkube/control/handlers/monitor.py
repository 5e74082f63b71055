"""DriftMonitor handlers: a spec change analyses at once; a daemon per monitor checks once a
second whether the next analysis is due. Everything else is ``reconcile.monitor``."""

from __future__ import annotations

from typing import Any

import kopf

from mlkube.api import base, kinds
from mlkube.control.handlers import retry, setup
from mlkube.control.reconcile import monitor

RESOURCE = (base.GROUP, base.VERSION, kinds.DRIFTMONITOR.plural)
TICK_SECONDS = 1.0


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
async def spec_changed(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    await retry.retried(monitor.reconcile(memo.k8s, name, namespace, force=True, image=setup.image()))


@kopf.daemon(*RESOURCE, cancellation_timeout=5)
async def watch(body: kopf.Body, name: str, namespace: str, memo: kopf.Memo, stopped: kopf.DaemonStopped, **_: Any) -> None:
    """One loop per monitor (a daemon, not a timer: no log line per tick); ``body`` stays current."""
    while not stopped:
        await retry.retried(monitor.reconcile(memo.k8s, name, namespace, seen=dict(body), image=setup.image()))
        await stopped.wait(TICK_SECONDS)

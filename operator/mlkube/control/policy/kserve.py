"""What KServe reports about InferenceServices, and a Service's address, read purely.

Owns the reading of an InferenceService's status as the ModelDeployment controller needs it:
whether a version is Ready, where it answers, why it is not ready, and whether KServe refuses to
load its model (``modelStatus``), as opposed to a server that was killed and is restarting.

Must not: do I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from mlkube.control.policy import conditions


@dataclasses.dataclass(frozen=True)
class Seen:
    """The versions' InferenceServices as one pass saw them."""

    ready: Mapping[int, bool]
    urls: Mapping[int, str]
    """Where each version answers, once KServe reports an address."""
    load_failures: Mapping[int, str]
    """Version -> why KServe cannot load its model (only versions that are not Ready)."""
    not_ready: Mapping[int, str]
    """Version -> the message of its Ready (or PredictorReady) condition, when it has one."""

    @classmethod
    def of(cls, isvcs: Mapping[int, dict[str, Any]]) -> Seen:
        ready = {v: conditions.is_true(_status(obj).get("conditions"), "Ready") for v, obj in isvcs.items()}
        return cls(
            ready=ready,
            urls={v: url for v, obj in isvcs.items() if (url := isvc_url(obj))},
            load_failures={v: why for v, obj in isvcs.items() if (why := load_failure(obj)) and not ready[v]},
            not_ready={v: why for v, obj in isvcs.items() if (why := not_ready_reason(obj))},
        )


def load_failure(isvc: dict[str, Any] | None) -> str | None:
    """Why KServe reports the version's model cannot load (``modelStatus``), if it does.

    A server killed by a signal (exit code 128+: OOM kill, eviction, a person) is not a refusal
    to load: the kubelet restarts it, and the analysis judges what clients saw meanwhile.
    """
    model_status = _status(isvc).get("modelStatus") or {}
    if (model_status.get("states") or {}).get("targetModelState") != "FailedToLoad":
        return None
    info = model_status.get("lastFailureInfo") or {}
    if (info.get("exitCode") or 0) >= 128:
        return None
    return info.get("message") or info.get("reason") or "the model failed to load"


def not_ready_reason(isvc: dict[str, Any] | None) -> str | None:
    """The message of the InferenceService's Ready condition, else of PredictorReady."""
    for type_ in ("Ready", "PredictorReady"):
        found = conditions.find(_status(isvc).get("conditions"), type_)
        if found and found.get("message"):
            return found["message"]
    return None


def isvc_url(isvc: dict[str, Any] | None) -> str | None:
    """The InferenceService's address (``status.address.url``, else ``status.url``)."""
    status = _status(isvc)
    return (status.get("address") or {}).get("url") or status.get("url")


def service_url(service: dict[str, Any] | None) -> str | None:
    """``http://<clusterIP>:<first port>`` of a Service, once it has a cluster IP."""
    spec = (service or {}).get("spec") or {}
    ip = spec.get("clusterIP")
    port = next(iter(spec.get("ports") or []), {}).get("port", 80)
    return f"http://{ip}:{port}" if ip and ip != "None" else None


def _status(obj: dict[str, Any] | None) -> dict[str, Any]:
    return (obj or {}).get("status") or {}

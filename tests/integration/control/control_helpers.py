"""What a user sees of a reconciled object: its Events."""

from __future__ import annotations

import json


def events_of(kubectl, namespace: str, name: str) -> list[tuple[str, str]]:
    """(reason, message) of the Events about ``name``, oldest first, as ``kubectl get events`` shows them."""
    listed = json.loads(kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    mine = [e for e in listed if e["involvedObject"]["name"] == name]
    # Timestamps have whole seconds; the resourceVersion orders Events posted within one second.
    mine.sort(key=lambda e: (e.get("firstTimestamp") or "", int(e["metadata"].get("resourceVersion") or 0)))
    return [(e["reason"], e["message"]) for e in mine]


def project_manifest(namespace: str, name: str = "p", **spec) -> dict:
    """A minimal valid MLProject; ``spec`` adds or replaces top-level spec fields."""
    return {
        "apiVersion": "mlkube.io/v1alpha1",
        "kind": "MLProject",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "goal": {"description": "d", "type": "Process"},
            "problem": {"task": "regression", "target": "y", "primaryMetric": "rmse"},
            "data": {"uri": "file:///d.csv"},
            "storage": {"uri": "file:///s"},
            **spec,
        },
    }


class Interrupted:
    """The operator's client, except that someone else writes the object right before each of its
    first ``times`` status writes, so that those writes conflict. Counts writes and conflicts."""

    def __init__(self, client, *, times: int = 1) -> None:
        self._client = client
        self._remaining = times
        self.status_writes = 0
        self.conflicts = 0

    def __getattr__(self, name: str):
        return getattr(self._client, name)

    async def patch_status(self, resource, name, namespace, patch, **kwargs):
        from mlkube.clients import k8s

        self.status_writes += 1
        if self._remaining:
            self._remaining -= 1
            await self._client.patch(resource, name, namespace, {"metadata": {"labels": {"touched": str(self.status_writes)}}})
        try:
            return await self._client.patch_status(resource, name, namespace, patch, **kwargs)
        except k8s.Conflict:
            self.conflicts += 1
            raise

"""What a user sees of a reconciled object: its Events."""

from __future__ import annotations

import json


def events_of(kubectl, namespace: str, name: str) -> list[tuple[str, str]]:
    """(reason, message) of the Events about ``name``, oldest first, as ``kubectl get events`` shows them."""
    listed = json.loads(kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    mine = [e for e in listed if e["involvedObject"]["name"] == name]
    mine.sort(key=lambda e: (e.get("firstTimestamp") or "", e["metadata"].get("creationTimestamp") or ""))
    return [(e["reason"], e["message"]) for e in mine]

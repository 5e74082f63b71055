"""Polling and reading helpers of the runtime's integration tests (real kubectl, real /proc)."""

from __future__ import annotations

import json
import pathlib
import time
from collections.abc import Callable
from typing import Any

import yaml


def wait_for(condition: Callable[[], Any], *, timeout: float = 30, what: str = "") -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}; last={last!r}")


def get_json(kubectl, *args: str) -> dict:
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


def apply(kubectl, namespace: str, *manifests: str | dict) -> None:
    """``kubectl apply`` of manifests (JSON strings or dicts) as one YAML stream."""
    documents = [m if isinstance(m, dict) else json.loads(m) for m in manifests]
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(documents))


def condition(obj: dict, type_: str) -> dict:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            return cond
    return {}


def process_alive(pid: int) -> bool:
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def container_pids(pods: list[dict]) -> list[int]:
    """The pids of the containers the runtime reported (``containerID: mlkube://<pid>``)."""
    return [
        int(s["containerID"].removeprefix("mlkube://"))
        for p in pods
        for s in (p.get("status") or {}).get("containerStatuses") or []
        if s.get("containerID")
    ]


def bound_service_addresses() -> set[str]:
    """127.1.x.y addresses some process on this machine listens on (another local cluster's
    Services), read from /proc/net/tcp."""
    addresses = set()
    for line in pathlib.Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state != "0A":  # LISTEN
            continue
        raw = bytes.fromhex(local.split(":")[0])[::-1]
        address = ".".join(str(b) for b in raw)
        if address.startswith("127.1."):
            addresses.add(address)
    return addresses

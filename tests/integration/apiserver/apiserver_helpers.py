"""Shared bits of the API server scenarios: the Widget test CRD and small waiting helpers."""

from __future__ import annotations

import json
import pathlib
import ssl
import time
from collections.abc import Callable
from typing import Any

import httpx

MANIFESTS = pathlib.Path(__file__).parent / "manifests"
WIDGET_CRD = MANIFESTS / "widget-crd.yaml"


def widget(name: str, *, size: int | None = 5, **spec: Any) -> str:
    body: dict[str, Any] = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": dict(spec)}
    if size is not None:
        body["spec"]["size"] = size
    return json.dumps(body)


def eventually(check: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Retry `check` until it returns something truthy without raising; re-raise the last failure."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
            failure: BaseException | None = AssertionError(f"{check} stayed falsy: {result!r}")
        except (AssertionError, KeyError, ValueError) as exc:
            failure = exc
        if time.monotonic() > deadline:
            raise failure
        time.sleep(interval)


def client_for(server: Any, *, token: str | None = None) -> httpx.Client:
    """An httpx client trusting the server's CA; authenticated unless `token=""`."""
    token = server.token if token is None else token
    return httpx.Client(
        base_url=server.url,
        verify=ssl.create_default_context(cafile=server.ca),
        timeout=30,
        headers={"Authorization": f"Bearer {token}"} if token else {},
    )

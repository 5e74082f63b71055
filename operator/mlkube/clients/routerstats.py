"""Reading a router's measurements (``GET /mlkube/stats``) for rollout analysis.

A data-plane call, not a Kubernetes API call: the router is reached at its Service's address.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

TIMEOUT = aiohttp.ClientTimeout(total=2)


async def fetch(router_url: str) -> dict[str, Any] | None:
    """The router's cumulative counters, or None while it does not answer."""
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            async with session.get(f"{router_url}/mlkube/stats") as response:
                if response.status != 200:
                    return None
                return json.loads(await response.text())
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None

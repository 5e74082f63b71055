"""Reading the routers' measurements (``GET /mlkube/stats``) for rollout analysis.

A data-plane call, not a Kubernetes API call. A deployment's router may run as several replicas
behind one Service: each replica counts only what it routed, so the analysis reads every ready
router pod at its own address and sums their counters (``merged``); reading through the Service
would see one replica at random.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import aiohttp

TIMEOUT = aiohttp.ClientTimeout(total=2)
IDENTITY_KEYS = frozenset({"le", "unit", "deployment"})
"""Keys whose values name a counter rather than count (a latency bucket's bound): kept, not summed."""


async def fetch(router_url: str) -> dict[str, Any] | None:
    """One router's cumulative counters, or None while it does not answer."""
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            async with session.get(f"{router_url}/mlkube/stats") as response:
                if response.status != 200:
                    return None
                return json.loads(await response.text())
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None


async def fetch_all(router_urls: Sequence[str]) -> dict[str, Any] | None:
    """The counters of every router at ``router_urls``, summed; None when none answered."""
    answers = await asyncio.gather(*(fetch(url) for url in router_urls))
    return merged([a for a in answers if a is not None])


def merged(answers: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The counters of several router replicas as one router's: every count summed, versions and
    buckets matched by name. ``startTime`` becomes a fingerprint of the set of replica processes
    (the sum of their start times), so that a replica that starts, restarts or goes away starts
    a new analysis window, as one restarted router does; ``generation`` is the oldest routing
    table any replica holds; ``replicas`` says how many answered."""
    if not answers:
        return None
    total: dict[str, Any] = {}
    for answer in answers:
        total = _add(total, {k: v for k, v in answer.items() if k not in ("startTime", "generation")})
    starts = sorted(float(a.get("startTime") or 0.0) for a in answers)
    generations = [a.get("generation") for a in answers]
    total["startTime"] = sum(starts)
    total["generation"] = None if None in generations else min(generations)
    total["replicas"] = len(answers)
    return total


def _add(left: Any, right: Any) -> Any:
    if isinstance(left, dict) and isinstance(right, dict):
        return {
            key: (left[key] if key in IDENTITY_KEYS and key in left else _add(left[key], right[key]))
            if key in left and key in right
            else left.get(key, right.get(key))
            for key in {**left, **right}
        }
    if isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        return [_add(a, b) for a, b in zip(left, right)]
    if isinstance(left, int | float) and isinstance(right, int | float) and not isinstance(left, bool):
        return left + right
    return left

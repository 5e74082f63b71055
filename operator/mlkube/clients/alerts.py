"""Posting alerts to an Alertmanager v2 endpoint (``POST /api/v2/alerts``).

What to send and when is decided in ``control.policy.alerting``; this module only delivers it.
"""

from __future__ import annotations

from typing import Any

import aiohttp

TIMEOUT = aiohttp.ClientTimeout(total=5)


async def post(url: str, body: list[dict[str, Any]]) -> bool:
    """POST the alerts; False when the receiver is unreachable or refuses (retried next interval)."""
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session, session.post(url, json=body) as response:
            return 200 <= response.status < 300
    except (aiohttp.ClientError, TimeoutError):
        return False

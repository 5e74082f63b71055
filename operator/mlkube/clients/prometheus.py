"""Reading a metric check's value from Prometheus (``GET /api/v1/query``, an instant query).

A data-plane call, not a Kubernetes API call. Every failure maps to a ``Reading`` with an
``error`` sentence (never an exception), so a check whose server is down is Inconclusive.

Must not: judge the value (``control.policy.metricchecks`` does).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import aiohttp

TIMEOUT = aiohttp.ClientTimeout(total=5)
MAX_BODY = 4 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Reading:
    """One query's answer: ``value`` (None for an empty result), or ``error`` saying why not."""

    value: float | None = None
    error: str | None = None


async def query(address: str, promql: str, *, timeout: aiohttp.ClientTimeout = TIMEOUT) -> Reading:
    """The value of instant query ``promql`` at the server ``address``: a scalar's value, or the
    first sample's of a vector (NaN stays NaN); an empty vector gives ``value`` None."""
    url = f"{address.rstrip('/')}/api/v1/query"
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(url, params={"query": promql}) as response:
                body = await response.content.read(MAX_BODY + 1)
                if len(body) > MAX_BODY:
                    return Reading(error=f"Prometheus at {address} answered more than {MAX_BODY} bytes")
                status = response.status
    except TimeoutError:
        return Reading(error=f"Prometheus at {address} did not answer within {timeout.total:g}s")
    except aiohttp.ClientError as error:
        return Reading(error=f"Prometheus at {address} is unreachable ({type(error).__name__}: {error})")
    try:
        answer = json.loads(body)
    except ValueError:
        return Reading(error=f"Prometheus at {address} answered HTTP {status} with a body that is not JSON")
    if not isinstance(answer, dict):
        return Reading(error=f"Prometheus at {address} answered HTTP {status} with unexpected JSON")
    if answer.get("status") != "success":
        return Reading(error=f"query failed: HTTP {status} {answer.get('errorType', '')}: {answer.get('error', '')}".rstrip(": "))
    return _value(answer.get("data"))


def _value(data: Any) -> Reading:
    if not isinstance(data, dict):
        return Reading(error="Prometheus answered without data")
    kind, result = data.get("resultType"), data.get("result")
    try:
        if kind == "scalar":
            return Reading(value=float(result[1]))
        if kind == "vector":
            return Reading(value=float(result[0]["value"][1]) if result else None)
    except (TypeError, ValueError, KeyError, IndexError):
        return Reading(error=f"Prometheus answered a malformed {kind}")
    return Reading(error=f"query returned a {kind}; write one that returns a scalar or an instant vector")

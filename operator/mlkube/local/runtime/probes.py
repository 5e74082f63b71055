"""Readiness and liveness probes (httpGet, tcpSocket, exec) against a local container.

Owns running one probe once and the probe timing defaults of the Kubernetes API. The pod's
address is its loopback ``podIP``; exec probes run the command the way the container's own
command runs (same image mapping, environment and working directory). Must not decide what
a result means for the pod: the kubelet does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import pathlib
import signal

import aiohttp

from mlkube.local.runtime import images, podspec, processes


@dataclasses.dataclass(frozen=True)
class Timing:
    initial_delay: float = 0
    period: float = 10
    timeout: float = 1
    success_threshold: int = 1
    failure_threshold: int = 3


def timing(probe: dict) -> Timing:
    return Timing(
        initial_delay=probe.get("initialDelaySeconds", 0),
        period=probe.get("periodSeconds", 10),
        timeout=probe.get("timeoutSeconds", 1),
        success_threshold=probe.get("successThreshold", 1),
        failure_threshold=probe.get("failureThreshold", 3),
    )


@dataclasses.dataclass(frozen=True)
class Target:
    """Where and how the probed container runs."""

    pod: dict
    host: str
    env: dict[str, str]
    cwd: pathlib.Path


async def succeeds(probe: dict, target: Target) -> bool:
    """Run ``probe`` once; True on success, False on failure or timeout."""
    try:
        return await asyncio.wait_for(_run(probe, target), timing(probe).timeout)
    except (TimeoutError, OSError, aiohttp.ClientError):
        return False


async def _run(probe: dict, target: Target) -> bool:
    if "httpGet" in probe:
        action = probe["httpGet"]
        port = podspec.container_port(target.pod, action["port"])
        host = action.get("host") or target.host
        scheme = (action.get("scheme") or "HTTP").lower()
        headers = {h["name"]: h["value"] for h in action.get("httpHeaders") or []}
        url = f"{scheme}://{host}:{port}{action.get('path') or '/'}"
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, headers=headers, ssl=False, allow_redirects=False) as response,
        ):
            return 200 <= response.status < 400
    if "tcpSocket" in probe:
        port = podspec.container_port(target.pod, probe["tcpSocket"]["port"])
        _, writer = await asyncio.open_connection(probe["tcpSocket"].get("host") or target.host, port)
        writer.close()
        return True
    if "exec" in probe:
        argv = images.localised(list(probe["exec"]["command"]))
        process = await asyncio.create_subprocess_exec(
            *argv,
            env=target.env,
            cwd=target.cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            return await process.wait() == 0
        finally:  # a probe that timed out leaves nothing running
            processes.signal_group(process.pid, signal.SIGKILL)
    raise ValueError("probe needs httpGet, tcpSocket or exec")

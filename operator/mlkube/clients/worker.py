"""Work that needs the ML stack, run in a separate process so the operator never imports it.

``run`` starts ``python -m <module>``, hands it a JSON request on stdin and reads one JSON
document from the last line of its stdout, without blocking the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from typing import Any


class WorkerError(Exception):
    """The worker failed; the message is its own explanation."""


async def run(module: str, request: dict[str, Any], *, env: dict[str, str] | None = None, timeout: float = 600) -> dict[str, Any]:
    """The JSON document ``python -m module`` prints for ``request`` (its wire form), with ``env``
    added to the operator's environment. Raises WorkerError when the process fails, prints
    ``{"error": ...}``, prints nothing parseable, or outlasts ``timeout`` seconds."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(json.dumps(request).encode()), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise WorkerError(f"{module} took longer than {timeout:.0f} s") from None
    lines = out.decode().strip().splitlines()
    try:
        result = json.loads(lines[-1]) if lines else {}
    except ValueError:
        result = {}
    if process.returncode != 0 or "error" in result or not result:
        detail = result.get("error") or (err.decode().strip().splitlines() or ["no output"])[-1]
        raise WorkerError(f"{module}: {detail}")
    return result


def secret_env(secret: dict[str, Any], keys: tuple[str, ...]) -> dict[str, str]:
    """Selected keys of a Secret, decoded, for a worker's environment."""
    data = secret.get("data") or {}
    return {k: base64.b64decode(data[k]).decode() for k in keys if k in data}

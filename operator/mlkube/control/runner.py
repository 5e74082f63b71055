"""Running the operator: Kopf, standalone, over every namespace or a chosen few.

Imports the handlers (which registers them) and nothing of the ML stack.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence


def run(
    *,
    namespaces: Sequence[str] = (),
    liveness: str | None = None,
    kubeconfig: str | None = None,
    stop_flag: threading.Event | None = None,
    ready_flag: threading.Event | None = None,
) -> None:
    """Run until interrupted (or until ``stop_flag`` is set)."""
    import kopf

    from mlkube.control import handlers  # noqa: F401  (registers the handlers)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)

    async def main() -> None:
        try:
            await kopf.operator(
                clusterwide=not namespaces,
                namespaces=list(namespaces),
                standalone=True,
                liveness_endpoint=liveness,
                memo=kopf.Memo(kubeconfig=kubeconfig),
                stop_flag=stop_flag,
                ready_flag=ready_flag,
            )
        finally:
            # Kopf waits on a threading.Event stop flag in an executor thread; when it stopped for
            # another reason (a signal), setting the flag releases that thread so the loop can close.
            if stop_flag is not None:
                stop_flag.set()

    asyncio.run(main())

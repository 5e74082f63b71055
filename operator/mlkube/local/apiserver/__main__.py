"""`python -m mlkube.local.apiserver --state-dir DIR [--port N] [--history N]`: run until SIGINT/SIGTERM.

Exits 1 with one line on stderr (no traceback) when the state directory is held by another server
or its database cannot be read.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from mlkube.local.apiserver import server, statedir, storage


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mlkube.local.apiserver", description="Run mlkube's embedded Kubernetes API server on 127.0.0.1."
    )
    parser.add_argument("--state-dir", required=True, help="directory for the database, token and kubeconfig")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0 picks a free one; see DIR/kubeconfig)")
    parser.add_argument(
        "--history",
        type=int,
        default=storage.DEFAULT_HISTORY,
        help="watch events kept in memory for resuming watches (older ones get 410)",
    )
    parser.add_argument(
        "--history-bytes",
        type=int,
        default=storage.DEFAULT_HISTORY_BYTES,
        help="bytes of stored JSON the watch history may keep (the oldest events go first)",
    )
    parser.add_argument("--bookmark-interval", type=float, default=15.0, help="seconds between watch bookmarks")
    return parser.parse_args()


async def _serve(arguments: argparse.Namespace) -> None:
    api = server.APIServer(
        arguments.state_dir,
        port=arguments.port,
        history=arguments.history,
        history_bytes=arguments.history_bytes,
        bookmark_interval=arguments.bookmark_interval,
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    await api.start()
    print(f"mlkube API server on {api.url}; kubeconfig {api.kubeconfig_path}", flush=True)
    try:
        await stopping.wait()
    finally:
        await api.stop()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_serve(_arguments()))
    except (statedir.Locked, storage.Unreadable) as exc:
        sys.exit(f"mlkube API server: {exc}")


if __name__ == "__main__":
    main()

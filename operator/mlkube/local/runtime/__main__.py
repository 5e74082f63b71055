"""``python -m mlkube.local.runtime``: run the process runtime until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from mlkube.local.runtime import containers, manager


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m mlkube.local.runtime", description=__doc__)
    parser.add_argument("--kubeconfig", required=True, help="kubeconfig of the API server")
    parser.add_argument("--state-dir", required=True, help="state directory (logs/, runtime/ are written under it)")
    parser.add_argument(
        "--backoff-base",
        type=float,
        default=10.0,
        help="container restart back-off in seconds (the first restart is immediate; doubles up to 300)",
    )
    parser.add_argument("--job-retry-base", type=float, default=10.0, help="first Job retry delay in seconds (doubles up to 360)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = manager.Settings(backoff=containers.Backoff(base=args.backoff_base), job_retry_base=args.job_retry_base)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await manager.serve(args.kubeconfig, args.state_dir, stop, settings)

    try:
        asyncio.run(run())
    except RuntimeError as e:
        parser.exit(1, f"error: {e}\n")


if __name__ == "__main__":
    main()

"""``mlkube dashboard``: start the read-only web dashboard (like ``kubectl argo rollouts dashboard``).

    mlkube dashboard [--port 3100] [--address 127.0.0.1] [-n NS | -A] [--kubeconfig F] [--context C]

It connects with the credentials kubectl would use, lists and watches the mlkube kinds and
Events of one namespace (the context's by default) or of all (``-A``), and serves the pages at
``http://ADDRESS:PORT/`` until Ctrl-C. It writes nothing to the cluster and keeps nothing on disk.
The first line it prints is the URL (``--port 0`` picks a free port).

Exit codes: 0 stopped, 1 no credentials or the port is taken (the message says which).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from aiohttp import web

from mlkube.clients import k8s
from mlkube.dashboard import informer, options, server, store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlkube dashboard", description="A read-only web dashboard of mlkube's objects.")
    options.add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535 or args.refresh < 0:
        print("mlkube dashboard: --port must be 0-65535 and --refresh 0 or more", file=sys.stderr)
        return 1
    try:
        credentials = k8s.Credentials.load(args.kubeconfig, context=args.context)
        namespace = (
            None if args.all_namespaces else args.namespace or k8s.default_namespace(args.kubeconfig, context=args.context)
        )
    except Exception as error:  # the kubeconfig loaders raise their own ConfigException, OSError, ValueError
        print(f"mlkube dashboard: cannot load the cluster's credentials: {error}", file=sys.stderr)
        return 1
    settings = server.Settings(
        refresh=args.refresh,
        scope="all namespaces" if namespace is None else f"namespace {namespace}",
        loopback_only=args.address in server.LOOPBACK,
    )
    try:
        asyncio.run(serve(credentials, namespace, address=args.address, port=args.port, settings=settings))
    except KeyboardInterrupt:
        return 0
    except OSError as error:
        print(f"mlkube dashboard: cannot listen on {args.address}:{args.port}: {error.strerror or error}", file=sys.stderr)
        return 1
    return 0


async def serve(
    credentials: k8s.Credentials, namespace: str | None, *, address: str, port: int, settings: server.Settings
) -> None:
    """Serve until cancelled; prints the URL once listening."""
    data = store.Store()
    runner = web.AppRunner(server.application(data, settings), access_log=None)
    await runner.setup()
    client = k8s.Client(credentials)
    try:
        site = web.TCPSite(runner, address, port)
        await site.start()
        bound = runner.addresses[0][1]
        host = f"[{address}]" if ":" in address else address
        print(
            f"mlkube dashboard at http://{host}:{bound}/ ({settings.scope} of {credentials.server}; Ctrl-C to stop)", flush=True
        )
        if not settings.loopback_only:
            print("mlkube dashboard: listening beyond loopback; the pages have no login", file=sys.stderr, flush=True)
        await informer.run(client, data, namespace)
    finally:
        with contextlib.suppress(Exception):
            await client.close()
        await runner.cleanup()

"""The options of ``mlkube dashboard``, apart so that ``mlkube``'s parser loads nothing else."""

from __future__ import annotations

import argparse

DEFAULT_PORT = 3100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", "-p", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    parser.add_argument(
        "--address", default="127.0.0.1", help="address to listen on (default 127.0.0.1; the pages have no login: keep it local)"
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--namespace", "-n", help="the namespace to show (default: the kubeconfig context's)")
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="show every namespace")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: KUBECONFIG or ~/.kube/config)")
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
    parser.add_argument("--refresh", type=int, default=5, help="seconds between page refreshes (default 5; 0: never)")

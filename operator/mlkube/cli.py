"""The ``mlkube`` command.

Each subcommand imports only what it needs, so ``mlkube operator`` never loads the ML stack
and ``mlkube crds`` starts in a fraction of a second.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlkube", description="A Kubernetes-native operator for the whole ML lifecycle.")
    commands = parser.add_subparsers(dest="command", required=True)

    crds = commands.add_parser("crds", help="write the CustomResourceDefinitions generated from the API models")
    crds.add_argument("directory", type=pathlib.Path, help="where to write them, e.g. crds/")
    crds.add_argument("--check", action="store_true", help="write nothing; fail if the files differ from a fresh generation")
    crds.set_defaults(run=_crds)

    operator = commands.add_parser("operator", help="run the operator (Kopf, standalone)")
    scope = operator.add_mutually_exclusive_group()
    scope.add_argument("--namespace", "-n", action="append", default=[], help="watch this namespace (repeatable)")
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="watch every namespace (the default)")
    operator.add_argument("--kubeconfig", help="kubeconfig file (default: KUBECONFIG, ~/.kube/config, or in-cluster)")
    operator.add_argument("--liveness", default=None, help="serve a health endpoint, e.g. http://0.0.0.0:8080/healthz")
    operator.set_defaults(run=_operator)

    local = commands.add_parser("local", help="the embedded control plane for one machine")
    local_commands = local.add_subparsers(dest="local_command", required=True)
    up = local_commands.add_parser("up", help="start the API server, the process runtime and the operator (foreground)")
    up.add_argument("--state-dir", type=pathlib.Path, default=pathlib.Path(".mlkube"), help="state directory (default .mlkube/)")
    up.add_argument("--port", type=int, default=6443, help="API server port on 127.0.0.1 (0 picks a free one)")
    up.add_argument("--no-operator", action="store_true", help="run only the control plane")
    up.set_defaults(run=_local_up)

    feedback = commands.add_parser(
        "feedback", help="label captured traffic in bulk (export pending requests, import ground truth)"
    )
    feedback_commands = feedback.add_subparsers(dest="feedback_command", required=True)
    export = feedback_commands.add_parser("export", help="write the captured requests still waiting for ground truth")
    export.add_argument(
        "--output", "-o", type=pathlib.Path, default=pathlib.Path("pending.csv"), help=".csv or .parquet (default pending.csv)"
    )
    imported = feedback_commands.add_parser("import", help="write ground truth from a file of requestId and groundTruth")
    imported.add_argument("file", type=pathlib.Path, help=".csv or .parquet with columns requestId and groundTruth")
    for sub in (export, imported):
        sub.add_argument("--deployment", "-d", required=True, help="the ModelDeployment whose traffic is labeled")
        sub.add_argument("--namespace", "-n", default="default", help="its namespace (default: default)")
        sub.add_argument("--since", default="30d", help="only requests captured within this duration (default 30d)")
        sub.add_argument("--storage", help="the project's storage URI; default: read from the cluster")
        sub.add_argument("--endpoint", help="S3-compatible endpoint of --storage")
        sub.add_argument("--kubeconfig", help="kubeconfig for the cluster lookup (default: KUBECONFIG or ~/.kube/config)")
    feedback.set_defaults(run=_feedback)

    demo = commands.add_parser("demo", help="run the ML lifecycle on the embedded control plane with real offline data")
    demo.add_argument("--workdir", type=pathlib.Path, default=pathlib.Path(".mlkube-demo"), help="scratch directory (recreated)")
    demo.set_defaults(run=_demo)

    dashboard = commands.add_parser("dashboard", help="serve a read-only web dashboard of projects, rollouts and drift")
    from mlkube.dashboard import options as dashboard_options

    dashboard_options.add_arguments(dashboard)
    dashboard.set_defaults(run=_dashboard)

    args = parser.parse_args(argv)
    return args.run(args)


def _crds(args: argparse.Namespace) -> int:
    from mlkube.api import crds

    if args.check:
        stale = crds.differences(args.directory)
        if stale:
            print(f"{args.directory}: out of date: {', '.join(stale)}; run `mlkube crds {args.directory}`", file=sys.stderr)
            return 1
        print(f"{args.directory}: up to date")
        return 0
    for path in crds.write(args.directory):
        print(f"wrote {path}")
    return 0


def _operator(args: argparse.Namespace) -> int:
    from mlkube.control import runner as operator

    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig
    operator.run(namespaces=args.namespace, liveness=args.liveness, kubeconfig=args.kubeconfig)
    return 0


def _local_up(args: argparse.Namespace) -> int:
    from mlkube.local import up

    return up.run(args.state_dir, port=args.port, with_operator=not args.no_operator)


def _feedback(args: argparse.Namespace) -> int:
    from mlkube import feedback as labeling

    return labeling.command(args)


def _dashboard(args: argparse.Namespace) -> int:
    from mlkube.dashboard import command

    return command.run(args)


def _demo(args: argparse.Namespace) -> int:
    from mlkube.local import demo

    return demo.main(args.workdir)


if __name__ == "__main__":
    sys.exit(main())

"""``kubectl mlkube``: the plugin's commands (console script ``kubectl-mlkube``).

kubectl runs ``kubectl-mlkube`` from PATH for ``kubectl mlkube ...``; it is an API client and
nothing more, so it works the same against any cluster and the embedded control plane. It reads
and writes through ``clients.k8s`` with the credentials kubectl would use (``--kubeconfig``,
``KUBECONFIG``, ``~/.kube/config``; ``--context``) and the context's namespace unless ``-n``.

    get project NAME [--watch]      the project's lifecycle as a tree (``plugin.tree``)
    promote|abort mdep NAME         the mlkube.io/action annotation a user would write
    approve|reject mv NAME --reason spec.approval, as ``kubectl patch mv`` would
    logs tj NAME [--tail N]         the trainer pod's log (the newest attempt's)
    report dmon NAME [--open]       the latest drift report's path or URI

Exit codes: 0 done, 1 refused or failed (the message says why), 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import os
import sys
import webbrowser
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

import aiohttp

from mlkube.api import kinds, modelversion
from mlkube.clients import k8s
from mlkube.common import timestamps
from mlkube.control.manifests import training
from mlkube.control.policy import jobstate
from mlkube.plugin import actions, tree

FIELD_MANAGER = "kubectl-mlkube"
WATCH_INTERVAL = 2.0
CLEAR = "\x1b[H\x1b[2J"
_STEADY = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)  # renders every age alike: a change of objects, not of time


def _names(kind: kinds.Kind, *extra: str) -> list[str]:
    return [kind.singular, kind.plural, *kind.short_names, *extra]


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="kubectl mlkube", description="mlkube's projects, rollouts and monitors, for people.")
    _connection(top, suppress=False)
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    get = commands.add_parser("get", help="show a project's lifecycle: champion, versions, deployments, monitors, trainings")
    get.add_argument("kind", choices=_names(kinds.MLPROJECT, "project", "projects"), metavar="project")
    get.add_argument("name", help="the MLProject")
    get.add_argument("--watch", "-w", action="store_true", help="redraw as it changes (Ctrl-C to stop)")
    get.add_argument("--interval", type=float, default=WATCH_INTERVAL, help="seconds between reads with --watch (default 2)")
    get.set_defaults(run=_get)

    for verb, what in (
        ("promote", "promote the rollout's candidate to stable now"),
        ("abort", "roll back to the stable version"),
    ):
        action = commands.add_parser(verb, help=f"{what}: annotate the ModelDeployment mlkube.io/action={verb}")
        action.add_argument("kind", choices=_names(kinds.MODELDEPLOYMENT), metavar="mdep")
        action.add_argument("name", help="the ModelDeployment")
        action.set_defaults(run=_action, action=verb)

    for verb, state in (("approve", "Approved"), ("reject", "Rejected")):
        decide = commands.add_parser(verb, help=f"{verb} a model version with a reason (spec.approval)")
        decide.add_argument("kind", choices=_names(kinds.MODELVERSION), metavar="mv")
        decide.add_argument("name", help="the ModelVersion, e.g. penguins-v3")
        decide.add_argument("--reason", help="why (required; recorded in the version's Event)")
        decide.set_defaults(run=_decide, decision=state)

    logs = commands.add_parser("logs", help="print the trainer's log of a TrainingJob (its newest attempt)")
    logs.add_argument("kind", choices=_names(kinds.TRAININGJOB), metavar="tj")
    logs.add_argument("name", help="the TrainingJob")
    logs.add_argument("--tail", type=int, default=None, help="only the last N lines")
    logs.set_defaults(run=_logs)

    report = commands.add_parser("report", help="print where a DriftMonitor's latest drift report is")
    report.add_argument("kind", choices=_names(kinds.DRIFTMONITOR), metavar="dmon")
    report.add_argument("name", help="the DriftMonitor")
    report.add_argument("--open", action="store_true", help="also open a local or http(s) report in the browser")
    report.set_defaults(run=_report)

    for sub in commands.choices.values():
        _connection(sub, suppress=True)
    return top


def _connection(parser_: argparse.ArgumentParser, *, suppress: bool) -> None:
    """--kubeconfig, --context and -n, accepted before or after the command (as kubectl does)."""
    default = argparse.SUPPRESS if suppress else None
    parser_.add_argument("--kubeconfig", default=default, help="kubeconfig file (default: KUBECONFIG or ~/.kube/config)")
    parser_.add_argument("--context", default=default, help="kubeconfig context (default: the current one)")
    parser_.add_argument("--namespace", "-n", default=default, help="namespace (default: the context's)")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command in ("approve", "reject"):
        try:
            actions.approval_patch(args.decision, args.reason)
        except actions.Refused as refused:
            print(f"error: {refused}", file=sys.stderr)
            return 2
    try:
        credentials = k8s.Credentials.load(args.kubeconfig, context=args.context)
        namespace = args.namespace or k8s.default_namespace(args.kubeconfig, context=args.context)
    except Exception as error:  # the kubeconfig loaders raise their own ConfigException, OSError, ValueError
        print(f"error: cannot load the cluster's credentials: {error}", file=sys.stderr)
        return 1
    try:
        return asyncio.run(_session(credentials, args.run, args, namespace))
    except KeyboardInterrupt:
        return 0
    except actions.Refused as refused:
        print(f"error: {refused}", file=sys.stderr)
        return 1
    except k8s.ApiError as error:
        print(f"error: the API server refused: {error.message}", file=sys.stderr)
        return 1
    except aiohttp.ClientError as error:
        print(f"error: cannot reach the API server at {credentials.server}: {error}", file=sys.stderr)
        return 1


async def _session(credentials: k8s.Credentials, run: Callable[..., Awaitable[int]], args: argparse.Namespace, ns: str) -> int:
    client = k8s.Client(credentials)
    try:
        return await run(client, args, ns)
    finally:
        await client.close()


async def _must_get(client: k8s.Client, resource: k8s.Resource, name: str, namespace: str) -> dict[str, Any]:
    obj = await client.get(resource, name, namespace)
    if obj is None:
        raise actions.Refused(f"{resource.kind} {name} not found in namespace {namespace}")
    return obj


async def read_view(client: k8s.Client, name: str, namespace: str) -> tree.View:
    """The MLProject ``name`` and the objects ``get project`` shows with it."""
    project, versions, deployments, monitors, trainings = await asyncio.gather(
        _must_get(client, k8s.MLPROJECTS, name, namespace),
        client.list(k8s.MODELVERSIONS, namespace, labels={modelversion.PROJECT_LABEL: name}),
        client.list(k8s.MODELDEPLOYMENTS, namespace),
        client.list(k8s.DRIFTMONITORS, namespace),
        client.list(k8s.TRAININGJOBS, namespace),
    )
    ours = [d for d in deployments if (d.get("spec") or {}).get("projectRef") == name]
    names = {d["metadata"]["name"] for d in ours}
    return tree.View(
        project=project,
        versions=[v for v in versions if (v.get("spec") or {}).get("projectRef") == name],
        deployments=ours,
        monitors=[m for m in monitors if (m.get("spec") or {}).get("deploymentRef") in names],
        trainings=[t for t in trainings if (t.get("spec") or {}).get("projectRef") == name],
    )


def use_colour(out: TextIO) -> bool:
    """ANSI colours on a terminal only, and never with NO_COLOR set (no-color.org)."""
    return out.isatty() and not os.environ.get("NO_COLOR")


async def _get(client: k8s.Client, args: argparse.Namespace, namespace: str) -> int:
    out = sys.stdout
    read = lambda: read_view(client, args.name, namespace)  # noqa: E731
    if args.watch:
        await watch(read, out, tty=out.isatty(), colour=use_colour(out), interval=args.interval)
        return 0
    out.write(tree.render(await read(), now=timestamps.now(), colour=use_colour(out)))
    return 0


async def watch(
    read: Callable[[], Awaitable[tree.View]],
    out: TextIO,
    *,
    tty: bool,
    colour: bool,
    interval: float,
    clock: Callable[[], datetime.datetime] = timestamps.now,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Read and draw until cancelled: on a terminal the screen is cleared and the tree redrawn in
    place every ``interval``; otherwise (a pipe, a log) a new block is written, after a blank
    line, each time the objects changed (a change of ages alone writes nothing)."""
    shown: str | None = None
    while True:
        view = await read()
        steady = tree.render(view, now=_STEADY)
        if tty:
            out.write(CLEAR + tree.render(view, now=clock(), colour=colour))
        elif steady != shown:
            out.write(("\n" if shown is not None else "") + tree.render(view, now=clock()))
        shown = steady
        out.flush()
        await sleep(interval)


async def _action(client: k8s.Client, args: argparse.Namespace, namespace: str) -> int:
    mdep = await _must_get(client, k8s.MODELDEPLOYMENTS, args.name, namespace)
    actions.check_action(args.action, mdep)
    await client.patch(k8s.MODELDEPLOYMENTS, args.name, namespace, actions.action_patch(args.action), field_manager=FIELD_MANAGER)
    status = mdep.get("status") or {}
    target = status.get("candidateVersion") or status.get("previousVersion")
    print(f"modeldeployment.mlkube.io/{args.name} annotated mlkube.io/action={args.action} (version {target})")
    return 0


async def _decide(client: k8s.Client, args: argparse.Namespace, namespace: str) -> int:
    patch = actions.approval_patch(args.decision, args.reason)  # refused before any read without a reason
    await _must_get(client, k8s.MODELVERSIONS, args.name, namespace)
    await client.patch(k8s.MODELVERSIONS, args.name, namespace, patch, field_manager=FIELD_MANAGER)
    print(f"modelversion.mlkube.io/{args.name} {args.decision.lower()}: {patch['spec']['approval']['reason']}")
    return 0


async def _logs(client: k8s.Client, args: argparse.Namespace, namespace: str) -> int:
    tj = await _must_get(client, k8s.TRAININGJOBS, args.name, namespace)
    job = (tj.get("status") or {}).get("jobName") or training.job_name(args.name)
    pods = await client.list(k8s.PODS, namespace, labels={"job-name": job})
    pod = jobstate.newest(pods)
    if pod is None:
        phase = (tj.get("status") or {}).get("phase") or "Pending"
        raise actions.Refused(f"TrainingJob {args.name} has no trainer pod yet (phase {phase})")
    if len(pods) > 1:
        print(f"(pod {pod['metadata']['name']}, the newest of {len(pods)} attempts)", file=sys.stderr)
    sys.stdout.write(await client.read_log(pod["metadata"]["name"], namespace, tail_lines=args.tail))
    return 0


async def _report(client: k8s.Client, args: argparse.Namespace, namespace: str) -> int:
    dmon = await _must_get(client, k8s.DRIFTMONITORS, args.name, namespace)
    location = actions.report_location(dmon)
    print(location)
    if args.open and (location.startswith("/") or location.startswith(("http://", "https://"))):
        with contextlib.suppress(webbrowser.Error):
            webbrowser.open(location if "://" in location else f"file://{location}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

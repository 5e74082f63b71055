"""``kubectl mlkube get project``: one project's lifecycle as a tree, rendered from the API's objects.

``render(view, *, now, colour)`` is pure: the objects as the API returns them (plain dicts) and the
time in, text out. The tree reads top-down the way a person asks about a project: which version is
champion and why, every version with its primary metric, eligibility, approval and phase, the
project's ModelDeployments with their traffic split, canary step and analysis verdict (each with
its DriftMonitors and their drift phase), then the trainings still running with their progress.

Every line but the last column is a function of the objects alone, so tests compare them exactly;
the last column is the object's age (like ``kubectl get``'s AGE), the only part that moves with
the clock. Colours (ANSI) mark phases only when ``colour`` is set: the caller sets it for a TTY.

Must not: read the cluster, the clock or the environment.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence
from typing import Any

import pydantic

from mlkube.api import kinds
from mlkube.common import timestamps
from mlkube.control.policy import rollout

GOOD = frozenset({"Ready", "Healthy", "Champion", "Eligible", "Succeeded", "Passing", "Approved"})
BUSY = frozenset({"Pending", "Progressing", "Running", "Registered", "Inconclusive", "Paused", "InsufficientData"})
BAD = frozenset({"Failed", "Degraded", "RolledBack", "Drifting", "Failing", "Rejected"})
_ANSI = {"good": "\x1b[32m", "busy": "\x1b[33m", "bad": "\x1b[31m", "dim": "\x1b[2m", "bold": "\x1b[1m"}
_RESET = "\x1b[0m"
RUNNING = frozenset({None, "Pending", "Running"})
"""TrainingJob phases shown under ``trainings``: the runs not finished."""


@dataclasses.dataclass(frozen=True)
class View:
    """What ``get project`` shows: the MLProject and its related objects, as read from the API."""

    project: dict[str, Any]
    versions: Sequence[dict[str, Any]] = ()
    """The project's ModelVersions."""
    deployments: Sequence[dict[str, Any]] = ()
    """The ModelDeployments whose ``spec.projectRef`` is the project."""
    monitors: Sequence[dict[str, Any]] = ()
    """The DriftMonitors of those deployments."""
    trainings: Sequence[dict[str, Any]] = ()
    """The project's TrainingJobs (only the unfinished ones are shown)."""


@dataclasses.dataclass(frozen=True)
class _Row:
    """One line of the tree: its cells (aligned with its siblings'), age, and child rows."""

    cells: tuple[str, ...]
    age: str = ""
    children: tuple[_Row, ...] = ()


def render(view: View, *, now: datetime.datetime, colour: bool = False) -> str:
    """The tree of ``view`` at ``now``, one object per line, ending with a newline."""
    project = view.project
    meta = project["metadata"]
    status = _status(kinds.MLPROJECT, project)
    head = _Row(
        (meta["name"], "MLProject", status.phase or "Pending", f"namespace {meta.get('namespace', '')}"), _age(project, now)
    )
    versions = tuple(_version_row(v, now) for v in _by_version(view.versions))
    deployments = tuple(_deployment_row(d, view.monitors, now) for d in _by_name(view.deployments))
    children = [
        _champion_row(view, status),
        _Row(("versions",), children=versions) if versions else _Row(("versions", "none")),
        _Row(("deployments",), children=deployments) if deployments else _Row(("deployments", "none")),
        _trainings_row(view.trainings, now),
    ]
    return "\n".join(_lines([head], "", colour, root=True) + _lines(children, "", colour)) + "\n"


def _status(kind: kinds.Kind, obj: dict[str, Any]) -> Any:
    try:
        return kind.parse_status(obj.get("status"))
    except pydantic.ValidationError:
        return kind.parse_status(None)  # written by another operator version: shown as empty, not a crash


def _champion_row(view: View, status: Any) -> _Row:
    policy = ((view.project.get("spec") or {}).get("promotion") or {}).get("policy", "auto")
    if status.champion_version is None:
        return _Row(("champion", "none yet", f"promotion {policy}"))
    version = next((v for v in view.versions if (v.get("spec") or {}).get("version") == status.champion_version), None)
    metric = _status(kinds.MODELVERSION, version).primary_metric if version else None
    return _Row(("champion", f"v{status.champion_version}", metric or "-", f"promotion {policy}"))


def _by_version(objs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(objs, key=lambda o: -int((o.get("spec") or {}).get("version") or 0))


def _by_name(objs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(objs, key=lambda o: o["metadata"]["name"])


def _version_row(mv: dict[str, Any], now: datetime.datetime) -> _Row:
    spec, status = mv.get("spec") or {}, _status(kinds.MODELVERSION, mv)
    eligible = {True: "eligible", False: "not eligible", None: "-"}[status.eligible]
    approval = ((spec.get("approval") or {}).get("state")) or "Pending"
    cells = [
        f"v{spec.get('version', '?')}",
        status.primary_metric or "-",
        eligible,
        f"approval {approval}",
        status.phase or "Registered",
        f"aliases {','.join(status.aliases)}" if status.aliases else "",
        f"served by {','.join(status.served_by)}" if status.served_by else "",
    ]
    failing = tuple(_Row((f"fails {criterion}",)) for criterion in status.failed_criteria)
    return _Row(tuple(cells), _age(mv, now), failing)


def _deployment_row(mdep: dict[str, Any], monitors: Sequence[dict[str, Any]], now: datetime.datetime) -> _Row:
    name, spec, status = mdep["metadata"]["name"], mdep.get("spec") or {}, _status(kinds.MODELDEPLOYMENT, mdep)
    strategy = (spec.get("strategy") or {}).get("type", "Canary")
    cells = [
        name,
        strategy,
        status.phase or "Pending",
        _selector(spec.get("model") or {}),
        f"split {split_of(status)}",
        _step(strategy, spec, status),
        _verdict(status),
    ]
    children = [
        _Row((f"message {status.message}",)) if status.phase in ("Degraded", "RolledBack", "Paused") and status.message else None,
        *(_monitor_row(m, now) for m in _by_name(monitors) if (m.get("spec") or {}).get("deploymentRef") == name),
    ]
    return _Row(tuple(cells), _age(mdep, now), tuple(c for c in children if c is not None))


def split_of(status: Any) -> str:
    """The traffic table as ``kubectl get mdep`` shows it (``v1=90,v2=10``; a mirrored share in
    brackets); ``-`` when nothing is served."""
    return rollout.summary(status.traffic) or "-"


def _selector(model: dict[str, Any]) -> str:
    if model.get("track"):
        return f"tracks {model['track']}"
    if model.get("alias"):
        return f"alias {model['alias']}"
    return f"pins v{model['version']}" if model.get("version") else "-"


def _step(strategy: str, spec: dict[str, Any], status: Any) -> str:
    """``step 1/2`` during a canary (1-based, of the spec's steps); the candidate otherwise."""
    if status.candidate_version is None:
        return ""
    if strategy == "Canary" and status.current_step is not None:
        steps = ((spec.get("strategy") or {}).get("canary") or {}).get("steps") or [{}, {}]  # the API's default: two
        return f"step {status.current_step + 1}/{len(steps)}"
    return f"candidate v{status.candidate_version}"


def _verdict(status: Any) -> str:
    analysis = status.analysis
    if analysis is None or analysis.verdict is None:
        return "verdict -"
    return f"verdict {analysis.verdict} ({analysis.requests} requests)"


def _monitor_row(dmon: dict[str, Any], now: datetime.datetime) -> _Row:
    status = _status(kinds.DRIFTMONITOR, dmon)
    share = f"drift share {status.drift_share:.2f}" if status.drift_share is not None else "drift share -"
    drifted = [f.name for f in status.features if f.drifted][:3]
    cells = (
        f"monitor {dmon['metadata']['name']}",
        status.phase or "Pending",
        f"v{status.model_version}" if status.model_version is not None else "-",
        share,
        f"top {', '.join(drifted)}" if drifted else "",
    )
    return _Row(cells, _age(dmon, now))


def _trainings_row(trainings: Sequence[dict[str, Any]], now: datetime.datetime) -> _Row:
    running = [tj for tj in trainings if _status(kinds.TRAININGJOB, tj).phase in RUNNING]
    if not running:
        return _Row(("trainings", "none running"))
    ordered = sorted(running, key=lambda tj: (tj["metadata"].get("creationTimestamp", ""), tj["metadata"]["name"]))
    return _Row(("trainings",), children=tuple(_training_row(tj, now) for tj in ordered))


def _training_row(tj: dict[str, Any], now: datetime.datetime) -> _Row:
    status = _status(kinds.TRAININGJOB, tj)
    progress = status.progress
    cells = [tj["metadata"]["name"], status.phase or "Pending"]
    if progress is not None:
        cells += [
            progress.stage or "-",
            f"{progress.trials_completed}/{progress.trials_total} trials",
            f"best {progress.best_score:.4g}" if progress.best_score is not None else "best -",
            eta(status, now),
        ]
    return _Row(tuple(cells), _age(tj, now))


def eta(status: Any, now: datetime.datetime) -> str:
    """``eta 1m30s`` from the pace of the trials so far (elapsed since the start over trials done);
    empty before the first trial or without a start time."""
    progress = status.progress
    if progress is None or not status.start_time or progress.trials_completed <= 0:
        return ""
    remaining = max(progress.trials_total - progress.trials_completed, 0)
    elapsed = (now - timestamps.parse(status.start_time)).total_seconds()
    return f"eta {duration(elapsed / progress.trials_completed * remaining)}"


def duration(seconds: float) -> str:
    """``45s``, ``3m12s``, ``2h5m``, ``4d3h``: a span the way kubectl shows ages."""
    seconds = max(int(seconds), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60}s" if seconds < 600 and seconds % 60 else f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60}m" if seconds % 3600 // 60 else f"{seconds // 3600}h"
    return f"{seconds // 86400}d{seconds % 86400 // 3600}h" if seconds % 86400 // 3600 else f"{seconds // 86400}d"


def _age(obj: dict[str, Any], now: datetime.datetime) -> str:
    created = obj["metadata"].get("creationTimestamp")
    return duration((now - timestamps.parse(created)).total_seconds()) if created else "-"


def _lines(rows: Sequence[_Row], indent: str, colour: bool, *, root: bool = False) -> list[str]:
    """Rows drawn as siblings under ``indent``: each column padded to its widest cell among the
    siblings (a column empty in all of them is left out), ages aligned after the widest row,
    children below their row."""
    count = max((len(r.cells) for r in rows), default=0)
    widths = [max((len(r.cells[i]) for r in rows if i < len(r.cells)), default=0) for i in range(count)]
    shown = [i for i in range(count) if widths[i]]
    plain = [_joined(row, widths, shown, colour=False) for row in rows]
    age_at = max((len(text) for text, row in zip(plain, rows) if row.age), default=0)
    out = []
    for index, (row, text) in enumerate(zip(rows, plain)):
        last = index == len(rows) - 1
        branch = "" if root else ("└── " if last else "├── ")
        line = _joined(row, widths, shown, colour=colour)
        if row.age:
            line += " " * (age_at - len(text) + 2) + (_tone("dim", row.age) if colour else row.age)
        out.append(indent + branch + line)
        below = indent if root else indent + ("    " if last else "│   ")
        out += _lines(row.children, below, colour)
    return out


def _joined(row: _Row, widths: list[int], shown: list[int], *, colour: bool) -> str:
    """The row's cells in the shown columns, padded, two spaces apart, without trailing blanks."""
    parts = []
    for i in shown:
        cell = row.cells[i] if i < len(row.cells) else ""
        padding = " " * (widths[i] - len(cell))
        parts.append((_painted(cell, first=i == 0) if colour else cell) + padding)
    return "  ".join(parts).rstrip()


def _painted(cell: str, *, first: bool) -> str:
    """A cell in its phase's colour (the word after ``approval``/``verdict`` decides); a row's name in bold."""
    if cell.startswith(("fails ", "message ")):
        return _tone("bad", cell)
    word = cell.split(" ")[1] if cell.startswith(("approval ", "verdict ")) else cell
    tone = "good" if word in GOOD else "busy" if word in BUSY else "bad" if word in BAD else "bold" if first and cell else None
    return _tone(tone, cell) if tone else cell


def _tone(tone: str, text: str) -> str:
    return f"{_ANSI[tone]}{text}{_RESET}"

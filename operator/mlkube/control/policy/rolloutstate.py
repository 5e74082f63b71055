"""What the rollout state machine (``rollout.decide``) works on: the state status remembers, what
a pass observed, the decision; and the traffic table a state implies (``traffic``, ``summary``).

Pure: no I/O, no clock.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping

from mlkube.api import replay as replay_api
from mlkube.api import rolloutstatus
from mlkube.api import strategy as strategy_api


@dataclasses.dataclass(frozen=True)
class State:
    """What status remembers between passes."""

    stable: int | None = None
    candidate: int | None = None
    phase: str = "Pending"
    step: int | None = None
    step_started: datetime.datetime | None = None
    rolled_back: int | None = None
    candidate_ready_at: datetime.datetime | None = None  # when the candidate first served: pauses count from there
    inconclusive_since: datetime.datetime | None = None  # when this step's hold ended without a decision
    previous: int | None = None  # the stable version before the last promotion, kept warm until scale_down_at
    scale_down_at: datetime.datetime | None = None
    replay_started: datetime.datetime | None = None  # the replay step holds the candidate out of traffic since then


@dataclasses.dataclass(frozen=True)
class Observation:
    """What the controller saw in this pass."""

    desired: int | None
    ready: Mapping[int, bool]
    verdict: str | None
    action: str | None
    now: datetime.datetime
    load_failures: Mapping[int, str] = dataclasses.field(default_factory=dict)  # version -> why it cannot load
    failed_checks: tuple[str, ...] = ()  # what a Failing verdict broke
    ab_winner: int | None = None  # ABTest: the version the report finds significantly better, if any
    ab_summary: str = ""  # ABTest: the report's conclusion, quoted in the events
    ab_sequential_winner: int | None = None  # ABTest: the sequential test's winner, valid at any pass
    ab_sequential_summary: str = ""  # ABTest: the sequential test's conclusion
    inconclusive_checks: tuple[str, ...] = ()  # what keeps an Inconclusive verdict undecided
    requests: int = 0  # the candidate's requests in the analysis window
    replay: replay_api.ReplayStatus | None = None  # the candidate's judged replay; None while it runs


@dataclasses.dataclass(frozen=True)
class Decision:
    state: State
    events: tuple[tuple[str, str, str], ...] = ()  # (type Normal|Warning, reason, message)
    window_reset: bool = False  # a new step or candidate: analysis starts a new window
    ab_stopped_early: bool = False  # the A/B test ended before its duration on its sequential test


def traffic(strategy: strategy_api.Strategy, state: State) -> list[rolloutstatus.TrafficEntry]:
    """The traffic table for a state: who answers clients, and who sees mirrored traffic."""
    if state.stable is None:
        return []
    stable = rolloutstatus.TrafficEntry(version=state.stable, role="stable", percent=100)
    if state.candidate is None or state.phase in ("RolledBack",) or state.replay_started is not None:
        return [stable]  # a candidate in its replay step takes no request, not even a mirrored one
    if strategy.type == "Canary":
        weight = strategy.canary.steps[state.step or 0].weight
        return [
            stable.model_copy(update={"percent": 100 - weight}),
            rolloutstatus.TrafficEntry(version=state.candidate, role="canary", percent=weight),
        ]
    if strategy.type == "ABTest":
        weight = strategy.ab_test.weight
        return [
            stable.model_copy(update={"percent": 100 - weight}),
            rolloutstatus.TrafficEntry(version=state.candidate, role="b", percent=weight),
        ]
    if strategy.type == "Shadow":
        return [stable, rolloutstatus.TrafficEntry(version=state.candidate, role="shadow", percent=strategy.shadow.percent)]
    role = "preview" if strategy.type == "BlueGreen" else "canary"
    return [stable, rolloutstatus.TrafficEntry(version=state.candidate, role=role, percent=0)]


def summary(table: list[rolloutstatus.TrafficEntry]) -> str:
    """``v3=90,v4=10`` for kubectl get (mirrored shares in brackets)."""
    return ",".join(f"v{t.version}=" + (f"[{t.percent}]" if t.role == "shadow" else str(t.percent)) for t in table)

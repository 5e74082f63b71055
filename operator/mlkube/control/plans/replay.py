"""The replay step of a ModelDeployment's pass (``strategy.replay``), as pure functions.

The deployment plan calls ``verdict`` before ``rollout.decide`` (the judged replay of the current
candidate, once its Job has answered) and ``planned`` after it (the Job to create, the replay
Jobs to delete, ``status.replay``). The rollout state machine decides what a verdict does
(``rollout._replaying``).

One replay per rollout: its Job is named after the candidate and the time its replay step began
(``status.replayingSince``), created once when the candidate is Ready and has an address
(``status.replay.startedAt`` records that), read on later passes, and its judged answer is kept
in ``status.replay`` (``finishedAt``). Replay Jobs the stored status does not name (other
rollouts', and this one's once its verdict is written) are deleted (a TTL on the Job is the
backstop). A replay Job that is gone, failed, or has
not answered within ``REPLAY_DEADLINE`` is Inconclusive: the rollout goes on to the live analysis.

Must not: do I/O or read the clock (``now`` is an argument).
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from mlkube.api import deployment as deployment_api
from mlkube.api import project as project_api
from mlkube.api import replay as replay_api
from mlkube.api import strategy as strategy_api
from mlkube.common import timestamps
from mlkube.control.manifests import replay as replay_manifests
from mlkube.control.manifests import training
from mlkube.control.plans import plan as plans
from mlkube.control.policy import kserve, rollout
from mlkube.control.policy import replay as replay_policy

REPLAY_DEADLINE = datetime.timedelta(seconds=replay_manifests.DEADLINE_SECONDS + 60)


@dataclasses.dataclass(frozen=True)
class Observed:
    """The deployment's replay Jobs as one pass read them."""

    run: replay_policy.Run | None = None
    """The Job of the replay in the stored status (``current_job``); None: it does not exist."""
    jobs: tuple[str, ...] = ()
    """The names of every replay Job of the deployment."""


@dataclasses.dataclass(frozen=True)
class Planned:
    """What the replay step adds to the pass."""

    status: replay_api.ReplayStatus | None
    apply: tuple[dict[str, Any], ...] = ()
    create: tuple[dict[str, Any], ...] = ()
    delete: tuple[plans.ObjectRef, ...] = ()
    message: str | None = None
    """The status message while the replay holds the candidate (None: the plan's own)."""


def current_job(obj: dict[str, Any]) -> str | None:
    """The replay Job of ModelDeployment ``obj`` as read (its stored status), if a replay step holds."""
    status = obj.get("status") or {}
    candidate, since = status.get("candidateVersion"), status.get("replayingSince")
    if not isinstance(candidate, int) or not since:
        return None
    return replay_manifests.job_name(obj["metadata"]["name"], candidate=candidate, since=since)


def verdict(
    strategy: strategy_api.Strategy,
    state: rollout.State,
    current: deployment_api.ModelDeploymentStatus,
    observed: Observed,
    *,
    task: str,
    now: datetime.datetime,
) -> replay_api.ReplayStatus | None:
    """The judged replay of ``state.candidate`` for ``rollout.decide``; None while it has not run
    or still runs."""
    stored = current.replay
    if state.replay_started is None or state.candidate is None or stored is None or stored.version != state.candidate:
        return None
    if stored.verdict is not None:
        return stored  # judged on an earlier pass
    if strategy.replay is None:
        return replay_policy.unanswered(state.candidate, "spec.strategy.replay was removed during the replay step")
    if stored.started_at is None:
        return None  # its Job is not created yet
    run = observed.run
    if run is None:
        return replay_policy.unanswered(state.candidate, "its Job is gone")
    if run.phase == "Running":
        if now - timestamps.parse(stored.started_at) > REPLAY_DEADLINE:
            return replay_policy.unanswered(state.candidate, f"its Job did not answer within {REPLAY_DEADLINE}")
        return None
    if run.result is None:
        return replay_policy.unanswered(state.candidate, run.message)
    return replay_policy.judge(
        run.result,
        strategy.replay,
        version=state.candidate,
        stable=state.stable,
        metric=replay_manifests.quality_metric(task),
        confidence=strategy.analysis.confidence,
    )


def planned(
    obj: dict[str, Any],
    spec: deployment_api.ModelDeploymentSpec,
    *,
    before: rollout.State,
    after: rollout.State,
    current: deployment_api.ModelDeploymentStatus,
    judged: replay_api.ReplayStatus | None,
    observed: Observed,
    seen: kserve.Seen,
    project: project_api.MLProjectSpec,
    project_name: str,
    image: str,
    now: datetime.datetime,
) -> Planned:
    """``status.replay``, the replay Job to create (the candidate is Ready and has an address), the
    replay Jobs to delete and the message while the replay holds the candidate."""
    stamp = timestamps.format(now)
    # Only Jobs the stored status no longer names go: the current one is deleted on the pass after
    # its verdict is written, so a pass retried after a status-write conflict still reads it.
    keep = current_job(obj)
    namespace = obj["metadata"]["namespace"]
    delete = tuple(plans.ObjectRef("batch/v1", "Job", n, namespace) for n in observed.jobs if n != keep)
    replay = current.replay
    if after.candidate is not None and after.candidate != before.candidate:
        # A new rollout: the last replay's result goes with the last candidate.
        waiting = f"waiting for version {after.candidate} to become ready before its replay"
        replay = replay_api.ReplayStatus(version=after.candidate, message=waiting) if after.replay_started else None
    elif judged is not None and replay is not None and replay.verdict is None:
        replay = judged.model_copy(update={"started_at": replay.started_at, "finished_at": stamp})
    elif replay is not None and replay.verdict is None and before.replay_started and not after.replay_started:
        # The rollout left the step before a verdict (aborted, promoted by hand, a candidate that
        # cannot load, the spec back to the stable version): say so rather than "replaying".
        ended = f"not judged: the rollout of version {replay.version} left its replay step first"
        replay = replay.model_copy(update={"finished_at": stamp, "message": ended})
    if after.replay_started is None or after.candidate is None or replay is None:
        return Planned(status=replay, delete=delete)
    url = seen.urls.get(after.candidate)
    create: tuple[dict[str, Any], ...] = ()
    apply: tuple[dict[str, Any], ...] = ()
    name = replay_manifests.job_name(
        obj["metadata"]["name"], candidate=after.candidate, since=timestamps.format(after.replay_started)
    )
    settings = spec.strategy.replay
    if replay.started_at is None and settings is not None and seen.ready.get(after.candidate) and url:
        request = replay_manifests.replay_request(
            obj,
            settings,
            storage=project.storage,
            stable=after.stable,
            candidate=after.candidate,
            candidate_url=url,
            task=project.problem.task,
        )
        job = replay_manifests.replay_job(
            obj, request, name=name, project_name=project_name, image=image, secret=project.storage.credentials_secret
        )
        apply, create = (training.trainer_service_account(namespace),), (job,)
        running = f"replaying up to {settings.requests} captured requests of version {after.stable} (Job {name})"
        replay = replay.model_copy(update={"started_at": stamp, "message": running})
    message = None
    if replay.verdict is None and after.phase == "Progressing" and seen.ready.get(after.candidate):
        message = f"Version {after.candidate} takes no traffic until its replay is judged: {replay.message}"
    return Planned(status=replay, apply=apply, create=create, delete=delete, message=message)

"""Issue 22 acceptance, replay before promote: a candidate that fails on the captured requests is
rejected by its replay with no live request routed to it (the router's counters show 0 for it),
while clients keep getting answers from the stable version throughout."""

from __future__ import annotations

import collections
import pathlib
import uuid

import httpx
import pytest
from rollout_helpers import PROJECT, Client, penguin_rows, roll_to, serving, wait_for

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]  # a local cluster, real processes

ANALYSIS = {"interval": "2s", "minRequests": 10, "maxErrorRate": 0.05, "maxLatencyP99": "5s"}
CAPTURED = 45


def captured_lines(root: pathlib.Path) -> int:
    return sum(len(f.read_text().splitlines()) for f in root.rglob("*.jsonl")) if root.is_dir() else 0


def test_a_candidate_failing_on_captured_requests_is_rejected_before_any_live_request(cluster, project, penguins_csv):
    namespace, versions = project["namespace"], project["versions"]
    stable, faulty = versions["good"], versions["faulty"]
    name = f"pg-{uuid.uuid4().hex[:5]}"
    strategy = {
        "type": "Canary",
        "analysis": ANALYSIS,
        "canary": {"steps": [{"weight": 50, "pause": "1m"}]},
        "replay": {"requests": CAPTURED, "maxErrorRate": 0.0},
    }
    cluster.apply(
        {
            "apiVersion": "mlkube.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": name},
            "spec": {"projectRef": PROJECT, "model": {"version": stable}, "strategy": strategy, "logging": {"enabled": True}},
        },
        namespace,
    )
    try:
        url = serving(cluster, name, namespace)
        client = Client(url, name)
        # One row in three has a zero measurement: the stable version answers it, the faulty one fails.
        rows = [
            {**row, "bill_depth_mm": 0.0} if i % 3 == 0 else row for i, row in enumerate(penguin_rows(penguins_csv)[:CAPTURED])
        ]
        answers = client.burst(rows)
        storage = pathlib.Path(cluster.get("mlproject", PROJECT, namespace)["spec"]["storage"]["uri"].removeprefix("file://"))
        log = storage / "inference-log" / namespace / name
        wait_for(lambda: captured_lines(log) >= CAPTURED, 30, "the router to write the captured requests")

        roll_to(cluster, name, namespace, faulty)
        replaying = []

        def rejected() -> bool:
            answers.extend(client.burst(rows[:9]))  # live traffic all along
            status = cluster.mdep_status(name, namespace)
            replaying.append(status.get("replayingSince") is not None)
            return status.get("phase") == "RolledBack"

        wait_for(rejected, 180, "the replay to reject the faulty version", interval=0.2)
        answers += client.burst(rows[:9])
        status = cluster.mdep_status(name, namespace)
        assert (status["stableVersion"], status["rolledBackVersion"], status.get("candidateVersion")) == (stable, faulty, None)
        replay = status["replay"]
        assert (replay["version"], replay["verdict"], replay["requests"]) == (faulty, "Failing", CAPTURED), replay
        # The newest captured requests: the first 45 and the live ones sent since, one in three failing.
        assert 10 <= replay["errors"] <= 20 and replay["errorRateInterval"][0] > 0, (replay, status["message"])
        assert replay["startedAt"] <= replay["finishedAt"]
        figures = f"> maxErrorRate 0 ({replay['errors']} of {CAPTURED} replayed requests"
        assert figures in status["message"] and "first: HTTP 500" in status["message"], status["message"]
        assert f"Version {faulty} rolled back (replay failed" in status["message"]
        assert any(replaying) and status.get("replayingSince") is None
        assert {"RolloutStarted", "ReplayFailed", "RolledBack"} <= set(cluster.events(name, namespace))

        # Zero live requests reached the candidate: every client got the stable version's 200, and
        # the router never counted a request for the candidate.
        assert collections.Counter(answers) == {(str(stable), 200): len(answers)}, collections.Counter(answers)
        stats = httpx.get(f"{url}/mlkube/stats", timeout=10).json()
        assert stats["versions"].get(str(faulty), {}).get("requests", 0) == 0, stats["versions"]
        assert stats["versions"][str(stable)]["requests"] == len(answers)

        wait_for(
            lambda: cluster.get("isvc", f"{name}-v{faulty}", namespace) is None, 30, "the candidate's InferenceService to go"
        )
        wait_for(
            lambda: not cluster.items_with_prefix("jobs", f"{name}-replay-", namespace),
            30,
            "the consumed replay Job to be deleted",
        )
        client.close()
    finally:
        cluster.kubectl("delete", "mdep", name, "-n", namespace, "--wait=false", check=False)

"""Issue 7 acceptance, canary: traffic shares measured at the router follow the steps, then the
candidate takes all traffic; a candidate that errors is rolled back with the stable untouched."""

from __future__ import annotations

import collections
import math

import pytest
from rollout_helpers import Client, penguin_rows, roll_to, serving, wait_for

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]  # a local cluster, real processes

ANALYSIS = {"interval": "2s", "minRequests": 20, "maxErrorRate": 0.05, "maxLatencyP99": "5s", "minAgreement": 0.8}


def shares(summary: str) -> dict[str, float]:
    """{"1": 0.75, "2": 0.25} from "v1=75,v2=25"."""
    return {part.split("=")[0][1:]: int(part.split("=")[1]) / 100 for part in summary.split(",")}


def test_canary_shares_follow_the_steps_then_the_candidate_takes_all(cluster, project, deploy, penguins_csv):
    namespace, versions = project["namespace"], project["versions"]
    old, new = str(versions["good"]), str(versions["better"])
    name = deploy(
        versions["good"],
        {
            "type": "Canary",
            "analysis": ANALYSIS,
            "canary": {"steps": [{"weight": 25, "pause": "6s"}, {"weight": 50, "pause": "6s"}]},
        },
    )
    client = Client(serving(cluster, name, namespace), name)
    rows = penguin_rows(penguins_csv)
    roll_to(cluster, name, namespace, versions["better"])
    answered: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    summaries = []
    for batch in range(400):
        before = cluster.mdep_status(name, namespace)
        answers = client.burst(rows[(batch * 16) % 300 :][:16])
        after = cluster.mdep_status(name, namespace)
        assert all(code == 200 for _, code in answers), answers
        if before.get("trafficSummary") == after.get("trafficSummary"):  # the batch ran under one traffic table
            answered[after["trafficSummary"]].update(version for version, _ in answers)
            if not summaries or summaries[-1] != after["trafficSummary"]:
                summaries.append(after["trafficSummary"])
        if after.get("stableVersion") == versions["better"] and answered[f"v{new}=100"].total() >= 32:
            break
    assert summaries[-3:] == [f"v{old}=75,v{new}=25", f"v{old}=50,v{new}=50", f"v{new}=100"], summaries
    for summary, counts in answered.items():
        n = counts.total()
        for version, expected in shares(summary).items():
            observed = counts[version] / n
            tolerance = 4.5 * math.sqrt(expected * (1 - expected) / n) + 1e-9  # a false alarm about once in 10^5 runs
            assert abs(observed - expected) <= tolerance, f"{summary}: {dict(counts)}"
    assert answered[f"v{old}=75,v{new}=25"].total() >= 40 and answered[f"v{old}=50,v{new}=50"].total() >= 40, dict(answered)
    status = cluster.mdep_status(name, namespace)
    assert (status["phase"], status["stableVersion"], status.get("candidateVersion")) == ("Healthy", versions["better"], None)
    assert status["traffic"] == [{"version": versions["better"], "role": "stable", "percent": 100}]
    assert status["analysis"]["verdict"] == "Passing" and status["analysis"]["agreement"] >= 0.8
    assert {"RolloutStarted", "StepCompleted", "Promoted"} <= set(cluster.events(name, namespace))
    wait_for(lambda: cluster.get("isvc", f"{name}-v{old}", namespace) is None, 30, "the old version's InferenceService to go")
    client.close()


def test_a_candidate_that_errors_is_rolled_back_and_the_stable_never_fails(cluster, project, deploy, penguins_csv):
    namespace, versions = project["namespace"], project["versions"]
    stable, faulty = str(versions["good"]), str(versions["faulty"])
    name = deploy(
        versions["good"],
        {"type": "Canary", "analysis": {**ANALYSIS, "minAgreement": 0}, "canary": {"steps": [{"weight": 50, "pause": "1m"}]}},
    )
    client = Client(serving(cluster, name, namespace), name)
    rows = penguin_rows(penguins_csv)[:60]
    # One row in three has a zero measurement: the stable version answers it, the faulty one fails.
    mixed = [{**row, "bill_depth_mm": 0.0} if i % 3 == 0 else row for i, row in enumerate(rows)]
    roll_to(cluster, name, namespace, versions["faulty"])
    answers = []
    for _ in range(200):
        answers += client.burst(mixed[:24])
        if cluster.mdep_status(name, namespace).get("phase") == "RolledBack":
            break
    after = [answer for _ in range(3) for answer in client.burst(mixed[:24])]
    by_version = collections.Counter(answers + after)
    assert by_version[(faulty, 500)] > 0, by_version  # the candidate did take traffic, and failed on it
    assert {code for version, code in answers + after if version == stable} == {200}, by_version
    assert {version for version, _ in after} == {stable}, collections.Counter(after)
    status = cluster.mdep_status(name, namespace)
    assert (status["phase"], status["stableVersion"], status["rolledBackVersion"]) == (
        "RolledBack",
        versions["good"],
        versions["faulty"],
    )
    assert status["traffic"] == [{"version": versions["good"], "role": "stable", "percent": 100}]
    assert status["analysis"]["verdict"] == "Failing" and status["analysis"]["failedChecks"][0].startswith("errorRate")
    assert f"Version {faulty} rolled back" in status["message"] and "errorRate" in status["message"]
    assert "RolledBack" in cluster.events(name, namespace)
    wait_for(lambda: cluster.get("isvc", f"{name}-v{faulty}", namespace) is None, 30, "the candidate's InferenceService to go")
    client.close()

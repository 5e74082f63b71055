"""Issue 22, instant rollback after promotion: with ``strategy.scaleDownDelay`` the previous stable
version's InferenceService stays up after a promotion; when the promoted version starts failing
inside the window, all traffic goes back to it (the same InferenceService, never restarted), and no
request answered by it, or by the router for want of a backend, fails."""

from __future__ import annotations

import collections
import time

import pytest
from rollout_helpers import Client, penguin_rows, roll_to, serving, wait_for

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]  # a local cluster, real processes

ANALYSIS = {"interval": "2s", "minRequests": 20, "maxErrorRate": 0.05, "maxLatencyP99": "5s", "minAgreement": 0}


def test_a_promoted_version_that_starts_failing_is_switched_back_to_the_warm_previous_version(
    cluster, project, deploy, penguins_csv
):
    namespace, versions = project["namespace"], project["versions"]
    good, faulty = versions["good"], versions["faulty"]
    name = deploy(
        good,
        {
            "type": "Canary",
            "analysis": ANALYSIS,
            "canary": {"steps": [{"weight": 50, "pause": "2s"}]},
            "scaleDownDelay": "5m",
        },
    )
    client = Client(serving(cluster, name, namespace), name)
    rows = penguin_rows(penguins_csv)[:60]
    warm_uid = cluster.get("isvc", f"{name}-v{good}", namespace)["metadata"]["uid"]

    # The faulty version answers every complete row well: it passes its canary and is promoted.
    roll_to(cluster, name, namespace, faulty)
    promoted = {}
    for _ in range(300):
        assert {code for _, code in client.burst(rows[:24])} == {200}
        promoted = cluster.mdep_status(name, namespace)
        if promoted.get("stableVersion") == faulty and promoted.get("candidateVersion") is None:
            break
    assert (promoted["phase"], promoted["previousVersion"], promoted["traffic"]) == (
        "Healthy",
        good,
        [{"version": faulty, "role": "stable", "percent": 100}],
    )
    assert promoted["scaleDownAt"] and promoted.get("retiringVersions", []) == []
    assert cluster.get("isvc", f"{name}-v{good}", namespace)["metadata"]["uid"] == warm_uid  # still up

    # Now one row in three has a zero measurement: the promoted version fails on it.
    mixed = [{**row, "bill_depth_mm": 0.0} if i % 3 == 0 else row for i, row in enumerate(rows)]
    answers: list[tuple[float, str | None, int]] = []
    started = time.monotonic()
    for _ in range(200):
        answers += [(time.monotonic() - started, v, code) for v, code in client.burst(mixed[:24])]
        if cluster.mdep_status(name, namespace).get("phase") == "RolledBack":
            break
    after = [answer for _ in range(3) for answer in client.burst(mixed[:24])]
    by_version = collections.Counter((v, code) for _, v, code in answers)
    assert by_version[(str(faulty), 500)] > 0, by_version  # it did fail after its promotion
    assert all(v in (str(good), str(faulty)) for _, v, _ in answers), by_version  # every request reached a version
    assert {code for _, v, code in answers if v == str(good)} <= {200}, by_version
    assert after and {(v, code) for v, code in after} == {(str(good), 200)}, collections.Counter(after)

    status = cluster.mdep_status(name, namespace)
    assert (status["phase"], status["stableVersion"], status["rolledBackVersion"], status.get("previousVersion")) == (
        "RolledBack",
        good,
        faulty,
        None,
    )
    assert status["traffic"] == [{"version": good, "role": "stable", "percent": 100}]
    assert f"switched 100% of traffic back to warm version {good}" in status["message"] and "errorRate" in status["message"]
    assert cluster.get("isvc", f"{name}-v{good}", namespace)["metadata"]["uid"] == warm_uid  # the same, never restarted
    first_failure = min(t for t, v, code in answers if code != 200)
    last_faulty = max(t for t, v, _ in answers if v == str(faulty))
    print(
        f"\nswitch back: {last_faulty - first_failure:.2f} s from the first failed request to the last one the failing version answered"
    )
    wait_for(
        lambda: cluster.get("isvc", f"{name}-v{faulty}", namespace) is None, 30, "the failed version's InferenceService to go"
    )
    client.close()

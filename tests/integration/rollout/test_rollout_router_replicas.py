"""Issue 19 acceptance, serving scale: a ModelDeployment with two router replicas keeps the canary
share across both, its analysis counts what both routed, and losing one router loses no request
the other could serve (a client that retries once)."""

from __future__ import annotations

import json
import math

import httpx
import pytest
from rollout_helpers import Client, penguin_rows, roll_to, serving, wait_for

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]  # a local cluster, real processes

ANALYSIS = {"interval": "2s", "minRequests": 20, "maxErrorRate": 0.05, "maxLatencyP99": "5s"}


def router_pods(cluster, name: str, namespace: str) -> list[dict]:
    pods = [p for p in cluster.items("pod", namespace) if (p["metadata"].get("labels") or {}).get("mlkube.io/router") == name]
    return [p for p in pods if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]


def candidate_requests(pod: dict, version: int) -> int:
    stats = httpx.get(f"http://{pod['status']['podIP']}:8080/mlkube/stats", timeout=5).json()
    return stats["versions"].get(str(version), {}).get("requests", 0)


def test_two_routers_share_the_canary_split_and_the_analysis_counts_both(cluster, project, deploy, penguins_csv):
    namespace, versions = project["namespace"], project["versions"]
    stable, candidate = versions["good"], versions["better"]
    name = deploy(stable, {"type": "Canary", "analysis": ANALYSIS, "canary": {"steps": [{"weight": 50, "pause": "1h"}]}})
    cluster.kubectl(
        "patch", "mdep", name, "-n", namespace, "--type=merge", "-p", json.dumps({"spec": {"router": {"replicas": 2}}})
    )
    client = Client(serving(cluster, name, namespace), name)
    wait_for(lambda: len(router_pods(cluster, name, namespace)) == 2, 90, "two ready routers")
    roll_to(cluster, name, namespace, candidate)
    wait_for(lambda: cluster.mdep_status(name, namespace).get("trafficSummary") == f"v{stable}=50,v{candidate}=50", 90, "50/50")
    pods = router_pods(cluster, name, namespace)
    # Both routers hold the 50/50 table once each has answered the candidate.
    wait_for(
        lambda: all(client.burst(penguin_rows(penguins_csv)[:8]) and candidate_requests(p, candidate) for p in pods),
        60,
        "both routers",
    )

    rows = penguin_rows(penguins_csv)
    answers = []
    for start in range(0, 240, 24):
        answers += client.burst(rows[start : start + 24])
    assert all(code == 200 for _, code in answers), answers
    share = sum(version == str(candidate) for version, _ in answers) / len(answers)
    assert abs(share - 0.5) <= 4.5 * math.sqrt(0.25 / len(answers)), share
    per_router = [candidate_requests(p, candidate) for p in pods]
    assert all(n > 20 for n in per_router), f"each router routed its part: {per_router}"

    def analysed_sum():
        counted = cluster.mdep_status(name, namespace).get("analysis", {}).get("requests")
        return counted if counted == sum(candidate_requests(p, candidate) for p in pods) else None

    assert wait_for(analysed_sum, 30, "the analysis to count both routers' requests") >= sum(per_router)

    # One router goes away mid-traffic: every request is answered, with one retry at most.
    doomed = pods[0]["metadata"]["name"]
    cluster.kubectl("delete", "pod", doomed, "-n", namespace, "--wait=false")
    failures = 0
    for row in rows[:120]:
        try:
            response = client.predict(row)
        except httpx.TransportError:
            response = None
        if response is None or response.status_code >= 500:
            response = client.predict(row)  # the one retry
            failures += 1
        assert response.status_code == 200, response.text
    assert failures <= 5, failures
    assert cluster.mdep_status(name, namespace)["stableVersion"] == stable
    client.close()

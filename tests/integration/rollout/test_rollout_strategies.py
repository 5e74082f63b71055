"""The other ways a version reaches clients: blue/green (a preview address, then one switch) and
following the project's champion."""

from __future__ import annotations

import pytest
from rollout_helpers import PROJECT, Client, penguin_rows, roll_to, serving, wait_for

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]  # a local cluster, real processes

ANALYSIS = {"interval": "2s", "minRequests": 10, "maxErrorRate": 0.05, "maxLatencyP99": "5s"}


def test_blue_green_previews_the_candidate_then_switches_all_traffic_at_once(cluster, project, deploy, penguins_csv):
    namespace, versions = project["namespace"], project["versions"]
    blue, green = str(versions["good"]), str(versions["better"])
    name = deploy(versions["good"], {"type": "BlueGreen", "blueGreen": {"previewDuration": "10s"}, "analysis": ANALYSIS})
    url = serving(cluster, name, namespace)
    client, preview = Client(url, name), Client(f"{url}/preview", name)
    rows = penguin_rows(penguins_csv)[:24]
    roll_to(cluster, name, namespace, versions["better"])
    wait_for(lambda: preview.predict(rows[0]).headers.get("x-mlkube-version") == green, 120, "the green version's preview")
    assert set(client.burst(rows)) == {(blue, 200)} and set(preview.burst(rows)) == {(green, 200)}
    status = cluster.mdep_status(name, namespace)
    assert status["previewUrl"] == f"{url}/preview" and status["trafficSummary"] == f"v{blue}=100,v{green}=0"
    wait_for(lambda: cluster.mdep_status(name, namespace).get("stableVersion") == versions["better"], 60, "the switch")
    assert set(client.burst(rows)) == {(green, 200)}
    status = cluster.mdep_status(name, namespace)
    assert status["phase"] == "Healthy" and "previewUrl" not in status
    client.close()
    preview.close()


def test_a_deployment_tracking_the_champion_rolls_out_each_new_champion(cluster, project, deploy, penguins_csv):
    namespace, versions = project["namespace"], project["versions"]

    def choose(version):  # the project's manual promotion policy: a person names the champion
        cluster.kubectl("annotate", "mlproject", PROJECT, "-n", namespace, f"mlkube.io/champion={version}", "--overwrite")

    choose(versions["good"])
    wait_for(
        lambda: cluster.status("mlproject", PROJECT, namespace).get("championVersion") == versions["good"], 30, "the champion"
    )
    name = deploy(None, {"type": "Direct", "analysis": ANALYSIS})
    client = Client(serving(cluster, name, namespace), name)
    assert cluster.mdep_status(name, namespace)["stableVersion"] == versions["good"]
    choose(versions["better"])
    wait_for(lambda: cluster.mdep_status(name, namespace).get("stableVersion") == versions["better"], 90, "the new champion")
    assert set(client.burst(penguin_rows(penguins_csv)[:24])) == {(str(versions["better"]), 200)}
    assert {"RolloutStarted", "Promoted"} <= set(cluster.events(name, namespace))
    client.close()

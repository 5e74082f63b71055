"""The MLProject reconciler against a real API server: a status write that conflicts makes the
pass start over, yet each transition's Events are posted once and a schedule tick starts one run.

No operator process: each test runs passes itself with the operator's client, and a concurrent
writer is played by a client that changes the project just before the reconciler's status write.
"""

from __future__ import annotations

import datetime

from control_helpers import Interrupted, events_of, project_manifest

from mlkube.clients import k8s
from mlkube.common import timestamps
from mlkube.control.reconcile import project as project_reconcile


def _finished_run(client, loop, namespace: str, name: str, status: dict) -> None:
    tj = {
        "apiVersion": "mlkube.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"projectRef": "p"},
    }
    loop.run_until_complete(client.create(tj))
    loop.run_until_complete(client.patch_status(k8s.TRAININGJOBS, name, namespace, status))


def test_a_registration_retried_after_a_conflict_posts_its_events_once_and_prunes_the_history(client, loop, kubectl, namespace):
    loop.run_until_complete(client.create(project_manifest(namespace, training={"failedJobsHistoryLimit": 0})))
    _finished_run(
        client,
        loop,
        namespace,
        "good",
        {
            "phase": "Succeeded",
            "completionTime": "2026-11-24T09:30:00Z",
            "bestAlgorithm": "ridge",
            "metrics": {"test": {"rmse": 1.5}},
            "successCriteriaMet": True,
            "artifactUri": "file:///s/runs/good/",
            "digest": "sha256:good",
        },
    )
    _finished_run(
        client, loop, namespace, "broken", {"phase": "Failed", "completionTime": "2026-11-24T09:31:00Z", "message": "x"}
    )

    interrupted = Interrupted(client)
    loop.run_until_complete(project_reconcile.reconcile(interrupted, "p", namespace))

    assert interrupted.status_writes == 2  # the first write conflicted; the replanned pass wrote
    status = loop.run_until_complete(client.get(k8s.MLPROJECTS, "p", namespace))["status"]
    assert status["championVersion"] == 1 and [m["trainingJob"] for m in status["models"]] == ["good"]
    # Both within one second: compared without their order, which Events record only to the second.
    expected = sorted(
        [
            ("VersionRegistered", "Version 1 from TrainingJob good (eligible)"),
            ("ChampionChanged", "Version 1 is the champion (was None)"),
        ]
    )
    assert sorted(events_of(kubectl, namespace, "p")) == expected
    assert loop.run_until_complete(client.get(k8s.TRAININGJOBS, "broken", namespace)) is None  # failedJobsHistoryLimit 0
    assert loop.run_until_complete(client.get(k8s.TRAININGJOBS, "good", namespace)) is not None

    # Another pass has nothing new to say.
    loop.run_until_complete(project_reconcile.reconcile(client, "p", namespace))
    assert sorted(events_of(kubectl, namespace, "p")) == expected


def test_a_schedule_tick_retried_after_a_conflict_starts_one_run(client, loop, kubectl, namespace):
    loop.run_until_complete(client.create(project_manifest(namespace, retraining={"schedule": "* * * * *"})))
    created = timestamps.parse(
        loop.run_until_complete(client.get(k8s.MLPROJECTS, "p", namespace))["metadata"]["creationTimestamp"]
    )
    later = created + datetime.timedelta(seconds=61)  # a tick has passed since the project was created

    def runs():
        return sorted(tj["metadata"]["name"] for tj in loop.run_until_complete(client.list(k8s.TRAININGJOBS, namespace)))

    interrupted = Interrupted(client)
    loop.run_until_complete(project_reconcile.reconcile(interrupted, "p", namespace, clock=lambda: later))
    tick = later.replace(second=0)
    name = f"p-sched-{tick:%Y%m%d%H%M}"
    assert interrupted.status_writes == 2
    assert runs() == [name]
    assert events_of(kubectl, namespace, "p") == [("RetrainingStarted", f"Started TrainingJob {name} (schedule)")]
    status = loop.run_until_complete(client.get(k8s.MLPROJECTS, "p", namespace))["status"]
    assert status["lastScheduleTime"] == timestamps.format(tick)
    assert status["nextScheduledRetrain"] == timestamps.format(tick + datetime.timedelta(minutes=1))

    # The next pass records the run for the retraining budget; deleting it does not start the tick again.
    loop.run_until_complete(project_reconcile.reconcile(client, "p", namespace, clock=lambda: later))
    run_created = loop.run_until_complete(client.get(k8s.TRAININGJOBS, name, namespace))["metadata"]["creationTimestamp"]
    loop.run_until_complete(client.delete(k8s.TRAININGJOBS, name, namespace))
    loop.run_until_complete(project_reconcile.reconcile(client, "p", namespace, clock=lambda: later))
    assert runs() == []
    status = loop.run_until_complete(client.get(k8s.MLPROJECTS, "p", namespace))["status"]
    assert status["retrainTimes"] == [run_created] and status["lastRetrainTime"] == run_created
    assert len(events_of(kubectl, namespace, "p")) == 1

"""Issue 21 retention on the embedded control plane: the artifacts of a retired version are deleted
after the grace period, by a purge Job in the tenant's namespace; the champion's and a served
version's stay. Real trainer Jobs on the penguins data, driven with kubectl."""

from __future__ import annotations

import json
import pathlib
import urllib.parse

from lifecycle_helpers import project, wait_for
from test_registry_objects import ALL_FEATURES, ONE_FEATURE, champion_becomes, event, pinned_deployment, settled, train


def artifacts(cluster, namespace: str, name: str) -> pathlib.Path:
    """The local directory of ModelVersion ``name``'s artifacts (the project stores on file://)."""
    uri = cluster.get("mv", name, namespace)["spec"]["artifactUri"]
    return pathlib.Path(urllib.parse.urlsplit(uri).path)


def test_a_retired_versions_artifacts_are_deleted_after_the_grace_period_but_never_the_champions_or_a_served_ones(
    cluster, namespace, penguins_csv, tmp_path
):
    cluster.apply(project("penguins", penguins_csv, tmp_path / "models"), namespace)
    assert train(cluster, namespace, "first", ONE_FEATURE)["modelVersion"] == 1
    pinned_deployment(cluster, namespace, "served", 1)
    wait_for(lambda: cluster.status("mdep", "served", namespace).get("stableVersion") == 1, 60, "version 1 to be served")
    assert train(cluster, namespace, "second", ONE_FEATURE)["modelVersion"] == 2
    assert train(cluster, namespace, "best", ALL_FEATURES)["modelVersion"] == 3
    champion_becomes(cluster, namespace, 3, "version 3 to become champion")
    dirs = {v: artifacts(cluster, namespace, f"penguins-v{v}") for v in (1, 2, 3)}
    assert all((d / "model.joblib").is_file() for d in dirs.values())

    # keep 1: version 3 is the newest and the champion, 1 is served; 2 retires, and a second later
    # (the grace period) its purge Job deletes its artifacts.
    patch = {"spec": {"registry": {"keep": 1, "gracePeriod": "1s"}}}
    cluster.kubectl("patch", "mlp", "penguins", "-n", namespace, "--type", "merge", "-p", json.dumps(patch))
    purged = settled(cluster, namespace, "penguins-v2", timeout=120, artifactsDeleted=True)
    assert purged["phase"] == "Retired" and purged["retiredAt"]
    uri = cluster.get("mv", "penguins-v2", namespace)["spec"]["artifactUri"]
    kind, _, message = event(cluster, namespace, "ModelVersion", "penguins-v2", "ArtifactsDeleted")
    assert kind == "Normal" and uri in message, message
    assert not dirs[2].exists()

    # The champion's and the served version's artifacts are untouched.
    assert (dirs[1] / "model.joblib").is_file() and (dirs[3] / "model.joblib").is_file()
    served = settled(cluster, namespace, "penguins-v1", servedBy=["served"])
    assert not served.get("retiredAt") and not served["artifactsDeleted"]
    assert not settled(cluster, namespace, "penguins-v3", phase="Champion")["artifactsDeleted"]

    # The Job ran in the tenant's namespace and is removed once its outcome is recorded.
    wait_for(lambda: cluster.get("job", "penguins-v2-purge", namespace) is None, 30, "the purge Job to be deleted")
    assert cluster.status("mdep", "served", namespace).get("stableVersion") == 1

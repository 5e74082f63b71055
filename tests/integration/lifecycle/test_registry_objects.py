"""Issue 21 acceptance on the embedded control plane: the model registry as ModelVersion objects.

Versions as objects with printer columns, numbers never reused and the champion recovered after a
status wipe, retention; success criteria enforced on every path to champion and serving (the
champion annotation, a pinned ModelDeployment) unless a person approves with a reason (CEL
refuses an approval without one, and any edit of the registered facts); the manual policy's
approvals and rejections. Real trainer Jobs on the penguins data, driven with kubectl."""

from __future__ import annotations

import json
import re
from typing import Any

from lifecycle_helpers import project, trainingjob, wait_for

ONE_FEATURE = {"featureSelection": {"method": "kbest", "k": 1}}  # f1 about 0.71 on penguins
ALL_FEATURES = {"featureSelection": {"method": "none"}}  # f1 about 1.0
COLUMNS = ["NAME", "PROJECT", "VERSION", "ALGORITHM", "METRIC", "ELIGIBLE", "APPROVAL", "PHASE", "AGE"]


def train(cluster, namespace: str, name: str, preprocessing: dict[str, Any], *, project_name: str = "penguins") -> dict:
    """Run TrainingJob ``name`` to its end; its status (with ``modelVersion``) once registered."""
    cluster.apply(trainingjob(name, project_name, preprocessing=preprocessing), namespace)

    def done():
        status = cluster.status("trainingjob", name, namespace)
        return status if status.get("phase") == "Failed" or status.get("modelVersion") is not None else None

    status = wait_for(done, 240, f"TrainingJob {name} to register a version", interval=0.5)
    assert status["phase"] == "Succeeded", json.dumps(status)
    return status


def mv_status(cluster, namespace: str, name: str) -> dict[str, Any]:
    return cluster.status("modelversion", name, namespace)


def settled(cluster, namespace: str, name: str, timeout: float = 60, **expected: Any) -> dict[str, Any]:
    """ModelVersion ``name``'s status once every ``expected`` field (camelCase) has its value."""

    def matches():
        status = mv_status(cluster, namespace, name)
        return status if all(status.get(k) == v for k, v in expected.items()) else None

    try:
        return wait_for(matches, timeout, f"ModelVersion {name} to have {expected}", interval=0.5)
    except AssertionError as timeout_error:
        raise AssertionError(f"{timeout_error}; status is {json.dumps(mv_status(cluster, namespace, name))}") from None


def ready(status: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})


def ready_reason(cluster, kind: str, name: str, namespace: str, reason: str, timeout: float = 60) -> dict[str, Any]:
    """The Ready condition of ``kind/name`` once its reason is ``reason``."""

    def reached():
        condition = ready(cluster.status(kind, name, namespace))
        return condition if condition.get("reason") == reason else None

    try:
        return wait_for(reached, timeout, f"{kind} {name} Ready reason {reason}", interval=0.5)
    except AssertionError as timeout_error:
        raise AssertionError(f"{timeout_error}; status is {json.dumps(cluster.status(kind, name, namespace))}") from None


def champion(cluster, namespace: str, name: str = "penguins") -> int | None:
    return cluster.status("mlproject", name, namespace).get("championVersion")


def champion_becomes(cluster, namespace: str, version: int | None, what: str) -> None:
    try:
        wait_for(lambda: champion(cluster, namespace) == version, 60, what, interval=0.5)
    except AssertionError as timeout_error:
        raise AssertionError(
            f"{timeout_error}; project status is {json.dumps(cluster.status('mlproject', 'penguins', namespace))}"
        ) from None


def decide(cluster, namespace: str, name: str, approval: dict[str, str], *, check: bool = True):
    return cluster.kubectl(
        "patch", "mv", name, "-n", namespace, "--type", "merge", "-p", json.dumps({"spec": {"approval": approval}}), check=check
    )


def events(cluster, namespace: str, kind: str, name: str) -> list[tuple[str, str, str]]:
    """(type, reason, message) of the Events about ``kind/name``."""
    return [
        (e.get("type", ""), e["reason"], e.get("message", ""))
        for e in cluster.items("events", namespace)
        if e["involvedObject"].get("kind") == kind and e["involvedObject"]["name"] == name
    ]


def event(cluster, namespace: str, kind: str, name: str, reason: str) -> tuple[str, str, str]:
    """The first Event ``reason`` about ``kind/name`` (waited for: Events are posted after the status)."""

    def posted():
        return next((e for e in events(cluster, namespace, kind, name) if e[1] == reason), None)

    try:
        return wait_for(posted, 30, f"a {reason} Event on {kind} {name}", interval=0.5)
    except AssertionError as timeout_error:
        raise AssertionError(f"{timeout_error}; its Events: {events(cluster, namespace, kind, name)}") from None


def mv_table(cluster, namespace: str) -> tuple[list[str], dict[str, list[str]]]:
    lines = cluster.kubectl("get", "mv", "-n", namespace).stdout.splitlines()
    return lines[0].split(), {line.split()[0]: line.split() for line in lines[1:]}


def pinned_deployment(cluster, namespace: str, name: str, version: int) -> None:
    cluster.apply(
        {
            "apiVersion": "mlkube.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": name},
            "spec": {"projectRef": "penguins", "model": {"version": version}, "logging": {"enabled": False}},
        },
        namespace,
    )


def test_trainings_create_model_versions_and_a_status_wipe_neither_reuses_numbers_nor_loses_the_champion(
    cluster, namespace, penguins_csv, tmp_path
):
    cluster.apply(project("penguins", penguins_csv, tmp_path / "models"), namespace)
    runs = {1: train(cluster, namespace, "first", ONE_FEATURE), 2: train(cluster, namespace, "better", ALL_FEATURES)}
    assert [runs[1]["modelVersion"], runs[2]["modelVersion"]] == [1, 2]
    champion_becomes(cluster, namespace, 2, "version 2 to become champion")
    settled(cluster, namespace, "penguins-v1", phase="Eligible", champion=False)
    settled(cluster, namespace, "penguins-v2", phase="Champion", champion=True)

    header, rows = mv_table(cluster, namespace)
    assert header == COLUMNS
    assert sorted(rows) == ["penguins-v1", "penguins-v2"]
    for version, run in runs.items():
        name = f"penguins-v{version}"
        f1 = run["metrics"]["test"]["f1"]
        phase = "Champion" if version == 2 else "Eligible"
        assert rows[name][:8] == [name, "penguins", str(version), run["bestAlgorithm"], f"f1={f1:.4g}", "true", "Pending", phase]
        assert rows[name][3] == "logistic_regression" and re.fullmatch(r"f1=(0\.\d+|1)", rows[name][4])

        mv = cluster.get("mv", name, namespace)
        assert mv["metadata"]["labels"]["mlkube.io/project"] == "penguins"
        assert [(o["kind"], o["name"]) for o in mv["metadata"]["ownerReferences"]] == [("MLProject", "penguins")]
        spec = mv["spec"]
        assert (spec["projectRef"], spec["version"], spec["trainingJob"]) == (
            "penguins",
            version,
            ["first", "better"][version - 1],
        )
        assert (spec["digest"], spec["artifactUri"]) == (run["digest"], run["artifactUri"])
        assert spec["metrics"]["test"] == run["metrics"]["test"] and spec["lineage"] == run["lineage"]
        assert mv["status"]["cardUri"].startswith(run["artifactUri"].rstrip("/")) and mv["status"]["cardUri"].endswith(".html")
    assert "penguins-v2" in cluster.kubectl("get", "mlkube", "-n", namespace).stdout  # category mlkube

    # The status is lost (a restore, a `kubectl get -o yaml | kubectl apply`): the ModelVersions remain.
    wiped = cluster.kubectl(
        "patch",
        "mlp",
        "penguins",
        "-n",
        namespace,
        "--subresource=status",
        "--type",
        "merge",
        "-p",
        '{"status":null}',
        check=False,
    )
    assert wiped.returncode == 0, f"the status wipe was refused: {wiped.stderr}"
    # The operator notices the lost status and recomputes it: the champion from the ModelVersions.
    wait_for(lambda: champion(cluster, namespace) == 2, 60, "the champion to be recovered from the ModelVersions", interval=0.5)
    after_recovery = mv_status(cluster, namespace, "penguins-v2")
    assert after_recovery["champion"] is True and after_recovery["phase"] == "Champion", after_recovery

    third = train(cluster, namespace, "third", ONE_FEATURE)
    assert third["modelVersion"] == 3, f"a status wipe renumbered the versions: {json.dumps(third)}"
    recovered = cluster.status("mlproject", "penguins", namespace)
    assert recovered.get("championVersion") == 2, (
        f"the champion was not recovered from the ModelVersions: project status {json.dumps(recovered)}; "
        f"penguins-v2 status after the recovery: {json.dumps(after_recovery)}"
    )
    assert [m["version"] for m in recovered["models"]] == [1, 2, 3]
    assert (recovered["versions"], recovered["latestVersion"]) == (3, 3)
    settled(cluster, namespace, "penguins-v2", phase="Champion", champion=True)
    settled(cluster, namespace, "penguins-v3", phase="Eligible", champion=False)
    assert sorted(mv_table(cluster, namespace)[1]) == ["penguins-v1", "penguins-v2", "penguins-v3"]


def test_a_version_failing_its_criteria_is_refused_everywhere_until_approved_with_a_reason(
    cluster, namespace, penguins_csv, tmp_path
):
    body = project(
        "penguins",
        penguins_csv,
        tmp_path / "models",
        successCriteria=[{"metric": "f1", "op": ">=", "threshold": 0.95}],
        promotion={"policy": "manual"},
    )
    cluster.apply(body, namespace)
    weak = train(cluster, namespace, "weak", ONE_FEATURE)
    assert weak["modelVersion"] == 1 and weak["successCriteriaMet"] is False
    status = settled(cluster, namespace, "penguins-v1", phase="Registered", eligible=False)
    assert len(status["failedCriteria"]) == 1 and status["failedCriteria"][0].startswith("f1 >= 0.95 (measured 0.")
    assert status["champion"] is False and champion(cluster, namespace) is None

    # A ModelDeployment pinned to it is refused, and nothing is deployed for it.
    pinned_deployment(cluster, namespace, "pinned", 1)
    refused = ready_reason(cluster, "mdep", "pinned", namespace, "VersionNotEligible")
    assert refused["status"] == "False"
    assert "f1 >= 0.95 (measured" in refused["message"] and "kubectl patch mv penguins-v1" in refused["message"]
    assert cluster.items("inferenceservices", namespace) == []

    # So is the manual champion annotation.
    cluster.kubectl("annotate", "mlp", "penguins", "-n", namespace, "mlkube.io/champion=1")
    refused = ready_reason(cluster, "mlproject", "penguins", namespace, "VersionNotEligible")
    assert refused["status"] == "False"
    assert "mlkube.io/champion=1" in refused["message"] and "f1 >= 0.95 (measured" in refused["message"], refused
    assert champion(cluster, namespace) is None

    # The API server refuses an approval without a reason, and any change to the registered facts.
    unexplained = decide(cluster, namespace, "penguins-v1", {"state": "Approved"}, check=False)
    assert unexplained.returncode != 0, unexplained.stdout
    assert "reason: say why the version is approved or rejected" in unexplained.stderr, unexplained.stderr
    empty = decide(cluster, namespace, "penguins-v1", {"state": "Rejected", "reason": ""}, check=False)
    assert empty.returncode != 0 and "reason: say why" in empty.stderr, empty.stderr
    edited = cluster.kubectl(
        "patch", "mv", "penguins-v1", "-n", namespace, "--type", "merge", "-p", '{"spec":{"digest":"sha256:0000"}}', check=False
    )
    assert edited.returncode != 0 and "is immutable" in edited.stderr, edited.stderr
    spec = cluster.get("mv", "penguins-v1", namespace)["spec"]
    assert spec["digest"] == weak["digest"] and spec["approval"]["state"] == "Pending"

    # Approved with a reason: the annotation is accepted, and the reason is on record.
    decide(cluster, namespace, "penguins-v1", {"state": "Approved", "reason": "risk accepted"})
    champion_becomes(cluster, namespace, 1, "the approved version 1 to become champion")
    ready_reason(cluster, "mlproject", "penguins", namespace, "ProjectReady")
    status = settled(cluster, namespace, "penguins-v1", phase="Champion", approval="Approved")
    assert status["eligible"] is False and status["champion"] is True
    approved = event(cluster, namespace, "ModelVersion", "penguins-v1", "Approved")
    assert "risk accepted" in approved[2] and "f1 >= 0.95" in approved[2], approved
    by_approval = event(cluster, namespace, "MLProject", "penguins", "ChampionByApproval")
    assert by_approval[0] == "Warning" and "risk accepted" in by_approval[2] and "f1 >= 0.95" in by_approval[2], by_approval
    assert mv_table(cluster, namespace)[1]["penguins-v1"][5:8] == ["false", "Approved", "Champion"]

    # ... and the pinned deployment goes ahead with it.
    def deploying():
        condition = ready(cluster.status("mdep", "pinned", namespace))
        return condition if condition.get("reason") not in (None, "VersionNotEligible") else None

    wait_for(deploying, 60, "the pinned deployment to stop refusing the approved version", interval=0.5)
    cluster.kubectl("delete", "mdep", "pinned", "-n", namespace, "--wait=false")


def test_manual_policy_a_better_version_waits_for_approval_and_a_rejected_one_is_never_champion(
    cluster, namespace, penguins_csv, tmp_path
):
    cluster.apply(project("penguins", penguins_csv, tmp_path / "models", promotion={"policy": "manual"}), namespace)
    assert train(cluster, namespace, "first", ONE_FEATURE)["modelVersion"] == 1
    settled(cluster, namespace, "penguins-v1", phase="Eligible", eligible=True, approval="Pending")
    assert champion(cluster, namespace) is None  # manual: nothing is champion until a person decides

    decide(cluster, namespace, "penguins-v1", {"state": "Approved", "reason": "baseline"})
    champion_becomes(cluster, namespace, 1, "the approved version 1 to become champion")
    settled(cluster, namespace, "penguins-v1", phase="Champion")

    # A better version waits in Pending ...
    better = train(cluster, namespace, "better", ALL_FEATURES)
    assert better["modelVersion"] == 2 and better["metrics"]["test"]["f1"] > 0.9
    status = settled(cluster, namespace, "penguins-v2", phase="Eligible", eligible=True, approval="Pending")
    assert status["champion"] is False
    assert champion(cluster, namespace) == 1
    assert cluster.get("mv", "penguins-v2", namespace)["spec"]["approval"]["state"] == "Pending"
    assert mv_table(cluster, namespace)[1]["penguins-v2"][5:8] == ["true", "Pending", "Eligible"]

    # ... and becomes champion once approved.
    decide(cluster, namespace, "penguins-v2", {"state": "Approved", "reason": "better f1 on the test split"})
    champion_becomes(cluster, namespace, 2, "the approved version 2 to become champion")
    settled(cluster, namespace, "penguins-v2", phase="Champion", champion=True)
    settled(cluster, namespace, "penguins-v1", phase="Eligible", champion=False)
    changed = [e for e in events(cluster, namespace, "MLProject", "penguins") if e[1] == "ChampionChanged"]
    assert any("Version 2 is the champion" in e[2] for e in changed), changed

    # A rejected version is never champion, nor served.
    assert train(cluster, namespace, "rejected", ALL_FEATURES)["modelVersion"] == 3
    decide(cluster, namespace, "penguins-v3", {"state": "Rejected", "reason": "trained on leaked labels"})
    status = settled(cluster, namespace, "penguins-v3", phase="Rejected", approval="Rejected")
    assert status["champion"] is False
    rejected = event(cluster, namespace, "ModelVersion", "penguins-v3", "Rejected")
    assert rejected[0] == "Warning" and "trained on leaked labels" in rejected[2], rejected
    assert champion(cluster, namespace) == 2

    cluster.kubectl("annotate", "mlp", "penguins", "-n", namespace, "mlkube.io/champion=3")
    refused = ready_reason(cluster, "mlproject", "penguins", namespace, "VersionNotEligible")
    assert "rejected" in refused["message"] and "trained on leaked labels" in refused["message"], refused
    assert champion(cluster, namespace) == 2
    pinned_deployment(cluster, namespace, "pinned", 3)
    refused = ready_reason(cluster, "mdep", "pinned", namespace, "VersionNotEligible")
    assert "rejected" in refused["message"], refused
    assert cluster.items("inferenceservices", namespace) == []
    assert mv_table(cluster, namespace)[1]["penguins-v3"][6:8] == ["Rejected", "Rejected"]


def test_retention_retires_old_versions_but_never_the_champion_or_a_served_one(cluster, namespace, penguins_csv, tmp_path):
    cluster.apply(project("penguins", penguins_csv, tmp_path / "models"), namespace)
    assert train(cluster, namespace, "first", ONE_FEATURE)["modelVersion"] == 1
    pinned_deployment(cluster, namespace, "served", 1)
    wait_for(lambda: cluster.status("mdep", "served", namespace).get("stableVersion") == 1, 60, "version 1 to be served")
    assert train(cluster, namespace, "better", ALL_FEATURES)["modelVersion"] == 2
    assert train(cluster, namespace, "newest", ONE_FEATURE)["modelVersion"] == 3
    champion_becomes(cluster, namespace, 2, "version 2 to become champion")

    # keep 1: version 3 is the newest, 2 the champion, 1 served: nothing retires.
    cluster.kubectl("patch", "mlp", "penguins", "-n", namespace, "--type", "merge", "-p", '{"spec":{"registry":{"keep":1}}}')
    served = settled(cluster, namespace, "penguins-v1", servedBy=["served"])
    assert served["phase"] == "Eligible" and not served.get("retiredAt")
    assert not settled(cluster, namespace, "penguins-v2", phase="Champion").get("retiredAt")
    assert not settled(cluster, namespace, "penguins-v3", phase="Eligible").get("retiredAt")

    # Once nothing serves version 1, the next pass retires it; the champion and the newest stay.
    cluster.kubectl("delete", "mdep", "served", "-n", namespace)
    cluster.kubectl(
        "patch", "mlp", "penguins", "-n", namespace, "--type", "merge", "-p", '{"spec":{"registry":{"gracePeriod":"6d"}}}'
    )
    retired = settled(cluster, namespace, "penguins-v1", phase="Retired", servedBy=[])
    assert retired["retiredAt"]
    assert event(cluster, namespace, "ModelVersion", "penguins-v1", "Retired")
    assert not settled(cluster, namespace, "penguins-v2", phase="Champion").get("retiredAt")
    assert not settled(cluster, namespace, "penguins-v3", phase="Eligible").get("retiredAt")
    assert mv_table(cluster, namespace)[1]["penguins-v1"][7] == "Retired"
    assert champion(cluster, namespace) == 2

    # The project's summary lists the versions not retired.
    def summary():
        return [m["version"] for m in cluster.status("mlproject", "penguins", namespace).get("models", [])]

    try:
        wait_for(lambda: summary() == [2, 3], 30, "the project's summary to drop retired version 1", interval=0.5)
    except AssertionError as timeout_error:
        raise AssertionError(f"{timeout_error}; status.models lists versions {summary()}") from None

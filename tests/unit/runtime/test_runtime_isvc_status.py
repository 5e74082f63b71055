"""KServe's InferenceService status from the predictor's Deployment, Service and pods."""

from mlkube.local.runtime import inferenceservices, kserve

ISVC = {
    "metadata": {"name": "churn", "namespace": "ml", "generation": 2},
    "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}}}},
}
SERVICE = {"spec": {"clusterIP": "127.1.0.7", "ports": [{"port": 80}]}}


def deployment(*, available=True, ready=1, updated=1, replicas=1):
    return {
        "metadata": {"name": "churn-predictor", "generation": 4, "annotations": {kserve.SPEC_HASH: "abc"}},
        "spec": {"replicas": 1},
        "status": {
            "observedGeneration": 4,
            "readyReplicas": ready,
            "updatedReplicas": updated,
            "replicas": replicas,
            "conditions": [{"type": "Available", "status": str(available)}],
        },
    }


def conditions(status):
    return {c["type"]: c["status"] for c in status["conditions"]}


def test_ready_with_urls_on_the_cluster_ip():
    status = inferenceservices.status_of(ISVC, deployment(), SERVICE, [], listening=True)
    assert conditions(status) == {"IngressReady": "True", "PredictorReady": "True", "Ready": "True"}
    assert status["url"] == status["address"]["url"] == "http://127.1.0.7"
    predictor = status["components"]["predictor"]
    assert predictor["latestReadyRevision"] == predictor["latestCreatedRevision"] == "churn-predictor-abc"
    assert status["modelStatus"]["transitionStatus"] == "UpToDate"
    assert status["observedGeneration"] == 2


def test_rollout_in_progress_stays_ready_but_the_new_revision_is_not_ready_yet():
    status = inferenceservices.status_of(ISVC, deployment(updated=1, replicas=2), SERVICE, [], listening=True)
    assert conditions(status)["Ready"] == "True"
    assert "latestReadyRevision" not in status["components"]["predictor"]


def test_unserved_address_is_not_ingress_ready():
    status = inferenceservices.status_of(ISVC, deployment(), SERVICE, [], listening=False)
    assert conditions(status) == {"IngressReady": "False", "PredictorReady": "True", "Ready": "False"}
    assert "url" not in status


def test_a_crashing_model_server_is_reported_as_a_failed_load():
    pod = {
        "metadata": {"name": "churn-predictor-x"},
        "status": {
            "containerStatuses": [
                {
                    "name": "kserve-container",
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 1, "message": "digest mismatch"}},
                }
            ]
        },
    }
    status = inferenceservices.status_of(ISVC, deployment(available=False, ready=0), SERVICE, [pod], listening=True)
    assert status["modelStatus"]["transitionStatus"] == "BlockedByFailedLoad"
    assert status["modelStatus"]["lastFailureInfo"] == {
        "reason": "ModelLoadFailed",
        "location": "churn-predictor-x",
        "message": "digest mismatch",
        "exitCode": 1,
    }

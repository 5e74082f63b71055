#!/usr/bin/env bash
# The mlkube lifecycle on a kind cluster, checked stage by stage with kubectl:
#   data in MinIO -> MLProject -> TrainingJob trains v1 -> champion -> ModelDeployment serves
#   it through KServe and the router -> predictions (V1, V2) and feedback -> drifted traffic
#   -> DriftMonitor detects drift -> retraining TrainingJob -> new version registered.
#
# Run through `make e2e-kind` after `make kind-up` (the Makefile checks Docker, kind,
# kubectl and the cluster first). Uses the samples in manifests/samples (namespace ml).
# Environment: KUBE_CONTEXT (default kind-mlkube), KUBECTL, PYTHON (needs scikit-learn,
# boto3 and httpx: the project's environment), TIMEOUT_TRAIN, TIMEOUT_SERVE.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KUBE_CONTEXT=${KUBE_CONTEXT:-kind-mlkube}
KUBECTL=${KUBECTL:-kubectl}
NS=ml
ROUTER_URL=${ROUTER_URL:-http://localhost:8080}   # kind-config.yaml: NodePort 30080
S3_URL=${S3_URL:-http://localhost:9000}           # kind-config.yaml: NodePort 30900
TIMEOUT_TRAIN=${TIMEOUT_TRAIN:-25m}
TIMEOUT_SERVE=${TIMEOUT_SERVE:-10m}
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi

k() { "$KUBECTL" --context "$KUBE_CONTEXT" "$@"; }
started=$SECONDS
stage() { printf '\n== [%4ss] %s\n' "$((SECONDS - started))" "$*"; }
fail() {
  echo "FAILED: $*" >&2
  echo "--- mlkube objects ---" >&2; k -n "$NS" get mlp,tj,mdep,dmon -o wide >&2 || true
  echo "--- operator log (last 50 lines) ---" >&2
  k -n mlkube-system logs deployment/mlkube-operator --tail=50 >&2 || true
  exit 1
}
jsonpath() { k -n "$NS" get "$1" -o "jsonpath={$2}"; }
# wait_nonempty OBJECT FIELD SECONDS: poll until the field has a value.
wait_nonempty() {
  local deadline=$((SECONDS + $3))
  until [[ -n "$(jsonpath "$1" "$2")" ]]; do
    (( SECONDS < deadline )) || return 1
    sleep 5
  done
}

stage "preflight: operator, MinIO and CRDs on $KUBE_CONTEXT"
k get crd mlprojects.mlkube.io trainingjobs.mlkube.io modeldeployments.mlkube.io driftmonitors.mlkube.io >/dev/null \
  || fail "mlkube CRDs are not installed: run make deploy"
k -n mlkube-system wait --for=condition=Available deployment/mlkube-operator deployment/minio --timeout=120s \
  || fail "operator or MinIO not available: run make deploy"
"$PYTHON" -c "import sklearn, boto3, httpx" 2>/dev/null \
  || fail "$PYTHON lacks scikit-learn/boto3/httpx: set PYTHON to the project's environment (make install)"

stage "upload the breast-cancer dataset (scikit-learn) to s3://datasets/breast_cancer.csv"
AWS_ACCESS_KEY_ID=$(k -n "$NS" get secret s3-creds -o jsonpath='{.data.AWS_ACCESS_KEY_ID}' | base64 -d)
AWS_SECRET_ACCESS_KEY=$(k -n "$NS" get secret s3-creds -o jsonpath='{.data.AWS_SECRET_ACCESS_KEY}' | base64 -d)
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY S3_URL
"$PYTHON" - <<'PY'
import io, os
import boto3
from sklearn import datasets

frame = datasets.load_breast_cancer(as_frame=True).frame
frame.columns = [c.replace(" ", "_") for c in frame.columns]
frame["diagnosis"] = frame.pop("target").map({0: "malignant", 1: "benign"})
s3 = boto3.client("s3", endpoint_url=os.environ["S3_URL"], region_name="us-east-1")
s3.put_object(Bucket="datasets", Key="breast_cancer.csv", Body=frame.to_csv(index=False).encode())
print(f"uploaded {len(frame)} rows, {frame.shape[1] - 1} features")
PY

stage "apply the samples: MLProject, TrainingJob, ModelDeployment, DriftMonitor"
k apply -k "$ROOT/manifests/samples"

stage "MLProject cancer is accepted"
k -n "$NS" wait --for=jsonpath='{.status.observedGeneration}'="$(jsonpath mlp/cancer .metadata.generation)" \
  mlp/cancer --timeout=2m || fail "the operator did not observe MLProject cancer"

stage "TrainingJob cancer-initial trains (timeout $TIMEOUT_TRAIN)"
k -n "$NS" wait --for=jsonpath='{.status.phase}'=Running tj/cancer-initial --timeout=5m \
  || fail "TrainingJob did not start"
job=$(jsonpath tj/cancer-initial .status.jobName)
[[ -n "$job" ]] || fail "TrainingJob status has no jobName"
k -n "$NS" get job "$job" >/dev/null || fail "batch Job $job does not exist"
k -n "$NS" wait --for=jsonpath='{.status.phase}'=Succeeded tj/cancer-initial --timeout="$TIMEOUT_TRAIN" \
  || fail "TrainingJob did not succeed: $(jsonpath tj/cancer-initial .status.message)"
k -n "$NS" wait --for=condition=Complete "job/$job" --timeout=1m || fail "batch Job $job is not Complete"
version=$(jsonpath tj/cancer-initial .status.modelVersion)
echo "model version $version: $(jsonpath tj/cancer-initial .status.bestAlgorithm)," \
     "test metrics $(jsonpath tj/cancer-initial .status.metrics.test)"

stage "the version is registered and becomes champion"
k -n "$NS" wait --for=jsonpath='{.status.championVersion}'="$version" mlp/cancer --timeout=2m \
  || fail "version $version did not become champion (success criteria met: $(jsonpath tj/cancer-initial .status.successCriteriaMet))"
k -n "$NS" wait --for=condition=Ready mlp/cancer --timeout=1m || fail "MLProject is not Ready"

stage "ModelDeployment cancer-prod serves the champion through KServe (timeout $TIMEOUT_SERVE)"
k -n "$NS" wait --for=jsonpath='{.status.phase}'=Healthy mdep/cancer-prod --timeout="$TIMEOUT_SERVE" \
  || fail "ModelDeployment did not become Healthy"
k -n "$NS" wait --for=condition=Ready mdep/cancer-prod --timeout=1m || fail "ModelDeployment is not Ready"
[[ "$(jsonpath mdep/cancer-prod .status.stableVersion)" == "$version" ]] || fail "stable version is not $version"
k -n "$NS" wait --for=condition=Ready inferenceservice -l mlkube.io/project=cancer --timeout=2m \
  || fail "no Ready InferenceService of project cancer"
k -n "$NS" get inferenceservice -l mlkube.io/project=cancer
echo "in-cluster URL: $(jsonpath mdep/cancer-prod .status.url)"

stage "predictions (V1, V2) and feedback through the router at $ROUTER_URL; then drifted traffic"
export ROUTER_URL
"$PYTHON" - <<'PY'
import os
import httpx
from sklearn import datasets

url = os.environ["ROUTER_URL"]
frame = datasets.load_breast_cancer(as_frame=True).frame
frame.columns = [c.replace(" ", "_") for c in frame.columns]
truth = frame.pop("target").map({0: "malignant", 1: "benign"})
with httpx.Client(base_url=url, timeout=30) as client:
    rows = frame.head(5).to_dict(orient="records")
    v1 = client.post("/v1/models/cancer-prod:predict", json={"instances": rows})
    v1.raise_for_status()
    assert len(v1.json()["predictions"]) == 5, v1.text
    assert v1.headers.get("x-request-id"), "V1 response has no x-request-id"
    # One named input per feature column: KServe's convention for tabular V2 requests.
    v2 = client.post("/v2/models/cancer-prod/infer", json={"inputs": [
        {"name": name, "shape": [2], "datatype": "FP64", "data": frame[name].head(2).tolist()}
        for name in frame.columns]})
    v2.raise_for_status()
    assert v2.json().get("id"), "V2 response has no id"
    # Normal traffic with ground truth, then traffic whose size features grew by 60 %.
    ids = []
    for index, row in frame.sample(150, random_state=1).iterrows():
        r = client.post("/v1/models/cancer-prod:predict", json={"instances": [row.to_dict()]})
        r.raise_for_status()
        ids.append((r.headers["x-request-id"], truth[index]))
    fb = client.post("/v1/feedback", json={"items": [{"requestId": rid, "groundTruth": y} for rid, y in ids]})
    fb.raise_for_status()
    drifted = frame.sample(300, replace=True, random_state=2)
    for column in [c for c in frame.columns if "radius" in c or "area" in c or "perimeter" in c]:
        drifted[column] = drifted[column] * 1.6
    for row in drifted.to_dict(orient="records"):
        client.post("/v1/models/cancer-prod:predict", json={"instances": [row]}).raise_for_status()
print("V1 and V2 predictions, 150 labeled and 300 drifted requests sent")
PY

stage "DriftMonitor cancer-drift detects drift"
k -n "$NS" wait --for=jsonpath='{.status.phase}'=Drifting dmon/cancer-drift --timeout=5m \
  || fail "no drift detected (phase $(jsonpath dmon/cancer-drift .status.phase), samples $(jsonpath dmon/cancer-drift .status.samples))"
echo "drift share $(jsonpath dmon/cancer-drift .status.driftShare), report $(jsonpath dmon/cancer-drift .status.reportUri)"

stage "drift starts a retraining TrainingJob, which registers a new version"
wait_nonempty dmon/cancer-drift .status.retrainingJob 180 || fail "DriftMonitor started no retraining job"
retrain=$(jsonpath dmon/cancer-drift .status.retrainingJob)
[[ "$(jsonpath "tj/$retrain" .spec.trigger)" == "drift" ]] || fail "TrainingJob $retrain is not triggered by drift"
k -n "$NS" wait --for=jsonpath='{.status.phase}'=Succeeded "tj/$retrain" --timeout="$TIMEOUT_TRAIN" \
  || fail "retraining $retrain did not succeed: $(jsonpath "tj/$retrain" .status.message)"
new_version=$(jsonpath "tj/$retrain" .status.modelVersion)
(( new_version > version )) || fail "retraining produced version '$new_version', not newer than $version"
k -n "$NS" get mlp/cancer -o jsonpath='{range .status.models[*]}{.version}{" "}{.trigger}{" eligible="}{.eligible}{"\n"}{end}'

stage "ModelDeployment settles after the new version (rolled out or kept by the analysis)"
k -n "$NS" wait --for=jsonpath='{.status.phase}'=Healthy mdep/cancer-prod --timeout="$TIMEOUT_SERVE" \
  || fail "ModelDeployment did not settle: phase $(jsonpath mdep/cancer-prod .status.phase)"
k -n "$NS" get mlp,tj,mdep,dmon

printf '\nPASSED: mlkube lifecycle on %s in %ss\n' "$KUBE_CONTEXT" "$((SECONDS - started))"

#!/usr/bin/env bash
# The mlkube lifecycle on a kind cluster, checked stage by stage with kubectl:
#   data in MinIO -> MLProject -> TrainingJob trains v1 -> champion -> ModelDeployment serves
#   it through KServe and the router -> predictions (V1, V2) and feedback -> drifted traffic
#   -> DriftMonitor detects drift -> retraining TrainingJob -> new version registered.
#
# Run through `make e2e-kind` after `make kind-up` (the Makefile checks Docker, kind,
# kubectl and the cluster first). Uses manifests/samples (namespace ml): the scenario of
# examples/ and of `make demo` (Palmer penguins), with data and models in MinIO.
# Environment: KUBE_CONTEXT (default kind-mlkube), KUBECTL, E2E_PYTHON (default .venv/bin/python:
# needs palmerpenguins, boto3 and httpx), TIMEOUT_TRAIN, TIMEOUT_SERVE.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KUBE_CONTEXT=${KUBE_CONTEXT:-kind-mlkube}
KUBECTL=${KUBECTL:-kubectl}
NS=ml
ROUTER_URL=${ROUTER_URL:-http://localhost:8080}   # kind-config.yaml: NodePort 30080
S3_URL=${S3_URL:-http://localhost:9000}           # kind-config.yaml: NodePort 30900
TIMEOUT_TRAIN=${TIMEOUT_TRAIN:-25m}
TIMEOUT_SERVE=${TIMEOUT_SERVE:-10m}
if [[ -z "${E2E_PYTHON:-}" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then E2E_PYTHON="$ROOT/.venv/bin/python"; else E2E_PYTHON=python3; fi
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
"$E2E_PYTHON" -c "import palmerpenguins, boto3, httpx" 2>/dev/null \
  || fail "$E2E_PYTHON lacks palmerpenguins/boto3/httpx: set E2E_PYTHON to the project's environment (.venv)"

stage "upload the Palmer penguins data to s3://datasets/penguins.csv"
AWS_ACCESS_KEY_ID=$(k -n "$NS" get secret s3-creds -o jsonpath='{.data.AWS_ACCESS_KEY_ID}' | base64 -d)
AWS_SECRET_ACCESS_KEY=$(k -n "$NS" get secret s3-creds -o jsonpath='{.data.AWS_SECRET_ACCESS_KEY}' | base64 -d)
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY S3_URL
"$E2E_PYTHON" - <<'PY'
import os
import boto3
import palmerpenguins

frame = palmerpenguins.load_penguins()
s3 = boto3.client("s3", endpoint_url=os.environ["S3_URL"], region_name="us-east-1")
s3.put_object(Bucket="datasets", Key="penguins.csv", Body=frame.to_csv(index=False).encode())
print(f"uploaded {len(frame)} rows")
PY

stage "apply the samples: MLProject, TrainingJob, ModelDeployment, DriftMonitor"
k apply -k "$ROOT/manifests/samples"

stage "MLProject penguins is accepted"
k -n "$NS" wait --for=jsonpath='{.status.observedGeneration}'="$(jsonpath mlp/penguins .metadata.generation)" \
  mlp/penguins --timeout=2m || fail "the operator did not observe MLProject penguins"

stage "TrainingJob penguins-manual-1 trains (timeout $TIMEOUT_TRAIN)"
# Not `wait --for=...phase=Running`: a short run may be past Running before the first poll.
wait_nonempty tj/penguins-manual-1 .status.jobName 300 || fail "TrainingJob started no Job"
job=$(jsonpath tj/penguins-manual-1 .status.jobName)
k -n "$NS" get job "$job" >/dev/null || fail "batch Job $job does not exist"
k -n "$NS" wait --for=jsonpath='{.status.phase}'=Succeeded tj/penguins-manual-1 --timeout="$TIMEOUT_TRAIN" \
  || fail "TrainingJob did not succeed: $(jsonpath tj/penguins-manual-1 .status.message)"
k -n "$NS" wait --for=condition=Complete "job/$job" --timeout=1m || fail "batch Job $job is not Complete"
version=$(jsonpath tj/penguins-manual-1 .status.modelVersion)
echo "model version $version: $(jsonpath tj/penguins-manual-1 .status.bestAlgorithm)," \
     "test metrics $(jsonpath tj/penguins-manual-1 .status.metrics.test)"

stage "the version is registered and becomes champion"
k -n "$NS" wait --for=jsonpath='{.status.championVersion}'="$version" mlp/penguins --timeout=2m \
  || fail "version $version did not become champion (success criteria met: $(jsonpath tj/penguins-manual-1 .status.successCriteriaMet))"
k -n "$NS" wait --for=condition=Ready mlp/penguins --timeout=1m || fail "MLProject is not Ready"

stage "ModelDeployment penguins-prod serves the champion through KServe (timeout $TIMEOUT_SERVE)"
k -n "$NS" wait --for=jsonpath='{.status.phase}'=Healthy mdep/penguins-prod --timeout="$TIMEOUT_SERVE" \
  || fail "ModelDeployment did not become Healthy"
k -n "$NS" wait --for=condition=Ready mdep/penguins-prod --timeout=1m || fail "ModelDeployment is not Ready"
[[ "$(jsonpath mdep/penguins-prod .status.stableVersion)" == "$version" ]] || fail "stable version is not $version"
k -n "$NS" wait --for=condition=Ready inferenceservice -l mlkube.io/project=penguins --timeout=2m \
  || fail "no Ready InferenceService of project penguins"
k -n "$NS" get inferenceservice -l mlkube.io/project=penguins
echo "in-cluster URL: $(jsonpath mdep/penguins-prod .status.url)"

stage "predictions (V1, V2) and feedback through the router at $ROUTER_URL; then drifted traffic"
export ROUTER_URL
"$E2E_PYTHON" - <<'PY'
import os
import httpx
import palmerpenguins

url = os.environ["ROUTER_URL"]
frame = palmerpenguins.load_penguins().dropna()  # JSON has no NaN
truth = frame.pop("species")
frame = frame.drop(columns=["year"])
numeric = [c for c in frame.columns if frame[c].dtype.kind == "f"]
with httpx.Client(base_url=url, timeout=30) as client:
    rows = frame.head(5).to_dict(orient="records")
    v1 = client.post("/v1/models/penguins-prod:predict", json={"instances": rows})
    v1.raise_for_status()
    assert len(v1.json()["predictions"]) == 5, v1.text
    assert v1.headers.get("x-request-id"), "V1 response has no x-request-id"
    # One named input per column: KServe's convention for tabular V2 requests.
    v2 = client.post("/v2/models/penguins-prod/infer", json={"inputs": [
        {"name": name, "shape": [2], "datatype": "FP64" if name in numeric else "BYTES", "data": frame[name].head(2).tolist()}
        for name in frame.columns]})
    v2.raise_for_status()
    assert v2.json().get("id"), "V2 response has no id"
    # Normal traffic with ground truth, then traffic from much bigger birds.
    ids = []
    for index, row in frame.sample(150, replace=True, random_state=1).iterrows():
        r = client.post("/v1/models/penguins-prod:predict", json={"instances": [row.to_dict()]})
        r.raise_for_status()
        ids.append((r.headers["x-request-id"], truth[index]))
    fb = client.post("/v1/feedback", json={"items": [{"requestId": rid, "groundTruth": y} for rid, y in ids]})
    fb.raise_for_status()
    drifted = frame.sample(300, replace=True, random_state=2)
    for column in ("bill_length_mm", "flipper_length_mm", "body_mass_g"):
        drifted[column] = drifted[column] * 1.4
    for row in drifted.to_dict(orient="records"):
        client.post("/v1/models/penguins-prod:predict", json={"instances": [row]}).raise_for_status()
print("V1 and V2 predictions, 150 labeled and 300 drifted requests sent")
PY

stage "DriftMonitor penguins-drift detects drift and starts a retraining TrainingJob"
# The retraining job is the lasting evidence: the phase may move on once it has been started.
wait_nonempty dmon/penguins-drift .status.retrainingJob 420 \
  || fail "no retraining started (phase $(jsonpath dmon/penguins-drift .status.phase), samples $(jsonpath dmon/penguins-drift .status.samples))"
echo "phase $(jsonpath dmon/penguins-drift .status.phase), drift share $(jsonpath dmon/penguins-drift .status.driftShare)," \
     "report $(jsonpath dmon/penguins-drift .status.reportUri)"

stage "the retraining TrainingJob registers a new version"
retrain=$(jsonpath dmon/penguins-drift .status.retrainingJob)
[[ "$(jsonpath "tj/$retrain" .spec.trigger)" == "drift" ]] || fail "TrainingJob $retrain is not triggered by drift"
k -n "$NS" wait --for=jsonpath='{.status.phase}'=Succeeded "tj/$retrain" --timeout="$TIMEOUT_TRAIN" \
  || fail "retraining $retrain did not succeed: $(jsonpath "tj/$retrain" .status.message)"
new_version=$(jsonpath "tj/$retrain" .status.modelVersion)
(( new_version > version )) || fail "retraining produced version '$new_version', not newer than $version"
k -n "$NS" get mlp/penguins -o jsonpath='{range .status.models[*]}{.version}{" "}{.trigger}{" eligible="}{.eligible}{"\n"}{end}'

stage "ModelDeployment settles after the new version (rolled out or kept by the analysis)"
k -n "$NS" wait --for=jsonpath='{.status.phase}'=Healthy mdep/penguins-prod --timeout="$TIMEOUT_SERVE" \
  || fail "ModelDeployment did not settle: phase $(jsonpath mdep/penguins-prod .status.phase)"
k -n "$NS" get mlp,tj,mdep,dmon

printf '\nPASSED: mlkube lifecycle on %s in %ss\n' "$KUBE_CONTEXT" "$((SECONDS - started))"

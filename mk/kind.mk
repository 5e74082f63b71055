# The real-cluster path: mlkube on a local kind cluster (docs/cluster.md).
#
#   make kind-up     create the cluster, install cert-manager and KServe (Standard/raw mode),
#                    build and load the image, deploy the dev overlay (operator + MinIO)
#   make images      docker build the image and `kind load` it into the cluster
#   make deploy      kubectl apply -k manifests/overlays/dev and wait for it
#   make e2e-kind    the lifecycle scenario on the cluster (hack/e2e-kind.sh)
#   make kind-down   delete the cluster
#
# Every target checks what it needs first (Docker engine, kind, kubectl, the cluster) and
# says what is missing. Commands always name the cluster's context, so they never act on
# whatever cluster the current kubectl context happens to point at.
# Included by the top-level Makefile; also usable alone: make -f mk/kind.mk <target>.

KIND_MK := $(abspath $(lastword $(MAKEFILE_LIST)))
KIND_ROOT := $(abspath $(dir $(KIND_MK))..)

KIND_CLUSTER ?= mlkube
KIND_CONTEXT := kind-$(KIND_CLUSTER)
KIND ?= kind
DOCKER ?= docker
KUBECTL ?= kubectl
MLKUBE_DEV_IMAGE ?= mlkube:dev

# Pinned dependency versions, one release line with the image: the model server is built on the
# kserve 0.21 Python SDK (constraints.txt), and KServe cuts SDK and controller from one tag, so the
# controller is v0.21.0. KServe needs cert-manager >= 1.15; cert-manager 1.21 supports Kubernetes
# 1.33 to 1.36; kind-config.yaml pins a Kubernetes v1.35.8 node built for kind v0.33.0.
# How each was checked (offline, from release notes and install docs): docs/cluster.md, "Pinned versions".
CERT_MANAGER_VERSION ?= v1.21.2
KSERVE_VERSION ?= v0.21.0
CERT_MANAGER_URL := https://github.com/cert-manager/cert-manager/releases/download/$(CERT_MANAGER_VERSION)/cert-manager.yaml
KSERVE_URL := https://github.com/kserve/kserve/releases/download/$(KSERVE_VERSION)
WAIT_TIMEOUT ?= 300s

KCTL = $(KUBECTL) --context $(KIND_CONTEXT)

.PHONY: kind-up images deploy e2e-kind kind-down \
        kind-check-docker kind-check-kind kind-check-kubectl kind-check-cluster \
        kind-cluster kind-cert-manager kind-kserve

# --- prerequisite checks -------------------------------------------------------------------

kind-check-docker:
	@command -v $(DOCKER) >/dev/null 2>&1 || { \
	  echo "error: '$(DOCKER)' not found. The kind path needs Docker: https://docs.docker.com/engine/install/" >&2; \
	  echo "       Without Docker, run mlkube on the embedded control plane instead: mlkube local up" >&2; \
	  exit 1; }
	@$(DOCKER) info >/dev/null 2>&1 || { \
	  echo "error: no Docker engine is reachable ('$(DOCKER) info' failed$${DOCKER_HOST:+ for DOCKER_HOST=$$DOCKER_HOST})." >&2; \
	  echo "       Start the Docker daemon (or Docker Desktop) and retry." >&2; \
	  echo "       Without Docker, run mlkube on the embedded control plane instead: mlkube local up" >&2; \
	  exit 1; }

kind-check-kind:
	@command -v $(KIND) >/dev/null 2>&1 || { \
	  echo "error: '$(KIND)' not found. Install kind v0.33.0 (kind-config.yaml's node image is built for it): https://kind.sigs.k8s.io/docs/user/quick-start/#installation" >&2; \
	  exit 1; }

kind-check-kubectl:
	@command -v $(KUBECTL) >/dev/null 2>&1 || { \
	  echo "error: '$(KUBECTL)' not found. Install kubectl >= 1.32: https://kubernetes.io/docs/tasks/tools/" >&2; \
	  exit 1; }

kind-check-cluster: kind-check-docker kind-check-kind kind-check-kubectl
	@$(KIND) get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)' || { \
	  echo "error: kind cluster '$(KIND_CLUSTER)' does not exist. Create it with: make kind-up" >&2; \
	  exit 1; }
	@$(KUBECTL) config get-contexts -o name 2>/dev/null | grep -qx '$(KIND_CONTEXT)' || { \
	  echo "error: kubectl has no context '$(KIND_CONTEXT)'. Restore it with: $(KIND) export kubeconfig --name $(KIND_CLUSTER)" >&2; \
	  exit 1; }

# --- cluster lifecycle ---------------------------------------------------------------------

kind-up: kind-check-docker kind-check-kind kind-check-kubectl
	@$(MAKE) --no-print-directory -f $(KIND_MK) kind-cluster
	@$(MAKE) --no-print-directory -f $(KIND_MK) kind-cert-manager
	@$(MAKE) --no-print-directory -f $(KIND_MK) kind-kserve
	@$(MAKE) --no-print-directory -f $(KIND_MK) images
	@$(MAKE) --no-print-directory -f $(KIND_MK) deploy
	@echo "kind cluster '$(KIND_CLUSTER)' is ready: kubectl --context $(KIND_CONTEXT) get pods -A"

kind-cluster: kind-check-docker kind-check-kind
	@if $(KIND) get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)'; then \
	  echo "kind cluster '$(KIND_CLUSTER)' exists"; \
	else \
	  $(KIND) create cluster --name $(KIND_CLUSTER) --config $(KIND_ROOT)/kind-config.yaml --wait 120s; \
	fi

kind-cert-manager: kind-check-cluster
	$(KCTL) apply -f $(CERT_MANAGER_URL)
	$(KCTL) -n cert-manager wait --for=condition=Available deployment --all --timeout=$(WAIT_TIMEOUT)

kind-kserve: kind-check-cluster
	@# Since v0.17 the release's kserve.yaml leaves out the kserve Namespace (KServe's
	@# hack/release/generate-install.sh filters it): create it first, idempotently.
	$(KCTL) create namespace kserve --dry-run=client -o yaml | $(KCTL) apply -f -
	$(KCTL) apply --server-side --force-conflicts -f $(KSERVE_URL)/kserve.yaml
	$(KCTL) -n kserve wait --for=condition=Available deployment/kserve-controller-manager --timeout=$(WAIT_TIMEOUT)
	@# The cluster resources go through KServe's webhook, which takes a moment to serve
	@# after the controller reports Available.
	@for attempt in 1 2 3 4 5 6; do \
	  $(KCTL) apply --server-side --force-conflicts -f $(KSERVE_URL)/kserve-cluster-resources.yaml && exit 0; \
	  echo "KServe webhook not ready yet (attempt $$attempt/6); retrying in 10s"; sleep 10; \
	done; echo "error: could not apply $(KSERVE_URL)/kserve-cluster-resources.yaml" >&2; exit 1
	@# Standard (raw) deployment mode and no Ingress objects; see the patch file's comments.
	$(KCTL) -n kserve patch configmap inferenceservice-config --type merge \
	  --patch-file $(KIND_ROOT)/manifests/kserve/inferenceservice-config-patch.yaml
	$(KCTL) -n kserve rollout restart deployment/kserve-controller-manager
	$(KCTL) -n kserve rollout status deployment/kserve-controller-manager --timeout=$(WAIT_TIMEOUT)

kind-down: kind-check-kind
	$(KIND) delete cluster --name $(KIND_CLUSTER)

# --- mlkube on the cluster -------------------------------------------------------------------

images: kind-check-cluster
	$(DOCKER) build -f $(KIND_ROOT)/images/Dockerfile -t $(MLKUBE_DEV_IMAGE) $(KIND_ROOT)
	$(KIND) load docker-image $(MLKUBE_DEV_IMAGE) --name $(KIND_CLUSTER)
	@# Same tag, new content: restart what runs it so the new image is used.
	@if $(KCTL) -n mlkube-system get deployment/mlkube-operator >/dev/null 2>&1; then \
	  $(KCTL) -n mlkube-system rollout restart deployment/mlkube-operator; \
	fi

deploy: kind-check-cluster
	@$(KCTL) get crd inferenceservices.serving.kserve.io >/dev/null 2>&1 || { \
	  echo "error: KServe is not installed on '$(KIND_CONTEXT)'. Run: make kind-up" >&2; exit 1; }
	$(KCTL) apply -k $(KIND_ROOT)/manifests/overlays/dev
	$(KCTL) -n mlkube-system wait --for=condition=Available deployment/minio deployment/mlkube-operator --timeout=$(WAIT_TIMEOUT)
	$(KCTL) -n mlkube-system wait --for=condition=Complete job/minio-buckets --timeout=$(WAIT_TIMEOUT)

e2e-kind: kind-check-cluster
	KUBE_CONTEXT=$(KIND_CONTEXT) KUBECTL=$(KUBECTL) $(KIND_ROOT)/hack/e2e-kind.sh

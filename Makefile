# The manager image. `make image` builds it with no container engine;
# releases set VERSION and REGISTRY (make release VERSION=v0.2.0
# REGISTRY=registry.example.com/team). The default VERSION is a fixed
# development version, so that the committed dist/install.yaml and
# dist/chart do not change with every commit (and never say :latest); the
# image's revision label records the commit.
VERSION ?= v0.0.0-dev
REGISTRY ?=
IMAGE_NAME ?= chatgroup-operator
IMAGE_REPO ?= $(if $(REGISTRY),$(REGISTRY)/)$(IMAGE_NAME)
IMG ?= $(IMAGE_REPO):$(VERSION)
# Inputs of the reproducible image build: the same commit gives the same
# image digest (with the same Go toolchain).
ARCH ?= $(shell go env GOARCH)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
SOURCE_URL ?= https://chatgroup.dev/chatgroup-operator
IMAGE_DIR ?= $(LOCALBIN)/image
# make release writes the release assets (install.yaml, the chart archive) here.
RELEASE_DIR ?= $(LOCALBIN)/release

# Tools are built from the Go modules under hack/tools into bin/ (see
# hack/tools/build.sh); nothing else is downloaded.
LOCALBIN ?= $(shell pwd)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
KUSTOMIZE ?= $(LOCALBIN)/kustomize
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint
KUBECTL ?= $(LOCALBIN)/k8s/kubectl
HELM ?= $(LOCALBIN)/helm
BUILD_TOOLS := hack/tools/build.sh
# The envtest control plane (etcd, kube-apiserver) plus kubectl for tests.
ENVTEST_BINARIES := etcd kube-apiserver kubectl
# The full local control plane used by run-local and the e2e test.
LOCAL_BINARIES := $(ENVTEST_BINARIES) kube-controller-manager kube-scheduler kwok
export KUBEBUILDER_ASSETS ?= $(LOCALBIN)/k8s

GOTEST_FLAGS ?= -timeout 25m

# Setting SHELL to bash allows bash commands to be executed by recipes.
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate CRDs and RBAC from the markers.
	"$(CONTROLLER_GEN)" rbac:roleName=manager-role crd paths="./api/...;./controllers/...;./webhookserver/..." output:crd:artifacts:config=config/crd/bases

.PHONY: generate
generate: controller-gen ## Generate DeepCopy methods from the markers.
	"$(CONTROLLER_GEN)" object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## Run go fmt.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: lint
lint: golangci-lint ## Run golangci-lint.
	"$(GOLANGCI_LINT)" run

.PHONY: lint-fix
lint-fix: golangci-lint ## Run golangci-lint and apply its fixes.
	"$(GOLANGCI_LINT)" run --fix

.PHONY: verify-generated
verify-generated: manifests generate build-installer ## Fail if generated files differ from what the markers produce.
	@if [ -n "$$(git status --porcelain -- api config dist)" ]; then \
		echo "Generated files are out of date; run 'make manifests generate build-installer' and commit:"; \
		git status --porcelain -- api config dist; git diff --stat -- api config dist; exit 1; fi

.PHONY: test
test: manifests generate fmt vet local-cluster kustomize helm helm-lint flux-notification-controller ## Run every test: unit, envtest integration (with the chart's dry run and the Flux receiver) and e2e.
	go test $(GOTEST_FLAGS) -tags flux ./... -coverprofile cover.out
	$(MAKE) --no-print-directory test-e2e

.PHONY: test-e2e
test-e2e: local-cluster ## End to end: local control plane with kwok, dist/install.yaml, the manager out of cluster, callbacks over HTTP.
	go test -tags e2e ./test/e2e/... -count=1 -v -timeout 15m

.PHONY: test-unit
test-unit: ## Run only the tests that need no control plane.
	go test -short ./...

.PHONY: envtest
envtest: ## Build the envtest control plane (etcd, kube-apiserver) and kubectl into bin/k8s.
	@$(BUILD_TOOLS) $(ENVTEST_BINARIES)

.PHONY: local-cluster
local-cluster: ## Build the full local control plane: the envtest binaries, kube-controller-manager, kube-scheduler and kwok.
	@$(BUILD_TOOLS) $(LOCAL_BINARIES)

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 30s), then the reducer property tests for PROPERTY_ROUNDS (default 100000).
	go test ./internal/provider/tencent/ -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $${FUZZTIME:-30s}
	go test ./internal/provider/openim/ -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $${FUZZTIME:-30s}
	go test ./internal/provider/tencent/ -run '^$$' -fuzz '^FuzzDecodeReduce$$' -fuzztime $${FUZZTIME:-30s}
	go test ./internal/provider/openim/ -run '^$$' -fuzz '^FuzzDecodeReduce$$' -fuzztime $${FUZZTIME:-30s}
	PROPERTY_ROUNDS=$${PROPERTY_ROUNDS:-100000} go test ./internal/groupstate/ -run 'TestReduce_convergence|TestReduce_untimedRetries' -count=1

.PHONY: test-faults
test-faults: manifests generate envtest ## Fault tests under load: API server crash, two replicas, duplicates, bad requests, resync; manager killed between writes.
	go test -tags faults ./test/faults/ -count=1 -v -timeout 20m

.PHONY: bench
bench: manifests generate envtest ## Benchmarks: decoder and reducer Go benchmarks, then group commit vs one write per event under load.
	go test ./internal/provider/... ./internal/groupstate/ -run '^$$' -bench . -benchmem -count 1
	go run ./hack/bench $(BENCH_FLAGS)

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build the manager binary.
	go build -o bin/manager main.go

.PHONY: run
run: manifests generate fmt vet ## Run the manager against the cluster in your kubeconfig.
	go run ./main.go

.PHONY: run-local
run-local: ## Start a local control plane, install the operator and run it (Ctrl-C stops everything).
	go build -o bin/run-local ./hack/run-local
	bin/run-local $(RUN_LOCAL_FLAGS)

# hack/image builds the manager binary with fixed flags and packs it.
IMAGE_FLAGS = --out "$(IMAGE_DIR)" --ref "$(IMG)" --arch "$(ARCH)" --version "$(VERSION)" \
	--revision "$(REVISION)" --created "$(SOURCE_DATE_EPOCH)" --source "$(SOURCE_URL)"

.PHONY: image
image: ## Build the manager image with no container engine: $(IMAGE_DIR)/oci (OCI layout), image.tar (docker load, kind load image-archive), digest.
	go build -o "$(LOCALBIN)/image-builder" ./hack/image
	"$(LOCALBIN)/image-builder" $(IMAGE_FLAGS)

.PHONY: push
push: ## Build the image and push it to REGISTRY (credentials from docker login or crane auth login).
	@if [ -z "$(REGISTRY)" ]; then echo "Set REGISTRY, for example make push REGISTRY=registry.example.com/team VERSION=v0.2.0"; exit 1; fi
	go build -o "$(LOCALBIN)/image-builder" ./hack/image
	"$(LOCALBIN)/image-builder" $(IMAGE_FLAGS) --push

.PHONY: release
release: helm ## Build the image, render dist/install.yaml and dist/chart pinned to it by tag and digest, and package them in bin/release: make release VERSION=vX.Y.Z REGISTRY=...
	@if [ -z "$(REGISTRY)" ]; then echo "Set REGISTRY, for example make release REGISTRY=registry.example.com/team VERSION=v0.2.0"; exit 1; fi
	@if ! [[ "$(VERSION)" =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$$ ]]; then echo "VERSION must be vMAJOR.MINOR.PATCH, got $(VERSION)"; exit 1; fi
	@if [ -n "$$(git status --porcelain -- . ':!dist' ':!config/manager/kustomization.yaml')" ]; then \
		echo "Release from a clean checkout: the image's revision label names the commit"; git status --short; exit 1; fi
	$(MAKE) --no-print-directory image
	$(MAKE) --no-print-directory build-installer IMG="$(IMG)@$$(cat "$(IMAGE_DIR)/digest")"
	rm -rf "$(RELEASE_DIR)" && mkdir -p "$(RELEASE_DIR)"
	cp dist/install.yaml "$(RELEASE_DIR)/install.yaml"
	"$(HELM)" package dist/chart --destination "$(RELEASE_DIR)"
	@echo "Rendered dist/install.yaml and dist/chart for $(IMG)@$$(cat "$(IMAGE_DIR)/digest")"
	@echo "Release assets: $$(ls "$(RELEASE_DIR)" | tr '\n' ' ')in $(RELEASE_DIR)"
	@echo "Publish the image with: make push VERSION=$(VERSION) REGISTRY=$(REGISTRY)"

.PHONY: docker-build
docker-build: ## Build the manager image with a Docker engine (make image needs none).
	docker build -t $(IMG) .

.PHONY: build-installer
build-installer: manifests generate kustomize ## Render dist/install.yaml from config/default and the Helm chart dist/chart from config/monitoring.
	mkdir -p dist
	cd config/manager && "$(KUSTOMIZE)" edit set image controller=$(IMG)
	"$(KUSTOMIZE)" build config/default > dist/install.yaml
	"$(KUSTOMIZE)" build config/monitoring | go run ./hack/chart --out dist/chart --version "$(patsubst v%,%,$(VERSION))" --source "$(SOURCE_URL)"

.PHONY: helm-lint
helm-lint: helm ## Lint dist/chart with its defaults and with every option on.
	"$(HELM)" lint --strict dist/chart
	"$(HELM)" lint --strict dist/chart --set serviceMonitor.enabled=true,grafanaDashboard.enabled=true,networkPolicy.enabled=false,crds.install=false

##@ Deployment

.PHONY: install
install: manifests kustomize ## Install the CRDs into the cluster in your kubeconfig.
	"$(KUSTOMIZE)" build config/crd | "$(KUBECTL)" apply --server-side -f -

.PHONY: uninstall
uninstall: manifests kustomize ## Remove the CRDs from the cluster in your kubeconfig.
	"$(KUSTOMIZE)" build config/crd | "$(KUBECTL)" delete --ignore-not-found -f -

.PHONY: deploy
deploy: build-installer ## Deploy the operator to the cluster in your kubeconfig.
	"$(KUBECTL)" apply --server-side -f dist/install.yaml

.PHONY: undeploy
undeploy: kustomize ## Remove the operator from the cluster in your kubeconfig.
	"$(KUSTOMIZE)" build config/default | "$(KUBECTL)" delete --ignore-not-found -f -

##@ Tools

.PHONY: controller-gen
controller-gen: ## Build controller-gen into bin/.
	@$(BUILD_TOOLS) controller-gen

.PHONY: kustomize
kustomize: ## Build kustomize into bin/.
	@$(BUILD_TOOLS) kustomize

.PHONY: golangci-lint
golangci-lint: ## Build golangci-lint into bin/.
	@$(BUILD_TOOLS) golangci-lint

.PHONY: kubectl
kubectl: ## Build kubectl into bin/k8s.
	@$(BUILD_TOOLS) kubectl

.PHONY: helm
helm: ## Build helm into bin/.
	@$(BUILD_TOOLS) helm

.PHONY: flux-notification-controller
flux-notification-controller: ## Build Flux notification-controller into bin/, for test/flux.
	@$(BUILD_TOOLS) flux-notification-controller

.PHONY: tools
tools: ## Build every pinned tool and the local control plane.
	@$(BUILD_TOOLS) controller-gen kustomize golangci-lint helm flux-notification-controller $(LOCAL_BINARIES)

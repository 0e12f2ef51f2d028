#!/usr/bin/env bash
# Builds pinned tools from the Go modules under hack/tools into bin/ (and the
# control-plane binaries into bin/k8s/). Nothing is downloaded except Go
# modules through the module proxy.
#
# Usage: hack/tools/build.sh TOOL...
#
# A tool is rebuilt only when its binary is missing or its module's go.mod or
# go.sum changed since it was built (a stamp under bin/.stamps records that),
# so bumping a version in hack/tools/*/go.mod rebuilds exactly what it pins.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
tools="$root/hack/tools"
bin="$root/bin"
stamps="$bin/.stamps"
mkdir -p "$bin/k8s" "$stamps"

# tool -> "module-dir package output-dir"
spec() {
	case "$1" in
	kube-apiserver | kube-controller-manager | kube-scheduler | kubectl)
		echo "k8s k8s.io/kubernetes/cmd/$1 $bin/k8s" ;;
	etcd) echo "etcd go.etcd.io/etcd/server/v3 $bin/k8s" ;;
	controller-gen) echo "gen sigs.k8s.io/controller-tools/cmd/controller-gen $bin" ;;
	kustomize) echo "gen sigs.k8s.io/kustomize/kustomize/v5 $bin" ;;
	golangci-lint) echo "lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint $bin" ;;
	kwok) echo "kwok sigs.k8s.io/kwok/cmd/kwok $bin" ;;
	flux-notification-controller) echo "flux github.com/fluxcd/notification-controller $bin" ;;
	helm) echo "helm helm.sh/helm/v3/cmd/helm $bin" ;;
	*) echo "unknown tool: $1" >&2; return 1 ;;
	esac
}

# ldflags TOOL MODULE-DIR: the version information a tool's own release build
# sets, so that `helm version` and helm's default Kubernetes version (for
# `helm template` and `helm lint`) match the pinned modules.
ldflags() {
	case "$1" in
	helm)
		local helm k8s minor
		read -r helm k8s <<<"$(cd "$2" && go list -m -f '{{.Version}}' helm.sh/helm/v3 k8s.io/client-go | tr '\n' ' ')"
		minor=$(cut -d. -f2 <<<"$k8s")
		echo "-X helm.sh/helm/v3/internal/version.version=$helm" \
			"-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor" \
			"-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
		;;
	esac
}

for tool in "$@"; do
	read -r mod pkg out <<<"$(spec "$tool")"
	want=$(cat "$tools/$mod/go.mod" "$tools/$mod/go.sum" | sha256sum | cut -c1-16)-$(go env GOVERSION)
	if [[ -x "$out/$tool" && "$(cat "$stamps/$tool" 2>/dev/null)" == "$want" ]]; then
		continue
	fi
	echo "Building $tool from hack/tools/$mod (the first control-plane build takes several minutes)" >&2
	start=$SECONDS
	(cd "$tools/$mod" && go build -ldflags="$(ldflags "$tool" "$tools/$mod")" -o "$out/$tool.tmp" "$pkg")
	mv "$out/$tool.tmp" "$out/$tool"
	echo "$want" >"$stamps/$tool"
	echo "Built $tool in $((SECONDS - start))s" >&2
done

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
	*) echo "unknown tool: $1" >&2; return 1 ;;
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
	(cd "$tools/$mod" && go build -o "$out/$tool.tmp" "$pkg")
	mv "$out/$tool.tmp" "$out/$tool"
	echo "$want" >"$stamps/$tool"
	echo "Built $tool in $((SECONDS - start))s" >&2
done

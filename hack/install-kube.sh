#!/usr/bin/env bash
# Builds the upstream Kubernetes programs the kubelet and node-conformance
# tests run, from the Go module proxy, into a cache outside the work tree
# keyed by version (${KUBE_CACHE:-${E2E_CACHE:-/var/cache/cri-runtime-e2e}/kube-<version>}):
#
#   kubelet          k8s.io/kubernetes/cmd/kubelet
#   e2e_node.test    go test -c k8s.io/kubernetes/test/e2e_node (the node
#                    e2e suite; it runs etcd and kube-apiserver in-process and
#                    starts the kubelet found next to it)
#   agnhost          k8s.io/kubernetes/test/images/agnhost (the e2e suites'
#                    Swiss-army image, served from the local registry)
#   ginkgo           the ginkgo CLI at the version kubernetes requires, which
#                    runs e2e_node.test in parallel processes
#
#   hack/install-kube.sh [kubelet|e2e_node|agnhost|ginkgo ...]   default: all
#
# k8s.io/kubernetes replaces its staging modules (k8s.io/api, ...) with
# ./staging/..., so `go install` refuses it. The build runs in a throwaway
# module that requires k8s.io/kubernetes and replaces every staging module
# k8s.io/X with k8s.io/X v0.<minor>.<patch>, read from its own go.mod.
# Idempotent: a program is rebuilt only when its version stamp differs.
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:-v1.37.2}
STAGING_VERSION=v0.${KUBE_VERSION#v1.}
CACHE=${KUBE_CACHE:-${E2E_CACHE:-/var/cache/cri-runtime-e2e}/kube-$KUBE_VERSION}
export PATH=$PATH:/usr/local/go/bin
export GOFLAGS=-mod=mod

log() { echo "hack/install-kube: $*" >&2; }

want=("$@")
[ ${#want[@]} -gt 0 ] || want=(kubelet e2e_node agnhost ginkgo)

mkdir -p "$CACHE"
todo=()
for w in "${want[@]}"; do
	case $w in
	kubelet | agnhost | ginkgo) bin=$w ;;
	e2e_node) bin=e2e_node.test ;;
	*)
		log "unknown program $w (kubelet, e2e_node, agnhost or ginkgo)"
		exit 2
		;;
	esac
	if [ -x "$CACHE/$bin" ] && [ "$(cat "$CACHE/.$bin.version" 2>/dev/null)" = "$KUBE_VERSION" ]; then
		continue
	fi
	todo+=("$w")
done
if [ ${#todo[@]} -eq 0 ]; then
	log "ok: ${want[*]} $KUBE_VERSION in $CACHE"
	exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
go mod init kube-build >/dev/null 2>&1
go mod edit -require "k8s.io/kubernetes@$KUBE_VERSION"
modfile=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
[ -f "$modfile" ] || {
	log "cannot download k8s.io/kubernetes@$KUBE_VERSION"
	exit 1
}
for m in $(sed -n 's#^\t\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$modfile"); do
	go mod edit -replace "$m=$m@$STAGING_VERSION"
done
# The Go directive of kubernetes itself, so the build uses its language
# version and GODEBUG defaults.
go mod edit -go "$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$modfile")"

build() { # name, package, [test]
	local name=$1 pkg=$2 start=$SECONDS
	log "building $name $KUBE_VERSION (several minutes on a small machine)"
	if [ "${3:-}" = test ]; then
		go test -c -trimpath -ldflags '-s -w' -o "$tmp/$name" "$pkg"
	else
		CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${KUBE_VERSION#v1.}" -o "$tmp/$name" "$pkg"
	fi
	install -m 0755 "$tmp/$name" "$CACHE/$name"
	echo "$KUBE_VERSION" >"$CACHE/.$name.version"
	log "built $name in $((SECONDS - start)) s"
}

for w in "${todo[@]}"; do
	case $w in
	kubelet) build kubelet k8s.io/kubernetes/cmd/kubelet ;;
	agnhost) build agnhost k8s.io/kubernetes/test/images/agnhost ;;
	e2e_node) build e2e_node.test k8s.io/kubernetes/test/e2e_node test ;;
	ginkgo)
		v=$(sed -n 's#^\tgithub.com/onsi/ginkgo/v2 \(v[0-9.]*\)$#\1#p' "$modfile")
		start=$SECONDS
		log "building ginkgo $v"
		GOBIN="$tmp/gobin" go install "github.com/onsi/ginkgo/v2/ginkgo@$v"
		install -m 0755 "$tmp/gobin/ginkgo" "$CACHE/ginkgo"
		echo "$KUBE_VERSION" >"$CACHE/.ginkgo.version"
		log "built ginkgo in $((SECONDS - start)) s"
		;;
	esac
done
log "ok: ${want[*]} $KUBE_VERSION in $CACHE"

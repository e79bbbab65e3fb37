#!/usr/bin/env bash
# Builds the images critest and test/e2e pull, without docker, and pushes
# them to the local test registry (started here when it is not running; see
# hack/registry.sh). Idempotent: images already in the registry with the same
# digest are skipped, and the C helpers are rebuilt only when their source
# changed. Needs hack/install-test-tools.sh first (it builds busybox from
# source and, through hack/install-kube.sh, agnhost).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
ADDR=${REGISTRY_ADDR:-127.0.0.1:5000}
E2E_CACHE=${E2E_CACHE:-/var/cache/cri-runtime-e2e}
OUT=${TESTIMAGES_OUT:-$repo/_output/testimages}
export PATH=$PATH:/usr/local/go/bin

log() { echo "hack/build-test-images: $*" >&2; }

KUBE_VERSION=${KUBE_VERSION:-v1.37.2}
BUSYBOX=${BUSYBOX:-$E2E_CACHE/busybox-1.37.0/busybox}
AGNHOST=${AGNHOST:-$E2E_CACHE/kube-$KUBE_VERSION/agnhost}

deb=$(ls "$E2E_CACHE"/busybox_*.deb 2>/dev/null | head -n1 || true)
[ -n "$deb" ] || { log "no busybox .deb in $E2E_CACHE: run hack/install-test-tools.sh"; exit 1; }
command -v gcc >/dev/null || { log "gcc missing: run hack/install-test-tools.sh"; exit 1; }
[ -x "$BUSYBOX" ] || { log "no busybox built from source at $BUSYBOX: run hack/install-test-tools.sh"; exit 1; }
[ -x "$AGNHOST" ] || { log "no agnhost at $AGNHOST: run hack/install-test-tools.sh (hack/install-kube.sh)"; exit 1; }
# The Kubernetes source install-kube.sh downloaded (agnhost's porter certs).
kube_src=$(go env GOMODCACHE)/k8s.io/kubernetes@$KUBE_VERSION
[ -d "$kube_src/test/images/agnhost" ] || { log "no Kubernetes source at $kube_src: run hack/install-test-tools.sh"; exit 1; }

mkdir -p "$OUT/bin"
if [ ! -x "$OUT/busybox-root/bin/busybox" ] || [ "$deb" -nt "$OUT/busybox-root/bin/busybox" ]; then
	rm -rf "$OUT/busybox-root"
	dpkg-deb -x "$deb" "$OUT/busybox-root"
	touch "$OUT/busybox-root/bin/busybox"
fi

for src in "$repo"/hack/testimages/csrc/*.c; do
	bin=$OUT/bin/$(basename "$src" .c)
	if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ]; then
		gcc -static -O2 -Wall -Wextra -Werror -o "$bin" "$src"
	fi
done

REGISTRY_ADDR=$ADDR "$repo/hack/registry.sh" start
cd "$repo"
go run ./hack/testimages -registry "$ADDR" -busybox-root "$OUT/busybox-root" \
	-busybox-static /bin/busybox -helpers "$OUT/bin" \
	-busybox "$BUSYBOX" -agnhost "$AGNHOST" -kube-src "$kube_src" -layer-cache "$OUT/layers"

#!/usr/bin/env bash
# Builds the images critest and test/e2e pull, without docker, and pushes
# them to the local test registry (started here when it is not running; see
# hack/registry.sh). Idempotent: images already in the registry with the same
# digest are skipped, and the C helpers are rebuilt only when their source
# changed. Needs hack/install-test-tools.sh first.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
ADDR=${REGISTRY_ADDR:-127.0.0.1:5000}
E2E_CACHE=${E2E_CACHE:-/var/cache/cri-runtime-e2e}
OUT=${TESTIMAGES_OUT:-$repo/_output/testimages}
export PATH=$PATH:/usr/local/go/bin

log() { echo "hack/build-test-images: $*" >&2; }

deb=$(ls "$E2E_CACHE"/busybox_*.deb 2>/dev/null | head -n1 || true)
[ -n "$deb" ] || { log "no busybox .deb in $E2E_CACHE: run hack/install-test-tools.sh"; exit 1; }
command -v gcc >/dev/null || { log "gcc missing: run hack/install-test-tools.sh"; exit 1; }

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
	-busybox-static /bin/busybox -helpers "$OUT/bin"

#!/usr/bin/env bash
# Builds containerd ${CONTAINERD_VERSION} (the daemon and
# containerd-shim-runc-v2) from the Go module proxy into
# ${CONTAINERD_DIR}/bin, outside the work tree, for `make bench` to run it
# side by side with cri-runtime (test/bench/pods_test.go). Nothing of
# containerd's is committed or installed on PATH; the benchmark runs it on
# private paths only.
#
# Idempotent: rebuilds only when a binary is missing or the version stamp
# (${CONTAINERD_DIR}/.version) differs. Both binaries are built as
# containerd's own release builds the shim: CGO_ENABLED=0 (the daemon
# loses only the btrfs snapshotter, which the benchmark does not use).
set -euo pipefail

CONTAINERD_VERSION=${CONTAINERD_VERSION:-v2.4.2}
E2E_CACHE=${E2E_CACHE:-/var/cache/cri-runtime-e2e}
CONTAINERD_DIR=${CONTAINERD_DIR:-$E2E_CACHE/containerd-$CONTAINERD_VERSION}
export PATH=$PATH:/usr/local/go/bin

log() { echo "hack/install-containerd: $*"; }

bin=$CONTAINERD_DIR/bin
if [ -x "$bin/containerd" ] && [ -x "$bin/containerd-shim-runc-v2" ] &&
	[ "$(cat "$CONTAINERD_DIR/.version" 2>/dev/null || true)" = "$CONTAINERD_VERSION" ]; then
	log "ok: containerd $CONTAINERD_VERSION in $bin"
	exit 0
fi

log "building containerd $CONTAINERD_VERSION into $bin (a minute or two)"
mkdir -p "$CONTAINERD_DIR"
tmp=$(mktemp -d "$CONTAINERD_DIR/.build-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mod=github.com/containerd/containerd/v2
# containerd's go.mod has no replace directives, so `go install pkg@version`
# builds it with the dependency versions it was released with. GOFLAGS is
# set, not inherited: a caller's flags are for our module, not containerd's.
GOFLAGS=-buildvcs=false CGO_ENABLED=0 GOBIN="$tmp/bin" go install -trimpath \
	-ldflags "-X $mod/version.Version=${CONTAINERD_VERSION#v}" \
	"$mod/cmd/containerd@$CONTAINERD_VERSION" "$mod/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION"
[[ "$("$tmp/bin/containerd" --version)" == *" ${CONTAINERD_VERSION#v}"* ]] ||
	{ log "built containerd does not say version ${CONTAINERD_VERSION#v}"; exit 1; }

# Swap the whole bin dir in, then stamp it: an interrupted build leaves the
# stamp missing and is redone.
rm -f "$CONTAINERD_DIR/.version"
rm -rf "$bin"
mv "$tmp/bin" "$bin"
echo "$CONTAINERD_VERSION" >"$CONTAINERD_DIR/.version"
log "ok: containerd $CONTAINERD_VERSION in $bin"

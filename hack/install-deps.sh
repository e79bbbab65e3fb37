#!/usr/bin/env bash
# Installs what cri-runtime needs to run on a fresh Debian 12 machine:
# busybox-static (test rootfs), CNI plugins, iptables, iproute2 (ip, to
# rebuild a pod network after a reboot), and a current runc
# (v1.5.3, built from the Go module proxy: Debian's 1.1.5 lacks idmapped and
# recursive read-only mounts). Idempotent: installs only what is missing.
set -euo pipefail

RUNC_VERSION=${RUNC_VERSION:-v1.5.3}
RUNC_BIN=${RUNC_BIN:-/usr/local/bin/runc}
export PATH=$PATH:/usr/local/go/bin

apt_pkgs=()
need_pkg() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ] || apt_pkgs+=("$1"); }
for p in "$@" busybox-static containernetworking-plugins iptables iproute2 libseccomp-dev pkg-config gcc libc6-dev; do
	need_pkg "$p"
done
if [ ${#apt_pkgs[@]} -gt 0 ]; then
	echo "hack/install-deps: apt-get install ${apt_pkgs[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
fi

if [[ "$("$RUNC_BIN" --version 2>/dev/null || true)" != *"runc version ${RUNC_VERSION#v}"* ]]; then
	echo "hack/install-deps: building runc ${RUNC_VERSION} (about two minutes)"
	gobin=$(mktemp -d)
	CGO_ENABLED=1 GOBIN="$gobin" go install -tags seccomp "github.com/opencontainers/runc@${RUNC_VERSION}"
	install -m 0755 "$gobin/runc" "$RUNC_BIN"
	rm -rf "$gobin"
fi

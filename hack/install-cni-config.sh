#!/usr/bin/env bash
# Installs cri-runtime's default CNI network (hack/cni/10-cri-runtime.conflist:
# bridge cri0, host-local 10.99.0.0/16, portmap, loopback) into the CNI conf
# dir given as $1 (default /etc/cni/net.d). Idempotent: writes only when the
# dir holds no *.conflist, *.conf or *.json yet, so an operator's network is
# never replaced. The daemon loads the first config in name order.
set -euo pipefail

dir=${1:-/etc/cni/net.d}
src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/cni/10-cri-runtime.conflist"

mkdir -p "$dir"
shopt -s nullglob
existing=("$dir"/*.conflist "$dir"/*.conf "$dir"/*.json)
if [ ${#existing[@]} -gt 0 ]; then
	echo "hack/install-cni-config: $dir already has ${existing[0]##*/}; leaving it alone"
	exit 0
fi
tmp=$(mktemp "$dir/.cri-runtime-XXXXXX.tmp")
trap 'rm -f "$tmp"' EXIT
install -m 0644 "$src" "$tmp"
mv -f "$tmp" "$dir/10-cri-runtime.conflist"
trap - EXIT
echo "hack/install-cni-config: installed $dir/10-cri-runtime.conflist"

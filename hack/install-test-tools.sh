#!/usr/bin/env bash
# Installs what the end-to-end loop (test/e2e, `make test-e2e`) needs on a
# Debian 12 machine, on top of hack/install-deps.sh (which brings runc):
#   apt:  docker-registry (local image registry), containernetworking-plugins,
#         iptables, crun, busybox-static, gcc + libc6-dev (static C helpers
#         in the images), iputils-ping and iproute2 (network tests), curl
#         (hack/registry.sh), criu (CheckpointContainer's probe); and
#         Debian's dynamic busybox .deb, downloaded (not installed: it
#         conflicts with busybox-static) into ${E2E_CACHE}, for the critest
#         busybox image, whose applets must be hard links
#   go:   crictl and critest from sigs.k8s.io/cri-tools ${CRI_TOOLS_VERSION};
#         the kubelet, agnhost and the node e2e suite of Kubernetes
#         (hack/install-kube.sh, cached in ${E2E_CACHE}/kube-<version>)
#
# test/tools checks that every program the code runs is installed here (or
# by hack/install-deps.sh), so a new machine has it.
#
# crictl and critest go to ${TEST_TOOLS_BIN:-/usr/local/bin}: outside the
# work tree, so a fresh clone (CI clones afresh on the same machine) finds
# them already built. Idempotent and fast when everything is present: apt is
# touched only when a package is missing, and a tool is rebuilt only when its
# version stamp differs.
set -euo pipefail

CRI_TOOLS_VERSION=${CRI_TOOLS_VERSION:-v1.37.0}
BIN=${TEST_TOOLS_BIN:-/usr/local/bin}
E2E_CACHE=${E2E_CACHE:-/var/cache/cri-runtime-e2e}
export PATH=$PATH:/usr/local/go/bin
export DEBIAN_FRONTEND=noninteractive

log() { echo "hack/install-test-tools: $*"; }

apt_pkgs=()
for p in docker-registry containernetworking-plugins iptables crun busybox-static gcc libc6-dev iputils-ping iproute2 curl criu; do
	# dpkg-query, not dpkg -s | grep -q: under pipefail grep -q's early
	# exit fails the pipe (SIGPIPE) for packages with a long status.
	[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || apt_pkgs+=("$p")
done
if [ ${#apt_pkgs[@]} -gt 0 ]; then
	log "apt-get install ${apt_pkgs[*]}"
	# Another script (hack/install-deps.sh) may hold the dpkg lock: wait for it.
	apt-get -o DPkg::Lock::Timeout=600 update -qq
	updated=1
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
	# Debian starts the registry as a service on :5000 when it is installed;
	# the e2e loop runs its own (hack/registry.sh), so keep the port free.
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
		systemctl disable --now docker-registry >/dev/null 2>&1 || true
	fi
fi

mkdir -p "$E2E_CACHE"
if ! ls "$E2E_CACHE"/busybox_*.deb >/dev/null 2>&1; then
	log "apt-get download busybox (dynamic) into $E2E_CACHE"
	[ -n "${updated:-}" ] || apt-get -o DPkg::Lock::Timeout=600 update -qq
	(cd "$E2E_CACHE" && apt-get download -qq busybox)
fi

mkdir -p "$BIN"
stamp() { cat "$BIN/.$1.version" 2>/dev/null || true; }

if [ ! -x "$BIN/crictl" ] || [ "$(stamp crictl)" != "$CRI_TOOLS_VERSION" ]; then
	log "building crictl ${CRI_TOOLS_VERSION}"
	GOBIN="$BIN" GOFLAGS=-mod=mod go install "sigs.k8s.io/cri-tools/cmd/crictl@${CRI_TOOLS_VERSION}"
	echo "$CRI_TOOLS_VERSION" >"$BIN/.crictl.version"
fi

if [ ! -x "$BIN/critest" ] || [ "$(stamp critest)" != "$CRI_TOOLS_VERSION" ]; then
	# cmd/critest holds only a _test.go file: compile the test binary inside
	# a throwaway module that requires cri-tools at the pinned version.
	log "building critest ${CRI_TOOLS_VERSION}"
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	(
		cd "$tmp"
		go mod init critest-build >/dev/null 2>&1
		go get "sigs.k8s.io/cri-tools@${CRI_TOOLS_VERSION}" >/dev/null 2>&1
		# go get records only the module; go test needs go.sum lines for the
		# test's own imports too.
		go mod download all >/dev/null 2>&1 || true
		GOFLAGS=-mod=mod go test -c -o "$tmp/critest" sigs.k8s.io/cri-tools/cmd/critest
	)
	install -m 0755 "$tmp/critest" "$BIN/critest"
	echo "$CRI_TOOLS_VERSION" >"$BIN/.critest.version"
fi

E2E_CACHE=$E2E_CACHE "$(dirname "$0")/install-kube.sh"

log "ok: crictl and critest ${CRI_TOOLS_VERSION} in $BIN"

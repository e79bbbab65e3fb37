#!/usr/bin/env bash
# Installs what the end-to-end loop (test/e2e, `make test-e2e`) needs on a
# Debian 12 machine, on top of hack/install-deps.sh (which brings runc):
#   apt:  docker-registry (local image registry), containernetworking-plugins,
#         iptables, crun, busybox-static, gcc + libc6-dev (static C helpers
#         in the images), iputils-ping and iproute2 (network tests), curl
#         (hack/registry.sh), criu (CheckpointContainer's probe), systemd
#         (systemd-analyze verifies the unit file; PID 1 need not be
#         systemd); and
#         Debian's dynamic busybox .deb, downloaded (not installed: it
#         conflicts with busybox-static) into ${E2E_CACHE}, for the critest
#         busybox image, whose applets must be hard links; bzip2 (the
#         busybox source tarball); netcat-openbsd (the agnhost stand-in's nc:
#         the node e2e suite runs `nc -w 1 -u`, which busybox's nc lacks)
#   src:  busybox ${BUSYBOX_VERSION}, built static from its release tarball
#         (fetched from the Debian archive, sha256 pinned) with `make
#         defconfig`, every applet, into ${E2E_CACHE}/busybox-<version>/busybox:
#         the node e2e images (e2e-test-images/busybox:1.37.0-2 is upstream's
#         plain busybox 1.37.0, and the suite uses applets Debian's builds
#         leave out, e.g. nmeter)
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
BUSYBOX_VERSION=1.37.0
BUSYBOX_SHA256=3311dff32e746499f4df0d5df04d7eb396382d7e108bb9250e7b519b837043a4
BUSYBOX_URL=${BUSYBOX_URL:-http://deb.debian.org/debian/pool/main/b/busybox/busybox_${BUSYBOX_VERSION}.orig.tar.bz2}
BIN=${TEST_TOOLS_BIN:-/usr/local/bin}
E2E_CACHE=${E2E_CACHE:-/var/cache/cri-runtime-e2e}
export PATH=$PATH:/usr/local/go/bin
export DEBIAN_FRONTEND=noninteractive

log() { echo "hack/install-test-tools: $*"; }

apt_pkgs=()
for p in docker-registry containernetworking-plugins iptables crun busybox-static gcc libc6-dev make bzip2 iputils-ping iproute2 curl netcat-openbsd criu systemd; do
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

# busybox from source. The stamp names the version and the build recipe, so
# a change to either rebuilds it. SOURCE_DATE_EPOCH (the 1.37.0 release day)
# fixes the build date busybox embeds in its banner: the same source gives
# the same binary, so the image digest survives a rebuilt cache.
bb_dir=$E2E_CACHE/busybox-$BUSYBOX_VERSION
bb_recipe="$BUSYBOX_VERSION defconfig+static sde=1727308800"
if [ ! -x "$bb_dir/busybox" ] || [ "$(cat "$bb_dir/.recipe" 2>/dev/null)" != "$bb_recipe" ]; then
	log "building busybox $BUSYBOX_VERSION (static, defconfig) into $bb_dir"
	mkdir -p "$bb_dir"
	tarball=$bb_dir/busybox-$BUSYBOX_VERSION.tar.bz2
	if ! echo "$BUSYBOX_SHA256  $tarball" | sha256sum -c --status 2>/dev/null; then
		curl -fsSL --retry 3 -o "$tarball.part" "$BUSYBOX_URL"
		echo "$BUSYBOX_SHA256  $tarball.part" | sha256sum -c --status || {
			log "$BUSYBOX_URL: sha256 is not $BUSYBOX_SHA256"
			rm -f "$tarball.part"
			exit 1
		}
		mv "$tarball.part" "$tarball"
	fi
	bbtmp=$(mktemp -d)
	trap 'rm -rf "$bbtmp"' EXIT
	tar -xjf "$tarball" -C "$bbtmp"
	(
		cd "$bbtmp/busybox-$BUSYBOX_VERSION"
		export SOURCE_DATE_EPOCH=1727308800
		make -s defconfig >/dev/null
		# defconfig builds every applet, as the upstream image has; only the
		# link mode changes: static, so the binary needs no library in the
		# images. Nothing else is disabled: all of it builds on Debian 12.
		sed -i 's/^# CONFIG_STATIC is not set$/CONFIG_STATIC=y/' .config
		grep -q '^CONFIG_STATIC=y$' .config
		make -s -j"$(nproc)" busybox >"$bbtmp/build.log" 2>&1 || {
			tail -n 30 "$bbtmp/build.log" >&2
			exit 1
		}
		./busybox --list >"$bbtmp/applets"
		grep -qx nmeter "$bbtmp/applets"
		install -m 0755 busybox "$bb_dir/busybox"
		install -m 0644 .config "$bb_dir/busybox.config"
	)
	rm -rf "$bbtmp"
	echo "$bb_recipe" >"$bb_dir/.recipe"
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

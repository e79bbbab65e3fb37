# cri-runtime — see README.md. `make run` and `make test` install what they need.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin:$(CURDIR)/_output/bin
GO ?= go
BIN := $(CURDIR)/bin
# A semantic version (the kubelet reports the runtime's as "Unknown"
# otherwise): the release, then the commit as a pre-release part.
VERSION ?= 0.1.0-g$(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/cri-runtime/cri-runtime/pkg/cri.RuntimeVersion=$(VERSION)
GOTEST_FLAGS ?=
CC ?= gcc

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system

.PHONY: all build install deps run test test-unit test-integration test-e2e test-node bench vet fmt clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/cri-runtime ./cmd/cri-runtime
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(BIN)/cri-runtime-shim ./cmd/cri-runtime-shim
	$(CC) -static -Os -s -o $(BIN)/cri-runtime-pause cmd/cri-runtime-pause/pause.c

# Installs the binaries into $(DESTDIR)$(BINDIR), the systemd unit (its
# ExecStart pointing there) into $(DESTDIR)$(SYSTEMDUNITDIR), and
# /etc/cri-runtime/config.toml from `config default` unless one is there
# (an operator's file is never overwritten), with an empty config.d/.
install: build
	install -D -m 0755 $(BIN)/cri-runtime $(DESTDIR)$(BINDIR)/cri-runtime
	install -D -m 0755 $(BIN)/cri-runtime-shim $(DESTDIR)$(BINDIR)/cri-runtime-shim
	install -D -m 0755 $(BIN)/cri-runtime-pause $(DESTDIR)$(BINDIR)/cri-runtime-pause
	install -d -m 0755 $(DESTDIR)$(SYSTEMDUNITDIR)
	sed 's|/usr/local/bin/|$(BINDIR)/|g' contrib/systemd/cri-runtime.service > $(DESTDIR)$(SYSTEMDUNITDIR)/cri-runtime.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/cri-runtime.service
	install -d -m 0755 $(DESTDIR)/etc/cri-runtime/config.d
	@if [ -e $(DESTDIR)/etc/cri-runtime/config.toml ]; then \
		echo "kept $(DESTDIR)/etc/cri-runtime/config.toml"; \
	else \
		$(BIN)/cri-runtime config default > $(DESTDIR)/etc/cri-runtime/config.toml.tmp && \
		chmod 0644 $(DESTDIR)/etc/cri-runtime/config.toml.tmp && \
		mv $(DESTDIR)/etc/cri-runtime/config.toml.tmp $(DESTDIR)/etc/cri-runtime/config.toml && \
		echo "wrote $(DESTDIR)/etc/cri-runtime/config.toml"; \
	fi

deps:
	hack/install-deps.sh

# Installs what is missing, builds, and runs the daemon in the foreground
# with embedded defaults on /run/cri-runtime/cri-runtime.sock.
run: deps build
	hack/install-cni-config.sh /etc/cni/net.d
	$(BIN)/cri-runtime

test: deps build
	hack/install-test-tools.sh
	$(MAKE) vet
	$(MAKE) test-unit
	$(MAKE) test-e2e

vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi

# Unit and integration tests (integration tests use real runc, as root).
test-unit:
	$(GO) test -race -count=1 -timeout 20m $(GOTEST_FLAGS) ./pkg/... ./cmd/... ./internal/... ./test/deps/... ./test/tools/...

test-e2e:
	@mkdir -p _output
	CRI_RUNTIME_BIN=$(BIN)/cri-runtime $(GO) test -count=1 -timeout 30m -v ./test/e2e/... 2>&1 | tee _output/e2e.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|critest|node-e2e|\s+[a-z_]+\.go:[0-9]+:)' ; exit $${PIPESTATUS[0]}

# The pod benchmarks run containerd side by side (hack/install-containerd.sh
# builds it into /var/cache/cri-runtime-e2e) with the test images' registry.
# Kubernetes node conformance in full: every [NodeConformance] spec of the
# upstream node e2e suite that is not [Serial], [Flaky], [Slow], [Disruptive]
# or [Feature:...] (make test runs a subset). See docs/testing.md.
test-node: deps build
	hack/install-test-tools.sh
	@mkdir -p _output
	NODE_E2E=full CRI_RUNTIME_BIN=$(BIN)/cri-runtime $(GO) test -count=1 -timeout 60m -v ./test/e2e/... -run '^TestNodeConformance$$' 2>&1 | tee _output/node-e2e-full.log | grep -E '^(--- |PASS|FAIL|ok|node-e2e|\s+[a-z_]+\.go:[0-9]+:)' ; exit $${PIPESTATUS[0]}

bench: deps build
	hack/install-test-tools.sh
	hack/install-containerd.sh
	@mkdir -p _output
	CRI_RUNTIME_BIN=$(BIN)/cri-runtime $(GO) test -run '^$$' -bench . -benchtime 1x -count 1 -timeout 30m ./test/bench/... 2>&1 | tee _output/bench.log; exit $${PIPESTATUS[0]}

clean:
	rm -rf $(BIN) _output

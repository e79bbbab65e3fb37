# cri-runtime — see README.md. `make run` and `make test` install what they need.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin:$(CURDIR)/_output/bin
GO ?= go
BIN := $(CURDIR)/bin
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/cri-runtime/cri-runtime/pkg/cri.RuntimeVersion=$(VERSION)
GOTEST_FLAGS ?=
CC ?= gcc

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system

.PHONY: all build install deps run test test-unit test-integration test-e2e bench vet fmt clean

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
	$(GO) test -race -count=1 -timeout 20m $(GOTEST_FLAGS) ./pkg/... ./cmd/... ./internal/... ./test/deps/...

test-e2e:
	@mkdir -p _output
	CRI_RUNTIME_BIN=$(BIN)/cri-runtime $(GO) test -count=1 -timeout 30m -v ./test/e2e/... 2>&1 | tee _output/e2e.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|critest:|\s+[a-z_]+\.go:[0-9]+:)' ; exit $${PIPESTATUS[0]}

bench: deps build
	$(GO) test -run '^$$' -bench . -benchtime 1x -count 1 -timeout 30m ./test/bench/...

clean:
	rm -rf $(BIN) _output

# kfp-box — run `make` for the list of targets.
SHELL := /bin/bash
GO ?= go
BIN := bin/kfp-box
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/kfp-box/kfp-box/appliance.Version=$(VERSION)
# Unit and integration tests; CI runs them all through `make test`.
TEST_FLAGS ?= -count=1 -timeout 20m

.DEFAULT_GOAL := help

-include ui/ui.mk

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/kfp-box and its static task init bin/kfp-box-init (embeds the UI if `make ui` ran)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/kfp-box
	CGO_ENABLED=0 $(GO) build -ldflags "-s -w" -o bin/kfp-box-init ./runtime/containerd/cmd/kfp-box-init

# run prints one line per step; each step's own output goes to .cache/make-run-*.log and is
# shown only when the step fails.
.PHONY: run
run: ## Build the UI and the binary, then serve with the embedded defaults (one line per step)
	@mkdir -p .cache
	@echo "kfp-box 1/3: web UI: npm ci + vite build (first time about 1 minute; up to date: instant)"
	@$(MAKE) --no-print-directory ui >.cache/make-run-ui.log 2>&1 || { tail -n 20 .cache/make-run-ui.log; \
		echo "kfp-box: web UI not built (see .cache/make-run-ui.log); the API still works"; }
	@echo "kfp-box 2/3: go build bin/kfp-box (with a cold Go cache 5 to 15 minutes on 2 cores, modules downloaded; warm: about a minute)"
	@$(MAKE) --no-print-directory build >.cache/make-run-build.log 2>&1 || { cat .cache/make-run-build.log; exit 1; }
	@echo "kfp-box 3/3: $(BIN) serve ($$($(BIN) version)); Ctrl-C stops it"
	@$(BIN) serve

# dist cross-compiles kfp-box for each of DIST_ARCHES and packages it with packaging/cmd/mkdist
# (nfpm, pinned in packaging/go.mod). kfp-box needs cgo (NVML is opened with dlopen through
# go-nvml), so each architecture has its C cross compiler (Debian's gcc-aarch64-linux-gnu;
# make deps installs it); kfp-box-init is static (CGO_ENABLED=0) to run inside any image.
DIST_ARCHES ?= amd64 arm64
CC_amd64 ?= x86_64-linux-gnu-gcc
CC_arm64 ?= aarch64-linux-gnu-gcc
DIST_DIR ?= $(CURDIR)/dist
.PHONY: dist
dist: ## Build dist/: kfp-box_VERSION_ARCH.deb and .tar.gz for amd64 and arm64, and SHA256SUMS
	@if echo "$(DIST_ARCHES)" | grep -qw arm64 && ! command -v $(CC_arm64) >/dev/null; then \
		echo "dist: $(CC_arm64) is missing: make deps installs it (or DIST_ARCHES=amd64)"; exit 1; fi
	@$(MAKE) --no-print-directory ui
	@rm -rf $(DIST_DIR) && mkdir -p $(DIST_DIR)/build
	@for a in $(DIST_ARCHES); do \
		echo "dist: building linux/$$a (the first arm64 build with a cold Go cache takes several minutes)"; \
		CGO_ENABLED=1 CC=$$( [ $$a = amd64 ] && echo "$(CC_amd64)" || echo "$(CC_arm64)" ) GOOS=linux GOARCH=$$a \
			$(GO) build -trimpath -ldflags "$(LDFLAGS) -s -w" -o $(DIST_DIR)/build/$$a/kfp-box ./cmd/kfp-box && \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$a $(GO) build -trimpath -ldflags "-s -w" -o $(DIST_DIR)/build/$$a/kfp-box-init ./runtime/containerd/cmd/kfp-box-init && \
		(cd packaging && $(GO) run ./cmd/mkdist --version "$(VERSION)" --arch $$a \
			--bin $(DIST_DIR)/build/$$a/kfp-box --init $(DIST_DIR)/build/$$a/kfp-box-init --out $(DIST_DIR)) || exit 1; \
	done
	@rm -rf $(DIST_DIR)/build
	@cd $(DIST_DIR) && sha256sum *.deb *.tar.gz > SHA256SUMS && echo "dist: $(DIST_DIR): $$(ls | tr '\n' ' ')"

.PHONY: deps
deps: ## Install what the tests need (containerd, runc, busybox-static, python3, postgresql, mariadb-server, kubectl; chromium; arm64 cross gcc, qemu-user-static, systemd-analyze)
	@bash scripts/ensure-deps.sh

.PHONY: test
test: deps ## Run every test CI runs: unit, integration (real containerd, servers), browser, fuzz (2s each)
	$(GO) vet ./...
	cd packaging && $(GO) vet ./...
	$(GO) test $(TEST_FLAGS) ./...
	cd packaging && $(GO) test $(TEST_FLAGS) ./...
	@bash scripts/fuzz.sh $${FUZZTIME_CI:-2s}
	@if grep -q '^test-ui:' ui/ui.mk 2>/dev/null; then $(MAKE) --no-print-directory test-ui; fi

.PHONY: bench
bench: build ## Print the benchmark table (each figure against its raw baseline)
	@bash scripts/bench.sh

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 10s)
	@bash scripts/fuzz.sh $${FUZZTIME:-10s}

.PHONY: lint
lint: ## Run gofmt, go vet and golangci-lint when installed
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	cd packaging && $(GO) vet ./...
	@if command -v golangci-lint >/dev/null; then golangci-lint run; else echo "golangci-lint not installed; ran gofmt and go vet only"; fi

.PHONY: fmt
fmt: ## Format the Go code
	gofmt -w $$(git ls-files '*.go')

.PHONY: clean
clean: ## Remove build outputs
	rm -rf bin dist test-output

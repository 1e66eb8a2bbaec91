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
	@echo "kfp-box 2/3: go build bin/kfp-box (first build with a cold Go cache about 5 minutes on 2 cores, under 1 minute with a warm one)"
	@$(MAKE) --no-print-directory build >.cache/make-run-build.log 2>&1 || { cat .cache/make-run-build.log; exit 1; }
	@echo "kfp-box 3/3: $(BIN) serve ($$($(BIN) version)); Ctrl-C stops it"
	@$(BIN) serve

.PHONY: deps
deps: ## Install what the tests need (containerd, runc, busybox-static, postgresql; chromium for UI tests)
	@bash scripts/ensure-deps.sh

.PHONY: test
test: deps ## Run every test CI runs: unit, integration (real containerd, servers), browser, fuzz (2s each)
	$(GO) vet ./...
	$(GO) test $(TEST_FLAGS) ./...
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
	@if command -v golangci-lint >/dev/null; then golangci-lint run; else echo "golangci-lint not installed; ran gofmt and go vet only"; fi

.PHONY: fmt
fmt: ## Format the Go code
	gofmt -w $$(git ls-files '*.go')

.PHONY: clean
clean: ## Remove build outputs
	rm -rf bin test-output

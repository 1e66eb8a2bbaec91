# Makefile fragment for the web UI; the top-level Makefile includes it. Targets:
#   ui        npm ci (when package-lock.json changed) + vite build into ui/dist
#   test-ui   UI unit tests (node, no browser), then browser tests (playwright-core + Debian's
#             chromium) against a real kfp-box; screenshots in test-output/ui
#   bench-ui  time to the first rendered run list on loopback, as go-bench lines
# `go test ./...` needs none of this: without ui/dist/index.html the binary serves a stub page.

UI_DIR      ?= ui
CHROMIUM    ?= /usr/bin/chromium
UI_TEST_OUT ?= $(CURDIR)/test-output/ui
UI_SOURCES  := $(shell find $(UI_DIR)/src $(UI_DIR)/index.html $(UI_DIR)/vite.config.ts $(UI_DIR)/tsconfig.json $(UI_DIR)/package.json -type f 2>/dev/null)

.PHONY: ui ui-deps ui-chromium ui-dev test-ui test-ui-unit bench-ui

# npm ci installs exactly the committed lock and never rewrites it, so a clean checkout stays
# clean (and `make build` reports a version without -dirty). The lock holds every platform's
# optional packages (rollup's and esbuild's per-OS binaries); when npm ci refuses it, regenerate
# it against the registry with `cd ui && npm install --package-lock-only` and commit it.
$(UI_DIR)/node_modules/.package-lock.json: $(UI_DIR)/package-lock.json
	@echo "ui: npm ci (installing the locked UI packages; about 30s the first time)"
	@cd $(UI_DIR) && { npm ci --no-audit --no-fund --loglevel=error >/dev/null || { \
		echo "ui: npm ci refused ui/package-lock.json (see the error above); regenerate it with: cd ui && npm install --package-lock-only" >&2; exit 1; }; }
	@touch $@

ui-deps: $(UI_DIR)/node_modules/.package-lock.json

$(UI_DIR)/dist/index.html: $(UI_DIR)/node_modules/.package-lock.json $(UI_SOURCES)
	cd $(UI_DIR) && npm run build

ui: $(UI_DIR)/dist/index.html ## Build the web UI into ui/dist (embedded by the next `make build`)

ui-dev: ui-deps ## Run the Vite dev server (proxies /apis to KFPBOX_SERVER, default http://127.0.0.1:8888)
	cd $(UI_DIR) && npm run dev

ui-chromium:
	@CHROMIUM=$(CHROMIUM) sh scripts/ensure-chromium.sh

test-ui-unit: ui-deps ## UI unit tests (parsers, graph model, log metrics); no browser
	cd $(UI_DIR) && npm run --silent test:unit

test-ui: ui-chromium ui test-ui-unit ## Browser tests against a real kfp-box; screenshots in test-output/ui
	$(MAKE) --no-print-directory build
	cd $(UI_DIR) && TEST_OUTPUT=$(UI_TEST_OUT) CHROMIUM=$(CHROMIUM) node e2e/run.mjs --binary $(CURDIR)/bin/kfp-box

bench-ui: ui-chromium ## Time to the first rendered run list (go-bench lines)
	@mkdir -p $(CURDIR)/test-output
	@{ $(MAKE) --no-print-directory ui && $(MAKE) --no-print-directory build; } > $(CURDIR)/test-output/bench-ui-build.log 2>&1 \
		|| { cat $(CURDIR)/test-output/bench-ui-build.log; exit 1; }
	@cd $(UI_DIR) && TEST_OUTPUT=$(UI_TEST_OUT) CHROMIUM=$(CHROMIUM) node e2e/run.mjs --bench --binary $(CURDIR)/bin/kfp-box

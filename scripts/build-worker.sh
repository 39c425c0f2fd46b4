#!/bin/sh
# Builds the Worker (wasm + JS shim) with the pinned, locally installed tools.
#   scripts/build-worker.sh            -> build/       (what `make dev` serves and `wrangler deploy` ships)
#   scripts/build-worker.sh test       -> build-test/  (adds the test-only routes; end-to-end tests)
# Skips the build when the output is newer than every input, so wrangler's start stays fast.
set -eu
cd "$(dirname "$0")/.."
out=build
extra=""
if [ "${1:-}" = "test" ]; then
  out=build-test
  extra="--features test-harness"
fi
if [ -f "$out/index.js" ] && [ -z "$(find src core/src schemas/sql Cargo.toml Cargo.lock core/Cargo.toml -newer "$out/index.js" 2>/dev/null | head -1)" ]; then
  echo "moltlog: $out/ is up to date"
  exit 0
fi
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$HOME/.cargo/bin/wasm-bindgen}"
export ESBUILD_BIN="${ESBUILD_BIN:-$PWD/node_modules/@esbuild/linux-x64/bin/esbuild}"
MOLTLOG_GIT_SHA="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
export MOLTLOG_GIT_SHA
# shellcheck disable=SC2086
worker-build --release --no-opt --out-dir "$out" . $extra

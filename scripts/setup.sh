#!/usr/bin/env bash
# Installs the pinned toolchain pieces that are missing (see ../shared/TOOLCHAIN.md and
# README.md): the wasm32 target, Node 22 + wrangler from npm, wasm-bindgen-cli and worker-build.
# Idempotent; takes well under a second when everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_BINDGEN_VERSION=0.2.129
WORKER_BUILD_VERSION=0.8.7
export PATH="$HOME/.cargo/bin:$PATH"

if ! rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$'; then
  rustup target add wasm32-unknown-unknown
fi

# Node 22 and wrangler, pinned in package.json / package-lock.json.
stamp=node_modules/.moltlog-installed
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
  npm ci --no-audit --no-fund
  touch "$stamp"
fi

if ! wasm-bindgen --version 2>/dev/null | grep -q " $WASM_BINDGEN_VERSION\$"; then
  echo "moltlog setup: installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (a few minutes, once)"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --locked
fi
if ! worker-build --version 2>/dev/null | grep -q "^$WORKER_BUILD_VERSION\$"; then
  echo "moltlog setup: installing worker-build $WORKER_BUILD_VERSION (a few minutes, once)"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked
fi

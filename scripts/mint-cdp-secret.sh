#!/bin/sh
# Prints the CDP secret of one session: HMAC-SHA256(MOLTLOG_CDP_SECRET, "moltlog.cdp.v1" NUL key),
# hex (src/auth/session_secret.rs computes the same). It opens that session's CDP proxy only:
#   MOLTLOG_CDP_SECRET=... scripts/mint-cdp-secret.sh agent:main:telegram:chat:42
# and the agent's CDP URL becomes https://<worker>/cdp/<key>?secret=<printed secret>.
# See README.md, "The browser proxy".
set -eu
if [ $# -ne 1 ] || [ -z "${MOLTLOG_CDP_SECRET:-}" ]; then
  echo "usage: MOLTLOG_CDP_SECRET=<master> $0 SESSION_KEY" >&2
  exit 2
fi
{ printf '%s' 'moltlog.cdp.v1'; printf '\000'; printf '%s' "$1"; } |
  openssl dgst -sha256 -hmac "$MOLTLOG_CDP_SECRET" | sed 's/^.*= *//'

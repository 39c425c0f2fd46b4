#!/bin/sh
# Mints a moltlog machine token.
#   scripts/mint-token.sh NAME SCOPE...     e.g. scripts/mint-token.sh runtime-main \
#       'session:agent:main:*:append' 'session:agent:main:*:read'
# Prints the token (give it to the machine; it is shown once and stored nowhere) and the
# MOLTLOG_TOKENS entry holding only its SHA-256 digest (add it to the list you
# `wrangler secret put MOLTLOG_TOKENS`). See README.md, "Access control".
set -eu
if [ $# -lt 2 ]; then
  echo "usage: $0 NAME SCOPE..." >&2
  exit 2
fi
name=$1
shift
token=$(openssl rand -hex 32)
digest=$(printf %s "$token" | sha256sum | cut -d' ' -f1)
scopes=""
for s in "$@"; do
  scopes="$scopes${scopes:+, }\"$s\""
done
echo "token (for the machine's Authorization: Bearer header):"
echo "  $token"
echo "MOLTLOG_TOKENS entry:"
echo "  {\"name\": \"$name\", \"sha256\": \"$digest\", \"scopes\": [$scopes]}"

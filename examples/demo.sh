#!/usr/bin/env bash
# The demo behind `make demo`: start zerobus-local, send a sample dataset
# through the engine, stop the server (which materializes every durable
# record), then show what landed in the Delta table.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${ZEROBUS_LOCAL_BIN:-.bin/zerobus-local}
DATA=$(mktemp -d "${TMPDIR:-/tmp}/zerobus-demo.XXXXXX")
TABLE=main.demo.events
LOG="$DATA/server.log"
OUT="$DATA/server.out"

"$BIN" serve --listen 127.0.0.1:0 --data-dir "$DATA" --client demo:demo-secret >"$OUT" 2>"$LOG" &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; rm -rf "$DATA"' EXIT

for _ in $(seq 300); do
  grep -q '^zerobus-local ready' "$OUT" 2>/dev/null && break
  kill -0 "$SERVER" 2>/dev/null || { cat "$LOG"; exit 1; }
  sleep 0.1
done
READY=$(grep -m1 '^zerobus-local ready' "$OUT") || { cat "$LOG"; exit 1; }
echo "$READY"
ENDPOINT=$(sed -n 's/.* endpoint=\([^ ]*\).*/\1/p' <<<"$READY")
WORKSPACE=$(sed -n 's/.* workspace_url=\([^ ]*\).*/\1/p' <<<"$READY")

go run ./examples/go/quickstart \
  -endpoint "$ENDPOINT" -workspace-url "$WORKSPACE" \
  -client-id demo -client-secret demo-secret -table "$TABLE" -rows 100000

kill -TERM "$SERVER"
wait "$SERVER"

ROWS=$("$BIN" show --data-dir "$DATA" "$TABLE" | wc -l)
echo "rows in the Delta table $TABLE: $ROWS"
echo "first rows:"
"$BIN" show --data-dir "$DATA" "$TABLE" | sed -n 1,3p  # sed reads to the end: no SIGPIPE

#!/usr/bin/env bash
# The demo behind `make demo`: start zerobus-local, send a generated sample of
# 1,000,000 app events with nested fields from Python (pyzerobus, with a
# progress bar), stop the server (which materializes every durable record
# into the Delta table), then read the table back with deltalake.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${ZEROBUS_LOCAL_BIN:-.bin/zerobus-local}
PY=${PYZEROBUS_PYTHON:-.venv/bin/python}
ROWS=${DEMO_ROWS:-1000000}
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

"$PY" examples/python/demo.py send \
  --endpoint "$ENDPOINT" --workspace-url "$WORKSPACE" \
  --client-id demo --client-secret demo-secret --table "$TABLE" --rows "$ROWS"

kill -TERM "$SERVER"
wait "$SERVER"

"$PY" examples/python/demo.py show --data-dir "$DATA" --table "$TABLE"

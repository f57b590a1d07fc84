#!/usr/bin/env bash
# What the debug-file hook costs when debug files are off: SendBatch with
# debug off in the normal build against the zbwrap_nodebughook build (no hook
# in the send path), alternating the two builds to spread machine noise, then
# the mean time per batch of each and their ratio.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-4}
SIZE=${SIZE:-220B}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/with.test" ./zbwrap/
go test -c -tags zbwrap_nodebughook -o "$tmp/without.test" ./zbwrap/
for _ in $(seq "$ROUNDS"); do
  for build in with without; do
    (cd zbwrap && "$tmp/$build.test" -test.run '^$' -test.bench "BenchmarkSendBatchDebug/off/$SIZE\$" -test.benchtime 2s) |
      awk -v b="$build" '/^Benchmark/ { print b, $3 }' >>"$tmp/runs"
  done
done
awk '{ sum[$1] += $2; n[$1]++ }
     END {
       w = sum["with"] / n["with"]; o = sum["without"] / n["without"]
       printf "debug off, with hook:    %.0f ns/batch (%d runs)\n", w, n["with"]
       printf "no hook compiled in:     %.0f ns/batch (%d runs)\n", o, n["without"]
       printf "ratio with/without:      %.4f\n", w / o
     }' "$tmp/runs"

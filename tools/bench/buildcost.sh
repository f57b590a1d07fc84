#!/usr/bin/env bash
# What an optional part of the send path costs when it is off: a benchmark
# of the normal build against a build whose tag leaves the part out,
# alternating the two builds to spread machine noise, then the mean time per
# batch of each and their ratio.
#
#   buildcost.sh TAG BENCHMARK     e.g. zbwrap_nodebughook BenchmarkSendBatchDebug/off/220B
set -euo pipefail
tag=$1 bench=$2
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-4}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/with.test" ./zbwrap/
go test -c -tags "$tag" -o "$tmp/without.test" ./zbwrap/
for _ in $(seq "$ROUNDS"); do
  for build in with without; do
    (cd zbwrap && "$tmp/$build.test" -test.run '^$' -test.bench "$bench\$" -test.benchtime 2s) |
      awk -v b="$build" '/^Benchmark/ { print b, $3 }' >>"$tmp/runs"
  done
done
awk -v tag="$tag" '{ sum[$1] += $2; n[$1]++ }
     END {
       w = sum["with"] / n["with"]; o = sum["without"] / n["without"]
       printf "normal build:            %.0f ns/batch (%d runs)\n", w, n["with"]
       printf "build with -tags %s: %.0f ns/batch (%d runs)\n", tag, o, n["without"]
       printf "ratio normal/tagged:     %.4f\n", w / o
     }' "$tmp/runs"

#!/usr/bin/env bash
# What the debug-file hook costs when debug files are off: SendBatch with
# debug off against the zbwrap_nodebughook build (no hook in the send path).
exec "$(dirname "$0")/buildcost.sh" zbwrap_nodebughook "BenchmarkSendBatchDebug/off/${SIZE:-220B}"

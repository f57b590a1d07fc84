#!/usr/bin/env bash
# What telemetry costs when it is off: SendBatch with telemetry off against
# the zbwrap_notelemetry build (no instrumentation in the send path).
exec "$(dirname "$0")/buildcost.sh" zbwrap_notelemetry "BenchmarkSendBatchTelemetry/off/${SIZE:-220B}"

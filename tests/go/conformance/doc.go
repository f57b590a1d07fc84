// Package conformance checks the local Zerobus server against Databricks'
// pure-Go SDK, and benchmarks the engine beside that SDK on the same server.
//
// It is a module of its own so that the SDK stays out of the main module's
// go.mod. Its checksum is not in the public checksum database: run it with
// GONOSUMDB=github.com/databricks (the Makefile does). Its commands drive the
// SDK from other programs: cmd/sdkclient for zerobus-local's tests,
// cmd/sdkbench for the one-table benchmark (tools/bench/bench.py, make bench).
package conformance

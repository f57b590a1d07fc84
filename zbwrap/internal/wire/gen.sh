#!/usr/bin/env bash
# Regenerates zerobus.pb.go and zerobus_grpc.pb.go from zerobus.proto.
#
# zerobus.proto is the wire contract, in package databricks.zerobus. The Go
# types are generated from a copy in package pyzerobus.wire instead, so that
# they do not collide in protobuf's global registry with Databricks' own SDKs
# (which register databricks.zerobus.*): a program may link both. Message
# names never travel on the wire; the gRPC method path does, so it is set back
# to /databricks.zerobus.Zerobus/EphemeralStream. wire_test.go checks both.
#
# protoc-gen-go and protoc-gen-go-grpc must be on PATH: `make proto` builds
# them at the versions internal/tools/go.mod pins.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/pyzerobus/wire"
sed 's/^package databricks\.zerobus;/package pyzerobus.wire;/' zerobus.proto >"$tmp/pyzerobus/wire/zerobus.proto"
grep -q '^package pyzerobus.wire;' "$tmp/pyzerobus/wire/zerobus.proto"
mod=github.com/pyzerobus/pyzerobus/zbwrap/internal/wire
protoc -I "$tmp" \
  --go_out=. --go_opt=module=$mod \
  --go-grpc_out=. --go-grpc_opt=module=$mod \
  pyzerobus/wire/zerobus.proto
sed -i 's#"/pyzerobus\.wire\.Zerobus/#"/databricks.zerobus.Zerobus/#; s#ServiceName: "pyzerobus\.wire\.Zerobus"#ServiceName: "databricks.zerobus.Zerobus"#' zerobus_grpc.pb.go
grep -q '"/databricks.zerobus.Zerobus/EphemeralStream"' zerobus_grpc.pb.go

// Package wire holds the Zerobus Ingest protocol: zerobus.proto and the Go
// code generated from it by gen.sh (make proto). It is internal: the engine
// and the local server share it; users never see it.
//
// The Go types register in protobuf's global registry as pyzerobus.wire.*,
// not databricks.zerobus.*, so that a program can link Databricks' SDKs
// beside this module; what travels on the wire (field numbers and the method
// path /databricks.zerobus.Zerobus/EphemeralStream) is the contract's.
package wire

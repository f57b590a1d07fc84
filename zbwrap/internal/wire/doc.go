// Package wire holds the Zerobus Ingest protocol: the .proto file and the Go
// code generated from it (make proto). It is internal: the engine and the
// local server share it; users never see it.
package wire

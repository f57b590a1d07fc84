// Package e2e holds the end-to-end tests of the Go engine: zbwrap against
// the local Zerobus server (zerobustest) over real gRPC, checking the
// delivery contract against the Delta table the server writes.
package e2e

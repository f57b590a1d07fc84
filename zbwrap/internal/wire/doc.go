// Package wire holds the Zerobus Ingest protocol: zerobus.proto and the Go
// code generated from it by gen.sh (make proto). It is internal: the engine
// and the local server share it; users never see it.
//
// The Go types register in protobuf's global registry as pyzerobus.wire.*,
// not databricks.zerobus.*, so that a program can link Databricks' SDKs
// beside this module; what travels on the wire (field numbers and the method
// path /databricks.zerobus.Zerobus/EphemeralStream) is the contract's.
//
// # The contract the code relies on
//
// This is what package stream (the client), package zerobustest (the local
// server) and the error classification of zbwrap assume of the service; the
// field numbers are in zerobus.proto.
//
// Call. One bidirectional EphemeralStream call per stream. Its headers,
// sent once, carry "authorization: Bearer <token>",
// "x-databricks-zerobus-table-name" and a user agent; the token is checked
// only when a call opens, so every reconnection needs a valid one. The
// server answers with its headers as soon as the call opens.
//
// Handshake. The first request is create_stream (table name, one
// serialized DescriptorProto with its nested types and no imports, record
// type PROTO); anything else first is InvalidArgument. The reply is
// create_stream_response with a stream id.
//
// Offsets and acknowledgements. Each ingest request, a batch included, takes
// the next offset_id, counted from 0 on every new call. The server
// acknowledges cumulatively (durability_ack_up_to_offset) and may coalesce
// acknowledgements. A batch request is stored whole or not at all. There is
// no flush or close message: flushing is waiting for acknowledgements, and
// closing is flushing then half-closing the request side.
//
// Failures. Errors arrive as the call's gRPC status, never in a response.
// InvalidArgument, Unauthenticated, PermissionDenied, OutOfRange,
// Unimplemented and NotFound are final. Any other code, a call the server
// ends with OK while requests are unacknowledged, and no acknowledgement
// for too long with requests in flight are retryable: the client opens a new
// call and sends every unacknowledged request again, in order, renumbered
// from 0. So delivery is at least once: a row may be stored twice after a
// reconnection, never lost silently. close_stream_signal announces that the
// server will end the call after a duration: stop sending, keep reading
// acknowledgements, reconnect when they are all in or the time is up.
//
// Limits. A request is at most 10 MiB and a record about 4 MiB
// (4,194,285 bytes); a descriptor has at most 2000 columns, whose names,
// count and nullability match the Delta table. About 100 MB/s and 100,000
// records/s per stream; an acknowledgement means durable (about 150 ms),
// the rows are queryable a few seconds later.
package wire

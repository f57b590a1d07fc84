// Package flightstream is the engine's Arrow Flight transport: record
// batches go to Zerobus as Arrow IPC over Flight DoPut, on the same gRPC
// connection, token and table header as the protobuf transport.
//
// An Encoder turns a record batch of one schema into the FlightData
// messages of one batch (Encode): each message a slice of rows whose IPC
// body, optionally compressed (LZ4 frame or ZSTD), stays under the request
// size limit. A Stream is an internal/stream Stream whose calls are DoPut
// calls: the schema message first, then one message per request with the
// app_metadata {"offset_id": N}, N from 0 on every call; the server's first
// PutResult ({"ack_up_to_offset": -1}) says it is ready, the next ones are
// cumulative acknowledgements. Everything else (window, backoff, recovery,
// replay of what was not acknowledged, abandonment, errors and hooks) is the
// protobuf stream's, so both transports behave alike.
//
// Acknowledgements are counted in rows as well as messages: a PutResult's
// ack_up_to_records that ends inside a message acknowledges only the
// messages wholly before it, so the message is written again whole on the
// next call (its acknowledged rows may then be stored twice, which the
// stream counts as possible duplicates, as with any replay).
//
// Goroutines: none of its own. A Stream's supervisor, sender and receiver
// are internal/stream's, owned and ended as documented there; the DoPut
// call ends with the context internal/stream gives the dial.
package flightstream

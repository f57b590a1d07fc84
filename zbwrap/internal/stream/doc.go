// Package stream moves already-encoded records over one Zerobus ingest
// stream (internal/wire's doc.go has the contract). It knows nothing of Arrow.
//
// A Stream serves one table and one descriptor. Send splits a batch of
// records into IngestRecordBatchRequest messages under the request size
// limit, takes room for each in the in-flight window (records and bytes,
// two weighted semaphores), gives it the next logical offset and queues it.
// The first Send starts a supervisor goroutine that opens calls and serves
// each with exactly two goroutines: the sender writes queued requests in
// order, numbering them 0, 1, 2, ... on that call; the receiver matches the
// cumulative acks FIFO to the written requests. No lock is held across a
// network operation, so concurrent Sends pipeline on one call.
//
// SendFramed takes records already framed as the repeated records field of
// ProtoEncodedRecordBatch (arrowproto's EncodeFramed): each request is then a
// range of the caller's buffer, written as a header built per write (the
// offset changes on replays) followed by that range, which gRPC reads in
// place through the stream's codec (codec.go). gRPC reports when it lets go
// of each range; once the batch is resolved and gRPC holds none of it, the
// stream calls the batch's onRelease and the caller may reuse the buffer.
//
// Besides the in-flight window, Send waits while the writer is
// MaxUnwrittenBytes (1 MiB) behind: a fast producer would otherwise fill the
// whole window ahead of the writer, and its records would leave the CPU
// caches before they are written (TrySend never waits for this).
//
// Acks are checked: an ack below the previous one, or beyond the highest
// offset written, is a protocol violation that ends the call. Nothing
// acknowledged for AckTimeout while requests are in flight ends it too. A
// CloseStreamSignal stops new writes; the call ends once everything written
// is acknowledged or the signalled duration has passed, and the next call
// opens at once.
//
// Recovery: when a call ends with a retryable failure (see the table in
// errors.go), the supervisor waits (exponential backoff with full jitter),
// opens a new call with fresh headers and writes every unacknowledged
// request again, in order, renumbered from 0; logical offsets keep growing.
// An Unauthenticated answer earns one forced header refresh. After
// MaxAttempts consecutive failures without an ack, or on a fatal code, every
// pending request fails and the stream is finished.
//
// Rejection: a call that ends with a rejection of the data (InvalidArgument,
// OutOfRange, Unimplemented) while requests are in flight fails only the
// oldest of them. The server fails a call at its first bad request, after
// acknowledging every request before it, and ingests nothing after it; so
// the requests behind the rejected one stay queued and the next call, opened
// at once (recovery disabled or not), writes them again. The stream goes on.
//
// Each request remembers how many calls it was written on, and on how many
// of those it certainly was not ingested (its call failed at it or at a
// request before it). A failed request written on a call that may have
// ingested it may have landed (MayHaveLanded); an acknowledged request
// written on more than one such call may be stored twice (at-least-once
// delivery).
//
// Give-up semantics: a queued request is never dropped silently. A caller
// that stops waiting calls Batch.Abandon: requests never written are
// withdrawn and fail with ErrAbandoned (they cannot land); requests already
// written stay until the call they were written on ends (they may be
// acknowledged meanwhile), then fail with ErrPending (MayHaveLanded) instead
// of being written again. While the oldest request in flight is abandoned,
// the call ends after a second without an ack instead of AckTimeout, so that
// nothing queued behind a caller that gave up waits out a stall. Close
// flushes (bounded), half-closes the call, waits for the server to end it,
// and fails whatever is still unresolved with ErrClosed; it always returns
// with every request resolved and every goroutine gone.
package stream

// Package bindings is the gopy facade of zbwrap: the Go side of the
// pyzerobus Python package. gopy turns it into the private extension module
// pyzerobus._native; Python users never see it directly.
//
// The surface is shaped by what crosses gopy safely:
//
//   - plain types only: strings, integers, booleans, []byte and one handle
//     type (*Wrapper); no contexts, channels, generics or callbacks;
//   - structured data (configuration, results, statistics, log records)
//     crosses as JSON text;
//   - every error crosses as a Python RuntimeError whose message is
//     ErrorPrefix followed by a JSON object (kind, message, retryable, gRPC
//     code, the problems of an invalid configuration, the partial result);
//     the Python layer maps the kind to its exception classes;
//   - every entry point recovers panics (a Go panic would kill the
//     interpreter) and reports them as errors of kind "internal";
//   - no function returns an empty []byte (gopy cannot convert one).
//
// # Sends are operations
//
// SendStream (an Arrow C stream, zero-copy) and SendIPC (Arrow IPC bytes)
// start an operation and return its id at once. The input is taken over
// synchronously (the C stream is moved out of the caller's struct, the IPC
// bytes are owned by Go), then sent in the background by the engine's
// reader pipeline (zbwrap.Wrapper.StartReader): each batch is cut into
// chunks of at most batch_rows rows and about batch_bytes of Arrow data, and
// up to max_concurrent_batches chunks of the Wrapper (all operations
// together, one zbwrap.Limiter) are in flight at once: the chunks convert in
// parallel and queue in input order, so one operation's rows reach the
// stream in input order. The rows of one operation are numbered 0..N-1 in
// input order, whatever chunk they travelled in. The facade keeps the
// operations' ids, their results as JSON and the completion log.
//
// The caller pulls: Wait blocks for at most a given time (so Python can
// react to Ctrl-C between calls), Progress reports resolved rows,
// Completions lists finished operations for an event loop, Result returns
// the aggregated result once and forgets the operation, Cancel ends an
// operation early (rows not yet written fail; the Wrapper stays usable).
//
// A C stream address is checked before it is imported: 0, or a struct whose
// release callback is NULL (already released or moved), is refused with a
// conversion error. Any other address must point to a live ArrowArrayStream:
// the Python layer only passes addresses of structs it obtained from the
// Arrow PyCapsule protocol.
package bindings

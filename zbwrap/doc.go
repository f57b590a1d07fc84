// Package zbwrap streams Apache Arrow record batches into Databricks Zerobus
// Ingest, which makes them rows of a Delta table.
//
// # Quick start
//
//	cfg, err := zbwrap.LoadConfig("zerobus.yaml") // YAML, then ZEROBUS_* / DATABRICKS_* env
//	w, err := zbwrap.New(ctx, cfg)
//	defer w.Close(ctx)
//	res, err := w.SendBatch(ctx, rec) // returns when every row is durable or failed
//
// Each batch is converted to protobuf records (package arrowproto: the
// descriptor is derived from the Arrow schema, once per schema), split into
// requests under the service's 10 MiB limit and sent on a gRPC stream to the
// table; with transport: arrow it goes as Arrow IPC over Arrow Flight
// instead (see Transports). The server acknowledges durability; SendBatch returns a
// TransmissionResult saying which rows were acknowledged and which failed.
//
// # Configuration
//
// Config holds every setting; its doc comments give the defaults. Three
// sources, each able to set every field:
//
//   - code: New(ctx, zbwrap.Config{...}, zbwrap.WithTableName(...), ...);
//     options apply after the Config, in order;
//   - YAML: LoadConfig(path), keys are the snake_case names of the Config
//     field tags (unknown keys are errors); ParseConfigJSON reads the same
//     keys from JSON, and DecodeConfig reads a document that holds a
//     program's own settings beside them;
//   - environment: ZEROBUS_<KEY> (ZEROBUS_ENDPOINT for zerobus_endpoint,
//     ZEROBUS_TABLE_NAME, ...) overrides YAML; DATABRICKS_HOST,
//     DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET fill
//     unity_catalog_url, client_id and client_secret when those are empty.
//
// New validates everything at once and reports each bad setting by name
// (errors.Join of *Error of KindConfiguration). The client secret is a
// Secret: it prints as [REDACTED] in String, every fmt verb, JSON, YAML and
// logs, and never appears in an error. TLS certificate verification is
// always on; plaintext http:// endpoints are accepted only on loopback
// addresses (local servers). WithRootCAs or WithTLSConfig trust a private
// CA.
//
// Authentication is OAuth client credentials against the workspace
// (unity_catalog_url), downscoped to the table, made with
// golang.org/x/oauth2/clientcredentials. Tokens are cached per table and
// renewed ahead of expiry by a single request while other callers wait; a
// stream the server refuses with Unauthenticated gets one forced renewal.
// WithHeadersProvider replaces all of this with your own headers.
//
// # Concurrency guarantees
//
// A Wrapper is safe for concurrent use by any number of goroutines. All
// batches with the same schema (more precisely, the same protobuf
// descriptor) share one stream; concurrent sends pipeline on it: no lock is
// held while a batch travels, so throughput grows with the number of
// batches in flight, bounded by the in-flight window. Within one call the
// rows go in order; across goroutines the order is the order in which their
// requests were queued. Batches with different schemas use different
// streams and are not ordered relative to each other.
//
// SendBatch blocks until its rows are resolved. SendBatchAsync returns as
// soon as the batch is queued, with an offset (0, 1, 2, ... per Wrapper, in
// call order); WaitForOffset(off) waits for that batch and every earlier
// one, Flush for everything. Enqueue is SendBatch in two steps: it returns
// once the batch is queued, and the PendingBatch's Wait gives the batch's
// TransmissionResult; batches enqueued one after another by one goroutine
// keep that order on the stream while several are in flight. Prepare and
// PreparedBatch.Enqueue split Enqueue once more, so that batches convert in
// parallel and still queue in a chosen order. When the
// window is full, SendBatch, SendBatchAsync and Enqueue wait (bounded by
// their context) while TrySendBatchAsync fails at once.
//
// SendReader does all of this for a stream of batches (any
// array.RecordReader): it cuts the stream into chunks (WithChunkRows,
// WithChunkBytes), converts up to WithConcurrency of them in parallel,
// queues them in the reader's order and returns one ReaderResult for the
// whole stream, its rows numbered across batches and its failed rows as
// runs. StartReader is the same without waiting: its ReaderSend reports
// progress (Resolved), can be cancelled, and is waited for with Wait.
//
// Every send form takes SendOptions: WithDescriptor sends the rows as
// records of an explicit protobuf message instead of the one derived from
// the Arrow schema; the chunk options shape SendReader and StartReader.
//
// # Several streams per table
//
// The service limits each stream (100 MB/s and 100,000 records/s) and
// takes about 150 ms from request to durability. The streams setting
// (WithStreams) lets one schema of a table use up to that many streams:
// each batch goes whole to the stream with the least in flight, each
// stream keeps its own offsets, window and recovery, and one that fails
// fails only the requests it had and is replaced. Rows keep their order
// within a batch and within a stream; batches on different streams are not
// ordered relative to each other, so set 1 where the table's order
// matters. The default, StreamsAuto (streams: auto), starts with one
// stream and opens another, up to WithMaxStreams (default 16), while the
// least loaded one is pressed: 0.2 s of the service's quota (20,000
// records or 20 MiB) or half its window in flight, or its writer held back
// by the server. After its first measurement it opens one only while what
// the streams hold waits 100 ms or more for its acknowledgement (in flight
// over the rate of acknowledgements): the service's latency or quota does
// that, while a local server without quotas presses a stream only because
// client and server share the CPU, where another stream adds work. An extra stream idle for 10 s is closed at the next
// send. A load one stream carries stays on one stream. What a sender
// moves is what it keeps in flight divided by the latency: SendReader
// keeps DefaultConcurrency chunks in flight per stream the Wrapper may use
// (with streams: auto, per stream open plus one stream's worth, up to that:
// NewStreamLimiter)
// (BenchmarkStreamsUnderQuota runs against the local server's databricks
// profile). With streams: auto, once 4 streams or more are open, chunks
// of a large record batch also grow (up to MaxChunkGrowth times, each
// counted as that many chunks in flight): each request waits its own time
// to durability and a send ends with its slowest, so fewer, larger
// requests end sooner.
//
// # Transports: proto and arrow
//
// The transport setting (WithTransport) chooses how batches travel; both
// go to the same endpoint with the same token and table header, and
// behave alike in everything else (window, backoff, recovery and replay,
// results, errors, telemetry, several streams per table).
//
//   - proto (the default): each row becomes a protobuf record on the
//     Zerobus gRPC service. A row that cannot be converted fails alone
//     (KindConversion) and the others go; WithDescriptor can choose the
//     message.
//   - arrow: the batch goes as it is, Arrow IPC over Arrow Flight DoPut,
//     cut into messages under the request limit; there is no per-row
//     conversion, so it costs less CPU per row and keeps types the table
//     has in Arrow form (TIMESTAMP stays a timestamp when the table is made
//     from the stream). The server checks the Arrow schema against the
//     table when the stream opens: a column it cannot take fails the whole
//     batch (KindTransmission, InvalidArgument, the column named), and so
//     does a dictionary-encoded column (KindConversion). View layouts
//     (string_view, binary_view, as polars makes them) are sent as the
//     plain ones. WithArrowCompression (arrow_compression: none, lz4,
//     zstd) compresses the IPC bodies: fewer bytes on the wire for more
//     CPU, worth it on a link slower than the encoder. Acknowledgements
//     count rows: after a broken call only the messages past the last row
//     acknowledged are written again, so a batch partly acknowledged is
//     resent in part. Debug files are Arrow IPC only.
//
// Choose arrow when the data is Arrow already and the table's columns
// match its types; keep proto when rows should fail one by one, or when
// the rows need a conversion the table's types require (unsigned integers,
// decimals as strings).
//
// # Delivery semantics
//
// Delivery is at least once. An acknowledged row is durable in the table
// (it becomes queryable a few seconds later). A row reported failed with
// FailedRow.MayHaveLanded false was never written to the network and is
// certainly not stored, and neither is one the server rejected (the error
// carries its status, InvalidArgument for example), unless an earlier call
// that broke had it too. A failed row with MayHaveLanded true was written on
// a call that broke before acknowledging it (or was still queued when its
// caller stopped waiting): it may or may not be stored.
//
// A rejection fails only the request the server rejected. The server fails
// a call at its first bad request, after acknowledging those before it, and
// ingests nothing after it: the requests that were in flight behind it are
// written again on a new call, as after a broken call, and are not counted
// as possible duplicates.
//
// Duplicates arise in exactly one way: a stream call breaks after the server
// stored a request but before its acknowledgement arrived; the engine
// reconnects and writes every unacknowledged request again (this is how no
// row is lost). Stats.ReplayedRecords counts the records written again and
// Stats.RecordsMaybeDuplicated those of them that were then acknowledged.
// Add a unique key to the rows if the table must be deduplicated.
//
// # Contexts
//
// The context of SendBatch bounds the whole call. If it ends first,
// SendBatch returns at once with the unresolved rows failed: requests never
// written are withdrawn (MayHaveLanded false), requests already written may
// still land (MayHaveLanded true) but are not written again on a later call.
// They do not hold up the batches behind them: a call whose oldest request
// was given up on is replaced after a second without an acknowledgement,
// not after ack_timeout_ms. A queued request is never dropped silently. The context of SendBatchAsync bounds only the
// wait for room in the window (and for the writer to catch up); once
// queued, a batch goes on regardless.
//
// # Errors
//
// Every error is an *Error with a Kind (see its doc for the full table):
//
//	errors.Is(err, zbwrap.ErrConnection)   // sentinels, one per kind
//	zbwrap.IsRetryable(err)                // or (*Error).Retryable()
//	status.Code(err)                        // the gRPC status, when there was one
//
// The engine itself retries connection failures (reconnect with a fresh
// token, replay, exponential backoff with full jitter between
// retry_base_delay_ms and retry_max_delay_ms, at most retry_max_attempts
// times in a row); what reaches you is final for that batch: fatal gRPC
// codes (InvalidArgument, OutOfRange, Unimplemented → KindTransmission;
// NotFound → KindConfiguration; PermissionDenied, Unauthenticated after a
// forced token renewal → KindAuthentication), KindRetryExhausted when
// recovery gave up, KindConversion for rows the encoder rejected (the other
// rows of the batch still go). Partial success is normal:
//
//	res, err := w.SendBatch(ctx, rec)
//	if res != nil && res.IsPartialSuccess() {
//		retry, _ := res.ExtractFailedBatch(rec) // the failed rows, as a batch
//		defer retry.Release()
//	}
//
// A TransmissionResult always accounts for every row: TotalRows ==
// SuccessfulCount + FailedCount. ErrorsByKind and ErrorStats summarize the
// failures.
//
// # Tuning
//
//   - Batch size: 1,000 to 10,000 rows per batch amortizes the per-batch
//     costs; a batch larger than max_request_bytes is split into several
//     requests.
//   - Concurrency: one SendBatch at a time waits one round trip per batch;
//     several goroutines, or SendBatchAsync, keep the stream busy.
//   - max_inflight_records and max_inflight_bytes (1,000,000 and 64 MiB)
//     bound what is queued or unacknowledged per stream, hence memory;
//     raise the bytes for large rows on high-latency links.
//   - ack_timeout_ms (60 s) is how long an unanswered stream is trusted;
//     flush_timeout_ms (5 min) bounds Flush and Close.
//
// On a 2-core machine, against the in-process local server in discard mode
// over loopback gRPC (both sides sharing the cores), one sender calling
// SendBatch with 1,000-row batches reaches about 400 MB/s with 20-byte
// rows, 2 GB/s with 220-byte rows and 3.5 GB/s with 1 KB rows, with a p99
// batch latency under 0.5 ms (BenchmarkSendBatch); SendBatchAsync about
// 850 MB/s, 2.3 GB/s and 3.2 GB/s (BenchmarkSendBatchAsync). Over TLS,
// encryption roughly halves these. Concurrent senders raise throughput
// slightly and latency more, since their batches queue behind each other
// on the stream.
//
// The send path copies each record once, from Arrow into the batch's
// encoding: requests go to gRPC as ranges of that buffer (no marshalling),
// the buffer is reused for a later batch once the server acknowledged it,
// and over TLS each gRPC flush is one system call. A sender waits while the
// stream's writer is more than 1 MiB behind, so that records go out while
// they are still in the CPU caches.
//
// # Writer-disabled mode
//
// With zerobus_writer_disabled the Wrapper converts batches and reports
// per-row conversion results (and writes debug files, when enabled) but
// never opens a connection: endpoint and credentials are optional.
//
// # Telemetry
//
// The engine records OpenTelemetry metrics and spans through the
// OpenTelemetry API only; the program chooses where they go. With
// WithMeterProvider and WithTracerProvider it records into your own
// providers. With observability_enabled and WithExporters(otelsetup.New)
// (package zbwrap/telemetry/otelsetup) it exports them over OTLP
// (observability_otlp_endpoint, or the standard OTEL_EXPORTER_OTLP_*
// variables, looked up in the process environment or WithEnvLookup's) or
// to standard output, as the Python package does; without
// WithExporters (or both providers), New refuses observability_enabled
// with a KindConfiguration error rather than drop the telemetry silently.
// A program that does not import otelsetup links no SDK and no exporter. Each SendBatch is a span under the caller's context,
// with children for the conversion, the stream open, the wait for
// acknowledgements and each recovery. Package telemetry lists every
// instrument. Telemetry never fails or blocks a send; off, it costs nothing
// (the send path only tests a nil pointer). Close flushes and shuts down the
// providers the engine created, never yours.
//
// # Closing
//
// Flush waits for everything sent so far. Close refuses new batches,
// flushes (bounded by its context and flush_timeout_ms), half-closes each
// stream and waits for the server to end it; rows still unacknowledged at
// the bound fail with ErrClosed. Close resolves every pending send and
// leaves no goroutine behind. Failures of async batches are reported once,
// by the first WaitForOffset, Flush or Close that covers them, as *Error
// values whose Result lists the failed rows.
package zbwrap

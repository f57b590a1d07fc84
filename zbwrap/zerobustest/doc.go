// Package zerobustest runs a local Zerobus Ingest server in-process, the way
// net/http/httptest runs an HTTP server: real gRPC over loopback, real OAuth
// and Unity Catalog endpoints, records made durable (append + fsync) before
// they are acknowledged and materialized into a real Delta table. The
// command tools/zerobus-local wraps the same server.
//
// # Starting one
//
//	srv, err := zerobustest.NewServer(
//		zerobustest.WithClient("my-client-id", "my-secret"), // for /oidc/v1/token
//		zerobustest.WithTable("main.default.events",
//			zerobustest.Column{Name: "id", Type: "bigint"},
//			zerobustest.Column{Name: "name", Type: "string", Nullable: true}),
//	)
//	defer srv.Close()
//	srv.Endpoint()     // gRPC: http://127.0.0.1:PORT (https:// with WithTLS)
//	srv.WorkspaceURL() // tokens, Unity Catalog, admin: http://127.0.0.1:PORT
//	srv.Token("main.default.events") // a token without the OAuth round trip
//
// Both listeners are plaintext by default (gRPC as h2c, which the Rust-core
// SDKs speak for http:// endpoints). WithTLS serves both over TLS with a
// certificate for 127.0.0.1, ::1 and localhost signed by a CA generated at
// start: trust it with CertPool, or with CAFile (ca.pem in the data
// directory). The official pure-Go SDK needs TLS.
//
// # The ingest service (databricks.zerobus.Zerobus/EphemeralStream)
//
// The server sends its response headers as soon as a call opens. It then
// checks, in this order:
//
//   - authorization: Bearer TOKEN — missing, unknown, expired or revoked:
//     Unauthenticated;
//   - x-databricks-zerobus-table-name — missing: InvalidArgument; a table the
//     token does not grant (or a workspace token, which grants none):
//     PermissionDenied;
//   - the first request is create_stream (otherwise InvalidArgument), its
//     table_name is a valid catalog.schema.table equal to the header
//     (otherwise InvalidArgument), record_type is PROTO with a
//     descriptor_proto of at most 2000 fields (missing or
//     RECORD_TYPE_UNSPECIFIED: InvalidArgument; other types: Unimplemented);
//   - the descriptor matches the table, which is created from it when it
//     does not exist (WithAutoCreate, default on; off: NotFound); a
//     mismatch is InvalidArgument naming the column.
//
// The reply is create_stream_response with a UUID stream id. Requests then
// carry offset_id 0, 1, 2, ... (a gap or a repeat is InvalidArgument naming
// the expected and the received offset), as ingest_record or
// ingest_record_batch. Each record must decode with the descriptor and fit
// its column (InvalidArgument naming the offset, the record's index in the
// batch and the column); a batch is stored whole or not at all. Requests
// over 10 MiB or records over 4,194,285 bytes are InvalidArgument (beyond
// 11 MiB gRPC itself answers ResourceExhausted). Names of tables are
// case-insensitive.
//
// A request is acknowledged (durability_ack_up_to_offset, cumulative) only
// once its records are fsynced. Requests pipeline: the call keeps reading
// while earlier requests are being fsynced, and one acknowledgement covers
// everything already durable. When the client half-closes, the server
// acknowledges what is durable and ends the call with OK.
//
// JSON streams are served in discard mode only (Unimplemented otherwise).
//
// # Arrow Flight (arrow.flight.protocol.FlightService/DoPut)
//
// The same port serves Arrow Flight DoPut, as Databricks' SDKs'
// create_arrow_stream sends it. The token and table header are checked as
// above; the first FlightData must carry the Arrow schema (a
// FlightDescriptor is optional; a path in it must name the header's
// table). The schema is checked against the table, which is created from
// it when missing (WithAutoCreate): columns match by name, a nullable
// column may be left out, and a type mismatch, a missing NOT NULL column or
// an unknown column is InvalidArgument naming it (the Arrow types per
// Delta type are in internal/lake's arrow.go). The server then sends the
// ready PutResult, app_metadata {"ack_up_to_offset":-1,"ack_up_to_records":0}.
// Each following FlightData carries a record batch (bodies may be LZ4
// frame or ZSTD compressed) and app_metadata {"offset_id": N}, N from 0 by
// one (a gap, a repeat or a missing offset_id is InvalidArgument). Rows
// become records of the table's own descriptor and go through the same
// checks, durable log and Delta table as protobuf records; a row that does
// not fit (a null in a NOT NULL column, say) fails the whole batch with
// InvalidArgument naming the row and the column. Acknowledgements are
// PutResults {"ack_up_to_offset":N,"ack_up_to_records":R} (R counts the
// stream's rows), sent once the rows are durable. Faults, quotas, the ack
// latency, discard mode and Stats apply as to EphemeralStream calls (an
// end_call fault with a signal just ends the call after the duration:
// Flight has no CloseStreamSignal); Stats.Streams says each stream's
// transport ("proto" or "arrow").
//
// # Discard mode
//
// WithDiscard acknowledges records without decoding or storing them; tokens,
// the handshake, offsets, size limits and faults still apply, and the
// descriptor is parsed but not checked against a table. It is the sink for
// client benchmarks: requests are parsed in place from gRPC's receive
// buffers (records are counted, never copied) and acknowledgements coalesce.
// In every mode the gRPC listener reads frames straight from TLS (no bufio
// copy), reuses frame buffers without zeroing them, and gives each accepted
// connection a 4 MiB socket receive buffer when net.core.rmem_max allows:
// under autotuning a loopback connection at GB/s drops segments and
// throughput halves at random.
//
// # Profiles: the real service's latency and quotas
//
// By default the server acknowledges as soon as records are durable and
// sets no quota (ProfileDefault), which keeps tests fast.
// WithProfile(ProfileDatabricks) behaves like the real service instead
// (the service limits are in package internal/wire's doc.go):
//
//   - Time to durability: each request waits, from its arrival, a delay
//     drawn from a log-normal distribution with median 150 ms and p95
//     500 ms (WithAckLatency: another distribution, or a fixed delay).
//     Acknowledgements stay cumulative and in order and requests keep
//     flowing while earlier ones wait. The drawn times are released in time
//     order, each release letting the oldest waiting request be
//     acknowledged: a client with one request in flight sees exactly the
//     distribution, and a burst of requests sees it spread across the burst
//     (1,000 requests with a fixed 150 ms are all acknowledged about 150 ms
//     after each arrived), rather than every request waiting for the
//     slowest draw before it. Up to 16,384 requests of a stream wait for
//     their delay at once; beyond that the server stops reading the stream.
//   - Quotas: 100 MB/s and 100,000 records/s per stream (WithStreamQuota),
//     10 GB/s per table shared by its streams (WithTableQuota). Bytes are
//     those of the requests as sent. A token bucket holds 100 ms at the
//     quota's rate; a request is let through once the bucket is out of
//     debt and pays its cost, so the average rate is exact even for
//     requests larger than the burst. A stream over a quota is paced
//     (QuotaPace): the server stops reading the call until the quota allows
//     the next request, so HTTP/2 flow control pushes back, acknowledgements
//     come at the quota's rate and the client's in-flight window fills.
//     WithQuotaMode(QuotaReject) ends the call with ResourceExhausted
//     instead, after acknowledging the requests taken in; clients treat the
//     code as retryable (they reconnect and send the unacknowledged requests
//     again).
//
// The options apply in order, so WithAckLatency, WithStreamQuota,
// WithTableQuota and WithQuotaMode after WithProfile change single limits.
// They combine with WithDiscard (limits on, storage off) for benchmarks.
// Stats lists each stream (Stats.Streams: the open ones and the last 100
// that ended) with its rates over the last RateWindow and the time it was
// held back by a quota, and the limits in force (Stats.Limits).
//
// # The workspace URL
//
//	POST   /oidc/v1/token                       OAuth client credentials (HTTP Basic or form)
//	GET    /api/2.1/unity-catalog/tables/{name} the table's columns (name, type_name, type_text, type_json, nullable, position)
//	POST   /api/2.1/unity-catalog/tables        declare a table: name, catalog_name, schema_name, columns[{name, type_text|type_name, nullable, position}]
//	GET    /stats                               Stats as JSON (per table and per stream, with rates and limits)
//	GET    /admin/faults                        armed faults
//	POST   /admin/faults                        arm a fault (a JSON object) or several (an array)
//	DELETE /admin/faults                        disarm every fault
//	POST   /admin/tokens/expire                 expire every token
//	POST   /admin/tokens/revoke                 revoke every token
//
// The admin endpoints (/admin/...) require the admin token as
// "Authorization: Bearer ADMIN_TOKEN" (401 without it or with a wrong one),
// and those that change state (POST, DELETE) also Content-Type:
// application/json (415 otherwise): a web page cannot send that header
// across origins without a CORS preflight, which the server never grants,
// so a page in a browser on the same machine cannot arm a fault. The token
// is random per server (Server.AdminToken) unless WithAdminToken sets it;
// Server.NewAdminRequest builds a request that carries both headers:
//
//	req, _ := srv.NewAdminRequest("POST", "/admin/faults",
//		strings.NewReader(`{"kind":"drop_connection","after_records":5000}`))
//	resp, err := http.DefaultClient.Do(req)
//
// The server logs a warning when the workspace URL listens on an address
// other than loopback (WithListen).
//
// The token endpoint checks grant_type=client_credentials, the client
// (401 invalid_client), scope all-apis and the resource
// api://databricks/workspaces/ID/zerobusDirectWriteApi when given (400), and
// that authorization_details grants SELECT and MODIFY on exactly one table
// plus USE CATALOG and USE SCHEMA on its parents (400 when malformed, 403
// when a privilege is missing). It answers access_token, token_type Bearer
// and expires_in (WithTokenTTL, default 1h). Tokens are opaque and bound to
// their table. A request without authorization_details gets a workspace
// token: it reads Unity Catalog tables but opens no stream.
//
// # Faults
//
// Faults make the server fail on purpose so that client recovery is tested
// for real: fail create_stream with a code, end the call (with or without a
// CloseStreamSignal), fail it with a code, delay or stop acknowledgements,
// expire or revoke every token, or cut the TCP connection mid-batch. Arm
// them with WithFault, Server.InjectFault, the command's --fault flag
// (ParseFault) or POST /admin/faults (with the admin token); each may be limited to a table, fires
// a number of times (default once) and is counted in Stats. See Fault for
// when record faults fire.
//
// # Storage
//
// Tables live under the data directory (WithDataDir; by default a temporary
// directory removed by Close): <dir>/<catalog>/<schema>/<table>/ is a Delta
// table that deltalake, pyarrow and Spark read. Durable records reach it
// after the materialize interval (WithMaterializeInterval, default 3s), on
// Server.Materialize, and on Close. ReadTable reads it back as an Arrow
// table. A killed server loses no acknowledged record: the next server on
// the same directory replays its log into the table.
//
// # Shutting down
//
// Shutdown (and Close) stops accepting connections, lets every open call
// acknowledge what is durable and end with Unavailable (a retryable code:
// clients reconnect), materializes the durable records and returns.
package zerobustest

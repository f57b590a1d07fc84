// Command zerobus-local runs a local Zerobus Ingest server: the gRPC ingest
// service (protobuf EphemeralStream, and Arrow Flight DoPut on the same
// port), the OAuth token and Unity Catalog endpoints of a workspace URL,
// durable storage into Delta tables, and injected faults. It is package
// zerobustest as a process, for clients in any language (the Rust-core
// Python SDK over plain http://, the pure-Go SDK over TLS).
//
// Serve until SIGINT or SIGTERM:
//
//	zerobus-local serve --data-dir ./zb --client my-id:my-secret [--tls] [--tables tables.yaml] \
//	    [--fault kind=end_call,after=1000,signal=true,signal_duration=2s]
//
// When ready it prints exactly one line to stdout, then logs to stderr:
//
//	zerobus-local ready endpoint=http://127.0.0.1:PORT workspace_url=http://127.0.0.1:PORT [ca_file=PATH] admin_token=TOKEN
//
// Point a client at endpoint (the Zerobus endpoint) and workspace_url (the
// workspace / Unity Catalog URL), with the client id and secret given by
// --client. With --tls, trust ca_file. On SIGINT or SIGTERM the server lets
// open streams acknowledge what is durable, writes the durable records to
// the Delta tables and exits 0. A killed server loses no acknowledged record:
// the next serve on the same --data-dir replays them.
//
// A --tables file declares tables up front (otherwise a stream creates its
// table from its descriptor, unless --no-auto-create):
//
//	main.default.events:
//	  - {name: id, type: bigint, nullable: false}
//	  - {name: name, type: string}            # nullable unless it says false
//	  - {name: tags, type: "array<string>", nullable: false}
//
// Faults can also be armed at run time: POST {workspace_url}/admin/faults
// with a JSON body such as {"kind":"drop_connection","after_records":5000}.
// The admin endpoints (/admin/faults, /admin/tokens/expire,
// /admin/tokens/revoke) require the admin token of the ready line as
// "Authorization: Bearer TOKEN" (401 otherwise), and POST and DELETE also
// "Content-Type: application/json" (415 otherwise), so that no web page in
// a browser on the same machine can arm a fault:
//
//	curl -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
//	    -d '{"kind":"end_call","after_records":1000}' http://127.0.0.1:PORT/admin/faults
//
// The admin token is random at each start unless --admin-token or the
// environment variable ZEROBUS_LOCAL_ADMIN_TOKEN sets it (the variable keeps
// it out of the process list). serve warns on stderr when --http-listen is
// not a loopback address: whoever reaches it from another machine needs only
// the admin token to arm faults.
//
// --profile databricks applies the real service's limits: acknowledgements
// a log-normal time after each request's arrival (median 150 ms, p95
// 500 ms), 100 MB/s and 100,000 records/s per stream and 10 GB/s per table,
// a stream over a quota paced (the server stops reading it and acknowledges
// at the quota's rate). --ack-latency, --stream-quota, --table-quota and
// --quota-mode (pace or reject: RESOURCE_EXHAUSTED) change single limits;
// --discard keeps them for benchmarks:
//
//	zerobus-local serve --discard --client my-id:my-secret --profile databricks --stream-quota records=2000
//
// GET {workspace_url}/stats reports each stream's rates and the time it was
// held back by a quota.
//
// Print the rows that landed in a table as JSON lines:
//
//	zerobus-local show --data-dir ./zb main.default.events
package main

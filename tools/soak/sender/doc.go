// Command soak-sender is the Go sender of the soak (tools/soak/soak.py,
// make soak): it sends batches of random size, 1 KB to 10 MB of payload,
// with rows keyed (sender, seq) into one table through the zbwrap engine,
// until SIGINT or SIGTERM; then it waits for what is in flight, closes the
// Wrapper and exits 0.
//
//	DATABRICKS_CLIENT_SECRET=... soak-sender --id go-sync --mode sync --streams 3 --workers 3 \
//	    --ledger go-sync.jsonl --endpoint http://127.0.0.1:P --workspace-url http://127.0.0.1:Q --client-id ID
//
// --mode sync calls SendBatch from --workers goroutines sharing one Wrapper;
// --mode async queues --async-depth batches with SendBatchAsync, then waits
// for the last with WaitForOffset (a batch's latency runs from its
// SendBatchAsync to that wait's return). --rate bounds the payload bytes per
// second and --send-rate the sends per second, so that a soak stays within
// the machine it shares. --small-rows N makes every batch 1 to N rows
// (log-uniform, most of them a few rows) instead of 1 KB to 10 MB of
// payload: many small sends, enough of them to measure a success rate.
//
// The ledger has one JSON line per send: what the engine reported for each
// row (acknowledged, or failed with its kind and whether it may have
// landed), the attempts, the latency and a failed send's error message; its last line holds the Wrapper's
// Stats (see ledger.go for the format). The engine retries with
// retry_max_attempts 30, retry_max_delay_ms 2000 and ack_timeout_ms 10000, so
// that a sender rides through a server that is killed and restarted.
package main

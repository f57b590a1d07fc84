// Command goengine sends Arrow data with the zbwrap engine directly, for
// tools/bench/bench.py and tools/bench/pybench.py: it is the Go-engine row of
// those comparisons.
//
// It loads an Arrow IPC file into memory, cuts its batches into chunks of
// -batch-rows rows, sends one chunk first to open the stream, then sends the
// rest the way the Python package does (-concurrency SendBatch calls at
// once), or with SendBatchAsync then Flush (-mode async), and prints one JSON
// line: {"rows": N, "bytes": B, "seconds": S, "cpu_seconds": C,
// "peak_rss_bytes": R}, where C is the CPU time (user and system) the
// process spent while sending and R its peak resident set, each 0 where the
// platform does not report it.
//
// It exits with status 2 when the engine refuses the configuration (for
// example a -transport it does not know), before it reads any data, so that
// a benchmark can tell a contender that does not exist yet from a failure.
//
//	ZEROBUS_CLIENT_SECRET=S goengine -endpoint URL -workspace-url URL -client-id ID \
//	    -table main.bench.t -ipc data.arrow [-batch-rows 10000] [-concurrency 4] \
//	    [-mode sync|async] [-streams 1] [-transport proto] [-ca-file ca.pem]
package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/pyzerobus/pyzerobus/internal/benchproc"
	"github.com/pyzerobus/pyzerobus/zbwrap"
)

func main() {
	// The secret comes from the environment, never the command line, where
	// any user of the machine could read it.
	if err := run(os.Args[1:], os.Getenv("ZEROBUS_CLIENT_SECRET"), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "goengine:", err)
		if errors.Is(err, zbwrap.ErrConfiguration) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func run(args []string, secret string, stdout io.Writer) error {
	fs := flag.NewFlagSet("goengine", flag.ContinueOnError)
	var (
		endpoint    = fs.String("endpoint", "", "Zerobus endpoint")
		workspace   = fs.String("workspace-url", "", "workspace URL")
		clientID    = fs.String("client-id", "", "OAuth client id")
		table       = fs.String("table", "", "catalog.schema.table")
		path        = fs.String("ipc", "", "Arrow IPC file to send")
		batchRows   = fs.Int("batch-rows", 10_000, "rows per batch")
		concurrency = fs.Int("concurrency", 4, "SendBatch calls at once (-mode sync)")
		mode        = fs.String("mode", "sync", "sync: concurrent SendBatch; async: SendBatchAsync then Flush")
		streams     = fs.String("streams", "1", "streams of the table (the streams setting: a count or auto)")
		transport   = fs.String("transport", zbwrap.DefaultTransport, "record encoding on the wire (the transport setting)")
		caFile      = fs.String("ca-file", "", "PEM file of CA certificates to trust (a TLS endpoint)")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *mode != "sync" && *mode != "async" {
		return fmt.Errorf("unknown -mode %q", *mode)
	}
	nStreams := zbwrap.StreamsAuto
	if *streams != "auto" {
		var err error
		if nStreams, err = strconv.Atoi(*streams); err != nil {
			return fmt.Errorf("-streams %q: a count or auto", *streams)
		}
	}
	cfg := zbwrap.Config{
		ZerobusEndpoint: *endpoint, UnityCatalogURL: *workspace, ClientID: *clientID,
		ClientSecret: zbwrap.Secret(secret), TableName: *table, Streams: nStreams,
		Transport: *transport,
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	var opts []zbwrap.Option
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s: no PEM certificate", *caFile)
		}
		opts = append(opts, zbwrap.WithRootCAs(pool))
	}
	chunks, err := load(*path, *batchRows)
	if err != nil {
		return err
	}
	defer func() {
		for _, c := range chunks {
			c.Release()
		}
	}()
	ctx := context.Background()
	w, err := zbwrap.New(ctx, cfg, opts...)
	if err != nil {
		return err
	}
	defer func() { _ = w.Close(ctx) }()
	if _, err := w.SendBatch(ctx, chunks[0]); err != nil { // open the stream
		return err
	}
	chunks = chunks[1:]

	var rows, bytes atomic.Int64
	cpu0 := benchproc.CPUSeconds()
	start := time.Now()
	switch *mode {
	case "sync":
		err = sendConcurrently(ctx, w, chunks, *concurrency, &rows, &bytes)
	default: // async
		for _, c := range chunks {
			if _, err = w.SendBatchAsync(ctx, c); err != nil {
				break
			}
			rows.Add(c.NumRows())
		}
		if err == nil {
			err = w.Flush(ctx)
		}
		bytes.Store(-1) // not reported by the async API
	}
	secs := time.Since(start).Seconds()
	cpu := benchproc.CPUSeconds() - cpu0
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(map[string]any{
		"rows": rows.Load(), "bytes": bytes.Load(), "seconds": secs, "cpu_seconds": cpu,
		"peak_rss_bytes": benchproc.PeakRSS(),
	})
}

// sendConcurrently sends every chunk with at most n SendBatch calls at once.
func sendConcurrently(ctx context.Context, w *zbwrap.Wrapper, chunks []arrow.RecordBatch, n int, rows, bytes *atomic.Int64) error {
	slots := make(chan struct{}, n)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for _, c := range chunks {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			res, err := w.SendBatch(ctx, c)
			if err != nil {
				once.Do(func() { first = err })
				return
			}
			rows.Add(int64(res.SuccessfulCount))
			bytes.Add(int64(res.BatchSizeBytes))
		})
	}
	wg.Wait()
	return first
}

// load reads an Arrow IPC file and cuts its batches into chunks.
func load(path string, batchRows int) ([]arrow.RecordBatch, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := ipc.NewFileReader(f)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []arrow.RecordBatch
	for i := range r.NumRecords() {
		rec, err := r.RecordBatchAt(i)
		if err != nil {
			return nil, err
		}
		for off := int64(0); off < rec.NumRows(); off += int64(batchRows) {
			out = append(out, rec.NewSlice(off, min(off+int64(batchRows), rec.NumRows())))
		}
		rec.Release()
	}
	if len(out) < 2 {
		return nil, fmt.Errorf("%s: need at least two chunks", path)
	}
	return out, nil
}

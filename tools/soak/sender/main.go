package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pyzerobus/pyzerobus/zbwrap"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "soak-sender:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	id, mode, ledger, table      string
	endpoint, workspaceURL       string
	clientID                     string
	streams, workers, asyncDepth int
	rowBytes, maxBatchBytes      int
	pause                        time.Duration
	rate                         int
	sendRate                     float64
	smallRows                    int
	seed                         uint64
}

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("soak-sender", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.id, "id", "", "sender `id`, the sender column of every row (required)")
	fs.StringVar(&o.mode, "mode", "sync", "sync (SendBatch) or async (SendBatchAsync then WaitForOffset)")
	fs.StringVar(&o.ledger, "ledger", "", "`file` the ledger is written to, one JSON line per send (required)")
	fs.StringVar(&o.table, "table", "main.soak.events", "target table")
	fs.StringVar(&o.endpoint, "endpoint", "", "Zerobus endpoint (required)")
	fs.StringVar(&o.workspaceURL, "workspace-url", "", "workspace URL (required)")
	fs.StringVar(&o.clientID, "client-id", "", "OAuth client id; the secret comes from DATABRICKS_CLIENT_SECRET (required)")
	fs.IntVar(&o.streams, "streams", 1, "streams setting of the wrapper")
	fs.IntVar(&o.workers, "workers", 1, "goroutines sending at once on the one wrapper")
	fs.IntVar(&o.asyncDepth, "async-depth", 4, "async mode: batches queued before each WaitForOffset")
	fs.IntVar(&o.rowBytes, "row-bytes", 1000, "payload bytes per row")
	fs.IntVar(&o.maxBatchBytes, "max-batch-bytes", 10_000_000, "largest batch payload in `bytes`")
	fs.DurationVar(&o.pause, "pause", 20*time.Millisecond, "longest random pause between two sends of a worker")
	fs.IntVar(&o.rate, "rate", 1_000_000, "payload `bytes` per second the sender keeps below (0: no limit)")
	fs.Float64Var(&o.sendRate, "send-rate", 0, "sends per second the sender keeps below, across its workers (0: no limit)")
	fs.IntVar(&o.smallRows, "small-rows", 0, "when positive, every batch has 1 to this many `rows` (log-uniform: "+
		"small batches often) instead of 1 KB to 10 MB of payload")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed of the batch sizes")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case o.id == "" || strings.ContainsAny(o.id, " \t\n"):
		return o, errors.New("--id is required and must have no spaces")
	case o.mode != "sync" && o.mode != "async":
		return o, fmt.Errorf("--mode %q is not sync or async", o.mode)
	case o.ledger == "" || o.endpoint == "" || o.workspaceURL == "" || o.clientID == "":
		return o, errors.New("--ledger, --endpoint, --workspace-url and --client-id are required")
	case getenv("DATABRICKS_CLIENT_SECRET") == "":
		return o, errors.New("the environment variable DATABRICKS_CLIENT_SECRET is not set")
	case o.streams < 1 || o.workers < 1 || o.asyncDepth < 1:
		return o, errors.New("--streams, --workers and --async-depth must be at least 1")
	case o.sendRate < 0 || o.smallRows < 0:
		return o, errors.New("--send-rate and --small-rows must not be negative")
	case o.rowBytes < 1 || o.maxBatchBytes < o.rowBytes:
		return o, fmt.Errorf("--row-bytes %d must be positive and at most --max-batch-bytes %d", o.rowBytes, o.maxBatchBytes)
	}
	return o, nil
}

// run sends batches until ctx ends, then waits for what is in flight,
// closes the wrapper and writes the ledger's last line (the wrapper's
// stats).
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	o, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	f, err := os.Create(o.ledger)
	if err != nil {
		return err
	}
	l := &ledger{enc: json.NewEncoder(f), sender: o.id}
	// The settings by their configuration keys (as a zerobus.yaml has them),
	// with the retries a restarting server needs. (Marshal cannot fail on
	// strings and ints.)
	settings, _ := json.Marshal(map[string]any{
		"zerobus_endpoint":   o.endpoint,
		"unity_catalog_url":  o.workspaceURL,
		"client_id":          o.clientID,
		"client_secret":      getenv("DATABRICKS_CLIENT_SECRET"),
		"table_name":         o.table,
		"streams":            o.streams,
		"retry_max_attempts": 30,
		"retry_max_delay_ms": 2000,
		"ack_timeout_ms":     10_000,
	})
	cfg, err := zbwrap.ParseConfigJSON(settings, nil)
	if err != nil {
		f.Close()
		return err
	}
	// New checks the settings; the streams open on the first send, and the
	// engine's retries carry them through a restarting server.
	w, err := zbwrap.New(ctx, cfg)
	if err != nil {
		f.Close()
		return err
	}
	s := &sender{o: o, w: w, l: l, schema: schema()}
	var wg sync.WaitGroup
	for i := range o.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(o.seed, uint64(i)))
			if o.mode == "sync" {
				s.syncLoop(ctx, rng)
			} else {
				s.asyncLoop(ctx, rng)
			}
		}()
	}
	wg.Wait()
	closeCtx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cerr := w.Close(closeCtx)
	l.final(w.Stats(), s.next.Load(), cerr)
	if err := errors.Join(l.err, f.Close()); err != nil {
		return fmt.Errorf("ledger %s: %w", o.ledger, err)
	}
	return nil
}

// schema is the soak table's: sender, seq (unique together), payload.
func schema() *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{
		{Name: "sender", Type: arrow.BinaryTypes.String},
		{Name: "seq", Type: arrow.PrimitiveTypes.Int64},
		{Name: "payload", Type: arrow.BinaryTypes.String},
	}, nil)
}

// sender holds what the workers share: the next sequence number and the
// ledger.
type sender struct {
	o      options
	w      *zbwrap.Wrapper
	l      *ledger
	schema *arrow.Schema
	next   atomic.Int64
}

// sizes are the batch payload sizes drawn from, small ones more often.
var sizes = []struct {
	bytes  int
	weight int
}{{1_000, 500}, {10_000, 250}, {100_000, 130}, {1_000_000, 80}, {4_000_000, 25}, {10_000_000, 15}}

// batchRows draws the rows of the next batch: with --small-rows N, 1 to N
// rows, log-uniform; otherwise a payload size from sizes.
func (s *sender) batchRows(rng *rand.Rand) int {
	if s.o.smallRows > 0 {
		return min(s.o.smallRows, int(math.Exp(rng.Float64()*math.Log(float64(s.o.smallRows)+1))))
	}
	total := 0
	for _, sz := range sizes {
		total += sz.weight
	}
	pick, size := rng.IntN(total), sizes[0].bytes
	for _, sz := range sizes {
		if pick < sz.weight {
			size = sz.bytes
			break
		}
		pick -= sz.weight
	}
	size = min(size, s.o.maxBatchBytes)
	return max(1, size/s.o.rowBytes)
}

// batch builds the next batch of a random size and reserves its sequence
// numbers.
func (s *sender) batch(rng *rand.Rand) (arrow.RecordBatch, int64) {
	rows := max(1, s.batchRows(rng))
	first := s.next.Add(int64(rows)) - int64(rows)
	b := array.NewRecordBuilder(memory.DefaultAllocator, s.schema)
	defer b.Release()
	payload := strings.Repeat(string(rune('a'+rng.IntN(26))), s.o.rowBytes)
	for i := range rows {
		b.Field(0).(*array.StringBuilder).Append(s.o.id)
		b.Field(1).(*array.Int64Builder).Append(first + int64(i))
		b.Field(2).(*array.StringBuilder).Append(payload)
	}
	return b.NewRecordBatch(), first
}

// pause waits a random time below --pause, longer when rows rows sent in
// took would go over the worker's share of --rate, or sends sends over its
// share of --send-rate.
func (s *sender) pause(ctx context.Context, rng *rand.Rand, rows, sends int, took time.Duration) {
	var d time.Duration
	if s.o.pause > 0 {
		d = time.Duration(rng.Int64N(int64(s.o.pause)))
	}
	var budget time.Duration
	if s.o.rate > 0 {
		share := float64(s.o.rate) / float64(s.o.workers)
		budget = time.Duration(float64(rows*s.o.rowBytes) / share * float64(time.Second))
	}
	if s.o.sendRate > 0 {
		share := s.o.sendRate / float64(s.o.workers)
		budget = max(budget, time.Duration(float64(sends)/share*float64(time.Second)))
	}
	if budget > 0 {
		d += budget - took
	}
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// syncLoop calls SendBatch until ctx ends. Each send runs to its end (the
// engine's retries decide), whatever ctx does meanwhile.
func (s *sender) syncLoop(ctx context.Context, rng *rand.Rand) {
	for ctx.Err() == nil {
		rec, first := s.batch(rng)
		start := time.Now()
		res, err := s.w.SendBatch(context.Background(), rec)
		took, rows := time.Since(start), int(rec.NumRows())
		s.l.result(first, rows, took, res, err)
		rec.Release()
		s.pause(ctx, rng, rows, 1, took)
	}
}

// queued is an async batch waiting for WaitForOffset.
type queued struct {
	off, first int64
	rows       int
	start      time.Time
}

// asyncLoop queues async-depth batches with SendBatchAsync, waits for the
// last offset and records each batch: failed if WaitForOffset reported it,
// acknowledged otherwise.
func (s *sender) asyncLoop(ctx context.Context, rng *rand.Rand) {
	for ctx.Err() == nil {
		var batch []queued
		began, total := time.Now(), 0
		for range s.o.asyncDepth {
			rec, first := s.batch(rng)
			start := time.Now()
			off, err := s.w.SendBatchAsync(context.Background(), rec)
			rows := int(rec.NumRows())
			total += rows
			rec.Release()
			if off < 0 {
				s.l.result(first, rows, time.Since(start), nil, err)
				continue
			}
			batch = append(batch, queued{off: off, first: first, rows: rows, start: start})
		}
		if len(batch) == 0 {
			s.pause(ctx, rng, total, s.o.asyncDepth, time.Since(began))
			continue
		}
		err := s.w.WaitForOffset(context.Background(), batch[len(batch)-1].off)
		done := time.Now()
		failed := map[int64]*zbwrap.TransmissionResult{}
		for _, e := range joined(err) {
			var ze *zbwrap.Error
			if errors.As(e, &ze) && ze.Result != nil {
				failed[ze.Result.Offset] = ze.Result
			}
		}
		for _, q := range batch {
			if res, ok := failed[q.off]; ok {
				s.l.result(q.first, q.rows, done.Sub(q.start), res, res.Error)
				continue
			}
			s.l.result(q.first, q.rows, done.Sub(q.start), &zbwrap.TransmissionResult{
				Success: true, TotalRows: q.rows, SuccessfulCount: q.rows, Offset: q.off,
			}, nil)
		}
		s.pause(ctx, rng, total, s.o.asyncDepth, time.Since(began))
	}
}

// joined splits an errors.Join.
func joined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err != nil {
		return []error{err}
	}
	return nil
}

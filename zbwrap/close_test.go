package zbwrap

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pyzerobus/pyzerobus/zbwrap/telemetry"
	"github.com/pyzerobus/pyzerobus/zbwrap/telemetry/otelsetup"
	"github.com/pyzerobus/pyzerobus/zbwrap/telemetry/telemetrytest"
	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

// Close with a deadline returns by it, every step included, with the rows
// still unacknowledged reported failed; Flush returns when its context ends.
func TestCloseAndFlushKeepTheirDeadline(t *testing.T) {
	eachTransport(t, testCloseAndFlushKeepTheirDeadline)
}

func testCloseAndFlushKeepTheirDeadline(t *testing.T, topts []Option) {
	checkLeaks(t)
	srv := newServer(t, zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultStopAcks}))
	col, err := telemetrytest.NewCollector(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	w := newWrapper(t, srv, append(topts, WithAckTimeout(time.Minute), WithFlushTimeout(time.Minute),
		WithObservability(true), WithExporters(otelsetup.New), WithOTLPEndpoint(col.GRPCURL()))...)
	for i := range 3 {
		rec := makeBatch(i*10, 10, 10)
		_, err := w.SendBatchAsync(context.Background(), rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := w.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Flush with a 300ms deadline took %s", d)
	}
	ctx, cancel = context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start = time.Now()
	err = w.Close(ctx)
	t.Logf("Close took %s", time.Since(start))
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("Close with a 1s deadline took %s", d)
	}
	var e *Error
	if !errors.Is(err, ErrClosed) || !errors.As(err, &e) {
		t.Fatalf("Close: %v", err)
	}
	failed := 0
	var count func(error)
	count = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, err := range j.Unwrap() {
				count(err)
			}
			return
		}
		if e, ok := err.(*Error); ok && e.Result != nil {
			failed += e.Result.FailedCount
			if !e.Result.FailedRows[0].MayHaveLanded {
				t.Errorf("written rows reported as never landing: %v", e)
			}
		}
	}
	count(err)
	if failed != 30 {
		t.Fatalf("Close reported %d unresolved rows, want 30: %v", failed, err)
	}
	// The final export had its share of the deadline: it counts them.
	if v, ok := col.SumValue(telemetry.MetricBatchesSent, map[string]string{"zerobus.table": testTable}); !ok || v != 3 {
		t.Fatalf("batches at the collector: %v %v, want 3", v, ok)
	}
}

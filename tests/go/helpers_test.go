package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"go.uber.org/goleak"

	"github.com/pyzerobus/pyzerobus/zbwrap"
	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

const (
	table    = "main.default.events"
	clientID = "sp-e2e"
	secret   = "dose0e2e0secret0value"
)

// startServer starts a local Zerobus server knowing the test client.
func startServer(t testing.TB, opts ...zerobustest.Option) *zerobustest.Server {
	t.Helper()
	srv, err := zerobustest.NewServer(append([]zerobustest.Option{zerobustest.WithClient(clientID, secret)}, opts...)...)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// connect builds a Wrapper for srv with OAuth and short timings.
func connect(t testing.TB, srv *zerobustest.Server, opts ...zbwrap.Option) *zbwrap.Wrapper {
	t.Helper()
	base := []zbwrap.Option{
		zbwrap.WithEndpoint(srv.Endpoint()),
		zbwrap.WithUnityCatalogURL(srv.WorkspaceURL()),
		zbwrap.WithClientID(clientID),
		zbwrap.WithClientSecret(secret),
		zbwrap.WithTableName(table),
		zbwrap.WithRetryBaseDelay(5 * time.Millisecond),
		zbwrap.WithRetryMaxDelay(100 * time.Millisecond),
		zbwrap.WithAckTimeout(2 * time.Second),
		zbwrap.WithFlushTimeout(20 * time.Second),
	}
	if pool := srv.CertPool(); pool != nil {
		base = append(base, zbwrap.WithRootCAs(pool))
	}
	w, err := zbwrap.New(context.Background(), zbwrap.Config{}, append(base, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	return w
}

var schema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "payload", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

// batch builds rows id = first .. first+n-1.
func batch(first int64, n int) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i := range n {
		b.Field(0).(*array.Int64Builder).Append(first + int64(i))
		b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("payload-%d-%s", first+int64(i), strings.Repeat("x", 40)))
	}
	return b.NewRecordBatch()
}

// fate is what the engine said about a row.
type fate uint8

const (
	acked       fate = iota + 1
	failedNot        // failed, certainly not stored
	failedMaybe      // failed, may have reached the server
)

// ledger records the engine's word on every row sent.
type ledger struct {
	next atomic.Int64
	mu   sync.Mutex
	rows map[int64]fate
	errs []error
}

func newLedger() *ledger { return &ledger{rows: map[int64]fate{}} }

// ids reserves n fresh row ids.
func (l *ledger) ids(n int) int64 { return l.next.Add(int64(n)) - int64(n) }

// record files a batch's result; it checks the result's own consistency.
func (l *ledger) record(t testing.TB, first int64, n int, res *zbwrap.TransmissionResult, err error) {
	t.Helper()
	if res == nil {
		// Not accepted at all (closed wrapper): nothing was queued.
		l.mu.Lock()
		for i := range n {
			l.rows[first+int64(i)] = failedNot
		}
		l.errs = append(l.errs, err)
		l.mu.Unlock()
		return
	}
	if res.TotalRows != n || res.SuccessfulCount+res.FailedCount != n ||
		len(res.SuccessfulRows) != res.SuccessfulCount || len(res.FailedRows) != res.FailedCount {
		t.Errorf("inconsistent result for %d rows: %v", n, res)
	}
	if (err == nil) != res.Success {
		t.Errorf("err %v with success %v", err, res.Success)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range res.SuccessfulRows {
		l.set(t, first+int64(r), acked)
	}
	for _, f := range res.FailedRows {
		if f.Error == nil {
			t.Errorf("failed row %d has no error", f.Index)
		}
		if f.MayHaveLanded {
			l.set(t, first+int64(f.Index), failedMaybe)
		} else {
			l.set(t, first+int64(f.Index), failedNot)
		}
	}
	if err != nil {
		l.errs = append(l.errs, err)
	}
}

func (l *ledger) set(t testing.TB, id int64, f fate) {
	if _, dup := l.rows[id]; dup {
		t.Errorf("row %d reported twice", id)
	}
	l.rows[id] = f
}

// send sends n fresh rows with SendBatch and files the result.
func (l *ledger) send(ctx context.Context, t testing.TB, w *zbwrap.Wrapper, n int) error {
	first := l.ids(n)
	rec := batch(first, n)
	defer rec.Release()
	res, err := w.SendBatch(ctx, rec)
	l.record(t, first, n, res, err)
	return err
}

// count tallies the ledger.
func (l *ledger) count() (ack, not, maybe int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, f := range l.rows {
		switch f {
		case acked:
			ack++
		case failedNot:
			not++
		case failedMaybe:
			maybe++
		}
	}
	return
}

// tableIDs reads the ids in the Delta table with their counts.
func tableIDs(t testing.TB, srv *zerobustest.Server) map[int64]int {
	t.Helper()
	if err := srv.Materialize(); err != nil {
		t.Fatalf("Materialize: %v", err)
	}
	return readIDs(t, srv.DataDir())
}

func readIDs(t testing.TB, dir string) map[int64]int {
	t.Helper()
	tbl, err := zerobustest.ReadTable(dir, table)
	if err != nil {
		t.Fatalf("ReadTable: %v", err)
	}
	defer tbl.Release()
	out := map[int64]int{}
	for _, chunk := range tbl.Column(tbl.Schema().FieldIndices("id")[0]).Data().Chunks() {
		ids := chunk.(*array.Int64)
		for i := range ids.Len() {
			out[ids.Value(i)]++
		}
	}
	return out
}

// verify checks the delivery contract against the table: every row is
// either acknowledged and stored, or reported failed; a row reported failed
// is stored only if its failure said it may have reached the server; rows
// are stored twice only through replay; nothing unknown is stored.
func verify(t testing.TB, l *ledger, ids map[int64]int, st zbwrap.Stats) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	sent := l.next.Load()
	if int64(len(l.rows)) != sent {
		t.Errorf("%d rows sent, %d reported: some rows were neither acknowledged nor failed", sent, len(l.rows))
	}
	extra := 0
	for id, n := range ids {
		f, ok := l.rows[id]
		switch {
		case !ok:
			t.Errorf("table holds row %d that was never sent", id)
		case f == failedNot:
			t.Errorf("row %d reported failed (never reached the server) is in the table", id)
		}
		extra += n - 1
	}
	for id, f := range l.rows {
		if f == acked && ids[id] == 0 {
			t.Errorf("row %d acknowledged but not in the table", id)
		}
	}
	if int64(extra) > st.ReplayedRecords {
		t.Errorf("%d duplicate rows but only %d records replayed", extra, st.ReplayedRecords)
	}
	if t.Failed() {
		t.Logf("stats %+v", st)
	}
}

// kindOf is the kind of a zbwrap error.
func kindOf(err error) zbwrap.Kind {
	var e *zbwrap.Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// checkLeaks fails the test if a goroutine that was not running when it
// began is still running 5 s after it ended. (goleak.Find alone looks for
// about half a second, short for goroutines winding down under -race.)
func checkLeaks(t testing.TB) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		err := goleak.Find(ignore)
		for deadline := time.Now().Add(5 * time.Second); err != nil && time.Now().Before(deadline); {
			err = goleak.Find(ignore)
		}
		if err != nil {
			t.Error(err)
		}
	})
}

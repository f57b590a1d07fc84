package zbwrap

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"go.uber.org/goleak"

	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

const (
	testTable  = "main.default.events"
	testID     = "sp-test"
	testSecret = "dose5ecret0123456789"
)

// newServer starts a local Zerobus server that knows the test client.
func newServer(t testing.TB, opts ...zerobustest.Option) *zerobustest.Server {
	t.Helper()
	srv, err := zerobustest.NewServer(append([]zerobustest.Option{zerobustest.WithClient(testID, testSecret)}, opts...)...)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// serverOptions point a Wrapper at srv with OAuth and short timings.
func serverOptions(srv *zerobustest.Server) []Option {
	opts := []Option{
		WithEndpoint(srv.Endpoint()),
		WithUnityCatalogURL(srv.WorkspaceURL()),
		WithClientID(testID),
		WithClientSecret(testSecret),
		WithTableName(testTable),
		WithRetryBaseDelay(5 * time.Millisecond),
		WithRetryMaxDelay(50 * time.Millisecond),
		WithAckTimeout(2 * time.Second),
		WithFlushTimeout(20 * time.Second),
	}
	if pool := srv.CertPool(); pool != nil {
		opts = append(opts, WithRootCAs(pool))
	}
	return opts
}

// newWrapper builds a Wrapper for srv, closed at the end of the test.
func newWrapper(t testing.TB, srv *zerobustest.Server, opts ...Option) *Wrapper {
	t.Helper()
	w, err := New(context.Background(), Config{}, append(serverOptions(srv), opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	return w
}

var testSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "payload", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

// makeBatch builds rows id = first .. first+n-1 with a payload of size bytes.
func makeBatch(first, n, size int) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, testSchema)
	defer b.Release()
	ids := b.Field(0).(*array.Int64Builder)
	pl := b.Field(1).(*array.StringBuilder)
	pad := strings.Repeat("p", max(size-8, 0))
	for i := range n {
		ids.Append(int64(first + i))
		pl.Append(fmt.Sprintf("%08d", (first+i)%100000000) + pad)
	}
	return b.NewRecordBatch()
}

// u64Batch has a uint64 column: values at or above 2^63 cannot be encoded.
func u64Batch(vals ...uint64) arrow.RecordBatch {
	sc := arrow.NewSchema([]arrow.Field{{Name: "u", Type: arrow.PrimitiveTypes.Uint64}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	b.Field(0).(*array.Uint64Builder).AppendValues(vals, nil)
	return b.NewRecordBatch()
}

// tableIDs reads the ids stored in the Delta table, with their counts.
func tableIDs(t testing.TB, srv *zerobustest.Server) map[int64]int {
	t.Helper()
	return tableInts(t, srv, "id")
}

// tableInts reads an int64 column of the Delta table, with value counts.
func tableInts(t testing.TB, srv *zerobustest.Server, col string) map[int64]int {
	t.Helper()
	out := map[int64]int{}
	for _, v := range tableColumn(t, srv, col) {
		out[v]++
	}
	return out
}

// tableColumn reads an int64 column of the Delta table in table order.
func tableColumn(t testing.TB, srv *zerobustest.Server, col string) []int64 {
	t.Helper()
	if err := srv.Materialize(); err != nil {
		t.Fatalf("Materialize: %v", err)
	}
	tbl, err := zerobustest.ReadTable(srv.DataDir(), testTable)
	if err != nil {
		t.Fatalf("ReadTable: %v", err)
	}
	defer tbl.Release()
	idx := tbl.Schema().FieldIndices(col)
	if len(idx) != 1 {
		t.Fatalf("table schema %v has no %s", tbl.Schema(), col)
	}
	var out []int64
	for _, chunk := range tbl.Column(idx[0]).Data().Chunks() {
		out = append(out, chunk.(*array.Int64).Int64Values()...)
	}
	return out
}

// checkIDsInOrder fails the test unless the Delta table holds ids 0..n-1
// in table order.
func checkIDsInOrder(t testing.TB, srv *zerobustest.Server, n int) {
	t.Helper()
	ids := tableColumn(t, srv, "id")
	if len(ids) != n {
		t.Fatalf("table holds %d rows, want %d", len(ids), n)
	}
	for i, id := range ids {
		if id != int64(i) {
			t.Fatalf("row %d of the table has id %d", i, id)
		}
	}
}

// checkIDsOnce fails the test unless the table holds n distinct ids, each
// stored once (in any order: several streams land in any order).
func checkIDsOnce(t testing.TB, srv *zerobustest.Server, n int) {
	t.Helper()
	ids := tableIDs(t, srv)
	if len(ids) != n {
		t.Fatalf("%d distinct ids in the table, want %d", len(ids), n)
	}
	for id, c := range ids {
		if c != 1 {
			t.Fatalf("id %d stored %d times", id, c)
		}
	}
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

// transports are the engine's transports, for tests that run on each: the
// options that choose it.
var transports = []struct {
	name string
	opts []Option
}{
	{"proto", nil},
	{"arrow", []Option{WithTransport(TransportArrow)}},
	{"arrow-lz4", []Option{WithTransport(TransportArrow), WithArrowCompression("lz4")}},
}

// eachTransport runs f as a subtest on each transport.
func eachTransport(t *testing.T, f func(t *testing.T, opts []Option)) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) { f(t, tr.opts) })
	}
}

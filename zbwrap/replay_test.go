package zbwrap

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"google.golang.org/grpc/codes"

	"github.com/pyzerobus/pyzerobus/internal/testutil"
	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

// Over TLS, calls that fail or lose their connection mid-stream are
// recovered by writing the unacknowledged requests again: each replay
// rebuilds the request header around the same encoded records, and every
// row reaches the table, with its payload intact.
func TestReplayOverTLS(t *testing.T) { eachTransport(t, testReplayOverTLS) }

func testReplayOverTLS(t *testing.T, topts []Option) {
	for name, f := range map[string]zerobustest.Fault{
		"connection dropped": {Kind: zerobustest.FaultDropConnection, AfterRecords: 700, Times: 2},
		"call fails":         {Kind: zerobustest.FaultFailCall, Code: codes.Unavailable, AfterRecords: 900, Times: 2},
	} {
		t.Run(name, func(t *testing.T) {
			checkLeaks(t)
			srv := newServer(t, zerobustest.WithTLS(), zerobustest.WithFault(f))
			w := newWrapper(t, srv, append(topts, WithMaxRequestBytes(4096))...) // several requests per batch
			ctx := context.Background()
			for i := range 20 {
				rec := makeBatch(i*100, 100, 60)
				_, err := w.SendBatchAsync(ctx, rec)
				rec.Release()
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			st := w.Stats()
			testutil.Require(t, "stats", testutil.Want("RowsAcked", st.RowsAcked, 2000), testutil.Want("CallFailures", st.CallFailures, 2),
				testutil.Want("ReplayedRecords > 0", st.ReplayedRecords > 0, true))
			if err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}
			ids := tableIDs(t, srv)
			for id := range 2000 {
				if ids[int64(id)] == 0 {
					t.Fatalf("id %d missing from the table", id)
				}
			}
			if len(ids) != 2000 {
				t.Fatalf("table holds %d distinct ids, want 2000", len(ids))
			}
			checkPayloads(t, srv)
		})
	}
}

// checkPayloads checks that every row of the table holds the payload
// makeBatch gave its id (size 60).
func checkPayloads(t *testing.T, srv *zerobustest.Server) {
	t.Helper()
	tbl, err := zerobustest.ReadTable(srv.DataDir(), testTable)
	if err != nil {
		t.Fatalf("ReadTable: %v", err)
	}
	defer tbl.Release()
	sc := tbl.Schema()
	ic, pc := sc.FieldIndices("id"), sc.FieldIndices("payload")
	if len(ic) != 1 || len(pc) != 1 {
		t.Fatalf("table schema %v", sc)
	}
	ids, pls := tbl.Column(ic[0]).Data().Chunks(), tbl.Column(pc[0]).Data().Chunks()
	pad := strings.Repeat("p", 52)
	for k := range ids {
		id, pl := ids[k].(*array.Int64), pls[k].(*array.String)
		for i := range id.Len() {
			if want := fmt.Sprintf("%08d", id.Value(i)) + pad; pl.Value(i) != want {
				t.Fatalf("id %d has payload %q, want %q", id.Value(i), pl.Value(i), want)
			}
		}
	}
}

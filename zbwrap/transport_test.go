package zbwrap

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/pyzerobus/pyzerobus/internal/testutil"
	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

// wantTransport checks that every stream the server saw used the transport
// that topts choose.
func wantTransport(t *testing.T, srv *zerobustest.Server, topts []Option) {
	t.Helper()
	set := settings{}
	for _, o := range topts {
		o(&set)
	}
	want := set.cfg.withDefaults().Transport
	st := srv.Stats()
	if len(st.Streams) == 0 {
		t.Fatal("the server saw no stream")
	}
	for _, s := range st.Streams {
		if s.Transport != want {
			t.Fatalf("stream %s went over %q, want %q", s.StreamID, s.Transport, want)
		}
	}
}

// Each transport recovers from the same faults: lost acks, a server that
// ends the call or signals it will, expired tokens. Every row reaches the
// table with its payload, whatever was written again.
func TestTransportFaults(t *testing.T) {
	faults := map[string]struct {
		faults []zerobustest.Fault
		check  func(t *testing.T, st Stats, srv zerobustest.Stats)
	}{
		"acks lost": {
			faults: []zerobustest.Fault{{Kind: zerobustest.FaultStopAcks, AfterRecords: 500}},
			check: func(t *testing.T, st Stats, _ zerobustest.Stats) {
				testutil.Require(t, "stats", testutil.Want("CallFailures >= 1", st.CallFailures >= 1, true),
					testutil.Want("ReplayedRecords > 0", st.ReplayedRecords > 0, true),
					testutil.Want("RecordsMaybeDuplicated > 0", st.RecordsMaybeDuplicated > 0, true))
			},
		},
		"server ends the call": {
			faults: []zerobustest.Fault{{Kind: zerobustest.FaultEndCall, AfterRecords: 700, Times: 2}},
			check: func(t *testing.T, st Stats, _ zerobustest.Stats) {
				testutil.Require(t, "stats", testutil.Want("CallsOpened >= 3", st.CallsOpened >= 3, true),
					testutil.Want("ReplayedRecords > 0", st.ReplayedRecords > 0, true))
			},
		},
		"close signal": {
			faults: []zerobustest.Fault{{Kind: zerobustest.FaultEndCall, Signal: true, SignalDuration: 20 * time.Millisecond, AfterRecords: 600}},
			check: func(t *testing.T, st Stats, _ zerobustest.Stats) {
				testutil.Require(t, "stats", testutil.Want("CallsOpened >= 2", st.CallsOpened >= 2, true))
			},
		},
		"token expiry": {
			faults: []zerobustest.Fault{
				{Kind: zerobustest.FaultExpireTokens, AfterRecords: 300},
				{Kind: zerobustest.FaultDropConnection, AfterRecords: 600},
			},
			check: func(t *testing.T, st Stats, srv zerobustest.Stats) {
				testutil.Require(t, "stats", testutil.Want("TokensGranted >= 2", srv.TokensGranted >= 2, true),
					testutil.Want("CallsOpened >= 2", st.CallsOpened >= 2, true))
			},
		},
	}
	eachTransport(t, func(t *testing.T, topts []Option) {
		for name, tc := range faults {
			t.Run(name, func(t *testing.T) {
				checkLeaks(t)
				var sopts []zerobustest.Option
				for _, f := range tc.faults {
					sopts = append(sopts, zerobustest.WithFault(f))
				}
				srv := newServer(t, sopts...)
				w := newWrapper(t, srv, append(topts, WithMaxRequestBytes(4096), WithAckTimeout(400*time.Millisecond))...)
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
				// One more once the faults are over: on a new call if the
				// server ended the last one.
				time.Sleep(50 * time.Millisecond)
				rec := makeBatch(2000, 100, 60)
				_, err := w.SendBatch(ctx, rec)
				rec.Release()
				if err != nil {
					t.Fatal(err)
				}
				st := w.Stats()
				if st.RowsAcked != 2100 || st.RowsFailed != 0 {
					t.Fatalf("stats %+v: want 2100 rows acknowledged, none failed", st)
				}
				tc.check(t, st, srv.Stats())
				if err := w.Close(ctx); err != nil {
					t.Fatal(err)
				}
				wantTransport(t, srv, topts)
				ids := tableIDs(t, srv)
				for id := range 2100 {
					if ids[int64(id)] == 0 {
						t.Fatalf("id %d missing from the table", id)
					}
				}
				if len(ids) != 2100 {
					t.Fatalf("table holds %d distinct ids, want 2100", len(ids))
				}
				checkPayloads(t, srv)
			})
		}
	})
}

// A batch whose column the table cannot take fails whole, with the column
// named, on either transport; the stream of a good schema goes on.
func TestSchemaMismatchNamesTheColumn(t *testing.T) {
	eachTransport(t, func(t *testing.T, topts []Option) {
		checkLeaks(t)
		srv := newServer(t, zerobustest.WithAutoCreate(false), zerobustest.WithTable(testTable,
			zerobustest.Column{Name: "id", Type: "bigint", Nullable: true},
			zerobustest.Column{Name: "payload", Type: "string", Nullable: true}))
		w := newWrapper(t, srv, topts...)
		ctx := context.Background()
		bad := arrow.NewSchema([]arrow.Field{
			{Name: "id", Type: arrow.PrimitiveTypes.Int64},
			{Name: "payload", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		}, nil)
		b := array.NewRecordBuilder(memory.DefaultAllocator, bad)
		defer b.Release()
		b.Field(0).(*array.Int64Builder).AppendValues([]int64{1, 2, 3}, nil)
		b.Field(1).(*array.Float64Builder).AppendValues([]float64{1, 2, 3}, nil)
		rec := b.NewRecordBatch()
		defer rec.Release()
		res, err := w.SendBatch(ctx, rec)
		if err == nil || res == nil || res.FailedCount != 3 {
			t.Fatalf("SendBatch of a mismatched batch: %+v, %v", res, err)
		}
		if !strings.Contains(err.Error(), "payload") {
			t.Fatalf("error does not name the column: %v", err)
		}
		if IsRetryable(err) {
			t.Fatalf("a schema mismatch is retryable: %v", err)
		}
		good := makeBatch(0, 10, 20)
		defer good.Release()
		if _, err := w.SendBatch(ctx, good); err != nil {
			t.Fatalf("a good batch after the mismatch: %v", err)
		}
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if ids := tableIDs(t, srv); len(ids) != 10 {
			t.Fatalf("table holds %d ids, want the 10 good ones", len(ids))
		}
	})
}

// Several streams per table carry Arrow too; every row lands once.
func TestArrowOverSeveralStreams(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t, zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultDropConnection, AfterRecords: 1500}))
	w := newWrapper(t, srv, WithTransport(TransportArrow), WithArrowCompression("zstd"), WithStreams(3))
	ctx := context.Background()
	for i := range 30 {
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
	if st := w.Stats(); st.RowsAcked != 3000 || st.Streams < 2 {
		t.Fatalf("stats %+v: want 3000 rows over several streams", st)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	wantTransport(t, srv, []Option{WithTransport(TransportArrow)})
	ids := tableIDs(t, srv)
	if len(ids) != 3000 {
		t.Fatalf("table holds %d distinct ids, want 3000", len(ids))
	}
	checkPayloads(t, srv)
}

// What only the arrow transport refuses: a protobuf descriptor, a
// dictionary column (named), a row over the request limit (named).
func TestArrowRefusals(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t)
	w := newWrapper(t, srv, WithTransport(TransportArrow), WithMaxRequestBytes(1024))
	ctx := context.Background()
	rec := makeBatch(0, 10, 20)
	defer rec.Release()
	if _, err := w.SendBatch(ctx, rec, WithDescriptor(&descriptorpb.DescriptorProto{Name: new("x")})); !errors.Is(err, ErrConfiguration) ||
		!strings.Contains(err.Error(), "transport") {
		t.Fatalf("WithDescriptor on the arrow transport: %v", err)
	}

	dt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}
	sc := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}, {Name: "kind", Type: dt}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	b.Field(0).(*array.Int64Builder).Append(1)
	if err := b.Field(1).(*array.BinaryDictionaryBuilder).AppendString("a"); err != nil {
		t.Fatal(err)
	}
	drec := b.NewRecordBatch()
	defer drec.Release()
	res, err := w.SendBatch(ctx, drec)
	if !errors.Is(err, ErrConversion) || !strings.Contains(err.Error(), "column kind") || res.FailedCount != 1 {
		t.Fatalf("a dictionary column: %+v, %v", res, err)
	}

	big := makeBatch(100, 3, 2000)
	defer big.Release()
	res, err = w.SendBatch(ctx, big)
	if !errors.Is(err, ErrConversion) || !strings.Contains(err.Error(), "row 0") || res.FailedCount != 3 {
		t.Fatalf("a row over the request limit: %+v, %v", res, err)
	}
	// Rows that fit are cut into requests under the limit.
	small := makeBatch(200, 200, 30)
	defer small.Release()
	if _, err := w.SendBatch(ctx, small); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.RequestsWritten < 5 {
		t.Fatalf("200 rows of 30 bytes under a 1 KiB limit went in %d requests", st.RequestsWritten)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if ids := tableIDs(t, srv); len(ids) != 200 {
		t.Fatalf("table holds %d ids, want 200", len(ids))
	}
}

// Debug files of the arrow transport are Arrow IPC only: it makes no
// protobuf records.
func TestArrowDebugFilesAreArrowOnly(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	srv := newServer(t)
	w := newWrapper(t, srv, WithTransport(TransportArrow), WithDebug(true), WithDebugOutputDir(dir))
	rec := makeBatch(0, 10, 20)
	defer rec.Release()
	if _, err := w.SendBatch(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	arrowPath, protoPath, _ := debugFiles(dir)
	if _, err := os.Stat(arrowPath); err != nil {
		t.Fatalf("Arrow debug file: %v", err)
	}
	if _, err := os.Stat(protoPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("protobuf debug file written by the arrow transport: %v", err)
	}
}

// Writer-disabled mode with the arrow transport encodes (a batch it could
// not send fails whole) and writes Arrow debug files, never dialling; many
// schemas keep the encoder cache bounded.
func TestArrowWriterDisabled(t *testing.T) {
	dir := t.TempDir()
	w, err := New(context.Background(), Config{TableName: testTable, ZerobusWriterDisabled: true,
		Transport: TransportArrow, ArrowCompression: "zstd", DebugArrowEnabled: true, DebugOutputDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	rec := makeBatch(0, 100, 40)
	defer rec.Release()
	res, err := w.SendBatch(context.Background(), rec)
	if err != nil || res.SuccessfulCount != 100 || res.BatchSizeBytes == 0 || res.SuccessfulRows[99] != 99 {
		t.Fatalf("SendBatch: %v %+v", err, res)
	}
	for i := range schemaCacheSize + 2 { // a new schema each time
		sc := arrow.NewSchema([]arrow.Field{{Name: "c" + strings.Repeat("x", i), Type: arrow.PrimitiveTypes.Int64}}, nil)
		b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
		b.Field(0).(*array.Int64Builder).Append(1)
		r := b.NewRecordBatch()
		if _, err := w.SendBatch(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		r.Release()
		b.Release()
	}
	w.mu.Lock()
	n := len(w.encoders)
	w.mu.Unlock()
	if n > schemaCacheSize {
		t.Fatalf("%d encoders cached, bound %d", n, schemaCacheSize)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	arrowPath, _, _ := debugFiles(dir)
	if _, err := os.Stat(arrowPath); err != nil {
		t.Fatalf("Arrow debug file: %v", err)
	}
}

package zbwrap

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/pyzerobus/pyzerobus/zbwrap/arrowproto"
	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

// Two Arrow schemas through one Wrapper, interleaved: the payload as
// string in one and large_string in the other. Each schema is compiled
// once; both give the table's descriptor, so they share one stream, and
// the table holds every row of both with its payload.
func TestTwoSchemasThroughOneWrapper(t *testing.T) {
	srv := newServer(t)
	w := newWrapper(t, srv)
	ctx := context.Background()
	large := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "payload", Type: arrow.BinaryTypes.LargeString, Nullable: true},
	}, nil)
	largeBatch := func(first, n int) arrow.RecordBatch {
		b := array.NewRecordBuilder(memory.DefaultAllocator, large)
		defer b.Release()
		for i := range n {
			b.Field(0).(*array.Int64Builder).Append(int64(first + i))
			b.Field(1).(*array.LargeStringBuilder).Append(fmt.Sprintf("%08d", first+i))
		}
		return b.NewRecordBatch()
	}
	for k := range 6 {
		rec := makeBatch(k*100, 100, 8)
		if k%2 == 1 {
			rec.Release()
			rec = largeBatch(k*100, 100)
		}
		res, err := w.SendBatch(ctx, rec)
		rec.Release()
		if err != nil || res.SuccessfulCount != 100 {
			t.Fatalf("batch %d: %+v, %v", k, res, err)
		}
	}
	if st := w.Stats(); st.Streams != 1 || st.RowsAcked != 600 {
		t.Fatalf("stats %+v: want one stream shared by both schemas, 600 rows", st)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	checkIDsInOrder(t, srv, 600)
	tbl, err := zerobustest.ReadTable(srv.DataDir(), testTable)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	rdr := array.NewTableReader(tbl, -1)
	defer rdr.Release()
	for rdr.Next() {
		rec := rdr.RecordBatch()
		ids, payloads := rec.Column(0).(*array.Int64), rec.Column(1).(*array.String)
		for i := range int(rec.NumRows()) {
			if want := fmt.Sprintf("%08d", ids.Value(i)); payloads.Value(i) != want {
				t.Fatalf("row id %d has payload %q, want %q", ids.Value(i), payloads.Value(i), want)
			}
		}
	}
}

// Every send form takes WithDescriptor: a descriptor that cannot carry the
// batch fails its rows as a conversion error in each, and a good one is
// used (one stream, its own, whatever the form).
func TestEveryFormTakesADescriptor(t *testing.T) {
	srv := newServer(t)
	w := newWrapper(t, srv)
	ctx := context.Background()
	compiled, err := arrowproto.NewSchema(testSchema, arrowproto.WithMessageName("Event"))
	if err != nil {
		t.Fatal(err)
	}
	good := proto.Clone(compiled.Descriptor()).(*descriptorpb.DescriptorProto)
	bad := proto.Clone(good).(*descriptorpb.DescriptorProto)
	bad.Field[0].Type = descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()
	forms := map[string]func(rec arrow.RecordBatch, opt SendOption) (failed int, err error){
		"SendBatch": func(rec arrow.RecordBatch, opt SendOption) (int, error) {
			res, err := w.SendBatch(ctx, rec, opt)
			return res.FailedCount, err
		},
		"Enqueue": func(rec arrow.RecordBatch, opt SendOption) (int, error) {
			p, err := w.Enqueue(ctx, rec, opt)
			if err != nil {
				return 0, err
			}
			res, err := p.Wait(ctx)
			return res.FailedCount, err
		},
		"SendBatchAsync": func(rec arrow.RecordBatch, opt SendOption) (int, error) {
			off, err := w.SendBatchAsync(ctx, rec, opt)
			if err != nil {
				return int(rec.NumRows()), err
			}
			err = w.WaitForOffset(ctx, off)
			var e *Error
			if errors.As(err, &e) && e.Result != nil {
				return e.Result.FailedCount, err
			}
			return 0, err
		},
		"TrySendBatchAsync": func(rec arrow.RecordBatch, opt SendOption) (int, error) {
			off, err := w.TrySendBatchAsync(rec, opt)
			if err != nil {
				return int(rec.NumRows()), err
			}
			err = w.WaitForOffset(ctx, off)
			var e *Error
			if errors.As(err, &e) && e.Result != nil {
				return e.Result.FailedCount, err
			}
			return 0, err
		},
		"SendReader": func(rec arrow.RecordBatch, opt SendOption) (int, error) {
			rdr, err := array.NewRecordReader(rec.Schema(), []arrow.RecordBatch{rec})
			if err != nil {
				return 0, err
			}
			defer rdr.Release()
			res, err := w.SendReader(ctx, rdr, opt)
			return res.FailedCount, err
		},
	}
	for name, send := range forms {
		rec := makeBatch(0, 5, 8)
		failed, err := send(rec, WithDescriptor(bad))
		if failed != 5 || !errors.Is(err, ErrConversion) {
			t.Errorf("%s with a descriptor that cannot carry the batch: %d rows failed, err %v; want 5, a conversion error", name, failed, err)
		}
		failed, err = send(rec, WithDescriptor(good))
		if failed != 0 || err != nil {
			t.Errorf("%s with a good descriptor: %d rows failed, err %v", name, failed, err)
		}
		rec.Release()
	}
	if st := w.Stats(); st.Streams != 1 {
		t.Errorf("%d streams, want one: the explicit descriptor's", st.Streams)
	}
}

// application_name is appended to the user agent the server sees; a name
// with other characters is refused naming the setting.
func TestApplicationNameInTheUserAgent(t *testing.T) {
	srv := newServer(t)
	w := newWrapper(t, srv, WithApplicationName("billing-etl/2.1"))
	rec := makeBatch(0, 3, 8)
	defer rec.Release()
	if _, err := w.SendBatch(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	streams := srv.Stats().Streams
	if len(streams) != 1 || !strings.HasPrefix(streams[0].UserAgent, "pyzerobus/"+Version+" billing-etl/2.1") {
		t.Fatalf("the server saw user agents %+v", streams)
	}
	_, err := New(context.Background(), Config{}, append(serverOptions(srv), WithApplicationName("a b"))...)
	if !errors.Is(err, ErrConfiguration) || !strings.Contains(err.Error(), "application_name") {
		t.Fatalf("a name with a space: %v", err)
	}
}

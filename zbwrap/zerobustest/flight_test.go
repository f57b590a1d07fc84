package zerobustest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
)

// flightSchema matches rowColumns, id NOT NULL.
var flightSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

// flightRows is a batch of n rows from first, for flightSchema.
func flightRows(t testing.TB, first, n int) arrow.RecordBatch {
	t.Helper()
	b := array.NewRecordBuilder(memory.DefaultAllocator, flightSchema)
	defer b.Release()
	for i := first; i < first+n; i++ {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("row %d", i))
	}
	rec := b.NewRecordBatch()
	t.Cleanup(rec.Release)
	return rec
}

// collector keeps the FlightData a writer produces.
type collector struct{ out []*flight.FlightData }

func (c *collector) Send(fd *flight.FlightData) error {
	cp := &flight.FlightData{DataHeader: append([]byte(nil), fd.DataHeader...), DataBody: append([]byte(nil), fd.DataBody...)}
	c.out = append(c.out, cp)
	return nil
}

// encodeFlight returns the FlightData of a stream: the schema, then one
// message per batch with app_metadata {"offset_id": N}.
func encodeFlight(t testing.TB, schema *arrow.Schema, opts []ipc.Option, recs ...arrow.RecordBatch) []*flight.FlightData {
	t.Helper()
	var c collector
	w := flight.NewRecordWriter(&c, append([]ipc.Option{ipc.WithSchema(schema)}, opts...)...)
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if len(c.out) < len(recs)+1 {
		t.Fatalf("%d messages for %d batches", len(c.out), len(recs))
	}
	c.out = c.out[:len(recs)+1]
	for i, fd := range c.out[1:] {
		fd.AppMetadata = fmt.Appendf(nil, `{"offset_id": %d}`, i)
	}
	return c.out
}

type flightCall struct {
	t  testing.TB
	st flight.FlightService_DoPutClient
}

// putCall opens a DoPut with metadata md.
func putCall(t testing.TB, s *Server, md metadata.MD) *flightCall {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	st, err := flight.NewFlightServiceClient(dialConn(t, s)).DoPut(metadata.NewOutgoingContext(ctx, md))
	if err != nil {
		t.Fatalf("DoPut: %v", err)
	}
	return &flightCall{t: t, st: st}
}

func (c *flightCall) send(fd *flight.FlightData) {
	c.t.Helper()
	if err := c.st.Send(fd); err != nil && err != io.EOF {
		c.t.Fatalf("Send: %v", err)
	}
}

type ackMeta struct {
	Offset  *int64 `json:"ack_up_to_offset"`
	Records *int64 `json:"ack_up_to_records"`
}

// recv returns the next acknowledgement, or the call's end.
func (c *flightCall) recv() (ackMeta, error) {
	c.t.Helper()
	r, err := c.st.Recv()
	if err != nil {
		return ackMeta{}, err
	}
	var m ackMeta
	if err := json.Unmarshal(r.AppMetadata, &m); err != nil || m.Offset == nil || m.Records == nil {
		c.t.Fatalf("PutResult app_metadata %q: %v", r.AppMetadata, err)
	}
	return m, nil
}

// open sends the schema and checks the ready message.
func (c *flightCall) open(schema *arrow.Schema) {
	c.t.Helper()
	c.send(encodeFlight(c.t, schema, nil)[0])
	r, err := c.st.Recv()
	if err != nil {
		c.t.Fatalf("ready: %v", err)
	}
	if string(r.AppMetadata) != readyMetadata {
		c.t.Fatalf("ready: %q", r.AppMetadata)
	}
}

// waitAck reads acknowledgements until one covers offset.
func (c *flightCall) waitAck(offset int64) ackMeta {
	c.t.Helper()
	for {
		m, err := c.recv()
		if err != nil {
			c.t.Fatalf("waiting for ack %d: %v", offset, err)
		}
		if *m.Offset >= offset {
			return m
		}
	}
}

// end half-closes and returns the call's status.
func (c *flightCall) end() error {
	c.t.Helper()
	_ = c.st.CloseSend()
	for {
		if _, err := c.st.Recv(); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

func flightTableRows(t testing.TB, s *Server, table string) []string {
	t.Helper()
	if err := s.Materialize(); err != nil {
		t.Fatal(err)
	}
	tbl, err := ReadTable(s.DataDir(), table)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	var out []string
	tr := array.NewTableReader(tbl, -1)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			out = append(out, fmt.Sprintf("%v/%v", rec.Column(0).ValueStr(i), rec.Column(1).ValueStr(i)))
		}
	}
	return out
}

func TestFlightDoPut(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []ipc.Option
	}{{"plain", nil}, {"lz4", []ipc.Option{ipc.WithLZ4()}}, {"zstd", []ipc.Option{ipc.WithZstd()}}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, WithTable(testTable, rowColumns()...))
			c := putCall(t, s, authMD(s.Token(testTable), testTable))
			c.open(flightSchema)
			fds := encodeFlight(t, flightSchema, tc.opts, flightRows(t, 0, 3), flightRows(t, 3, 1000), flightRows(t, 1003, 2))
			for _, fd := range fds[1:] {
				c.send(fd)
			}
			m := c.waitAck(2)
			if *m.Offset != 2 || *m.Records != 1005 {
				t.Errorf("ack %d/%d, want 2/1005", *m.Offset, *m.Records)
			}
			st := s.Stats()
			if d := st.Tables[testTable].RecordsDurable; d < 1005 {
				t.Errorf("acknowledged 1005 records with %d durable", d)
			}
			if err := c.end(); err != nil {
				t.Fatalf("end: %v", err)
			}
			got := flightTableRows(t, s, testTable)
			if len(got) != 1005 || got[0] != "0/row 0" || got[1004] != "1004/row 1004" {
				t.Errorf("table: %d rows, %v ... %v", len(got), got[0], got[len(got)-1])
			}
			st = s.Stats()
			if len(st.Streams) != 1 || st.Streams[0].Transport != "arrow" || st.Streams[0].RecordsAcked != 1005 || st.Streams[0].RecordsReceived != 1005 {
				t.Errorf("stream stats: %+v", st.Streams)
			}
			if tt := st.Tables[testTable]; tt.RecordsAcked != 1005 || tt.StreamsOpened != 1 || tt.BytesReceived == 0 {
				t.Errorf("table stats: %+v", tt)
			}
		})
	}
}

func TestFlightAutoCreateAndProtoSameTable(t *testing.T) {
	s := newServer(t)
	c := putCall(t, s, authMD(s.Token(testTable), testTable))
	// id nullable, as in the protobuf stream's descriptor.
	schema := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true}, flightSchema.Field(1)}, nil)
	c.open(schema)
	two := flightRows(t, 0, 2)
	rec := array.NewRecordBatch(schema, two.Columns(), two.NumRows())
	defer rec.Release()
	for _, fd := range encodeFlight(t, schema, nil, rec)[1:] {
		c.send(fd)
	}
	c.waitAck(0)
	if err := c.end(); err != nil {
		t.Fatal(err)
	}
	// The protobuf path writes to the table the Arrow stream created.
	pc := open(t, s, dial(t, s), testTable)
	pc.send(batchReq(0, rows(2, 1)))
	pc.waitAck(0)
	_ = pc.st.CloseSend()
	if _, err := pc.end(); err != nil {
		t.Fatal(err)
	}
	got := flightTableRows(t, s, testTable)
	if len(got) != 3 || got[0] != "0/row 0" || got[1] != "1/row 1" || !strings.HasPrefix(got[2], "2/") {
		t.Errorf("table: %v", got)
	}
}

func TestFlightRefused(t *testing.T) {
	s := newServer(t, WithTable(testTable, Column{Name: "id", Type: "bigint"}, Column{Name: "name", Type: "string", Nullable: true}),
		WithAutoCreate(false))
	tok := s.Token(testTable)
	other := s.Token("main.default.other")
	schemaOnly := func(t testing.TB) []*flight.FlightData { return encodeFlight(t, flightSchema, nil)[:1] }
	for _, tc := range []struct {
		name string
		md   metadata.MD
		msgs func(testing.TB) []*flight.FlightData
		code codes.Code
		want string
	}{
		{"no token", metadata.Pairs(HeaderTableName, testTable), schemaOnly, codes.Unauthenticated, "Bearer"},
		{"bad token", authMD("nope", testTable), schemaOnly, codes.Unauthenticated, ""},
		{"no table header", metadata.Pairs("authorization", "Bearer "+tok), schemaOnly, codes.InvalidArgument, HeaderTableName},
		{"other table", authMD(other, testTable), schemaOnly, codes.PermissionDenied, "main.default.other"},
		{"missing table", authMD(other, "main.default.other"), schemaOnly, codes.NotFound, "does not exist"},
		{"no schema", authMD(tok, testTable), func(testing.TB) []*flight.FlightData { return nil }, codes.InvalidArgument, "ended before the Arrow schema"},
		{"not a schema", authMD(tok, testTable), func(testing.TB) []*flight.FlightData {
			return []*flight.FlightData{{DataHeader: []byte("garbage")}}
		}, codes.InvalidArgument, "must carry the Arrow schema"},
		{"wrong type", authMD(tok, testTable), func(t testing.TB) []*flight.FlightData {
			return encodeFlight(t, arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.BinaryTypes.String}}, nil), nil)[:1]
		}, codes.InvalidArgument, "column id: Arrow type utf8 does not match column type bigint"},
		{"extra column", authMD(tok, testTable), func(t testing.TB) []*flight.FlightData {
			return encodeFlight(t, arrow.NewSchema(append(flightSchema.Fields(), arrow.Field{Name: "extra", Type: arrow.PrimitiveTypes.Int8}), nil), nil)[:1]
		}, codes.InvalidArgument, "column extra: not a column of the table"},
		{"descriptor", authMD(tok, testTable), func(t testing.TB) []*flight.FlightData {
			fd := schemaOnly(t)
			fd[0].FlightDescriptor = &flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{"main", "default", "x"}}
			return fd
		}, codes.InvalidArgument, "FlightDescriptor path main.default.x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := putCall(t, s, tc.md)
			for _, fd := range tc.msgs(t) {
				c.send(fd)
			}
			wantCode(t, c.end(), tc.code, tc.want)
		})
	}
	// A descriptor naming the table and a missing nullable column pass.
	c := putCall(t, s, authMD(tok, testTable))
	fd := encodeFlight(t, arrow.NewSchema(flightSchema.Fields()[:1], nil), nil)[0]
	fd.FlightDescriptor = &flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{"Main", "default", "events"}}
	c.send(fd)
	if _, err := c.st.Recv(); err != nil {
		t.Fatalf("ready: %v", err)
	}
	if err := c.end(); err != nil {
		t.Fatal(err)
	}
}

func TestFlightBadBatches(t *testing.T) {
	s := newServer(t, WithTable(testTable, Column{Name: "id", Type: "bigint"}, Column{Name: "name", Type: "string", Nullable: true}))
	nullID := func(t testing.TB) arrow.RecordBatch {
		rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, flightSchema, strings.NewReader(`[{"id": 1}, {"id": null}]`))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(rec.Release)
		return rec
	}
	for _, tc := range []struct {
		name string
		meta string
		rec  func(testing.TB) arrow.RecordBatch
		want string
	}{
		{"no metadata", "", nil, "no app_metadata"},
		{"not json", "{", nil, "is not {\"offset_id\": N}"},
		{"no offset", `{"x": 1}`, nil, "has no offset_id"},
		{"wrong offset", `{"offset_id": 3}`, nil, "expected 0, got 3"},
		{"null id", `{"offset_id": 0}`, nullID, "offset 0: row 1: column id: null in a NOT NULL column"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := putCall(t, s, authMD(s.Token(testTable), testTable))
			c.open(flightSchema)
			rec := flightRows(t, 0, 2)
			if tc.rec != nil {
				rec = tc.rec(t)
			}
			fd := encodeFlight(t, flightSchema, nil, rec)[1]
			fd.AppMetadata = []byte(tc.meta)
			c.send(fd)
			wantCode(t, c.end(), codes.InvalidArgument, tc.want)
		})
	}
	t.Run("torn body", func(t *testing.T) {
		c := putCall(t, s, authMD(s.Token(testTable), testTable))
		c.open(flightSchema)
		fd := encodeFlight(t, flightSchema, nil, flightRows(t, 0, 2))[1]
		fd.DataBody = fd.DataBody[:3]
		c.send(fd)
		wantCode(t, c.end(), codes.InvalidArgument, "FlightData at offset 0")
	})
}

func TestFlightFaults(t *testing.T) {
	s := newServer(t, WithTable(testTable, rowColumns()...))
	fds := encodeFlight(t, flightSchema, nil, flightRows(t, 0, 5), flightRows(t, 5, 5), flightRows(t, 10, 5))

	// fail_create_stream refuses the stream after its schema.
	if err := s.InjectFault(Fault{Kind: FaultFailCreate, Code: codes.Unavailable, Message: "try later"}); err != nil {
		t.Fatal(err)
	}
	c := putCall(t, s, authMD(s.Token(testTable), testTable))
	c.send(fds[0])
	wantCode(t, c.end(), codes.Unavailable, "try later")

	// fail_call after 5 records: the first batch is acknowledged, the call
	// fails.
	if err := s.InjectFault(Fault{Kind: FaultFailCall, AfterRecords: 5, Code: codes.Aborted}); err != nil {
		t.Fatal(err)
	}
	c = putCall(t, s, authMD(s.Token(testTable), testTable))
	c.open(flightSchema)
	for _, fd := range fds[1:] {
		c.send(fd)
	}
	var last ackMeta
	var err error
	for {
		var m ackMeta
		if m, err = c.recv(); err != nil {
			break
		}
		last = m
	}
	wantCode(t, err, codes.Aborted)
	if last.Records == nil || *last.Records != 5 {
		t.Errorf("last ack before the fault: %+v", last)
	}

	// end_call with a signal: Flight has none; the call ends with OK after
	// the duration.
	if err := s.InjectFault(Fault{Kind: FaultEndCall, Signal: true, SignalDuration: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	c = putCall(t, s, authMD(s.Token(testTable), testTable))
	c.open(flightSchema)
	c.send(fds[1])
	c.waitAck(0)
	for err == nil || err != io.EOF {
		if _, err = c.recv(); err != nil && err != io.EOF {
			t.Fatalf("end_call: %v", err)
		}
	}

	// stop_acks: the batch is durable but never acknowledged.
	if err := s.InjectFault(Fault{Kind: FaultStopAcks}); err != nil {
		t.Fatal(err)
	}
	c = putCall(t, s, authMD(s.Token(testTable), testTable))
	c.open(flightSchema)
	c.send(fds[1])
	got := make(chan error, 1)
	go func() { _, err := c.st.Recv(); got <- err }()
	select {
	case err := <-got:
		t.Fatalf("an acknowledgement after stop_acks: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	if st := s.Stats(); st.FaultsFired != 4 {
		t.Errorf("faults fired: %d", st.FaultsFired)
	}
}

func TestFlightDropConnection(t *testing.T) {
	s := newServer(t, WithTable(testTable, rowColumns()...),
		WithFault(Fault{Kind: FaultDropConnection, AfterRecords: 1}))
	c := putCall(t, s, authMD(s.Token(testTable), testTable))
	c.open(flightSchema)
	for _, fd := range encodeFlight(t, flightSchema, nil, flightRows(t, 0, 2))[1:] {
		c.send(fd)
	}
	wantCode(t, c.end(), codes.Unavailable)
}

func TestFlightDiscard(t *testing.T) {
	s := newServer(t, WithDiscard())
	c := putCall(t, s, authMD(s.Token(testTable), testTable))
	// Discard mode parses the schema but checks it against no table.
	c.open(arrow.NewSchema([]arrow.Field{{Name: "anything", Type: arrow.PrimitiveTypes.Uint8}}, nil))
	schema := arrow.NewSchema([]arrow.Field{{Name: "anything", Type: arrow.PrimitiveTypes.Uint8}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	b.Field(0).(*array.Uint8Builder).AppendValues([]uint8{1, 2, 3}, nil)
	rec := b.NewRecordBatch()
	b.Release()
	defer rec.Release()
	for _, fd := range encodeFlight(t, schema, []ipc.Option{ipc.WithZstd()}, rec, rec)[1:] {
		c.send(fd)
	}
	if m := c.waitAck(1); *m.Records != 6 {
		t.Errorf("acked records %d", *m.Records)
	}
	if err := c.end(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.RecordsAcked != 6 || st.RecordsDurable != 0 {
		t.Errorf("stats: %+v", st)
	}
	// Without auto-create, a table must be declared.
	s2 := newServer(t, WithDiscard(), WithAutoCreate(false))
	c = putCall(t, s2, authMD(s2.Token(testTable), testTable))
	c.send(encodeFlight(t, flightSchema, nil)[0])
	wantCode(t, c.end(), codes.NotFound)
}

func TestFlightProfile(t *testing.T) {
	s := newServer(t, WithTable(testTable, rowColumns()...), WithAckLatency(AckLatency{Median: 150 * time.Millisecond}))
	c := putCall(t, s, authMD(s.Token(testTable), testTable))
	c.open(flightSchema)
	start := time.Now()
	c.send(encodeFlight(t, flightSchema, nil, flightRows(t, 0, 3))[1])
	c.waitAck(0)
	if d := time.Since(start); d < 140*time.Millisecond {
		t.Errorf("acknowledged after %v, want the 150ms ack latency", d)
	}
	if err := c.end(); err != nil {
		t.Fatal(err)
	}

	q := newServer(t, WithDiscard(), WithStreamQuota(Quota{RecordsPerSec: 10}), WithQuotaMode(QuotaReject))
	c = putCall(t, q, authMD(q.Token(testTable), testTable))
	c.open(flightSchema)
	fds := encodeFlight(t, flightSchema, nil, flightRows(t, 0, 100), flightRows(t, 100, 100), flightRows(t, 200, 100))
	for _, fd := range fds[1:] {
		c.send(fd)
	}
	wantCode(t, c.end(), codes.ResourceExhausted, "stream quota exceeded")
	if st := q.Stats(); st.Streams[0].QuotaRejections != 1 {
		t.Errorf("stream stats: %+v", st.Streams[0])
	}

	p := newServer(t, WithDiscard(), WithStreamQuota(Quota{RecordsPerSec: 1000}))
	c = putCall(t, p, authMD(p.Token(testTable), testTable))
	c.open(flightSchema)
	for _, fd := range fds[1:] {
		c.send(fd)
	}
	c.waitAck(2)
	if err := c.end(); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Streams[0].ThrottledSeconds == 0 {
		t.Errorf("not throttled: %+v", st.Streams[0])
	}
}

func TestFlightHandshakeEdges(t *testing.T) {
	s := newServer(t, withCreateTimeout(100*time.Millisecond))
	tok := s.Token(testTable)

	// No schema in time.
	c := putCall(t, s, authMD(tok, testTable))
	_, err := c.st.Recv()
	wantCode(t, err, codes.DeadlineExceeded, "no Arrow schema")

	// Too many columns.
	fields := make([]arrow.Field, MaxColumns+1)
	for i := range fields {
		fields[i] = arrow.Field{Name: fmt.Sprintf("c%d", i), Type: arrow.PrimitiveTypes.Int8, Nullable: true}
	}
	c = putCall(t, s, authMD(tok, testTable))
	c.send(encodeFlight(t, arrow.NewSchema(fields, nil), nil)[0])
	wantCode(t, c.end(), codes.InvalidArgument, "more than the limit of 2000 columns")

	// A panic while reading is Internal, before and after the handshake.
	for _, where := range []string{"flight recv", "request"} {
		hook := func(w string) {
			if w == where {
				panic("boom")
			}
		}
		s.hook.Store(&hook)
		c = putCall(t, s, authMD(tok, testTable))
		fds := encodeFlight(t, flightSchema, nil, flightRows(t, 0, 1))
		c.send(fds[0])
		if where == "request" {
			if _, err := c.st.Recv(); err != nil {
				t.Fatalf("ready: %v", err)
			}
			c.send(fds[1])
		}
		wantCode(t, c.end(), codes.Internal, "boom")
		s.hook.Store(nil)
	}
}

func TestFlightTooLarge(t *testing.T) {
	s := newServer(t, WithDiscard())
	c := putCall(t, s, authMD(s.Token(testTable), testTable))
	c.open(flightSchema)
	b := array.NewRecordBuilder(memory.DefaultAllocator, flightSchema)
	b.Field(0).(*array.Int64Builder).Append(1)
	b.Field(1).(*array.StringBuilder).Append(strings.Repeat("x", MaxRequestBytes))
	rec := b.NewRecordBatch()
	b.Release()
	defer rec.Release()
	c.send(encodeFlight(t, flightSchema, nil, rec)[1])
	wantCode(t, c.end(), codes.InvalidArgument, "over the limit")
}

func TestFlightShutdown(t *testing.T) {
	s, err := NewServer(WithTable(testTable, rowColumns()...))
	if err != nil {
		t.Fatal(err)
	}
	waiting := putCall(t, s, authMD(s.Token(testTable), testTable)) // no schema yet
	c := putCall(t, s, authMD(s.Token(testTable), testTable))
	c.open(flightSchema)
	c.send(encodeFlight(t, flightSchema, nil, flightRows(t, 0, 4))[1])
	c.waitAck(0)
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.end(), codes.Unavailable, "shutting down")
	wantCode(t, waiting.end(), codes.Unavailable, "shutting down")
}

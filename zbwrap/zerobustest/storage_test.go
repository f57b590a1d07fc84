package zerobustest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/pyzerobus/pyzerobus/internal/testutil"
	"github.com/pyzerobus/pyzerobus/zbwrap/internal/wire"
)

type landed struct {
	id   int64
	name string
}

// readRows reads (id, name) rows of a Row table, sorted by id.
func readRows(t *testing.T, dir, table string) []landed {
	t.Helper()
	tbl, err := ReadTable(dir, table)
	if err != nil {
		t.Fatalf("ReadTable: %v", err)
	}
	defer tbl.Release()
	var out []landed
	tr := array.NewTableReader(tbl, 1024)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		ids := rec.Column(0).(*array.Int64)
		names := rec.Column(1).(*array.String)
		for i := 0; i < int(rec.NumRows()); i++ {
			out = append(out, landed{ids.Value(i), names.Value(i)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func TestRecordsLandInTable(t *testing.T) {
	s := newServer(t)
	c := dial(t, s)
	var want []landed
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			cc := open(t, s, c, testTable)
			off := int64(0)
			for i := range 20 {
				var recs [][]byte
				for j := range 50 {
					id := int64(w*100000 + i*100 + j)
					name := fmt.Sprintf("w%d-%d-%d é", w, i, j)
					recs = append(recs, row(id, name))
					mu.Lock()
					want = append(want, landed{id, name})
					mu.Unlock()
				}
				cc.send(batchReq(off, recs))
				off++
			}
			id := int64(w*100000 + 99999)
			cc.send(recordReq(off, row(id, "single")))
			mu.Lock()
			want = append(want, landed{id, "single"})
			mu.Unlock()
			cc.waitAck(off)
			_ = cc.st.CloseSend()
			if _, err := cc.end(); err != nil {
				t.Errorf("stream %d: %v", w, err)
			}
		})
	}
	wg.Wait()
	if err := s.Materialize(); err != nil {
		t.Fatal(err)
	}
	got := readRows(t, s.DataDir(), testTable)
	sort.Slice(want, func(i, j int) bool { return want[i].id < want[j].id })
	if len(got) != len(want) {
		t.Fatalf("%d rows landed, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("row %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	ts := s.Stats().Tables[testTable]
	if n := int64(len(want)); ts.RecordsAcked != n || ts.RecordsDurable != n || ts.RecordsMaterialized != n {
		t.Errorf("stats %+v, want %d acked, durable and materialized", ts, n)
	}
}

func TestDurableRules(t *testing.T) {
	badRecord := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte("x")) // id as bytes
	otherDesc := rowDescriptor()
	otherDesc.Field[1].Name = proto.String("title")
	otherBytes, _ := proto.Marshal(otherDesc)
	tests := []struct {
		name string
		opts []Option
		req  *wire.EphemeralStreamRequest // after the handshake, or the create itself
		code codes.Code
		want []string
	}{
		{"undecodable record", nil, batchReq(0, [][]byte{row(1, "a"), row(2, "b"), badRecord}), codes.InvalidArgument, []string{"offset 0: record 2", "column id"}},
		{"descriptor mismatch", []Option{WithTable(testTable, rowColumns()...)},
			&wire.EphemeralStreamRequest{Payload: &wire.EphemeralStreamRequest_CreateStream{CreateStream: &wire.CreateIngestStreamRequest{
				TableName: proto.String(testTable), DescriptorProto: otherBytes, RecordType: wire.RecordType_PROTO.Enum()}}},
			codes.InvalidArgument, []string{"descriptor does not match table " + testTable, "title"}},
		{"unknown table", []Option{WithAutoCreate(false)}, createReq(testTable), codes.NotFound, []string{testTable}},
		{"json stream", nil, &wire.EphemeralStreamRequest{Payload: &wire.EphemeralStreamRequest_CreateStream{CreateStream: &wire.CreateIngestStreamRequest{
			TableName: proto.String(testTable), RecordType: wire.RecordType_JSON.Enum()}}}, codes.Unimplemented, []string{"JSON"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.opts...)
			c := dial(t, s)
			var cc *clientCall
			if tc.req.GetCreateStream() != nil {
				cc = rawCall(t, c, authMD(s.Token(testTable), testTable))
			} else {
				cc = open(t, s, c, testTable)
			}
			cc.send(tc.req)
			_, err := cc.end()
			wantCode(t, err, tc.code, tc.want...)
		})
	}
}

func TestBatchAllOrNothing(t *testing.T) {
	s := newServer(t)
	cc := open(t, s, dial(t, s), testTable)
	cc.send(batchReq(0, rows(0, 5)))
	cc.waitAck(0)
	bad := append(rows(100, 3), []byte{0x08}) // truncated varint
	cc.send(batchReq(1, bad))
	_, err := cc.end()
	wantCode(t, err, codes.InvalidArgument, "offset 1: record 3")
	if err := s.Materialize(); err != nil {
		t.Fatal(err)
	}
	if got := readRows(t, s.DataDir(), testTable); len(got) != 5 {
		t.Fatalf("%d rows landed, want the 5 of the good batch only", len(got))
	}
}

func TestDeclaredTablesAndDataDir(t *testing.T) {
	dir := t.TempDir()
	s := newServer(t, WithDataDir(dir), WithTable("Main.Default.Events", rowColumns()...), WithAutoCreate(false))
	cc := open(t, s, dial(t, s), "main.default.EVENTS")
	cc.send(batchReq(0, rows(0, 4)))
	cc.waitAck(0)
	_ = cc.st.CloseSend()
	if _, err := cc.end(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Close materialized everything; the data directory stays.
	if got := readRows(t, dir, testTable); len(got) != 4 {
		t.Fatalf("%d rows after Close, want 4", len(got))
	}
	if _, err := os.Stat(filepath.Join(dir, "main", "default", "events", "_delta_log")); err != nil {
		t.Fatal(err)
	}
	// Reopening sees the table.
	s2 := newServer(t, WithDataDir(dir), WithAutoCreate(false))
	if !s2.tableExists(testTable) {
		t.Fatal("table lost after restart")
	}
}

func TestDeclareConflictingTable(t *testing.T) {
	for _, discard := range []bool{false, true} {
		t.Run(fmt.Sprint("discard=", discard), func(t *testing.T) {
			opts := []Option{WithTable(testTable, rowColumns()...)}
			if discard {
				opts = append(opts, WithDiscard())
			}
			s := newServer(t, opts...)
			if err := s.CreateTable(testTable, rowColumns()...); err != nil {
				t.Fatalf("same columns again: %v", err)
			}
			err := s.CreateTable(testTable, Column{Name: "id", Type: "string"})
			if !errors.Is(err, errTableExists) {
				t.Fatalf("other columns: %v, want errTableExists", err)
			}
			if err := s.CreateTable(testTable, Column{Name: "id", Type: "nonsense"}); err == nil {
				t.Fatal("bad type accepted")
			}
			if err := s.CreateTable("bad", rowColumns()...); err == nil {
				t.Fatal("bad table name accepted")
			}
		})
	}
}

func TestShutdownDrainsQueuedRequests(t *testing.T) {
	dir := t.TempDir()
	s, err := NewServer(WithDataDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	hook := func(where string) {
		if where == "run" {
			<-s.closing // the acknowledger starts only once the shutdown began
		}
	}
	s.hook.Store(&hook)
	cc := open(t, s, dial(t, s), testTable)
	for i := range 5 {
		cc.send(batchReq(int64(i), rows(i*10, 10)))
	}
	testutil.Eventually(t, "requests queued", func() bool { return s.Stats().RecordsReceived == 50 })
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	last, err := cc.end()
	wantCode(t, err, codes.Unavailable, "shutting down")
	if last != 4 {
		t.Fatalf("last ack %d, want 4: queued durable requests must be acknowledged", last)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := readRows(t, dir, testTable); len(got) != 50 {
		t.Fatalf("%d rows, want 50", len(got))
	}
}

func TestStorageFailureEndsCall(t *testing.T) {
	s := newServer(t)
	cc := open(t, s, dial(t, s), testTable)
	cc.send(batchReq(0, rows(0, 2)))
	cc.waitAck(0)
	if err := s.lake.Close(); err != nil { // the storage goes away under the call
		t.Fatal(err)
	}
	cc.send(batchReq(1, rows(2, 2)))
	_, err := cc.end()
	wantCode(t, err, codes.Unavailable, "could not be made durable")
}

func TestTableNames(t *testing.T) {
	for _, name := range []string{"a.b", "a.b.c.d", "a..c", "a.b$.c", "a.b-c.d", "a.b." + strings.Repeat("x", 256)} {
		if err := validTableName(name); err == nil {
			t.Errorf("%q accepted", name)
		}
		if _, err := ReadTable(t.TempDir(), name); err == nil {
			t.Errorf("ReadTable(%q) succeeded", name)
		}
	}
	for _, name := range []string{"a.b.c", "Main.Default.Events_2", "_x.y_.z9", "2024.raw.1st_events"} {
		if err := validTableName(name); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
}

package zerobustest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/pyzerobus/pyzerobus/internal/testutil"
	"github.com/pyzerobus/pyzerobus/zbwrap/internal/wire"
)

// rawCodec lets a test client send arbitrary bytes as a request.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }
func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if b, ok := v.([]byte); ok {
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	b, err := proto.Marshal(v.(proto.Message))
	return mem.BufferSlice{mem.SliceBuffer(b)}, err
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return proto.Unmarshal(data.Materialize(), v.(proto.Message))
}

// rawStream opens a call whose messages are raw bytes.
func rawStream(t *testing.T, s *Server, table string) grpc.ClientStream {
	t.Helper()
	cc := dialConn(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	ctx = metadata.NewOutgoingContext(ctx, authMD(s.Token(table), table))
	st, err := cc.NewStream(ctx, &wire.Zerobus_ServiceDesc.Streams[0], "/databricks.zerobus.Zerobus/EphemeralStream",
		grpc.ForceCodecV2(rawCodec{}), grpc.MaxCallSendMsgSize(64<<20))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func recvEnd(st grpc.ClientStream) error {
	for {
		var resp wire.EphemeralStreamResponse
		if err := st.RecvMsg(&resp); err != nil {
			return err
		}
	}
}

func TestHandshakeRules(t *testing.T) {
	s := newServer(t, WithDiscard(), WithAutoCreate(false), WithTable(testTable, rowColumns()...))
	c := dial(t, s)
	other := "main.default.other"
	expired := s.Token(testTable)
	revoked := s.Token(testTable)

	withType := func(rt *wire.RecordType, desc []byte) *wire.EphemeralStreamRequest {
		return &wire.EphemeralStreamRequest{Payload: &wire.EphemeralStreamRequest_CreateStream{CreateStream: &wire.CreateIngestStreamRequest{
			TableName: proto.String(testTable), DescriptorProto: desc, RecordType: rt,
		}}}
	}
	wide := rowDescriptor()
	for i := 3; i <= MaxColumns+1; i++ {
		wide.Field = append(wide.Field, &descriptorpb.FieldDescriptorProto{Name: proto.String(fmt.Sprintf("c%d", i)), Number: proto.Int32(int32(i)),
			Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Type: descriptorpb.FieldDescriptorProto_TYPE_INT32.Enum()})
	}
	wideBytes, _ := proto.Marshal(wide)
	unknownType := &wire.CreateIngestStreamRequest{TableName: proto.String(testTable), DescriptorProto: rowDescBytes()}
	unknownType.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 4, protowire.VarintType), 4))

	tests := []struct {
		name  string
		md    metadata.MD
		first *wire.EphemeralStreamRequest // nil: half-close at once
		code  codes.Code
		want  []string
	}{
		{"no authorization", metadata.Pairs(HeaderTableName, testTable), createReq(testTable), codes.Unauthenticated, []string{"Bearer"}},
		{"not bearer", metadata.Pairs("authorization", "Basic abc", HeaderTableName, testTable), createReq(testTable), codes.Unauthenticated, nil},
		{"unknown token", authMD("zbt_nope", testTable), createReq(testTable), codes.Unauthenticated, []string{"unknown token"}},
		{"missing table header", metadata.Pairs("authorization", "Bearer "+s.Token(testTable)), createReq(testTable), codes.InvalidArgument, []string{HeaderTableName}},
		{"token for another table", authMD(s.Token(other), testTable), createReq(testTable), codes.PermissionDenied, []string{other}},
		{"workspace token", authMD(s.Token(""), testTable), createReq(testTable), codes.PermissionDenied, []string{"authorization_details"}},
		{"batch first", authMD(s.Token(testTable), testTable), batchReq(0, rows(0, 1)), codes.InvalidArgument, []string{"must be create_stream", "ingest_record_batch"}},
		{"record first", authMD(s.Token(testTable), testTable), recordReq(0, row(1, "a")), codes.InvalidArgument, []string{"ingest_record"}},
		{"empty first", authMD(s.Token(testTable), testTable), &wire.EphemeralStreamRequest{}, codes.InvalidArgument, []string{"empty request"}},
		{"half-close first", authMD(s.Token(testTable), testTable), nil, codes.InvalidArgument, []string{"before create_stream"}},
		{"bad table name", authMD(s.Token("a.b"), "a.b"), createReq("a.b"), codes.InvalidArgument, []string{"catalog.schema.table"}},
		{"table differs from header", authMD(s.Token(testTable), testTable), createReq(other), codes.InvalidArgument, []string{"does not match"}},
		{"no record type", authMD(s.Token(testTable), testTable), withType(nil, rowDescBytes()), codes.InvalidArgument, []string{"record_type is required"}},
		{"unspecified record type", authMD(s.Token(testTable), testTable), withType(wire.RecordType_RECORD_TYPE_UNSPECIFIED.Enum(), rowDescBytes()), codes.InvalidArgument, []string{"want PROTO"}},
		{"unknown record type", authMD(s.Token(testTable), testTable), &wire.EphemeralStreamRequest{Payload: &wire.EphemeralStreamRequest_CreateStream{CreateStream: unknownType}}, codes.Unimplemented, []string{"record_type 4"}},
		{"no descriptor", authMD(s.Token(testTable), testTable), withType(wire.RecordType_PROTO.Enum(), nil), codes.InvalidArgument, []string{"descriptor_proto is required"}},
		{"garbage descriptor", authMD(s.Token(testTable), testTable), withType(wire.RecordType_PROTO.Enum(), []byte{0xff, 0xff, 0xff}), codes.InvalidArgument, []string{"not a serialized DescriptorProto"}},
		{"2001 columns", authMD(s.Token(testTable), testTable), withType(wire.RecordType_PROTO.Enum(), wideBytes), codes.InvalidArgument, []string{"2001 fields"}},
		{"unknown table", authMD(s.Token(other), other), createReq(other), codes.NotFound, []string{other}},
		{"expired token", authMD(expired, testTable), createReq(testTable), codes.Unauthenticated, []string{"token expired"}},
		{"revoked token", authMD(revoked, testTable), createReq(testTable), codes.Unauthenticated, []string{"token revoked"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			switch tc.name {
			case "expired token":
				s.tokens.mu.Lock()
				s.tokens.m[expired].expires = time.Now().Add(-time.Second)
				s.tokens.mu.Unlock()
			case "revoked token":
				s.tokens.mu.Lock()
				s.tokens.m[revoked].revoked = true
				s.tokens.mu.Unlock()
			}
			cc := rawCall(t, c, tc.md)
			// Headers come first, before any message, whatever happens next.
			if _, err := cc.st.Header(); err != nil {
				t.Fatalf("Header: %v", err)
			}
			if tc.first != nil {
				cc.send(tc.first)
			} else if err := cc.st.CloseSend(); err != nil {
				t.Fatal(err)
			}
			_, err := cc.end()
			wantCode(t, err, tc.code, tc.want...)
		})
	}
	if got := s.Stats().StreamsOpened; got != 0 {
		t.Errorf("StreamsOpened = %d after refused calls, want 0", got)
	}
}

func TestHeadersBeforeFirstMessage(t *testing.T) {
	s := newServer(t, WithDiscard())
	c := dial(t, s)
	cc := rawCall(t, c, authMD(s.Token(testTable), testTable))
	// Nothing sent yet: the server must still send its headers.
	done := make(chan error, 1)
	go func() { _, err := cc.st.Header(); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no response headers before the first message")
	}
}

func TestStreamAcksInOrder(t *testing.T) {
	for _, mode := range []string{"discard"} {
		t.Run(mode, func(t *testing.T) {
			s := newServer(t, WithDiscard())
			c := dial(t, s)
			cc := open(t, s, c, testTable)
			cc.send(recordReq(0, row(1, "a")))
			cc.waitAck(0)
			cc.send(batchReq(1, rows(2, 10)))
			cc.send(batchReq(2, nil)) // an empty batch is fine
			cc.send(recordReq(3, row(12, "b")))
			cc.waitAck(3)
			if err := cc.st.CloseSend(); err != nil {
				t.Fatal(err)
			}
			if _, err := cc.end(); err != nil {
				t.Fatalf("end: %v", err)
			}
			st := s.Stats()
			ts := st.Tables[testTable]
			if ts.StreamsOpened != 1 || ts.RecordsReceived != 12 || ts.RecordsAcked != 12 {
				t.Errorf("stats %+v, want 1 stream, 12 records received and acked", ts)
			}
			if st.StreamsActive != 0 {
				t.Errorf("StreamsActive = %d after the call ended", st.StreamsActive)
			}
		})
	}
}

func TestStreamRequestRules(t *testing.T) {
	big := make([]byte, MaxRecordBytes+1)
	tests := []struct {
		name string
		reqs []*wire.EphemeralStreamRequest // sent after the handshake
		code codes.Code
		want []string
	}{
		{"gap", []*wire.EphemeralStreamRequest{recordReq(0, row(1, "a")), recordReq(2, row(2, "b"))}, codes.InvalidArgument, []string{"expected 1, got 2"}},
		{"repeat", []*wire.EphemeralStreamRequest{batchReq(0, rows(0, 2)), batchReq(0, rows(0, 2))}, codes.InvalidArgument, []string{"expected 1, got 0"}},
		{"not from zero", []*wire.EphemeralStreamRequest{recordReq(5, row(1, "a"))}, codes.InvalidArgument, []string{"expected 0, got 5"}},
		{"create twice", []*wire.EphemeralStreamRequest{createReq(testTable)}, codes.InvalidArgument, []string{"create_stream sent twice"}},
		{"empty request", []*wire.EphemeralStreamRequest{{}}, codes.InvalidArgument, []string{"no payload"}},
		{"no offset", []*wire.EphemeralStreamRequest{{Payload: &wire.EphemeralStreamRequest_IngestRecord{IngestRecord: &wire.IngestRecordRequest{
			Record: &wire.IngestRecordRequest_ProtoEncodedRecord{ProtoEncodedRecord: row(1, "a")}}}}}, codes.InvalidArgument, []string{"without offset_id"}},
		{"no record", []*wire.EphemeralStreamRequest{{Payload: &wire.EphemeralStreamRequest_IngestRecord{IngestRecord: &wire.IngestRecordRequest{
			OffsetId: proto.Int64(0)}}}}, codes.InvalidArgument, []string{"carries no record"}},
		{"no batch", []*wire.EphemeralStreamRequest{{Payload: &wire.EphemeralStreamRequest_IngestRecordBatch{IngestRecordBatch: &wire.IngestRecordBatchRequest{
			OffsetId: proto.Int64(0)}}}}, codes.InvalidArgument, []string{"carries no batch"}},
		{"json on proto stream", []*wire.EphemeralStreamRequest{{Payload: &wire.EphemeralStreamRequest_IngestRecord{IngestRecord: &wire.IngestRecordRequest{
			OffsetId: proto.Int64(0), Record: &wire.IngestRecordRequest_JsonRecord{JsonRecord: `{"id":1}`}}}}}, codes.InvalidArgument, []string{"JSON records on a PROTO stream"}},
		{"record too large", []*wire.EphemeralStreamRequest{batchReq(0, [][]byte{row(1, "a"), big})}, codes.InvalidArgument, []string{"offset 0: record 1 is 4194286 bytes"}},
		{"request too large", []*wire.EphemeralStreamRequest{batchReq(0, [][]byte{big[:4_000_000], big[:4_000_000], big[:2_600_000]})}, codes.InvalidArgument, []string{"over the limit of 10485760 bytes"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, WithDiscard())
			cc := open(t, s, dial(t, s), testTable)
			for _, r := range tc.reqs {
				cc.send(r)
			}
			_, err := cc.end()
			wantCode(t, err, tc.code, tc.want...)
		})
	}
}

func TestRequestFarTooLarge(t *testing.T) {
	s := newServer(t, WithDiscard())
	cc := open(t, s, dial(t, s), testTable)
	huge := make([]byte, 4<<20)
	cc.send(batchReq(0, [][]byte{huge, huge, huge, huge})) // 16 MiB: over what gRPC accepts
	_, err := cc.end()
	wantCode(t, err, codes.ResourceExhausted)
}

func TestGarbageFrames(t *testing.T) {
	create, _ := proto.Marshal(createReq(testTable))
	tests := []struct {
		name   string
		frames [][]byte
		want   []string
	}{
		{"garbage first", [][]byte{{0xff, 0xff, 0xff, 0xff}}, []string{"first request", "malformed request"}},
		{"wrong wire type for payload", [][]byte{protowire.AppendVarint(protowire.AppendTag(nil, 3, protowire.VarintType), 1)}, []string{"field 3 has wire type 0"}},
		{"truncated create", [][]byte{create[:len(create)-3]}, []string{"malformed"}},
		{"garbage after create", [][]byte{create, {0x1a, 0x05, 0x08}}, []string{"offset 0", "malformed"}},
		{"offset as bytes", [][]byte{create, protowire.AppendBytes(protowire.AppendTag(nil, 3, protowire.BytesType),
			protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte("x")))}, []string{"ingest_record_batch: field 1 has wire type 2"}},
		{"record as varint", [][]byte{create, protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType),
			protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.VarintType), 7))}, []string{"ingest_record: field 2 has wire type 0"}},
		{"batch record as varint", [][]byte{create, protowire.AppendBytes(protowire.AppendTag(nil, 3, protowire.BytesType),
			protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 7)))},
			[]string{"proto_encoded_batch: field 1 has wire type 0"}},
		{"fixed32 payload", [][]byte{create, protowire.AppendFixed32(protowire.AppendTag(nil, 2, protowire.Fixed32Type), 1)}, []string{"field 2 has wire type 5"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, WithDiscard())
			st := rawStream(t, s, testTable)
			for _, f := range tc.frames {
				if err := st.SendMsg(f); err != nil {
					break
				}
			}
			err := recvEnd(st)
			wantCode(t, err, codes.InvalidArgument, tc.want...)
		})
	}
}

func TestJSONStreamInDiscardMode(t *testing.T) {
	s := newServer(t, WithDiscard())
	cc := rawCall(t, dial(t, s), authMD(s.Token(testTable), testTable))
	cc.send(&wire.EphemeralStreamRequest{Payload: &wire.EphemeralStreamRequest_CreateStream{CreateStream: &wire.CreateIngestStreamRequest{
		TableName: proto.String(testTable), RecordType: wire.RecordType_JSON.Enum(),
	}}})
	cc.recv()
	cc.send(&wire.EphemeralStreamRequest{Payload: &wire.EphemeralStreamRequest_IngestRecord{IngestRecord: &wire.IngestRecordRequest{
		OffsetId: proto.Int64(0), Record: &wire.IngestRecordRequest_JsonRecord{JsonRecord: `{"id":1}`}}}})
	cc.send(&wire.EphemeralStreamRequest{Payload: &wire.EphemeralStreamRequest_IngestRecordBatch{IngestRecordBatch: &wire.IngestRecordBatchRequest{
		OffsetId: proto.Int64(1), Batch: &wire.IngestRecordBatchRequest_JsonBatch{JsonBatch: &wire.JsonRecordBatch{Records: []string{`{"id":2}`, `{"id":3}`}}}}}})
	cc.waitAck(1)
	cc.send(batchReq(2, rows(0, 1)))
	_, err := cc.end()
	wantCode(t, err, codes.InvalidArgument, "PROTO records on a JSON stream")
	if got := s.Stats().Tables[testTable].RecordsAcked; got != 3 {
		t.Errorf("RecordsAcked = %d, want 3", got)
	}
}

func TestPipelinedBatchesCoalesceAcks(t *testing.T) {
	s := newServer(t, WithDiscard())
	cc := open(t, s, dial(t, s), testTable)
	const n = 200
	batch := rows(0, 100)
	go func() {
		for i := range n {
			if cc.st.Send(batchReq(int64(i), batch)) != nil {
				return
			}
		}
		_ = cc.st.CloseSend()
	}()
	prev, acks := int64(-1), 0
	for {
		resp, err := cc.st.Recv()
		if err != nil {
			break
		}
		a := resp.GetIngestRecordResponse()
		if a == nil {
			t.Fatalf("unexpected response %v", resp)
		}
		if a.GetDurabilityAckUpToOffset() <= prev {
			t.Fatalf("ack %d after %d: acks must grow", a.GetDurabilityAckUpToOffset(), prev)
		}
		prev = a.GetDurabilityAckUpToOffset()
		acks++
	}
	if prev != n-1 {
		t.Fatalf("last ack %d, want %d", prev, n-1)
	}
	t.Logf("%d requests, %d acks", n, acks)
	if got := s.Stats().RecordsAcked; got != n*100 {
		t.Errorf("RecordsAcked = %d, want %d", got, n*100)
	}
}

func TestConcurrentStreamsOneTable(t *testing.T) {
	s := newServer(t, WithDiscard())
	c := dial(t, s)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			cc := open(t, s, c, testTable)
			for i := range 50 {
				cc.send(batchReq(int64(i), rows(w*1000+i*10, 10)))
			}
			cc.waitAck(49)
			_ = cc.st.CloseSend()
			if _, err := cc.end(); err != nil {
				t.Errorf("stream %d: %v", w, err)
			}
		})
	}
	wg.Wait()
	ts := s.Stats().Tables[testTable]
	if ts.StreamsOpened != 8 || ts.RecordsAcked != 8*50*10 {
		t.Errorf("stats %+v, want 8 streams and 4000 acked records", ts)
	}
}

func TestClientCancelEndsCall(t *testing.T) {
	s := newServer(t, WithDiscard())
	cc := open(t, s, dial(t, s), testTable)
	cc.send(batchReq(0, rows(0, 3)))
	cc.waitAck(0)
	testutil.Eventually(t, "one active stream", func() bool { return s.Stats().StreamsActive == 1 })
	cc.cancel()
	testutil.Eventually(t, "no active stream", func() bool { return s.Stats().StreamsActive == 0 })
}

func TestTableHeaderWhitespace(t *testing.T) {
	s := newServer(t, WithDiscard())
	cc := rawCall(t, dial(t, s), metadata.Pairs("authorization", "bearer  "+s.Token(testTable), HeaderTableName, " "+testTable+" "))
	cc.send(createReq(testTable))
	if cc.recv().GetCreateStreamResponse() == nil {
		t.Fatal("no create_stream_response")
	}
}

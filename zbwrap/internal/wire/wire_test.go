package wire

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestMethodPathIsTheService(t *testing.T) {
	if got, want := Zerobus_EphemeralStream_FullMethodName, "/databricks.zerobus.Zerobus/EphemeralStream"; got != want {
		t.Fatalf("method path %q, want %q", got, want)
	}
	if got := Zerobus_ServiceDesc.ServiceName; got != "databricks.zerobus.Zerobus" {
		t.Fatalf("service name %q", got)
	}
	s := Zerobus_ServiceDesc.Streams
	if len(s) != 1 || s[0].StreamName != "EphemeralStream" || !s[0].ClientStreams || !s[0].ServerStreams {
		t.Fatalf("streams %+v, want one bidirectional EphemeralStream", s)
	}
}

// TestFieldNumbers pins every field number and kind of the wire contract.
func TestFieldNumbers(t *testing.T) {
	type field struct {
		msg    proto.Message
		name   protoreflect.Name
		number protoreflect.FieldNumber
		kind   protoreflect.Kind
		oneof  string
	}
	fields := []field{
		{&EphemeralStreamRequest{}, "create_stream", 1, protoreflect.MessageKind, "payload"},
		{&EphemeralStreamRequest{}, "ingest_record", 2, protoreflect.MessageKind, "payload"},
		{&EphemeralStreamRequest{}, "ingest_record_batch", 3, protoreflect.MessageKind, "payload"},
		{&CreateIngestStreamRequest{}, "table_name", 1, protoreflect.StringKind, ""},
		{&CreateIngestStreamRequest{}, "descriptor_proto", 3, protoreflect.BytesKind, ""},
		{&CreateIngestStreamRequest{}, "record_type", 4, protoreflect.EnumKind, ""},
		{&IngestRecordRequest{}, "offset_id", 1, protoreflect.Int64Kind, ""},
		{&IngestRecordRequest{}, "proto_encoded_record", 2, protoreflect.BytesKind, "record"},
		{&IngestRecordRequest{}, "json_record", 3, protoreflect.StringKind, "record"},
		{&IngestRecordBatchRequest{}, "offset_id", 1, protoreflect.Int64Kind, ""},
		{&IngestRecordBatchRequest{}, "proto_encoded_batch", 2, protoreflect.MessageKind, "batch"},
		{&IngestRecordBatchRequest{}, "json_batch", 3, protoreflect.MessageKind, "batch"},
		{&ProtoEncodedRecordBatch{}, "records", 1, protoreflect.BytesKind, ""},
		{&JsonRecordBatch{}, "records", 1, protoreflect.StringKind, ""},
		{&EphemeralStreamResponse{}, "create_stream_response", 1, protoreflect.MessageKind, "payload"},
		{&EphemeralStreamResponse{}, "ingest_record_response", 2, protoreflect.MessageKind, "payload"},
		{&EphemeralStreamResponse{}, "close_stream_signal", 3, protoreflect.MessageKind, "payload"},
		{&CreateIngestStreamResponse{}, "stream_id", 1, protoreflect.StringKind, ""},
		{&IngestRecordResponse{}, "durability_ack_up_to_offset", 1, protoreflect.Int64Kind, ""},
		{&CloseStreamSignal{}, "duration", 1, protoreflect.MessageKind, ""},
	}
	for _, f := range fields {
		md := f.msg.ProtoReflect().Descriptor()
		fd := md.Fields().ByName(f.name)
		if fd == nil {
			t.Errorf("%s has no field %s", md.Name(), f.name)
			continue
		}
		if fd.Number() != f.number || fd.Kind() != f.kind {
			t.Errorf("%s.%s = #%d %v, want #%d %v", md.Name(), f.name, fd.Number(), fd.Kind(), f.number, f.kind)
		}
		oneof := ""
		if o := fd.ContainingOneof(); o != nil {
			oneof = string(o.Name())
		}
		if oneof != f.oneof {
			t.Errorf("%s.%s in oneof %q, want %q", md.Name(), f.name, oneof, f.oneof)
		}
	}
	if n := (&CreateIngestStreamRequest{}).ProtoReflect().Descriptor().ReservedRanges(); n.Len() != 1 || n.Get(0)[0] != 2 {
		t.Errorf("CreateIngestStreamRequest must reserve field 2")
	}
	enum := RecordType_PROTO.Descriptor().Values()
	for name, num := range map[protoreflect.Name]protoreflect.EnumNumber{"RECORD_TYPE_UNSPECIFIED": 0, "PROTO": 1, "JSON": 2} {
		if v := enum.ByName(name); v == nil || v.Number() != num {
			t.Errorf("RecordType %s must be %d", name, num)
		}
	}
}

// TestBytesOnTheWire checks one request against bytes written by hand from
// the contract, so a renumbering cannot pass unnoticed.
func TestBytesOnTheWire(t *testing.T) {
	req := &EphemeralStreamRequest{Payload: &EphemeralStreamRequest_IngestRecordBatch{
		IngestRecordBatch: &IngestRecordBatchRequest{
			OffsetId: proto.Int64(5),
			Batch: &IngestRecordBatchRequest_ProtoEncodedBatch{
				ProtoEncodedBatch: &ProtoEncodedRecordBatch{Records: [][]byte{{0x08, 0x01}}},
			},
		},
	}}
	got, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	// field 3 (len 8) { field 1 varint 5; field 2 (len 4) { field 1 (len 2) 08 01 } }
	want := []byte{0x1a, 0x08, 0x08, 0x05, 0x12, 0x04, 0x0a, 0x02, 0x08, 0x01}
	if string(got) != string(want) {
		t.Fatalf("wire bytes % x, want % x", got, want)
	}
	resp := &EphemeralStreamResponse{Payload: &EphemeralStreamResponse_CloseStreamSignal{
		CloseStreamSignal: &CloseStreamSignal{Duration: durationpb.New(2e9)},
	}}
	b, err := proto.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0x1a, 0x04, 0x0a, 0x02, 0x08, 0x02}; string(b) != string(want) {
		t.Fatalf("close signal bytes % x, want % x", b, want)
	}
}

package flightstream

import (
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// Zero-copy FlightData
//
// A FlightData of record-batch data is, on the wire,
//
//	data_header (field 2): bytes
//	app_metadata (field 3): bytes, {"offset_id": N}
//	data_body (field 1000): bytes
//
// so a request is a small buffer (the tags, the IPC header, the metadata and
// the body's tag and length) followed by the message's body as it is. The
// codec hands gRPC those two buffers: the body, the bulk of the bytes, is
// not copied into a marshalled message (each write of it would be, a
// replay included). A body is never reused (the garbage collector takes it
// once no request holds it), so gRPC may keep it as long as it needs.

// FlightData field numbers.
const (
	fieldDataHeader  = 2
	fieldAppMetadata = 3
	fieldDataBody    = 1000
)

// dataWrite is one write of a message: what the sender hands to SendMsg.
type dataWrite struct {
	m    *Message
	meta []byte
}

func (w *dataWrite) marshal() mem.BufferSlice {
	n := 2*binaryVarintMax + len(w.m.Header) + len(w.meta) + 3 + binaryVarintMax
	h := make([]byte, 0, n)
	h = protowire.AppendTag(h, fieldDataHeader, protowire.BytesType)
	h = protowire.AppendBytes(h, w.m.Header)
	h = protowire.AppendTag(h, fieldAppMetadata, protowire.BytesType)
	h = protowire.AppendBytes(h, w.meta)
	h = protowire.AppendTag(h, fieldDataBody, protowire.BytesType)
	h = protowire.AppendVarint(h, uint64(len(w.m.Body)))
	if len(w.m.Body) == 0 {
		return mem.BufferSlice{mem.SliceBuffer(h)}
	}
	return mem.BufferSlice{mem.SliceBuffer(h), mem.SliceBuffer(w.m.Body)}
}

const binaryVarintMax = 10

// codec marshals data writes itself and everything else (the schema
// message, PutResults) with the proto codec. Its name is empty so that the
// content-type stays application/grpc.
type codec struct{ proto encoding.CodecV2 }

func newCodec() codec { return codec{proto: encoding.GetCodecV2(proto.Name)} }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if w, ok := v.(*dataWrite); ok {
		return w.marshal(), nil
	}
	return c.proto.Marshal(v)
}

func (c codec) Unmarshal(data mem.BufferSlice, v any) error { return c.proto.Unmarshal(data, v) }

func (codec) Name() string { return "" }

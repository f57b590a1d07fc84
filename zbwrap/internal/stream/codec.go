package stream

import (
	"encoding/binary"
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// Zero-copy requests
//
// An IngestRecordBatchRequest with proto-encoded records is, on the wire,
//
//	EphemeralStreamRequest.ingest_record_batch (field 3) {
//	    offset_id (field 1): varint
//	    proto_encoded_batch (field 2) { records (field 1): bytes, repeated }
//	}
//
// so its body after a small header is just the records, each preceded by tag
// 0x0a and its length. A caller that encodes its records already framed that
// way (arrowproto.EncodeFramed(rec, 1)) gives the stream one contiguous
// buffer; each request is a range of it. The codec writes a request as a
// header built for that write (offset_id changes when a request is written
// again on a new call) followed by the range itself, which gRPC reads in
// place: nothing is marshalled or copied. gRPC reports when it has let go of
// the range (a pooled mem.Buffer whose pool is the write); the stream tells
// its caller once every write of a batch is let go and the batch is
// resolved, and only then may the buffer be reused.

// Tags of the framed request.
const (
	tagIngestRecordBatch = 3<<3 | 2 // EphemeralStreamRequest.ingest_record_batch
	//lint:ignore SA4016 the wire type (varint, 0) is spelled out like the others
	tagOffsetID   = 1<<3 | 0 // IngestRecordBatchRequest.offset_id
	tagProtoBatch = 2<<3 | 2 // IngestRecordBatchRequest.proto_encoded_batch
	// RecordTag is the tag that precedes each framed record: field
	// RecordField, wire type bytes.
	RecordTag = RecordField<<3 | 2
)

// RecordField is the field of ProtoEncodedRecordBatch that holds the
// records (repeated bytes).
const RecordField = 1

// maxHeader bounds the header of a framed request: three one-byte tags and
// three varints (an offset and two lengths).
const maxHeader = 3 + 3*binary.MaxVarintLen64

// checkFrames verifies that frames holds exactly the records whose lengths
// records gives, each preceded by RecordTag and its length.
func checkFrames(frames []byte, records [][]byte) error {
	p := 0
	for i, r := range records {
		if p >= len(frames) || frames[p] != RecordTag {
			return fmt.Errorf("%w: no record tag at byte %d (record %d)", ErrBadFrames, p, i)
		}
		n, k := protowire.ConsumeVarint(frames[p+1:])
		if k < 0 || n != uint64(len(r)) || len(frames)-(p+1+k) < len(r) {
			return fmt.Errorf("%w: the length prefix at byte %d does not frame record %d (%d bytes)", ErrBadFrames, p, i, len(r))
		}
		p += 1 + k + len(r)
	}
	if p != len(frames) {
		return fmt.Errorf("%w: %d bytes after the last of %d records", ErrBadFrames, len(frames)-p, len(records))
	}
	return nil
}

// framedWrite is one write of a framed request: what the sender hands to
// SendMsg. It is also the pool of the mem.Buffer that lends its frames to
// gRPC: Put is gRPC letting go of them.
type framedWrite struct {
	batch      *Batch
	offset     int64
	frames     []byte
	marshalled bool // the codec took over the write's hold on the batch
	hdr        [maxHeader]byte
}

// marshal returns the request: its header, then its frames in place.
func (w *framedWrite) marshal() mem.BufferSlice {
	w.marshalled = true
	body := 1 + protowire.SizeVarint(uint64(w.offset)) + 1 + protowire.SizeVarint(uint64(len(w.frames))) + len(w.frames)
	h := w.hdr[:0]
	h = append(h, tagIngestRecordBatch)
	h = protowire.AppendVarint(h, uint64(body))
	h = append(h, tagOffsetID)
	h = protowire.AppendVarint(h, uint64(w.offset))
	h = append(h, tagProtoBatch)
	h = protowire.AppendVarint(h, uint64(len(w.frames)))
	if mem.IsBelowBufferPoolingThreshold(cap(w.frames)) {
		// gRPC would not report when it lets go of a buffer this small:
		// send a copy, and let go of the frames now.
		msg := append(h, w.frames...)
		w.batch.unhold()
		return mem.BufferSlice{mem.SliceBuffer(msg)}
	}
	return mem.BufferSlice{mem.SliceBuffer(h), mem.NewBuffer(&w.frames, w)}
}

// Get is never called: gRPC only returns the buffer it was lent.
func (w *framedWrite) Get(n int) *[]byte {
	b := make([]byte, n)
	return &b
}

// Put is gRPC letting go of the frames.
func (w *framedWrite) Put(*[]byte) { w.batch.unhold() }

// codec marshals framed writes itself and everything else with the proto
// codec. Its name is empty so that the content-type stays application/grpc.
type codec struct{ proto encoding.CodecV2 }

func newCodec() codec { return codec{proto: encoding.GetCodecV2(proto.Name)} }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if w, ok := v.(*framedWrite); ok {
		return w.marshal(), nil
	}
	return c.proto.Marshal(v)
}

func (c codec) Unmarshal(data mem.BufferSlice, v any) error { return c.proto.Unmarshal(data, v) }

func (codec) Name() string { return "" }

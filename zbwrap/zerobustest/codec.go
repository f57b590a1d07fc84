package zerobustest

import (
	"fmt"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/pyzerobus/pyzerobus/zbwrap/internal/wire"
)

// Limits of the real service (zerobus-wire.md §5).
const (
	// MaxRequestBytes is the largest request message accepted (10 MiB).
	MaxRequestBytes = 10 << 20
	// MaxRecordBytes is the largest record accepted.
	MaxRecordBytes = 4_194_285
	// MaxColumns is the largest number of columns of a stream's descriptor.
	MaxColumns = 2000

	// grpcMaxRecv lets gRPC hand us requests somewhat over the limit so that
	// they get a clear InvalidArgument; beyond it gRPC answers
	// ResourceExhausted itself.
	grpcMaxRecv = MaxRequestBytes + 1<<20
)

// serverCodec decodes EphemeralStream requests straight from gRPC's receive
// buffers into an inbound without building the generated message: records
// stay sub-slices of one buffer, and in discard mode they are only counted.
// Other messages go through the standard protobuf codec.
type serverCodec struct{}

func (serverCodec) Name() string { return "proto" }

func (serverCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("zerobustest codec: cannot marshal %T", v)
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (serverCodec) Unmarshal(data mem.BufferSlice, v any) error {
	in, ok := v.(*inbound)
	if !ok {
		m, ok := v.(proto.Message)
		if !ok {
			return fmt.Errorf("zerobustest codec: cannot unmarshal into %T", v)
		}
		return proto.Unmarshal(data.Materialize(), m)
	}
	in.load(data)
	// Parse problems travel in in.err: an error returned here would make
	// gRPC end the call with Internal before the handler could say why.
	return nil
}

type payloadKind uint8

const (
	payloadNone payloadKind = iota
	payloadCreate
	payloadRecord
	payloadBatch
)

// inbound is one decoded EphemeralStreamRequest.
type inbound struct {
	keep    bool   // keep the record bytes (storage) or only count them (discard)
	scratch []byte // discard mode: reused copy buffer

	size      int // message size in bytes
	kind      payloadKind
	create    *wire.CreateIngestStreamRequest
	offset    int64
	hasOffset bool
	hasData   bool // ingest_record carried a record / batch carried a batch
	json      bool // the records are JSON
	records   [][]byte
	n         int // number of records
	bigIndex  int // index of the first record over MaxRecordBytes, or -1
	bigSize   int
	err       error // malformed request
	capHint   int   // records in the previous request
}

func (in *inbound) resetPayload(k payloadKind) {
	in.kind = k
	in.create = nil
	in.offset, in.hasOffset, in.hasData, in.json = 0, false, false, false
	in.records = in.records[:0]
	in.n, in.bigIndex, in.bigSize = 0, -1, 0
}

// load decodes data into in. Oversized requests are not decoded at all.
func (in *inbound) load(data mem.BufferSlice) {
	in.resetPayload(payloadNone)
	in.err = nil
	in.size = data.Len()
	if in.size > MaxRequestBytes {
		return
	}
	if in.keep && in.records == nil {
		in.records = make([][]byte, 0, max(in.capHint, 8))
	}
	var b []byte
	switch {
	case in.keep:
		b = data.Materialize() // owned by the records until they are durable
	case len(data) == 1:
		b = data[0].ReadOnlyData() // only read during this call
	default:
		if cap(in.scratch) < in.size {
			in.scratch = make([]byte, in.size)
		}
		b = in.scratch[:in.size]
		data.CopyTo(b)
	}
	in.err = in.parse(b)
	in.capHint = in.n
}

func malformed(what string, code int) error {
	return fmt.Errorf("malformed %s: %w", what, protowire.ParseError(code))
}

func wrongType(what string, num protowire.Number, typ protowire.Type) error {
	return fmt.Errorf("malformed %s: field %d has wire type %d", what, num, typ)
}

// fields walks the fields of a message, calling fn for each field whose
// number is known (fn(num, typ, value-bytes-or-varint)); other fields are
// skipped.
func fields(what string, b []byte, known func(protowire.Number) bool, fn func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return malformed(what, n)
		}
		b = b[n:]
		if !known(num) {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return malformed(what, n)
			}
			b = b[n:]
			continue
		}
		switch typ {
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return malformed(what, n)
			}
			b = b[n:]
			if err := fn(num, typ, v, 0); err != nil {
				return err
			}
		case protowire.VarintType:
			x, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return malformed(what, n)
			}
			b = b[n:]
			if err := fn(num, typ, nil, x); err != nil {
				return err
			}
		default:
			return wrongType(what, num, typ)
		}
	}
	return nil
}

func upTo3(n protowire.Number) bool { return n >= 1 && n <= 3 }
func isOne(n protowire.Number) bool { return n == 1 }

// parse decodes an EphemeralStreamRequest. The payload is a oneof: the last
// payload field wins, and repeats of the same field merge, as protobuf does.
func (in *inbound) parse(b []byte) error {
	return fields("request", b, upTo3, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ != protowire.BytesType {
			return wrongType("request", num, typ)
		}
		switch num {
		case 1:
			if in.kind != payloadCreate {
				in.resetPayload(payloadCreate)
				in.create = new(wire.CreateIngestStreamRequest)
			}
			if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(v, in.create); err != nil {
				return fmt.Errorf("malformed create_stream: %w", err)
			}
			return nil
		case 2:
			if in.kind != payloadRecord {
				in.resetPayload(payloadRecord)
			}
			return in.parseRecord(v)
		default:
			if in.kind != payloadBatch {
				in.resetPayload(payloadBatch)
			}
			return in.parseBatch(v)
		}
	})
}

// parseRecord decodes an IngestRecordRequest.
func (in *inbound) parseRecord(b []byte) error {
	return fields("ingest_record", b, upTo3, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		if (num == 1) != (typ == protowire.VarintType) {
			return wrongType("ingest_record", num, typ)
		}
		if num == 1 {
			in.offset, in.hasOffset = int64(x), true
			return nil
		}
		// One record: a repeated oneof field replaces the earlier one.
		in.records = in.records[:0]
		in.n, in.bigIndex, in.bigSize = 0, -1, 0
		in.hasData, in.json = true, num == 3
		in.add(v)
		return nil
	})
}

// parseBatch decodes an IngestRecordBatchRequest.
func (in *inbound) parseBatch(b []byte) error {
	return fields("ingest_record_batch", b, upTo3, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		if (num == 1) != (typ == protowire.VarintType) {
			return wrongType("ingest_record_batch", num, typ)
		}
		if num == 1 {
			in.offset, in.hasOffset = int64(x), true
			return nil
		}
		json := num == 3
		if in.hasData && in.json != json {
			// The other member of the oneof replaces this one.
			in.records = in.records[:0]
			in.n, in.bigIndex, in.bigSize = 0, -1, 0
		}
		in.hasData, in.json = true, json
		what := "proto_encoded_batch"
		if json {
			what = "json_batch"
		}
		return fields(what, v, isOne, func(num protowire.Number, typ protowire.Type, rec []byte, _ uint64) error {
			if typ != protowire.BytesType {
				return wrongType(what, num, typ)
			}
			in.add(rec)
			return nil
		})
	})
}

func (in *inbound) add(rec []byte) {
	if len(rec) > MaxRecordBytes && in.bigIndex < 0 {
		in.bigIndex, in.bigSize = in.n, len(rec)
	}
	in.n++
	if in.keep {
		in.records = append(in.records, rec)
	}
}

package zerobustest

import (
	"encoding/binary"
	"fmt"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/pyzerobus/pyzerobus/zbwrap/internal/wire"
)

// Limits of the real service (zbwrap/internal/wire/doc.go, "Limits").
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
	keep bool     // keep the record bytes (storage) or only count them (discard)
	bufs [][]byte // discard mode: the request's buffers, reused

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
	if in.keep {
		if in.records == nil {
			in.records = make([][]byte, 0, max(in.capHint, 8))
		}
		// One buffer, owned by the records until they are durable.
		in.err = in.parse(newCursor([][]byte{data.Materialize()}, in.size))
	} else {
		// Discard mode reads the records in place, across gRPC's buffers
		// (one per HTTP/2 frame), only during this call.
		in.bufs = in.bufs[:0]
		for _, b := range data {
			in.bufs = append(in.bufs, b.ReadOnlyData())
		}
		in.err = in.parse(newCursor(in.bufs, in.size))
		clear(in.bufs)
	}
	in.capHint = in.n
}

func malformed(what string, code int) error {
	return fmt.Errorf("malformed %s: %w", what, protowire.ParseError(code))
}

func wrongType(what string, num protowire.Number, typ protowire.Type) error {
	return fmt.Errorf("malformed %s: field %d has wire type %d", what, num, typ)
}

// cursor reads a view of a message that may be split over several
// buffers. Only what straddles two buffers is ever copied: a tag or a
// varint (into a small array), or a nested message that must be handed on
// whole (create_stream, a record kept in storage mode, which then has one
// buffer anyway).
type cursor struct {
	cur  []byte   // unread part of the current buffer; may run past the view
	rest [][]byte // the buffers after it
	n    int      // bytes left in the view
}

func newCursor(bufs [][]byte, n int) cursor {
	if len(bufs) == 0 {
		return cursor{}
	}
	return cursor{cur: bufs[0], rest: bufs[1:], n: n}
}

// head returns the contiguous bytes readable now, within the view.
func (c *cursor) head() []byte {
	for len(c.cur) == 0 && len(c.rest) > 0 {
		c.cur, c.rest = c.rest[0], c.rest[1:]
	}
	if len(c.cur) > c.n {
		return c.cur[:c.n]
	}
	return c.cur
}

// advance skips k bytes of the view (k <= c.n).
func (c *cursor) advance(k int) {
	c.n -= k
	for k > len(c.cur) {
		k -= len(c.cur)
		c.cur, c.rest = c.rest[0], c.rest[1:]
	}
	c.cur = c.cur[k:]
}

// window returns at least the next binary.MaxVarintLen64 bytes of the view
// (or all of it if shorter), in place when the current buffer holds them,
// else copied into tmp.
func (c *cursor) window(tmp *[binary.MaxVarintLen64]byte) []byte {
	h := c.head()
	if len(h) >= len(tmp) || len(h) == c.n {
		return h
	}
	m, cur, rest := 0, h, c.rest
	for m < len(tmp) && m < c.n {
		if len(cur) == 0 {
			cur, rest = rest[0], rest[1:]
			continue
		}
		k := copy(tmp[m:min(len(tmp), c.n)], cur)
		m, cur = m+k, cur[k:]
	}
	return tmp[:m]
}

func (c *cursor) tag() (protowire.Number, protowire.Type, int) {
	if len(c.cur) > 0 && c.n > 0 && c.cur[0] < 0x80 && c.cur[0] >= 1<<3 {
		// A one-byte tag (field 1 to 15): every tag of the requests.
		t := c.cur[0]
		c.cur, c.n = c.cur[1:], c.n-1
		return protowire.Number(t >> 3), protowire.Type(t & 7), 1
	}
	var tmp [binary.MaxVarintLen64]byte
	num, typ, k := protowire.ConsumeTag(c.window(&tmp))
	if k > 0 {
		c.advance(k)
	}
	return num, typ, k
}

func (c *cursor) varint() (uint64, int) {
	if len(c.cur) >= 2 && c.n >= 2 {
		// One or two bytes: offsets and record lengths up to 16 KiB.
		if b := c.cur[0]; b < 0x80 {
			c.cur, c.n = c.cur[1:], c.n-1
			return uint64(b), 1
		} else if b2 := c.cur[1]; b2 < 0x80 {
			c.cur, c.n = c.cur[2:], c.n-2
			return uint64(b&0x7f) | uint64(b2)<<7, 2
		}
	}
	var tmp [binary.MaxVarintLen64]byte
	x, k := protowire.ConsumeVarint(c.window(&tmp))
	if k > 0 {
		c.advance(k)
	}
	return x, k
}

// sub returns the view of the next k bytes (k <= c.n) and moves past them.
func (c *cursor) sub(k int) cursor {
	c.head() // move to a buffer with bytes left
	s := cursor{cur: c.cur, rest: c.rest, n: k}
	c.advance(k)
	return s
}

// bytes returns the rest of the view as one slice: in place when it lies
// in one buffer, else a copy.
func (c *cursor) bytes() []byte {
	h := c.head()
	if len(h) == c.n {
		return h
	}
	b := make([]byte, 0, c.n)
	for c.n > 0 {
		h = c.head()
		b = append(b, h...)
		c.advance(len(h))
	}
	return b
}

// skip moves past the value of an unknown field, returning the protowire
// error code if it is malformed.
func (c *cursor) skip(num protowire.Number, typ protowire.Type) int {
	switch typ {
	case protowire.VarintType:
		_, k := c.varint()
		return k
	case protowire.BytesType:
		n, k := c.varint()
		if k < 0 {
			return k
		}
		if n > uint64(c.n) {
			return truncated
		}
		c.advance(int(n))
		return int(n)
	default: // fixed-size values and groups: rare, read from a contiguous copy
		rest := *c
		b := rest.bytes()
		k := protowire.ConsumeFieldValue(num, typ, b)
		if k > 0 {
			c.advance(k)
		}
		return k
	}
}

// truncated is protowire's error code for a value cut short.
const truncated = -1

// fields walks the fields of a message, calling fn for each field whose
// number is known (fn(num, typ, value-view, varint)); other fields are
// skipped.
func fields(what string, c cursor, known func(protowire.Number) bool, fn func(num protowire.Number, typ protowire.Type, v cursor, x uint64) error) error {
	for c.n > 0 {
		if err := field(what, &c, known, fn); err != nil {
			return err
		}
	}
	return nil
}

// field reads the next field of c (see fields).
func field(what string, c *cursor, known func(protowire.Number) bool, fn func(num protowire.Number, typ protowire.Type, v cursor, x uint64) error) error {
	num, typ, k := c.tag()
	if k < 0 {
		return malformed(what, k)
	}
	if !known(num) {
		if k := c.skip(num, typ); k < 0 {
			return malformed(what, k)
		}
		return nil
	}
	switch typ {
	case protowire.BytesType:
		n, k := c.varint()
		if k < 0 {
			return malformed(what, k)
		}
		if n > uint64(c.n) {
			return malformed(what, truncated)
		}
		v := c.sub(int(n))
		return fn(num, typ, v, 0)
	case protowire.VarintType:
		x, k := c.varint()
		if k < 0 {
			return malformed(what, k)
		}
		return fn(num, typ, cursor{}, x)
	default:
		return wrongType(what, num, typ)
	}
}

func upTo3(n protowire.Number) bool { return n >= 1 && n <= 3 }
func isOne(n protowire.Number) bool { return n == 1 }

// parse decodes an EphemeralStreamRequest. The payload is a oneof: the last
// payload field wins, and repeats of the same field merge, as protobuf does.
func (in *inbound) parse(c cursor) error {
	return fields("request", c, upTo3, func(num protowire.Number, typ protowire.Type, v cursor, _ uint64) error {
		if typ != protowire.BytesType {
			return wrongType("request", num, typ)
		}
		switch num {
		case 1:
			if in.kind != payloadCreate {
				in.resetPayload(payloadCreate)
				in.create = new(wire.CreateIngestStreamRequest)
			}
			if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(v.bytes(), in.create); err != nil {
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
func (in *inbound) parseRecord(c cursor) error {
	return fields("ingest_record", c, upTo3, func(num protowire.Number, typ protowire.Type, v cursor, x uint64) error {
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
func (in *inbound) parseBatch(c cursor) error {
	return fields("ingest_record_batch", c, upTo3, func(num protowire.Number, typ protowire.Type, v cursor, x uint64) error {
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
		return in.addRecords(what, v)
	})
}

// recordTag precedes each record of a batch: field 1, bytes.
const recordTag = 1<<3 | byte(protowire.BytesType)

// addRecords reads the records of a proto_encoded_batch or json_batch
// (field 1, repeated bytes). A record under 16 KiB (a length of up to two
// bytes) that lies in the current buffer is counted in place; anything else
// goes through field.
func (in *inbound) addRecords(what string, c cursor) error {
	add := func(num protowire.Number, typ protowire.Type, rec cursor, _ uint64) error {
		if typ != protowire.BytesType {
			return wrongType(what, num, typ)
		}
		in.add(rec)
		return nil
	}
	for c.n > 0 {
		if h := c.cur; len(h) >= 3 && h[0] == recordTag {
			n, k := int(h[1]), 2
			if n >= 0x80 && h[2] < 0x80 {
				n, k = n&0x7f|int(h[2])<<7, 3
			}
			// n is under 16 KiB: never over MaxRecordBytes.
			if end := k + n; n < 0x80<<(7*(k-2)) && end <= len(h) && end <= c.n {
				in.n++
				if in.keep {
					in.records = append(in.records, h[k:end])
				}
				c.cur, c.n = h[end:], c.n-end
				continue
			}
		}
		if err := field(what, &c, isOne, add); err != nil {
			return err
		}
	}
	return nil
}

// add counts a record, and keeps it in storage mode (where the request is
// one buffer, so the record is a sub-slice of it).
func (in *inbound) add(rec cursor) {
	if rec.n > MaxRecordBytes && in.bigIndex < 0 {
		in.bigIndex, in.bigSize = in.n, rec.n
	}
	in.n++
	if in.keep {
		in.records = append(in.records, rec.bytes())
	}
}

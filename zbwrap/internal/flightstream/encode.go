package flightstream

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pyzerobus/pyzerobus/zbwrap/internal/stream"
)

// Compression is the IPC body compression of the messages.
type Compression string

// The compressions Zerobus accepts.
const (
	CompressionNone Compression = "none"
	CompressionLZ4  Compression = "lz4"
	CompressionZstd Compression = "zstd"
)

// messageOverhead bounds what a FlightData adds around its header and body:
// tags, lengths and the app_metadata {"offset_id": N}.
const messageOverhead = 64

// ErrTooLarge: one row alone encodes over the request size limit.
var ErrTooLarge = errors.New("row larger than the request size limit")

// Message is one FlightData of record-batch data: its IPC header and body.
type Message struct {
	Rows   int
	Header []byte
	Body   []byte
}

// Size is the message's bytes on the wire, without app_metadata.
func (m *Message) Size() int { return len(m.Header) + len(m.Body) }

// Batch is a record batch encoded as messages, in row order.
type Batch struct {
	Messages []*Message
	Rows     int
	Bytes    int // headers and bodies
}

// Parts are the batch's messages as stream requests.
func (b *Batch) Parts() []stream.Part {
	parts := make([]stream.Part, len(b.Messages))
	for i, m := range b.Messages {
		parts[i] = stream.Part{Records: m.Rows, Bytes: m.Size(), Payload: m}
	}
	return parts
}

// Encoder encodes record batches of one schema. It is safe for concurrent
// use: each Encode takes an IPC writer of its own from a free list, so that
// compressors (a ZSTD encoder holds megabytes of state) are made once per
// writer, not once per batch. The list keeps up to freeWriters writers.
type Encoder struct {
	schema *arrow.Schema
	opts   []ipc.Option
	limit  int
	header []byte // the schema message
	free   chan *writer
}

// freeWriters bounds the idle writers an Encoder keeps: as many as
// batches are usually encoded at once.
var freeWriters = max(runtime.GOMAXPROCS(0), 4)

// NewEncoder returns an encoder of batches of schema whose messages stay
// under limit bytes (the request size limit).
func NewEncoder(schema *arrow.Schema, c Compression, limit int) (*Encoder, error) {
	opts := []ipc.Option{ipc.WithSchema(schema), ipc.WithAllocator(memory.DefaultAllocator)}
	switch c {
	case CompressionNone, "":
	case CompressionLZ4:
		opts = append(opts, ipc.WithLZ4())
	case CompressionZstd:
		opts = append(opts, ipc.WithZstd())
	default:
		return nil, fmt.Errorf("unknown Arrow compression %q (none, lz4 or zstd)", c)
	}
	for _, f := range schema.Fields() {
		if hasDictionary(f.Type) {
			return nil, fmt.Errorf("column %s: dictionary-encoded %s cannot go to a Zerobus table; decode it first", f.Name, f.Type)
		}
	}
	p := ipc.GetSchemaPayload(schema, memory.DefaultAllocator)
	defer p.Release()
	m := p.Meta()
	defer m.Release()
	return &Encoder{schema: schema, opts: opts, limit: limit, header: bytes.Clone(m.Bytes()),
		free: make(chan *writer, freeWriters)}, nil
}

func hasDictionary(t arrow.DataType) bool {
	if t.ID() == arrow.DICTIONARY {
		return true
	}
	if n, ok := t.(arrow.NestedType); ok {
		for _, f := range n.Fields() {
			if hasDictionary(f.Type) {
				return true
			}
		}
	}
	return false
}

// Schema is the schema of the batches.
func (e *Encoder) Schema() *arrow.Schema { return e.schema }

// SchemaHeader is the IPC header of the schema message, the first of every
// call.
func (e *Encoder) SchemaHeader() []byte { return e.header }

// writer is an IPC writer whose payloads land in out.
type writer struct {
	w      *ipc.Writer
	fresh  bool // the next payload is the schema
	out    *Message
	pieces pieces
}

// pieces collects the buffers of a payload's body without copying them, so
// that the body is then copied once into memory of its exact size (the
// buffers of a sliced batch are those of the whole: their sizes say
// nothing of the slice's).
type pieces struct {
	parts [][]byte
	n     int
}

func (p *pieces) Write(b []byte) (int, error) {
	p.parts = append(p.parts, b)
	p.n += len(b)
	return len(b), nil
}

func (w *writer) Start() error { return nil }
func (w *writer) Close() error { return nil }

func (w *writer) WritePayload(p ipc.Payload) error {
	if w.fresh {
		w.fresh = false
		return nil
	}
	m := p.Meta()
	defer m.Release()
	w.pieces.parts, w.pieces.n = w.pieces.parts[:0], 0
	if err := p.SerializeBody(&w.pieces); err != nil {
		return err
	}
	body := make([]byte, 0, w.pieces.n)
	for _, b := range w.pieces.parts {
		body = append(body, b...)
	}
	clear(w.pieces.parts) // the payload's buffers go back to the writer
	w.out = &Message{Header: bytes.Clone(m.Bytes()), Body: body}
	return nil
}

// Encode encodes rec (of the encoder's schema) as messages under the limit;
// rec is not retained. A row that alone is over the limit fails the batch
// (ErrTooLarge, naming the row).
func (e *Encoder) Encode(rec arrow.RecordBatch) (*Batch, error) {
	if !rec.Schema().Equal(e.schema) {
		return nil, fmt.Errorf("the batch's schema %s is not the stream's %s", rec.Schema(), e.schema)
	}
	var w *writer
	select {
	case w = <-e.free:
	default:
		w = &writer{fresh: true}
		w.w = ipc.NewWriterWithPayloadWriter(w, e.opts...)
	}
	defer func() {
		select {
		case e.free <- w:
		default: // enough idle writers: this one is garbage collected
		}
	}()
	b := &Batch{Rows: int(rec.NumRows())}
	if err := e.encode(w, rec, 0, b); err != nil {
		return nil, err
	}
	return b, nil
}

// encode appends the messages of rec, whose first row is row first of the
// batch, to b.
func (e *Encoder) encode(w *writer, rec arrow.RecordBatch, first int, b *Batch) error {
	m, err := e.one(w, rec)
	if err != nil {
		return err
	}
	rows := int(rec.NumRows())
	size := m.Size() + messageOverhead
	if size <= e.limit {
		b.Messages = append(b.Messages, m)
		b.Bytes += m.Size()
		return nil
	}
	if rows <= 1 {
		return fmt.Errorf("%w: row %d encodes to %d bytes, over the %d-byte limit", ErrTooLarge, first, size, e.limit)
	}
	// Cut into pieces that should fit, a tenth under the limit; a piece
	// still over it is cut again.
	n := min(rows, size/(e.limit-e.limit/10)+1)
	per := (rows + n - 1) / n
	for lo := 0; lo < rows; lo += per {
		hi := min(lo+per, rows)
		sl := rec.NewSlice(int64(lo), int64(hi))
		err := e.encode(w, sl, first+lo, b)
		sl.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// one encodes rec as one message.
func (e *Encoder) one(w *writer, rec arrow.RecordBatch) (*Message, error) {
	w.out = nil
	if err := w.w.Write(rec); err != nil {
		return nil, err
	}
	m := w.out
	w.out = nil
	if m == nil {
		return nil, errors.New("the IPC writer wrote no record batch")
	}
	m.Rows = int(rec.NumRows())
	return m, nil
}

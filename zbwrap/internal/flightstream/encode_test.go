package flightstream

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

var testSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "payload", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

func makeBatch(n, size int) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, testSchema)
	defer b.Release()
	for i := range n {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("%08d", i) + strings.Repeat("x", size))
	}
	return b.NewRecordBatch()
}

// fdStream feeds FlightData to flight.NewRecordReader.
type fdStream struct{ msgs []*flight.FlightData }

func (s *fdStream) Recv() (*flight.FlightData, error) {
	if len(s.msgs) == 0 {
		return nil, fmt.Errorf("end: %w", errEOF)
	}
	m := s.msgs[0]
	s.msgs = s.msgs[1:]
	return m, nil
}

var errEOF = errors.New("EOF")

// decode reads the schema message and b's messages back as an Arrow reader
// would on the server, and returns the ids in order.
func decode(t *testing.T, e *Encoder, b *Batch) []int64 {
	t.Helper()
	in := &fdStream{msgs: []*flight.FlightData{{DataHeader: e.SchemaHeader()}}}
	for _, m := range b.Messages {
		in.msgs = append(in.msgs, &flight.FlightData{DataHeader: m.Header, DataBody: m.Body})
	}
	rdr, err := flight.NewRecordReader(in)
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Release()
	var ids []int64
	for rdr.Next() {
		rec := rdr.RecordBatch()
		if !rec.Schema().Equal(testSchema) {
			t.Fatalf("schema %v", rec.Schema())
		}
		ids = append(ids, rec.Column(0).(*array.Int64).Int64Values()...)
	}
	return ids
}

func TestEncodeRoundTrip(t *testing.T) {
	rec := makeBatch(1000, 200)
	defer rec.Release()
	sizes := map[Compression]int{}
	for _, c := range []Compression{CompressionNone, CompressionLZ4, CompressionZstd, ""} {
		t.Run(string(c), func(t *testing.T) {
			e, err := NewEncoder(testSchema, c, 64<<10)
			if err != nil {
				t.Fatal(err)
			}
			if e.Schema() != testSchema {
				t.Fatal("Schema is not the encoder's")
			}
			for range 2 { // the second Encode reuses the pooled writer
				b, err := e.Encode(rec)
				if err != nil {
					t.Fatal(err)
				}
				// Uncompressed, 200 KB of rows need several messages;
				// compressed, the repeated bytes fit in one.
				if b.Rows != 1000 || (len(b.Messages) < 3 && (c == CompressionNone || c == "")) {
					t.Fatalf("%d rows in %d messages: want 1000 rows cut under 64 KiB", b.Rows, len(b.Messages))
				}
				total, sum := 0, 0
				for i, p := range b.Parts() {
					m := b.Messages[i]
					if m.Size()+messageOverhead > 64<<10 || p.Records != m.Rows || p.Bytes != m.Size() || p.Payload != m {
						t.Fatalf("message %d: %d rows, %d bytes; part %+v", i, m.Rows, m.Size(), p)
					}
					total += m.Rows
					sum += m.Size()
				}
				if total != 1000 || sum != b.Bytes {
					t.Fatalf("messages hold %d rows and %d bytes, batch says %d and %d", total, sum, b.Rows, b.Bytes)
				}
				ids := decode(t, e, b)
				if len(ids) != 1000 || ids[0] != 0 || ids[999] != 999 {
					t.Fatalf("decoded %d ids", len(ids))
				}
				sizes[c] = b.Bytes
			}
		})
	}
	if sizes[CompressionZstd] >= sizes[CompressionNone] || sizes[CompressionLZ4] >= sizes[CompressionNone] {
		t.Fatalf("compressed sizes %v not below the uncompressed", sizes)
	}
}

func TestEncoderRefusals(t *testing.T) {
	if _, err := NewEncoder(testSchema, "gzip", 1<<20); err == nil || !strings.Contains(err.Error(), "gzip") {
		t.Fatalf("unknown compression: %v", err)
	}
	dt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}
	nested := arrow.NewSchema([]arrow.Field{{Name: "tags", Type: arrow.ListOf(dt)}}, nil)
	if _, err := NewEncoder(nested, CompressionNone, 1<<20); err == nil || !strings.Contains(err.Error(), "column tags") {
		t.Fatalf("a nested dictionary: %v", err)
	}
	e, err := NewEncoder(testSchema, CompressionNone, 1024)
	if err != nil {
		t.Fatal(err)
	}
	big := makeBatch(3, 2000)
	defer big.Release()
	if _, err := e.Encode(big); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "row 0") {
		t.Fatalf("a row over the limit: %v", err)
	}
	other := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int32}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, other)
	defer b.Release()
	b.Field(0).(*array.Int32Builder).Append(1)
	rec := b.NewRecordBatch()
	defer rec.Release()
	if _, err := e.Encode(rec); err == nil || !strings.Contains(err.Error(), "schema") {
		t.Fatalf("a batch of another schema: %v", err)
	}
}

// The schema header is the one an IPC stream of the schema starts with.
func TestSchemaHeader(t *testing.T) {
	e, err := NewEncoder(testSchema, CompressionNone, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(testSchema))
	_ = w.Close()
	if !bytes.Contains(buf.Bytes(), e.SchemaHeader()) {
		t.Fatal("schema header not found in an IPC stream of the schema")
	}
}

package arrowproto

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

// Limits of the Zerobus service that the schema compiler and the encoder enforce.
const (
	// MaxColumns is the largest number of columns (fields of one message).
	MaxColumns = 2000
	// MaxNestingDepth is the deepest nesting of message declarations in a
	// user-supplied descriptor, and of nested messages in a generated one.
	MaxNestingDepth = 10
	// MaxRecordSize is the largest encoded record, in bytes: 4 MiB less the
	// 19 bytes of framing the service adds.
	MaxRecordSize = 4_194_285
	// MaxFieldNumber is the largest protobuf field number.
	MaxFieldNumber = 536_870_911
)

// DefaultMessageName is the name of the generated top-level message.
const DefaultMessageName = "Record"

// Sentinel errors, matched with errors.Is. Schema errors are *SchemaError values
// that wrap one of the first four.
var (
	// ErrUnsupportedType: an Arrow type with no protobuf mapping (unions,
	// intervals, map keys that protobuf cannot key on, ...).
	ErrUnsupportedType = errors.New("unsupported Arrow type")
	// ErrInvalidName: a column name that is not ASCII letters, digits and
	// underscore (starting with a letter or underscore), or a duplicate name.
	ErrInvalidName = errors.New("invalid column name")
	// ErrSchemaLimit: more than MaxColumns columns or nesting deeper than
	// MaxNestingDepth.
	ErrSchemaLimit = errors.New("schema limit exceeded")
	// ErrIncompatibleDescriptor: a user-supplied descriptor that is malformed
	// or does not fit the Arrow schema.
	ErrIncompatibleDescriptor = errors.New("descriptor does not match the Arrow schema")
	// ErrSchemaMismatch: Encode was given a record batch whose schema differs
	// from the one the Schema was built for.
	ErrSchemaMismatch = errors.New("record batch schema differs from the compiled schema")
	// ErrInvalidData: the Arrow buffers of a record batch are malformed
	// (offsets out of range, short buffers, dictionary indices out of range).
	// Buffers are checked against the lengths Go knows: arrays imported
	// through the Arrow C data interface, which carries no buffer lengths,
	// must be valid to begin with (see the package documentation).
	ErrInvalidData = errors.New("invalid Arrow data")
)

// SchemaError reports why a schema or descriptor cannot be used. Column is the
// column path ("address.zip", "tags[]" for list elements, "attrs.key" and
// "attrs.value" for map keys and values); it is empty for whole-schema problems.
type SchemaError struct {
	Column string
	Reason string
	Err    error // one of the sentinel errors above
}

func (e *SchemaError) Error() string {
	if e.Column == "" {
		return "arrowproto: " + e.Reason
	}
	return fmt.Sprintf("arrowproto: column %q: %s", e.Column, e.Reason)
}

// Unwrap returns the sentinel error.
func (e *SchemaError) Unwrap() error { return e.Err }

func schemaErr(sentinel error, column, format string, args ...any) *SchemaError {
	return &SchemaError{Column: column, Reason: fmt.Sprintf(format, args...), Err: sentinel}
}

// RowError is a row of a batch that could not be encoded. The other rows of
// the batch are encoded regardless.
type RowError struct {
	Row    int    // row index in the record batch
	Column string // column path, as in SchemaError
	Reason string
}

func (e RowError) Error() string {
	if e.Column == "" {
		return fmt.Sprintf("row %d: %s", e.Row, e.Reason)
	}
	return fmt.Sprintf("row %d, column %q: %s", e.Row, e.Column, e.Reason)
}

// Batch is the protobuf encoding of one record batch.
type Batch struct {
	// Records are the encoded rows, in row order, only those that could be
	// encoded. They are sub-slices of one buffer and stay valid after the
	// Arrow record is released, until Release.
	Records [][]byte
	// Rows[i] is the row index, in the record batch, of Records[i]. It is
	// read-only: when every row was encoded, batches share it.
	Rows []int
	// Errors lists the rows that could not be encoded, in ascending row order,
	// one entry per row.
	Errors []RowError
	// Bytes is the total size of Records.
	Bytes int
	// Frames is set by EncodeFramed: every record of Records, in order, each
	// preceded by its field tag and length, back to back.
	Frames []byte

	s    *Schema
	mem  *batchMem    // nil once released
	refs atomic.Int32 // holders of mem: one at Encode, one more per Retain
}

// Option configures NewSchema, NewSchemaWithDescriptor and NewCache.
type Option func(*config)

type config struct {
	messageName   string
	maxRecordSize int
}

func newConfig(opts []Option) config {
	c := config{messageName: DefaultMessageName, maxRecordSize: MaxRecordSize}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithMessageName sets the name of the generated top-level message (default
// DefaultMessageName). It must be a valid protobuf identifier. It has no
// effect on a user-supplied descriptor, which keeps its own name.
func WithMessageName(name string) Option {
	return func(c *config) { c.messageName = name }
}

// WithMaxRecordSize sets the largest record, in bytes, that Encode emits;
// larger rows are row errors. The default is MaxRecordSize; values <= 0
// restore it.
func WithMaxRecordSize(n int) Option {
	return func(c *config) {
		if n <= 0 {
			n = MaxRecordSize
		}
		c.maxRecordSize = n
	}
}

// Schema is a compiled Arrow schema: its protobuf descriptor and the plan that
// encodes record batches of that schema. A Schema is immutable and safe for
// concurrent use; Encode may be called from many goroutines at once.
type Schema struct {
	arrow     *arrow.Schema
	key       string
	desc      *descriptorpb.DescriptorProto
	descBytes []byte
	maxRecord int

	specs    []colSpec // array layers of the Arrow schema, bound per batch
	top      []*field  // one per column, in column order
	nslots   int       // number of per-element size tables an encode needs
	slotLeaf []int     // the spec whose elements each size table is indexed by
	nnv      int       // number of unpacked validity tables of fast columns

	seen atomic.Pointer[arrow.Schema] // last other schema value found equal
	mu   sync.Mutex
	free []*encoder // scratch of finished encodes, for reuse

	mems     []*batchMem // memory of released batches, for reuse
	memBytes int         // arena capacity held in mems
	// identity is 0, 1, 2, ...: the Rows of every batch with no failed row.
	// A longer one replaces it; a published one is never written again.
	identity []int
}

// NewSchema compiles s: it generates a self-contained proto2 descriptor (one
// message, fields numbered 1..N in column order, nested types declared inside
// it) following the package's type mapping, and the plan to encode batches.
// Errors are *SchemaError values naming the column.
func NewSchema(s *arrow.Schema, opts ...Option) (*Schema, error) {
	cfg := newConfig(opts)
	if s == nil {
		return nil, schemaErr(ErrIncompatibleDescriptor, "", "nil Arrow schema")
	}
	d, err := generate(s, cfg.messageName)
	if err != nil {
		return nil, err
	}
	if err := checkProtodesc(d); err != nil {
		return nil, err
	}
	return compile(s, d, cfg)
}

// NewSchemaWithDescriptor compiles s against a user-supplied descriptor: every
// Arrow column (at every level) must have a field of the same name with a
// compatible type and label; records are encoded with the descriptor's field
// numbers. The descriptor is checked against the service limits (nesting depth
// at most MaxNestingDepth, at most MaxColumns fields per message, field numbers
// in 1..MaxFieldNumber outside 19000-19999). Type names may be relative or
// fully qualified. The descriptor is copied; d is not retained.
func NewSchemaWithDescriptor(s *arrow.Schema, d *descriptorpb.DescriptorProto, opts ...Option) (*Schema, error) {
	cfg := newConfig(opts)
	if s == nil {
		return nil, schemaErr(ErrIncompatibleDescriptor, "", "nil Arrow schema")
	}
	if d == nil {
		return nil, schemaErr(ErrIncompatibleDescriptor, "", "nil descriptor")
	}
	return compile(s, proto.Clone(d).(*descriptorpb.DescriptorProto), cfg)
}

// Descriptor returns the descriptor records are encoded against. It is shared:
// do not modify it (proto.Clone it first).
func (s *Schema) Descriptor() *descriptorpb.DescriptorProto { return s.desc }

// DescriptorBytes returns the serialized DescriptorProto, as sent in
// CreateIngestStreamRequest.descriptor_proto. Do not modify it.
func (s *Schema) DescriptorBytes() []byte { return s.descBytes }

// ArrowSchema returns the Arrow schema the Schema was compiled from.
func (s *Schema) ArrowSchema() *arrow.Schema { return s.arrow }

// String describes the schema briefly.
func (s *Schema) String() string {
	return fmt.Sprintf("arrowproto.Schema{message %s, %d columns}", s.desc.GetName(), len(s.top))
}

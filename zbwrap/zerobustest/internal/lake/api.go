// Package lake is the storage of the local Zerobus server: table schemas with
// their Delta types, the check of a stream's descriptor against a table, a
// durable per-table record log (append + fsync with group commit), and the
// materializer that turns durable records into a real Delta table (Parquet
// files plus _delta_log commits) that deltalake and pyarrow read.
//
// Layout on disk: <dir>/<catalog>/<schema>/<table>/ is the Delta table;
// its record log lives in <table>/_zerobus_log/ (Delta readers skip names
// that start with an underscore).
package lake

import (
	"errors"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"google.golang.org/protobuf/types/descriptorpb"
)

// Kind is the kind of a Delta column type.
type Kind int

// The Delta column kinds.
const (
	Boolean Kind = iota + 1
	Byte         // TINYINT
	Short        // SMALLINT
	Int          // INT
	Long         // BIGINT
	Float
	Double
	String
	Binary
	Date
	Timestamp
	TimestampNTZ
	Decimal
	Array
	Map
	Struct
	Variant
)

// Type is a Delta column type.
type Type struct {
	Kind             Kind
	Precision, Scale int      // Decimal only
	Elem             *Type    // Array element, Map value
	Key              *Type    // Map key
	Fields           []Column // Struct fields
}

// Column is a named, typed table column.
type Column struct {
	Name     string
	Type     Type
	Nullable bool
}

// ErrTableNotFound reports a table that does not exist and may not be created.
var ErrTableNotFound = errors.New("table not found")

// SchemaError reports a descriptor that does not match its table, naming the
// column path (for example "payload.items").
type SchemaError struct {
	Column string
	Reason string
}

func (e *SchemaError) Error() string { return "column " + e.Column + ": " + e.Reason }

func (e *RecordError) Error() string {
	return "record " + itoa(e.Index) + ": column " + e.Column + ": " + e.Reason
}

// RecordError reports a record that does not decode with its stream's
// descriptor or whose value does not fit the column's Delta type.
type RecordError struct {
	Index  int // index of the record in the slice given to Check
	Column string
	Reason string
}

// Options configure a Lake.
type Options struct {
	// Dir is the data directory. Required.
	Dir string
	// MaterializeInterval is how long durable records wait before they are
	// written to the Delta table. Default 3s.
	MaterializeInterval time.Duration
}

// Lake holds every table under one data directory. It is safe for
// concurrent use.
type Lake struct{ _ int }

// Open opens (creating if needed) the data directory, reloads every table,
// and replays into the Delta table any durable record that was not yet
// materialized (after a crash, say).
func Open(opts Options) (*Lake, error) { return nil, errNotYet }

// CreateTable declares a table with its Delta column types. Declaring an
// existing table with the same columns is a no-op; with other columns it is
// an error.
func (l *Lake) CreateTable(fullName string, cols []Column) (*Table, error) { return nil, errNotYet }

// Table returns the named table or ErrTableNotFound.
func (l *Lake) Table(fullName string) (*Table, error) { return nil, errNotYet }

// Tables lists the tables, sorted by name.
func (l *Lake) Tables() []*Table { return nil }

// Bind checks a stream's descriptor against the named table and returns a
// Binding that validates and appends that stream's records. A missing table
// is created from the descriptor (proto types mapped plainly) when
// autoCreate is true, and is ErrTableNotFound otherwise. A mismatch is a
// *SchemaError.
func (l *Lake) Bind(fullName string, desc *descriptorpb.DescriptorProto, autoCreate bool) (*Binding, error) {
	return nil, errNotYet
}

// Materialize writes every durable record to the Delta tables now.
func (l *Lake) Materialize() error { return errNotYet }

// Close materializes what is durable and releases the directory.
func (l *Lake) Close() error { return errNotYet }

// Table is one table.
type Table struct{ _ int }

// Name is catalog.schema.table.
func (t *Table) Name() string { return "" }

// Columns are the table's columns in order.
func (t *Table) Columns() []Column { return nil }

// Stats counts what the table holds.
func (t *Table) Stats() TableStats { return TableStats{} }

// TableStats counts records of one table.
type TableStats struct {
	Durable      int64 // records appended and fsynced
	Materialized int64 // records written to the Delta table
}

// Binding is a descriptor bound to a table. Safe for concurrent use.
type Binding struct{ _ int }

// Check decodes every record with the descriptor and checks each value
// against its column's Delta type; the first bad record is a *RecordError.
func (b *Binding) Check(records [][]byte) error { return errNotYet }

// Append queues records for the table's log and returns at once. The channel
// receives nil once every record is fsynced (group commit: concurrent
// appends share one fsync), or the write error. Appends to one table become
// durable in the order they were made.
func (b *Binding) Append(records [][]byte) <-chan error { return nil }

// ReadTable reads the Delta table at dir (as materialized so far) for show
// commands and tests.
func ReadTable(dir, fullName string) (arrow.Table, error) { return nil, errNotYet }

var errNotYet = errors.New("lake: not implemented")

func itoa(i int) string { return strconv.Itoa(i) }

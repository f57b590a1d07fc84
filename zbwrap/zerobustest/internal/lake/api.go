package lake

import (
	"errors"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
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
// Test with errors.Is.
var ErrTableNotFound = errors.New("table not found")

// SchemaError reports a descriptor that does not match its table, naming the
// column path (for example "payload.items").
type SchemaError struct {
	Column string
	Reason string
}

func (e *SchemaError) Error() string {
	if e.Column == "" {
		return "schema: " + e.Reason
	}
	return "column " + e.Column + ": " + e.Reason
}

func (e *RecordError) Error() string {
	if e.Column == "" {
		return "record " + itoa(e.Index) + ": " + e.Reason
	}
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

	// segmentSize overrides the record log's segment size (tests).
	segmentSize int64
}

// Lake holds every table under one data directory. It is safe for
// concurrent use.
type Lake struct {
	dir      string
	interval time.Duration
	segSize  int64
	lock     *os.File

	mu     sync.Mutex
	tables map[string]*Table
	closed bool

	bindings atomic.Uint64 // last binding id handed out
	matReq   chan chan error
	stop     chan struct{}
	matDone  chan struct{}
}

// Open opens (creating if needed) the data directory, reloads every table,
// and replays into the Delta table any durable record that was not yet
// materialized (after a crash, say).
func Open(opts Options) (*Lake, error) { return open(opts) }

// CreateTable declares a table with its Delta column types. Declaring an
// existing table with the same columns is a no-op; with other columns it is
// an error.
func (l *Lake) CreateTable(fullName string, cols []Column) (*Table, error) {
	return l.createTable(fullName, cols)
}

// Table returns the named table or ErrTableNotFound.
func (l *Lake) Table(fullName string) (*Table, error) { return l.table(fullName) }

// Tables lists the tables, sorted by name.
func (l *Lake) Tables() []*Table { return l.tableList() }

// Bind checks a stream's descriptor against the named table and returns a
// Binding that validates and appends that stream's records. A missing table
// is created from the descriptor (proto types mapped plainly) when
// autoCreate is true, and is ErrTableNotFound otherwise. A mismatch is a
// *SchemaError.
func (l *Lake) Bind(fullName string, desc *descriptorpb.DescriptorProto, autoCreate bool) (*Binding, error) {
	return l.bind(fullName, desc, autoCreate)
}

// Materialize writes every durable record to the Delta tables now, and
// returns once they are committed (ErrClosed after Close).
func (l *Lake) Materialize() error { return l.materializeNow() }

// Close stops accepting appends, waits for the queued ones to be durable,
// materializes everything durable, stops the Lake's goroutines and releases
// the directory. Closing twice is a no-op.
func (l *Lake) Close() error { return l.close(true) }

// Table is one table.
type Table struct {
	name   string
	dir    string
	cols   []Column
	schema *arrow.Schema
	log    *tableLog

	materialized       atomic.Int64
	rejected           atomic.Int64
	checkpointFailures atomic.Int64

	// Owned by whoever holds matMu (the materializer).
	matMu   sync.Mutex
	version int64   // latest Delta version
	mark    logMark // log position the Delta table holds
	cur     cursor
	hint    sizeHint  // sizes of the last commit, to size the next one's builders
	ckpt    *logState // the Delta state for checkpoints, once one was needed
}

// Name is catalog.schema.table.
func (t *Table) Name() string { return t.name }

// Columns are the table's columns in order.
func (t *Table) Columns() []Column { return cloneColumns(t.cols) }

// Stats counts what the table holds.
func (t *Table) Stats() TableStats {
	return TableStats{Durable: t.log.durableCount(), Materialized: t.materialized.Load(), Rejected: t.rejected.Load(),
		CheckpointFailures: t.checkpointFailures.Load()}
}

// TableStats counts records of one table.
type TableStats struct {
	Durable      int64 // records appended and fsynced
	Materialized int64 // records written to the Delta table
	// Rejected counts durable records the materializer could not decode
	// with their descriptor (they never passed Check); they are skipped.
	Rejected int64
	// CheckpointFailures counts Delta checkpoints that could not be
	// written; readers replay the commits instead.
	CheckpointFailures int64
}

// Binding is a descriptor bound to a table. Safe for concurrent use.
type Binding struct {
	table *Table
	plan  *plan
	id    uint64
}

// Check decodes every record with the descriptor and checks each value
// against its column's Delta type; the first bad record is a *RecordError.
func (b *Binding) Check(records [][]byte) error {
	d := b.plan.pool.get()
	defer b.plan.pool.put(d)
	for i, r := range records {
		if fe := b.plan.check(d, r); fe != nil {
			return &RecordError{Index: i, Column: fe.column, Reason: fe.reason}
		}
	}
	return nil
}

// Append queues records for the table's log and returns at once. The channel
// receives nil once every record is fsynced (group commit: concurrent
// appends share one fsync), or the write error (ErrClosed after Close; a
// *RecordError for a record over MaxRecordSize). Appends to one table become
// durable in the order they were made. Append copies the records and does
// not check them: call Check first. The channel is buffered, so a caller
// may drop it.
func (b *Binding) Append(records [][]byte) <-chan error {
	return b.table.log.append(b.id, b.plan.desc, records)
}

// ReadTable reads the Delta table of fullName under the data directory dir
// (as materialized so far) for show commands and tests: the live files of
// its _delta_log (adds minus removes) in commit order, with the Arrow schema
// ArrowSchema gives. The caller releases the table. It may run while a Lake
// has the directory open.
func ReadTable(dir, fullName string) (arrow.Table, error) {
	name, err := canonicalName(fullName)
	if err != nil {
		return nil, err
	}
	return readTable(tableDir(dir, name))
}

func itoa(i int) string { return strconv.Itoa(i) }

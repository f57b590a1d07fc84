// Package lake is the storage of the local Zerobus server: table schemas with
// their Delta types, the check of a stream's descriptor against a table, a
// durable per-table record log (append + fsync with group commit), and the
// materializer that turns durable records into a real Delta table (Parquet
// files plus _delta_log commits) that deltalake and pyarrow read.
//
// # Using it
//
//	l, err := lake.Open(lake.Options{Dir: dir})          // reloads tables, replays the log
//	defer l.Close()                                       // drains appends, materializes
//	cols, _ := lake.ParseColumns("id bigint not null, tags map<string,string>")
//	l.CreateTable("main.default.events", cols)            // or Bind(..., autoCreate=true)
//	b, err := l.Bind("main.default.events", desc, false)  // *SchemaError on mismatch
//	if err := b.Check(records); err != nil { ... }        // *RecordError: index, column, reason
//	if err := <-b.Append(records); err != nil { ... }     // nil once fsynced: ack now
//	l.Materialize()                                       // or wait MaterializeInterval
//	tbl, err := lake.ReadTable(dir, "main.default.events") // arrow.Table; Release it
//
// # Layout on disk
//
// <dir>/<catalog>/<schema>/<table>/ is the Delta table: Parquet files and
// _delta_log/. Its record log lives in <table>/_zerobus_log/ (Delta readers
// skip names that start with an underscore). <dir>/.lake.lock is held by the
// open Lake (flock), so one Lake at a time owns a directory: a second Open
// fails with ErrLocked. Table names
// are catalog.schema.table of ASCII letters, digits and underscores, kept
// lower case.
//
// # Types
//
// A table's columns carry Delta types (Type, Kind). ParseType and
// ParseColumns read Spark / Unity Catalog type text; Type.TypeName,
// Type.TypeText, Column.TypeJSON and SchemaString render the Unity Catalog
// type_name, type_text, type_json and the Delta schemaString;
// Table.UCColumns gives the column list of the Unity Catalog table endpoint.
// Array elements and map values are never null (protobuf cannot carry a null
// element), so the Spark JSON says containsNull/valueContainsNull false.
//
// A VARIANT column is stored in the Delta table as a STRING holding the JSON
// text: the Delta schemaString says "string", the Parquet column is UTF-8.
// The lake keeps the true column types in the Delta metaData configuration
// key "zerobus.columns", so the table reports VARIANT to Unity Catalog
// clients.
//
// # Descriptors and records
//
// Bind compiles a stream's DescriptorProto (proto2, nested types inside;
// references relative or fully qualified, a package implied by them is
// honoured) and matches it 1:1 with the table: same field count, same names
// in order (case-insensitive, like Delta), compatible types, proto2 optional
// for nullable columns and required for NOT NULL ones. Protobuf carries the
// Delta types as follows: TINYINT, SMALLINT, INT and DATE (days since
// 1970-01-01) as int32; BIGINT, TIMESTAMP and TIMESTAMP_NTZ (microseconds
// since the epoch) as int64; STRING, DECIMAL (decimal text) and VARIANT (JSON
// text) as string; BINARY as bytes; FLOAT, DOUBLE, BOOLEAN as themselves;
// ARRAY as a repeated field; MAP as a map field; STRUCT as a nested message.
// sint32/sfixed32 and sint64/sfixed64 are accepted where int32 and int64 are.
// Protobuf has no repeated-of-repeated, so an ARRAY or MAP that is itself an
// array element or a map value travels in a message whose only field is the
// repeated or map field (any name).
//
// A table missing at Bind is created from the descriptor when autoCreate is
// set, mapping the types plainly (int32 -> INT, int64 -> BIGINT, message ->
// STRUCT, ...); its ARRAY and MAP columns are NOT NULL. Two streams racing to
// create one table are serialized: the second binds to the first one's
// table, or gets the *SchemaError.
//
// Check reads each record straight off the protobuf wire format, guided by
// a plan compiled at Bind (field number -> column, wire type, Delta type),
// independently of any client encoder and without allocating. It reads as
// protobuf's own parser does (a singular field sent twice: the last value,
// or for a message the merge; a oneof: its last member; repeated scalars
// packed or not; a map entry without key or value: the default; a later
// map entry replaces one with the same key) and rejects: bytes that do not
// decode (protobuf's error; messages nest at most 128 deep), unknown fields
// (which is also where a known field sent with the wrong wire type lands),
// a missing required field, TINYINT/SMALLINT values out of range, DATE and
// TIMESTAMP values outside 0001-01-01..9999-12-31, DECIMAL text that does
// not parse or does not fit its precision and scale (digits past the scale
// must be zeros), STRING values that are not UTF-8, VARIANT values that are
// not JSON. The first bad value in column order is reported (map entries
// in key order). The materializer reads records with the same plan
// straight into the table's Arrow builders.
//
// # Durability
//
// Append encodes the records into frames (length, CRC-32C) on the caller's
// goroutine and queues them for the table's writer goroutine. The writer
// writes everything queued, fsyncs once, and only then sends nil on each
// request's channel, in the order the appends were made: appends arriving
// during an fsync share the next one (group commit). A failed write or fsync
// fails that group and every later append of the table (the file's state is
// unknown after a failed fsync). Append does not check records: call Check
// first. A record that still fails to decode is skipped by the materializer
// and counted in TableStats.Rejected.
//
// # Materialization and recovery
//
// One materializer goroutine per Lake writes, every MaterializeInterval and
// on Materialize and Close, the durable records each table does not hold
// yet: one Parquet file (snappy) per commit, then the next _delta_log
// version, written to a temporary file, fsynced and hard-linked into place
// so an existing version is never overwritten. The commitInfo of each
// commit records the record-log position it holds ("zerobus":
// {"logPosition": N}); Open resumes from the newest such position, so
// every durable record lands in the table exactly once, whatever moment a
// crash hits. A commit that loses a race for its version (another engine
// committed it) is retried at the next version. A Parquet file written without its commit is never referenced
// and does no harm; a torn frame at the tail of the log (never
// acknowledged) is cut off on Open. Segments whose records are all in the
// table are deleted.
//
// Every 100th version also gets a Delta checkpoint (the protocol, the
// metadata and every live file as one Parquet file, then _last_checkpoint),
// so readers such as deltalake start there instead of replaying every
// commit; the commits are kept. A checkpoint that cannot be written leaves
// its commit in place and is counted in TableStats.CheckpointFailures.
//
// Stats are kept with commits, so they are right after a restart. The Delta
// stats of each file hold numRecords, nullCount of top-level columns, and
// minValues/maxValues of numeric, DATE and TIMESTAMP columns (timestamps
// rounded outward to the millisecond).
//
// # Concurrency
//
// Lake, Table and Binding are safe for concurrent use. Each table has one
// writer goroutine; each Lake has one materializer goroutine; Close stops
// them all.
package lake

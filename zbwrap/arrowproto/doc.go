// Package arrowproto turns Apache Arrow record batches into Zerobus protobuf
// records: it compiles an Arrow schema into a protobuf descriptor, and encodes
// every row of a batch into protobuf wire bytes straight from the Arrow
// buffers.
//
// # Use
//
//	sc, err := arrowproto.NewSchema(rec.Schema())     // once per schema
//	stream.Create(sc.DescriptorBytes())               // CreateIngestStreamRequest.descriptor_proto
//	b, err := sc.Encode(rec)                          // per batch
//	for i, r := range b.Records { send(b.Rows[i], r) }
//	for _, e := range b.Errors { report(e.Row, e.Column, e.Reason) }
//
// [Schema.EncodeFramed] also frames each record as a field of a containing
// message (tag and length before it), so that a run of records is one
// contiguous range of [Batch.Frames] that a request can carry without a copy.
// [Batch.Release] gives a batch's memory back for the next Encode to reuse:
//
//	b, err := sc.EncodeFramed(rec, 1) // ProtoEncodedRecordBatch.records
//	send(b.Frames)
//	b.Release() // once nothing reads b.Frames any more
//
// A [Cache] compiles each distinct schema once for a stream of batches:
//
//	cache := arrowproto.NewCache(16)
//	sc, err := cache.Get(rec.Schema())
//
// [NewSchemaWithDescriptor] uses a descriptor the caller already has (from a
// .proto file or from the table) instead of generating one.
//
// # The descriptor
//
// NewSchema generates one self-contained proto2 message (named "Record"
// unless [WithMessageName] says otherwise): one field per column, numbered
// 1..N in column order, every field optional or repeated. Nested message
// types are declared inside it and referred to by relative names, so the
// descriptor means the same whatever package a server puts it in:
//
//   - a struct column "addr" is a message "addr_Struct" (a struct at path
//     "a.b" is "a_b_Struct");
//   - a map column "tags" is protobuf's map: a repeated entry message
//     "TagsEntry" (key = 1, value = 2, option map_entry) declared, as protobuf
//     requires, inside the message holding the field;
//   - a list column is a repeated field of its element type.
//
// Protobuf has no repeated field of repeated fields, and a map value cannot be
// repeated. So a list (or map) that is itself a list element or a map value
// becomes a wrapper message named "<path>_List" with exactly one field,
// "element" = 1, holding the inner list (or map). For example
//
//	matrix: list<list<int64>>
//
// becomes
//
//	repeated matrix_element_List matrix = 1;
//	message matrix_element_List { repeated int64 element = 1; }
//
// and a row [[1, 2], [], [3]] is three matrix messages: {element: [1, 2]},
// {} and {element: [3]}. Empty inner lists are kept as empty messages, so the
// shape of the data survives. In Delta terms the column is
// ARRAY<STRUCT<element: ARRAY<BIGINT>>>.
//
// Should a generated name collide with a column name, "_2", "_3", ... is
// appended. Column names must be ASCII letters, digits and underscore, not
// starting with a digit, and unique within their struct; at most 2000 columns
// and 10 levels of nested messages are allowed.
//
// # Type mapping
//
//	Arrow                                    protobuf   value
//	bool                                     bool
//	int8, int16, int32, uint8, uint16        int32
//	int64, uint32                            int64
//	uint64                                   int64      above 2^63-1 is a row error
//	float16, float32                         float
//	float64                                  double
//	utf8, large_utf8, utf8_view              string     bytes as stored; not UTF-8 is a row error
//	binary, large_binary, binary_view,
//	fixed_size_binary                        bytes
//	date32                                   int32      days since 1970-01-01
//	date64                                   int32      days (floor of ms / 86,400,000)
//	timestamp (any unit, with or without tz) int64      microseconds; ns rounds toward -inf
//	time32, time64                           int64      microseconds since midnight
//	duration                                 int64      microseconds
//	decimal32/64/128/256                     string     exact text: "-12.340"
//	dictionary<k, v>                         as v       values looked up
//	run_end_encoded<v>                       as v
//	extension types                          as their storage type
//	null                                     string     never set
//	list, large_list, fixed_size_list,
//	list_view, large_list_view               repeated element
//	struct                                   nested message
//	map<k, v>                                map<k, v>  k: integers, bool, strings, decimals;
//	                                                    a key twice in one map is a row error
//	union, interval                          schema error
//
// Conversions that overflow (a timestamp in seconds beyond the int64
// microsecond range, a date64 beyond the int32 day range) are row errors.
// Repeated numeric and bool fields are written packed, which every protobuf
// parser accepts for proto2 fields too.
//
// # Nulls and row errors
//
// A null value is an absent field; a null struct is an absent message; a null
// or empty list, and a null or empty map, are an absent repeated field.
// Protobuf cannot carry a null inside a list or as a map value, so those, like
// a uint64 above 2^63-1 or a record over 4,194,285 bytes ([MaxRecordSize],
// see [WithMaxRecordSize]), make the row fail. So do a string value that is
// not valid UTF-8 (protobuf strings must be, and the service rejects a whole
// request for one such value; Arrow producers do not always check, and a
// string column in a bytes field of a caller's descriptor is not checked) and
// a map value that holds a key twice (a protobuf map keeps one value per key:
// the others would be dropped silently). Keys are compared as protobuf
// compares them: integers after unit conversion, decimals by value. A row that fails never fails
// the batch: [Batch.Errors] lists it with its row index, the column path and
// the reason ([RowError]), and every other row is encoded. [Batch.Rows] gives
// the row index of each record. Column paths name struct fields with dots,
// list elements with "[]" and map parts with ".key" and ".value":
// "orders[].lines[].sku", "attrs.value".
//
// # User-supplied descriptors
//
// [NewSchemaWithDescriptor] checks a descriptor against the Arrow schema and
// encodes with its field numbers: every column, at every level, needs a field
// of the same name; list and map columns need repeated fields (a list may also
// be a singular message with one repeated field), structs need message fields,
// maps need an entry message with "key" and "value" fields (a map entry, or a
// plain repeated message), and lists inside lists or map values need a message
// with exactly one repeated field. Scalar fields may be any protobuf type that
// holds every value of the column: an int8 column fits int32, sint32,
// sfixed32, int64, ...; uint columns also fit uint32/fixed32 and
// uint64/fixed64 (uint64 into uint64 or fixed64 has no overflow error);
// float16 and float32 fit float and double; utf8 fits string and bytes.
// A required field turns a null into a row error, and a required field with no
// column is a schema error. Fields without a column are left unset. The
// descriptor must respect the service limits: at most 10 levels of nested
// declarations, at most 2000 fields per message, field numbers in
// 1..536870911 outside 19000-19999. Type names may be relative or fully
// qualified, with or without a package.
//
// # Errors
//
// Schema problems are [*SchemaError] values naming the column, matched with
// errors.Is against [ErrUnsupportedType], [ErrInvalidName], [ErrSchemaLimit]
// and [ErrIncompatibleDescriptor]. Encode fails only for a batch of another
// schema ([ErrSchemaMismatch]) or with malformed Arrow buffers
// ([ErrInvalidData]).
//
// What Encode can check depends on what Go knows of the buffers. Before
// reading a column it checks that offsets never decrease and end within the
// values, that validity, value, offset and view buffers are as long as the
// array needs, that list views and run ends stay within their values and that
// dictionary indices stay within the dictionary; then, as row errors, that
// strings are UTF-8 and that no map holds a key twice. For arrays read from
// Arrow IPC or built in Go, whose buffers carry their lengths, malformed input
// is therefore an error, not a panic. The Arrow C data interface carries no
// buffer lengths (but for the data buffers of view types): arrow-go's import
// derives them from the array's own length, offset and offsets, so the checks
// above cannot catch a buffer shorter than the array claims. A string column
// whose last offset points past its data buffer, say, is read out of bounds,
// which crashes the process or sends neighbouring memory as data. Whoever
// hands over arrays through the C data interface must hand over valid ones.
// The Python package does this for pyarrow input: pyarrow knows its buffers'
// lengths, and its cheap validate() (no data scan) checks every offset range
// against them before a Table, RecordBatch or reader batch crosses over.
//
// # Concurrency and cost
//
// A [Schema] is immutable: call Encode from as many goroutines as you like. A
// [Cache] is safe for concurrent use and compiles a new schema once even when
// many goroutines ask for it at the same time.
//
// Encode makes two passes, column by column: the first adds up every row's
// size (and the length of every nested message and packed list), the second
// writes every column into every row at the row's cursor. All records of a
// batch share one buffer, sized exactly; the number of allocations per batch
// does not depend on the number of rows, and is zero once released batches
// are reused: a Schema keeps the memory of released batches (at most 256 of
// them and 64 MiB) and hands the smallest buffer that fits to the next Encode,
// without zeroing it (every byte of a record is written). No per-row message
// objects are built. The Batch does not reference the Arrow memory, so the
// record batch can be released as soon as Encode returns.
package arrowproto

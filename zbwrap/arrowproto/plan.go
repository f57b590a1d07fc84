package arrowproto

// The plan is built once per schema. It has two parts:
//
//   - colSpecs mirror the layers of the Arrow data: one per array the encoder
//     reads (a struct child, a list's values, a dictionary's values, the values
//     of a run-end encoded array). Each batch binds every colSpec to exactly one
//     array (the col with the same index).
//   - fields and values mirror the protobuf message: a field knows its tag, the
//     colSpec it reads, and how to encode the value found there.

// layout is how an array maps its logical elements to values.
type layout uint8

const (
	layPlain layout = iota // values are in the array itself
	layDict                // dictionary indices; values in child spec
	layREE                 // run-end encoded; values in child spec
)

// vkind is the physical kind of a plain array (and of dictionary indices and
// run ends), with the unit conversions folded in.
type vkind uint8

const (
	kNull vkind = iota
	kBool
	kInt8
	kInt16
	kInt32
	kInt64
	kUint8
	kUint16
	kUint32
	kUint64
	kFloat16
	kFloat32
	kFloat64
	kDate64    // int64 milliseconds, encoded as days (floor)
	kScaled32  // int32 times mult (time32 to microseconds)
	kScaled64  // int64 times mult (seconds or milliseconds to microseconds)
	kFloor64   // int64 floor-divided by div (nanoseconds to microseconds)
	kDecimal32 // decimals, encoded as exact text with scale
	kDecimal64
	kDecimal128
	kDecimal256
	kBinary // binary and utf8: int32 offsets
	kLargeBinary
	kBinaryView
	kFixedBinary
	kStruct
	kList
	kLargeList
	kListView
	kLargeListView
	kFixedList
	kMap
)

func (k vkind) isList() bool { return k >= kList }

// colSpec is one array layer of the schema.
type colSpec struct {
	lay      layout
	kind     vkind // plain kind, or index / run-end kind of dict and REE layers
	typeID   int   // expected arrow.Type of the array data (extension unwrapped)
	width    int   // bytes per fixed-width value; fixed_size_list length
	mult     int64 // kScaled32/kScaled64 multiplier
	div      int64 // kFloor64/kDate64 divisor
	scale    int32 // decimal scale
	utf8     bool  // binary-like values read into a protobuf string field: each must be UTF-8
	children []int // struct fields; list/map values; dict/REE values
	names    []string
	path     string
}

// wireKind is how a scalar value goes on the wire.
type wireKind uint8

const (
	wVarint  wireKind = iota // int32, int64, uint32, uint64
	wZigzag                  // sint32, sint64
	wFixed32                 // fixed32, sfixed32
	wFixed64                 // fixed64, sfixed64
	wFloat                   // float
	wDouble                  // double
	wBool                    // bool
	wBytes                   // string, bytes (including decimal text)
	wMessage                 // nested message
	wNever                   // the Arrow null type: the field is never set
)

// wireType is the protobuf wire type of a field holding one value of kind w.
func (w wireKind) wireType() uint64 {
	switch w {
	case wFixed32, wFloat:
		return 5
	case wFixed64, wDouble:
		return 1
	case wBytes, wMessage:
		return 2
	}
	return 0
}

// packable reports whether a repeated field of this kind is written packed.
func (w wireKind) packable() bool { return w <= wBool }

// field is one protobuf field of a message, read from colSpec col.
type field struct {
	path     string
	epath    string // repeated: path of the elements
	fast     fastKind
	top      int // index among the top-level fields
	nv       int // fast fields: index of the unpacked validity table
	num      int32
	tag      uint64 // the tag's varint bytes, little-endian packed
	tagLen   int
	col      int  // spec of the values (singular) or of the lists (repeated)
	ecol     int  // repeated: spec of the list elements
	rep      bool // repeated
	packed   bool
	packFast bool   // packed elements of a plain column of a common kind (packedSize)
	required bool   // proto2 required: a null is a row error
	nullErr  string // non-empty: a null is a row error with this reason
	elemNull string // repeated: reason for a null element
	slot     int    // packed: table of payload sizes per list, -1 if none
	val      *value // the value (singular) or the element (repeated)
}

// value is how one value is encoded: a scalar or a message.
type value struct {
	wire     wireKind
	check32  bool     // must fit int32 (date64 days into a 32-bit field)
	ovf64    bool     // uint64 source into a signed 64-bit field: > 2^63-1 is a row error
	mapKeys  bool     // a map entry with map semantics: a key twice in one map is a row error
	fields   []*field // message fields
	slot     int      // message: table of body sizes per element, -1 if none
	fastKind vkind    // leaf kind, for the column fast paths
}

func (f *field) setTag(wt uint64) {
	t := uint64(f.num)<<3 | wt
	f.tag, f.tagLen = 0, 0
	for shift := 0; ; shift += 8 {
		b := t & 0x7f
		t >>= 7
		if t != 0 {
			b |= 0x80
		}
		f.tag |= b << shift
		f.tagLen++
		if t == 0 {
			return
		}
	}
}

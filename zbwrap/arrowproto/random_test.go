package arrowproto

import (
	"bytes"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/decimal256"
	"github.com/apache/arrow-go/v18/arrow/extensions"
	"github.com/apache/arrow-go/v18/arrow/float16"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// A random schema and data generator covering every mapped Arrow type,
// nested up to a given depth, with nulls, empty values, extremes, values that
// make rows fail (uint64 above 2^63-1, timestamps that overflow, null list
// elements and map values), overlapping list views, dictionaries, run-end
// encoding, extension types and non-zero offsets at every level.

type randGen struct {
	r     *rand.Rand
	names int
}

func newRandGen(seed uint64) *randGen {
	return &randGen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (g *randGen) name() string {
	g.names++
	switch g.r.IntN(4) {
	case 0:
		return fmt.Sprintf("Col_%d", g.names)
	case 1:
		return fmt.Sprintf("_x%d", g.names)
	}
	return fmt.Sprintf("c%d", g.names)
}

var timeUnits = []arrow.TimeUnit{arrow.Second, arrow.Millisecond, arrow.Microsecond, arrow.Nanosecond}

// scalarType returns a random scalar type.
func (g *randGen) scalarType() arrow.DataType {
	r := g.r
	switch r.IntN(30) {
	case 0:
		return arrow.FixedWidthTypes.Boolean
	case 1:
		return arrow.PrimitiveTypes.Int8
	case 2:
		return arrow.PrimitiveTypes.Int16
	case 3:
		return arrow.PrimitiveTypes.Int32
	case 4:
		return arrow.PrimitiveTypes.Int64
	case 5:
		return arrow.PrimitiveTypes.Uint8
	case 6:
		return arrow.PrimitiveTypes.Uint16
	case 7:
		return arrow.PrimitiveTypes.Uint32
	case 8:
		return arrow.PrimitiveTypes.Uint64
	case 9:
		return arrow.FixedWidthTypes.Float16
	case 10:
		return arrow.PrimitiveTypes.Float32
	case 11:
		return arrow.PrimitiveTypes.Float64
	case 12:
		return arrow.BinaryTypes.String
	case 13:
		return arrow.BinaryTypes.LargeString
	case 14:
		return arrow.BinaryTypes.StringView
	case 15:
		return arrow.BinaryTypes.Binary
	case 16:
		return arrow.BinaryTypes.LargeBinary
	case 17:
		return arrow.BinaryTypes.BinaryView
	case 18:
		return &arrow.FixedSizeBinaryType{ByteWidth: 1 + r.IntN(20)}
	case 19:
		return arrow.FixedWidthTypes.Date32
	case 20:
		return arrow.FixedWidthTypes.Date64
	case 21:
		tz := ""
		if r.IntN(2) == 0 {
			tz = "UTC"
		}
		return &arrow.TimestampType{Unit: timeUnits[r.IntN(4)], TimeZone: tz}
	case 22:
		if r.IntN(2) == 0 {
			return &arrow.Time32Type{Unit: timeUnits[r.IntN(2)]}
		}
		return &arrow.Time64Type{Unit: timeUnits[2+r.IntN(2)]}
	case 23:
		return &arrow.DurationType{Unit: timeUnits[r.IntN(4)]}
	case 24:
		p := 1 + r.IntN(9)
		return &arrow.Decimal32Type{Precision: int32(p), Scale: int32(r.IntN(p+3) - 2)}
	case 25:
		p := 1 + r.IntN(18)
		return &arrow.Decimal64Type{Precision: int32(p), Scale: int32(r.IntN(p+3) - 2)}
	case 26:
		p := 1 + r.IntN(38)
		return &arrow.Decimal128Type{Precision: int32(p), Scale: int32(r.IntN(p+3) - 2)}
	case 27:
		p := 1 + r.IntN(76)
		return &arrow.Decimal256Type{Precision: int32(p), Scale: int32(r.IntN(p+3) - 2)}
	case 28:
		return arrow.Null
	}
	switch r.IntN(3) {
	case 0:
		return extensions.NewUUIDType()
	case 1:
		jt, _ := extensions.NewJSONType(arrow.BinaryTypes.String)
		return jt
	}
	return extensions.NewBool8Type()
}

// keyType returns a random type that protobuf can key a map on.
func (g *randGen) keyType() arrow.DataType {
	switch g.r.IntN(8) {
	case 0:
		return arrow.PrimitiveTypes.Int32
	case 1:
		return arrow.PrimitiveTypes.Int64
	case 2:
		return arrow.FixedWidthTypes.Boolean
	case 3:
		return arrow.PrimitiveTypes.Uint8
	case 4:
		return arrow.BinaryTypes.StringView
	case 5:
		return &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int16, ValueType: arrow.BinaryTypes.String}
	case 6:
		return &arrow.Decimal128Type{Precision: 10, Scale: 2}
	}
	return arrow.BinaryTypes.String
}

var indexTypes = []arrow.DataType{
	arrow.PrimitiveTypes.Int8, arrow.PrimitiveTypes.Uint8, arrow.PrimitiveTypes.Int16, arrow.PrimitiveTypes.Uint16,
	arrow.PrimitiveTypes.Int32, arrow.PrimitiveTypes.Uint32, arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Uint64,
}

var runEndTypes = []arrow.DataType{arrow.PrimitiveTypes.Int16, arrow.PrimitiveTypes.Int32, arrow.PrimitiveTypes.Int64}

// typ returns a random type nested at most depth levels.
func (g *randGen) typ(depth int) arrow.DataType {
	r := g.r
	if depth <= 0 || r.IntN(3) == 0 {
		switch r.IntN(12) {
		case 0:
			return &arrow.DictionaryType{IndexType: indexTypes[r.IntN(len(indexTypes))], ValueType: g.scalarType()}
		case 1:
			return arrow.RunEndEncodedOf(runEndTypes[r.IntN(3)], g.scalarType())
		}
		return g.scalarType()
	}
	switch r.IntN(11) {
	case 0, 1:
		n := 1 + r.IntN(4)
		fs := make([]arrow.Field, n)
		for i := range fs {
			fs[i] = arrow.Field{Name: g.name(), Type: g.typ(depth - 1), Nullable: true}
		}
		return arrow.StructOf(fs...)
	case 2:
		return arrow.ListOf(g.typ(depth - 1))
	case 3:
		return arrow.LargeListOf(g.typ(depth - 1))
	case 4:
		return arrow.ListViewOf(g.typ(depth - 1))
	case 5:
		return arrow.LargeListViewOf(g.typ(depth - 1))
	case 6:
		return arrow.FixedSizeListOf(int32(1+r.IntN(3)), g.typ(depth-1))
	case 7, 8:
		return arrow.MapOf(g.keyType(), g.typ(depth-1))
	case 9:
		vt := g.typ(depth - 1)
		for vt.ID() == arrow.DICTIONARY {
			vt = g.typ(depth - 1) // no dictionary of dictionaries
		}
		return &arrow.DictionaryType{IndexType: indexTypes[r.IntN(len(indexTypes))], ValueType: vt}
	}
	if r.IntN(2) == 0 {
		return arrow.RunEndEncodedOf(runEndTypes[r.IntN(3)], g.typ(depth-1))
	}
	// arrow-go cannot put a dictionary directly under an extension type.
	st := g.typ(depth - 1)
	for st.ID() == arrow.DICTIONARY {
		st = g.typ(depth - 1)
	}
	return extensions.NewOpaqueType(st, "test.opaque", "arrowproto")
}

func (g *randGen) schema(cols, depth int) *arrow.Schema {
	fs := make([]arrow.Field, cols)
	for i := range fs {
		fs[i] = arrow.Field{Name: g.name(), Type: g.typ(depth), Nullable: true}
	}
	return arrow.NewSchema(fs, nil)
}

// record returns n random rows of s.
func (g *randGen) record(s *arrow.Schema, n int) arrow.RecordBatch {
	cols := make([]arrow.Array, s.NumFields())
	for i, f := range s.Fields() {
		cols[i] = g.array(f.Type, n, g.nullProb())
	}
	return array.NewRecordBatch(s, cols, int64(n))
}

func (g *randGen) nullProb() float64 {
	return []float64{0, 0, 0.1, 0.3}[g.r.IntN(4)]
}

// bitmap returns a validity bitmap for n values (nil when none is null).
func (g *randGen) bitmap(n int, p float64) (*memory.Buffer, int) {
	if p == 0 {
		return nil, 0
	}
	b := make([]byte, (n+7)/8+1)
	nulls := 0
	for i := 0; i < n; i++ {
		if g.r.Float64() >= p {
			b[i/8] |= 1 << (i % 8)
		} else {
			nulls++
		}
	}
	return memory.NewBufferBytes(b), nulls
}

// array returns a random array of type dt with n elements. With some
// probability it is a slice of a longer array, so offsets are not zero.
func (g *randGen) array(dt arrow.DataType, n int, p float64) arrow.Array {
	if g.r.IntN(4) == 0 {
		lo, hi := g.r.IntN(3), g.r.IntN(3)
		a := g.build(dt, lo+n+hi, p)
		return array.NewSlice(a, int64(lo), int64(lo+n))
	}
	return g.build(dt, n, p)
}

func (g *randGen) build(dt arrow.DataType, n int, p float64) arrow.Array {
	r := g.r
	switch t := dt.(type) {
	case arrow.ExtensionType:
		if t.ExtensionName() == "arrow.uuid" || t.ExtensionName() == "arrow.bool8" || t.ExtensionName() == "arrow.json" {
			return array.NewExtensionArrayWithStorage(t, g.array(t.StorageType(), n, p))
		}
		return array.NewExtensionArrayWithStorage(t, g.array(t.StorageType(), n, p))
	case *arrow.DictionaryType:
		dn := r.IntN(6)
		if n > 0 && dn == 0 {
			dn = 1
		}
		dict := g.array(t.ValueType, dn, g.nullProb()/2)
		ib := array.NewBuilder(mem, t.IndexType)
		for i := 0; i < n; i++ {
			if r.Float64() < p {
				ib.AppendNull()
				continue
			}
			appendIndex(ib, r.IntN(dn))
		}
		return array.NewDictionaryArray(t, ib.NewArray(), dict)
	case *arrow.RunEndEncodedType:
		var ends []int64
		for at := 0; at < n; {
			at += 1 + r.IntN(4)
			ends = append(ends, int64(min(at, n)))
		}
		eb := array.NewBuilder(mem, t.RunEnds())
		for _, e := range ends {
			appendIndex(eb, int(e))
		}
		vals := g.array(t.Encoded(), len(ends), p)
		return array.NewRunEndEncodedArray(eb.NewArray(), vals, n, 0)
	case *arrow.StructType:
		valid, nulls := g.bitmap(n, p)
		children := make([]arrow.ArrayData, t.NumFields())
		for i, f := range t.Fields() {
			children[i] = g.array(f.Type, n, g.nullProb()).Data()
		}
		return array.MakeFromData(array.NewData(t, n, []*memory.Buffer{valid}, children, nulls, 0))
	case *arrow.MapType:
		valid, nulls := g.bitmap(n, p)
		offs := []int32{0}
		for i := 0; i < n; i++ {
			offs = append(offs, offs[i]+int32(r.IntN(4)))
		}
		total := int(offs[n])
		keys := g.array(t.KeyType(), total, 0)
		items := g.array(t.ItemType(), total, []float64{0, 0, 0.05}[r.IntN(3)])
		entries := array.NewData(t.Elem(), total, []*memory.Buffer{nil}, []arrow.ArrayData{keys.Data(), items.Data()}, 0, 0)
		return array.MakeFromData(array.NewData(t, n, []*memory.Buffer{valid, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(offs))}, []arrow.ArrayData{entries}, nulls, 0))
	case *arrow.FixedSizeListType:
		valid, nulls := g.bitmap(n, p)
		child := g.array(t.Elem(), n*int(t.Len()), []float64{0, 0, 0.03}[r.IntN(3)])
		return array.MakeFromData(array.NewData(t, n, []*memory.Buffer{valid}, []arrow.ArrayData{child.Data()}, nulls, 0))
	case *arrow.ListType, *arrow.LargeListType:
		valid, nulls := g.bitmap(n, p)
		offs := []int64{0}
		for i := 0; i < n; i++ {
			offs = append(offs, offs[i]+int64(r.IntN(4)))
		}
		child := g.array(t.(arrow.ListLikeType).Elem(), int(offs[n]), []float64{0, 0, 0.03}[r.IntN(3)])
		var ob []byte
		if _, ok := t.(*arrow.ListType); ok {
			o32 := make([]int32, len(offs))
			for i, o := range offs {
				o32[i] = int32(o)
			}
			ob = arrow.Int32Traits.CastToBytes(o32)
		} else {
			ob = arrow.Int64Traits.CastToBytes(offs)
		}
		return array.MakeFromData(array.NewData(t, n, []*memory.Buffer{valid, memory.NewBufferBytes(ob)}, []arrow.ArrayData{child.Data()}, nulls, 0))
	case *arrow.ListViewType, *arrow.LargeListViewType:
		valid, nulls := g.bitmap(n, p)
		clen := r.IntN(3 * (n + 1))
		child := g.array(t.(arrow.ListLikeType).Elem(), clen, []float64{0, 0, 0.03}[r.IntN(3)])
		offs, sizes := make([]int64, n), make([]int64, n)
		for i := range offs {
			if clen > 0 {
				offs[i] = int64(r.IntN(clen + 1))
				sizes[i] = int64(r.IntN(min(4, clen-int(offs[i])) + 1))
			}
		}
		var ob, sb []byte
		if _, ok := t.(*arrow.ListViewType); ok {
			o32, s32 := make([]int32, n), make([]int32, n)
			for i := range offs {
				o32[i], s32[i] = int32(offs[i]), int32(sizes[i])
			}
			ob, sb = arrow.Int32Traits.CastToBytes(o32), arrow.Int32Traits.CastToBytes(s32)
		} else {
			ob, sb = arrow.Int64Traits.CastToBytes(offs), arrow.Int64Traits.CastToBytes(sizes)
		}
		return array.MakeFromData(array.NewData(t, n, []*memory.Buffer{valid, memory.NewBufferBytes(ob), memory.NewBufferBytes(sb)}, []arrow.ArrayData{child.Data()}, nulls, 0))
	case *arrow.NullType:
		return array.NewNull(n)
	}
	b := array.NewBuilder(mem, dt)
	for i := 0; i < n; i++ {
		if r.Float64() < p {
			b.AppendNull()
			continue
		}
		g.appendScalar(b)
	}
	return b.NewArray()
}

func appendIndex(b array.Builder, v int) {
	switch b := b.(type) {
	case *array.Int8Builder:
		b.Append(int8(v))
	case *array.Uint8Builder:
		b.Append(uint8(v))
	case *array.Int16Builder:
		b.Append(int16(v))
	case *array.Uint16Builder:
		b.Append(uint16(v))
	case *array.Int32Builder:
		b.Append(int32(v))
	case *array.Uint32Builder:
		b.Append(uint32(v))
	case *array.Int64Builder:
		b.Append(int64(v))
	case *array.Uint64Builder:
		b.Append(uint64(v))
	default:
		panic(fmt.Sprintf("index builder %T", b))
	}
}

// integer returns a random integer of the given bit width, often an extreme.
func (g *randGen) integer(bits int, signed bool) int64 {
	r := g.r
	switch r.IntN(8) {
	case 0:
		return 0
	case 1:
		if signed {
			return -1
		}
		return 1
	case 2:
		if signed {
			return -1 << (bits - 1)
		}
		return 0
	case 3:
		if signed {
			return 1<<(bits-1) - 1
		}
		if bits == 64 {
			return -1 // all ones
		}
		return 1<<bits - 1
	}
	v := int64(r.Uint64())
	if bits < 64 {
		v = v >> (64 - bits)
		if !signed {
			v &= 1<<bits - 1
		}
	}
	if r.IntN(2) == 0 && bits > 16 {
		v >>= r.IntN(bits) // small values too
	}
	return v
}

func (g *randGen) bytes() []byte {
	r := g.r
	n := []int{0, 1, 5, 12, 13, 30, 200}[r.IntN(7)]
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	return b
}

func (g *randGen) text() string {
	r := g.r
	n := []int{0, 1, 5, 12, 13, 30, 200}[r.IntN(7)]
	runes := []rune("abcXYZ019 _-é✓中")
	b := make([]rune, n)
	for i := range b {
		b[i] = runes[r.IntN(len(runes))]
	}
	return string(b)
}

func (g *randGen) decimal(prec int32) *big.Int {
	r := g.r
	lim := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(prec)), nil)
	// Random digits, fewer than prec of them.
	v := new(big.Int)
	for d := r.IntN(int(prec)); d >= 0; d-- {
		v.Mul(v, big.NewInt(10))
		v.Add(v, big.NewInt(int64(r.IntN(10))))
	}
	v.Mod(v, lim)
	switch r.IntN(5) {
	case 0:
		v.Sub(lim, big.NewInt(1)) // largest
	case 1:
		v.SetInt64(0)
	}
	if r.IntN(2) == 0 {
		v.Neg(v)
	}
	return v
}

func (g *randGen) appendScalar(b array.Builder) {
	r := g.r
	switch b := b.(type) {
	case *array.BooleanBuilder:
		b.Append(r.IntN(2) == 0)
	case *array.Int8Builder:
		b.Append(int8(g.integer(8, true)))
	case *array.Int16Builder:
		b.Append(int16(g.integer(16, true)))
	case *array.Int32Builder:
		b.Append(int32(g.integer(32, true)))
	case *array.Int64Builder:
		b.Append(g.integer(64, true))
	case *array.Uint8Builder:
		b.Append(uint8(g.integer(8, false)))
	case *array.Uint16Builder:
		b.Append(uint16(g.integer(16, false)))
	case *array.Uint32Builder:
		b.Append(uint32(g.integer(32, false)))
	case *array.Uint64Builder:
		v := uint64(g.integer(64, false))
		if r.IntN(3) != 0 {
			v &= math.MaxInt64 // most values fit; the others are row errors
		}
		b.Append(v)
	case *array.Float16Builder:
		b.Append(float16.FromBits(uint16(r.Uint32())))
	case *array.Float32Builder:
		if r.IntN(4) == 0 {
			b.Append(math.Float32frombits(r.Uint32()))
		} else {
			b.Append(float32(r.NormFloat64()))
		}
	case *array.Float64Builder:
		if r.IntN(4) == 0 {
			b.Append(math.Float64frombits(r.Uint64()))
		} else {
			b.Append(r.NormFloat64() * 1e6)
		}
	case *array.StringBuilder:
		b.Append(g.text())
	case *array.LargeStringBuilder:
		b.Append(g.text())
	case *array.StringViewBuilder:
		b.Append(g.text())
	case *array.BinaryBuilder:
		b.Append(g.bytes())
	case *array.BinaryViewBuilder:
		b.Append(g.bytes())
	case *array.FixedSizeBinaryBuilder:
		v := make([]byte, b.Type().(*arrow.FixedSizeBinaryType).ByteWidth)
		for i := range v {
			v[i] = byte(r.IntN(256))
		}
		b.Append(v)
	case *array.Date32Builder:
		b.Append(arrow.Date32(g.integer(32, true)))
	case *array.Date64Builder:
		v := g.integer(64, true)
		if r.IntN(4) != 0 {
			v %= 1 << 50 // mostly in the int32 day range
		}
		b.Append(arrow.Date64(v))
	case *array.TimestampBuilder:
		v := g.integer(64, true)
		if r.IntN(4) != 0 {
			v %= 1 << 40
		}
		b.Append(arrow.Timestamp(v))
	case *array.Time32Builder:
		b.Append(arrow.Time32(g.integer(32, true)))
	case *array.Time64Builder:
		b.Append(arrow.Time64(g.integer(64, true)))
	case *array.DurationBuilder:
		v := g.integer(64, true)
		if r.IntN(4) != 0 {
			v %= 1 << 40
		}
		b.Append(arrow.Duration(v))
	case *array.Decimal32Builder:
		b.Append(decimal.Decimal32(g.decimal(b.Type().(*arrow.Decimal32Type).Precision).Int64()))
	case *array.Decimal64Builder:
		b.Append(decimal.Decimal64(g.decimal(b.Type().(*arrow.Decimal64Type).Precision).Int64()))
	case *array.Decimal128Builder:
		b.Append(decimal128.FromBigInt(g.decimal(b.Type().(*arrow.Decimal128Type).Precision)))
	case *array.Decimal256Builder:
		b.Append(decimal256.FromBigInt(g.decimal(b.Type().(*arrow.Decimal256Type).Precision)))
	default:
		panic(fmt.Sprintf("no random values for %T", b))
	}
}

// ipcRoundTrip writes rec as an Arrow IPC stream and reads it back.
func ipcRoundTrip(t testing.TB, rec arrow.RecordBatch) arrow.RecordBatch {
	t.Helper()
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(rec.Schema()))
	if err := w.Write(rec); err != nil {
		t.Fatalf("ipc write: %v\n%s", err, rec.Schema())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rd, err := ipc.NewReader(&buf)
	if err != nil {
		t.Fatalf("ipc read: %v", err)
	}
	defer rd.Release()
	if !rd.Next() {
		t.Fatalf("ipc read: no record: %v\n%s", rd.Err(), rec.Schema())
	}
	out := rd.RecordBatch()
	out.Retain()
	return out
}

func TestRandomSchemasAndData(t *testing.T) {
	seeds := 600
	if testing.Short() {
		seeds = 50
	}
	encoded, failed := 0, 0
	for seed := 0; seed < seeds; seed++ {
		g := newRandGen(uint64(seed))
		s := g.schema(1+g.r.IntN(5), 4)
		rec := g.record(s, g.r.IntN(40))
		sc, err := NewSchema(s)
		if err != nil {
			t.Fatalf("seed %d: NewSchema(%s): %v", seed, s, err)
		}
		b, err := sc.Encode(rec)
		if err != nil {
			t.Fatalf("seed %d: Encode: %v\nschema %s", seed, err, s)
		}
		checkBatchSeed(t, seed, sc, rec, b)
		encoded += len(b.Records)
		failed += len(b.Errors)
		if seed%4 == 0 && !hasListView(s) {
			// The same data after an Arrow IPC round trip (other buffer layouts).
			back := ipcRoundTrip(t, rec)
			b, err := sc.Encode(back)
			if err != nil {
				t.Fatalf("seed %d: Encode after IPC: %v", seed, err)
			}
			checkBatchSeed(t, seed, sc, back, b)
			back.Release()
		}
		if n := rec.NumRows(); n > 2 {
			sl := rec.NewSlice(1, n-1)
			b, err := sc.Encode(sl)
			if err != nil {
				t.Fatalf("seed %d: Encode slice: %v", seed, err)
			}
			checkBatchSeed(t, seed, sc, sl, b)
		}
	}
	t.Logf("%d random rows encoded, %d rows failed as predicted", encoded, failed)
	if encoded == 0 || failed == 0 {
		t.Fatalf("the generator should produce both good rows and failing rows")
	}
}

// hasListView reports whether s uses list views or run-end encoding, which
// arrow-go's IPC writer and reader do not always round-trip (sliced or
// overlapping views, sliced runs).
func hasListView(s *arrow.Schema) bool {
	var walk func(dt arrow.DataType) bool
	walk = func(dt arrow.DataType) bool {
		switch t := dt.(type) {
		case *arrow.ListViewType, *arrow.LargeListViewType, *arrow.RunEndEncodedType:
			return true
		case arrow.ExtensionType:
			return walk(t.StorageType())
		case *arrow.DictionaryType:
			return walk(t.ValueType)
		case arrow.NestedType:
			for _, f := range t.Fields() {
				if walk(f.Type) {
					return true
				}
			}
		}
		return false
	}
	for _, f := range s.Fields() {
		if walk(f.Type) {
			return true
		}
	}
	return false
}

func checkBatchSeed(t *testing.T, seed int, sc *Schema, rec arrow.RecordBatch, b *Batch) {
	t.Helper()
	t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
		checkBatch(t, sc, rec, b)
		checkFramedReuse(t, sc, rec, b)
	})
}

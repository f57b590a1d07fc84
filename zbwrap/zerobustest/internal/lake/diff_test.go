package lake

import (
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// The differential tests hold the lake's wire reader to protobuf's own
// parser (oracle_test.go): for any bytes, the same verdict, the same error,
// and for an accepted record the same Arrow values.

// diffCase is a table and a descriptor for it.
type diffCase struct {
	name string
	cols []Column
	p    *plan
}

// diffCases covers every Delta type, nesting, maps, repeated fields packed
// and not, oneofs, other integer encodings, sparse and maximal field numbers,
// and types nested deeper than protobuf's recursion limit.
func diffCases(t testing.TB) []*diffCase {
	t.Helper()
	var out []*diffCase
	add := func(name string, cols []Column, tweak func(d *descriptorpb.DescriptorProto)) {
		out = append(out, newDiffCase(t, name, cols, tweak))
	}
	T := func(x descriptorpb.FieldDescriptorProto_Type) *descriptorpb.FieldDescriptorProto_Type {
		return x.Enum()
	}
	packed := func(fs ...*descriptorpb.FieldDescriptorProto) {
		for _, f := range fs {
			f.Options = &descriptorpb.FieldOptions{Packed: proto.Bool(true)}
		}
	}
	add("all types", mustColumns(t, allTypesDDL), nil)
	add("encodings", mustColumns(t, allTypesDDL), func(d *descriptorpb.DescriptorProto) {
		fieldOf(d, "id").Type = T(descriptorpb.FieldDescriptorProto_TYPE_SFIXED64)
		fieldOf(d, "i8").Type = T(descriptorpb.FieldDescriptorProto_TYPE_SINT32)
		fieldOf(d, "i16").Type = T(descriptorpb.FieldDescriptorProto_TYPE_SFIXED32)
		fieldOf(d, "i32").Type = T(descriptorpb.FieldDescriptorProto_TYPE_SINT32)
		fieldOf(d, "day").Type = T(descriptorpb.FieldDescriptorProto_TYPE_SFIXED32)
		fieldOf(d, "ts").Type = T(descriptorpb.FieldDescriptorProto_TYPE_SINT64)
		fieldOf(d, "ntz").Type = T(descriptorpb.FieldDescriptorProto_TYPE_SFIXED64)
		fieldOf(d, "InnerMsg", "x").Type = T(descriptorpb.FieldDescriptorProto_TYPE_SINT32)
		fieldOf(d, "ScoresEntry", "value").Type = T(descriptorpb.FieldDescriptorProto_TYPE_SFIXED32)
		fieldOf(d, "InnerMsg", "MEntry", "key").Type = T(descriptorpb.FieldDescriptorProto_TYPE_SINT32)
		fieldOf(d, "ItemsElemMsg", "n").Type = T(descriptorpb.FieldDescriptorProto_TYPE_SINT64)
		packed(fieldOf(d, "NestedElemWrap", "items"))
		// Field numbers out of order, sparse and maximal.
		fieldOf(d, "b").Number = proto.Int32(100)
		fieldOf(d, "i32").Number = proto.Int32(5000)
		fieldOf(d, "s").Number = proto.Int32(int32(protowire.MaxValidNumber))
		fieldOf(d, "InnerMsg", "names").Number = proto.Int32(70000)
		fieldOf(d, "id").Number = proto.Int32(18)
		fieldOf(d, "items").Number = proto.Int32(1)
	})
	add("oneofs", mustColumns(t, "id int not null, a int, s string, st struct<x:int not null, y string>, d double, e bigint, w array<int> not null"),
		func(d *descriptorpb.DescriptorProto) {
			d.OneofDecl = []*descriptorpb.OneofDescriptorProto{{Name: proto.String("first")}, {Name: proto.String("second")}}
			for _, n := range []string{"a", "s", "st"} {
				fieldOf(d, n).OneofIndex = proto.Int32(0)
			}
			for _, n := range []string{"d", "e"} {
				fieldOf(d, n).OneofIndex = proto.Int32(1)
			}
		})
	add("maps", mustColumns(t, `m1 map<int, array<int>> not null, m2 array<map<string,int>> not null,
		m3 map<bigint, struct<k:string not null, v:decimal(5,2)>> not null, m4 map<boolean, decimal(4,1)> not null,
		m5 map<string, variant> not null, m6 map<date, map<string, binary>> not null, m7 map<tinyint, smallint> not null,
		m8 map<string, timestamp> not null, m9 map<smallint, struct<a:array<float> not null>> not null`),
		func(d *descriptorpb.DescriptorProto) {
			fieldOf(d, "M7Entry", "key").Type = T(descriptorpb.FieldDescriptorProto_TYPE_SINT32)
			fieldOf(d, "M8Entry", "value").Type = T(descriptorpb.FieldDescriptorProto_TYPE_SFIXED64)
			fieldOf(d, "M9Entry", "key").Type = T(descriptorpb.FieldDescriptorProto_TYPE_SFIXED32)
		})
	add("packed", mustColumns(t, `id int not null, xs array<int> not null, ys array<double> not null, zs array<boolean> not null,
		ws array<tinyint> not null, ts array<timestamp> not null, fs array<float> not null, ls array<bigint> not null, ds array<date> not null`),
		func(d *descriptorpb.DescriptorProto) {
			packed(fieldOf(d, "xs"), fieldOf(d, "ys"), fieldOf(d, "zs"), fieldOf(d, "ws"), fieldOf(d, "ts"))
			fieldOf(d, "ls").Type = T(descriptorpb.FieldDescriptorProto_TYPE_SINT64)
			fieldOf(d, "ds").Type = T(descriptorpb.FieldDescriptorProto_TYPE_SFIXED32)
			packed(fieldOf(d, "ds"))
		})
	// Deeper than tables may be (the plan does not validate the columns), so
	// protobuf's recursion limit (128 messages, map entries included) is
	// reachable: 130 nested arrays; 120 and 121 nested arrays around five
	// nested maps (entries at even levels 122 to 130, and odd ones 123 to
	// 131); a struct in a struct.
	nest := func(t Type, n int, wrap func(Type) Type) Type {
		for range n {
			t = wrap(t)
		}
		return t
	}
	array := func(e Type) Type { return Type{Kind: Array, Elem: &e} }
	mapOf := func(v Type) Type { return Type{Kind: Map, Key: &Type{Kind: Short}, Elem: &v} }
	strct := func(f Type) Type { return Type{Kind: Struct, Fields: []Column{{Name: "f", Type: f, Nullable: true}}} }
	add("deep", []Column{
		{Name: "a", Type: nest(Type{Kind: String}, 130, array)},
		{Name: "m", Type: nest(nest(Type{Kind: Int}, 5, mapOf), 120, array)},
		{Name: "n", Type: nest(nest(Type{Kind: Int}, 5, mapOf), 121, array)},
		{Name: "s", Type: nest(Type{Kind: Byte}, 2, strct), Nullable: true},
	}, nil)
	return out
}

// newDiffCase compiles the plan of a descriptor for cols (descFor, then
// tweak) without validating the columns.
func newDiffCase(t testing.TB, name string, cols []Column, tweak func(d *descriptorpb.DescriptorProto)) *diffCase {
	t.Helper()
	d := DescriptorFor("Row", cols)
	if tweak != nil {
		tweak(d)
	}
	md, raw, err := compileDescriptor(d)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	p, err := compilePlan(md, raw, cols)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &diffCase{name: name, cols: cols, p: p}
}

// gen makes random records for a plan: mostly valid, with a share of bad
// values and missing required fields.
type gen struct {
	r    *rand.Rand
	bad  int // one value in bad is out of its type's range (0: never)
	stop int // below the top levels, one list, map or nullable field in stop is empty
}

func (g *gen) record(p *plan) []byte {
	g.stop = []int{10, 1000}[g.r.IntN(2)]
	m := g.message(p.md, p.fields, 0)
	// Deterministic, so a failure repeats; mutations reorder map entries.
	b, err := proto.MarshalOptions{AllowPartial: true, Deterministic: true}.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func (g *gen) oneIn(n int) bool { return n > 0 && g.r.IntN(n) == 0 }

// count is how many elements a list or map gets: a few near the top, one
// (mostly) deep down, so that deep types get deep values.
func (g *gen) count(depth int) int {
	if depth < 3 {
		return g.r.IntN(4)
	}
	if g.oneIn(g.stop) {
		return 0
	}
	return 1
}

func (g *gen) message(md protoreflect.MessageDescriptor, fields []fplan, depth int) *dynamicpb.Message {
	m := dynamicpb.NewMessage(md)
	for i := range fields {
		f := &fields[i]
		fd := f.fd
		switch {
		case fd.IsList():
			l := m.Mutable(fd).List()
			for n := g.count(depth); n > 0; n-- {
				l.Append(g.value(fd, f.vp.elem, depth+1))
			}
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			for n := g.count(depth); n > 0; n-- {
				mp.Set(g.value(fd.MapKey(), f.vp.key, depth+1).MapKey(), g.value(fd.MapValue(), f.vp.elem, depth+1))
			}
		case f.nullable && depth < 3 && g.oneIn(4), f.nullable && depth >= 3 && g.oneIn(g.stop), !f.nullable && g.oneIn(g.bad*3):
			// null, or a missing required field
		default:
			m.Set(fd, g.value(fd, f.vp, depth+1))
		}
	}
	return m
}

func (g *gen) value(fd protoreflect.FieldDescriptor, vp *vplan, depth int) protoreflect.Value {
	t := vp.typ
	bad := g.oneIn(g.bad)
	integer := func(lo, hi int64) protoreflect.Value {
		var n int64
		switch {
		case bad && g.oneIn(2):
			n = lo - 1 - g.r.Int64N(3)
		case bad:
			n = hi + 1 + g.r.Int64N(3)
		case g.oneIn(5):
			n = lo
		case g.oneIn(5):
			n = hi
		default:
			n = lo + int64(g.r.Uint64N(uint64(hi-lo)+1))
		}
		if fd.Kind() == protoreflect.Int64Kind || fd.Kind() == protoreflect.Sint64Kind || fd.Kind() == protoreflect.Sfixed64Kind {
			return protoreflect.ValueOfInt64(n)
		}
		return protoreflect.ValueOfInt32(int32(n))
	}
	switch t.Kind {
	case Boolean:
		return protoreflect.ValueOfBool(g.oneIn(2))
	case Byte:
		return integer(-128, 127)
	case Short:
		return integer(-32768, 32767)
	case Int:
		return integer(math.MinInt32, math.MaxInt32)
	case Long:
		bad = false
		return integer(math.MinInt64, math.MaxInt64-1)
	case Date:
		return integer(minDateDays, maxDateDays)
	case Timestamp, TimestampNTZ:
		return integer(minTimeMicros, maxTimeMicros)
	case Float:
		fs := []float32{0, float32(math.Copysign(0, -1)), 1.5, -3.25, float32(math.NaN()), float32(math.Inf(1)), math.MaxFloat32, g.r.Float32()}
		return protoreflect.ValueOfFloat32(fs[g.r.IntN(len(fs))])
	case Double:
		ds := []float64{0, math.Copysign(0, -1), 2.25, -1e300, math.NaN(), math.Inf(-1), math.SmallestNonzeroFloat64, g.r.NormFloat64()}
		return protoreflect.ValueOfFloat64(ds[g.r.IntN(len(ds))])
	case String:
		ss := []string{"", "a", "héllo", "日本", strings.Repeat("x", g.r.IntN(40))}
		s := ss[g.r.IntN(len(ss))]
		if bad {
			s += string([]byte{0xff, 0xc0})
		}
		return protoreflect.ValueOfString(s)
	case Variant:
		vs := []string{`{}`, `{"a":[1,2,{"b":null}]}`, `[1,"x",true]`, `3.5`, `"s"`, `null`}
		if bad {
			vs = []string{``, `{`, `{"a":}`, `nul`, `[1,]`}
		}
		return protoreflect.ValueOfString(vs[g.r.IntN(len(vs))])
	case Decimal:
		return protoreflect.ValueOfString(g.decimal(t.Precision, t.Scale, bad))
	case Binary:
		b := make([]byte, g.r.IntN(6))
		for i := range b {
			b[i] = byte(g.r.IntN(256))
		}
		return protoreflect.ValueOfBytes(b)
	case Struct:
		return protoreflect.ValueOfMessage(g.message(fd.Message(), vp.fields, depth))
	}
	// An ARRAY or MAP in its wrapper message.
	return protoreflect.ValueOfMessage(g.message(fd.Message(), []fplan{{fd: vp.wrap, name: vp.path, vp: vp}}, depth))
}

func (g *gen) decimal(prec, scale int, bad bool) string {
	if bad {
		bs := []string{"", ".", "-", "1.2.3", "1e", "1e12345", "x", " 1", strings.Repeat("9", prec+1), "1." + strings.Repeat("1", scale+1), "1e-" + fmt.Sprint(scale+1)}
		return bs[g.r.IntN(len(bs))]
	}
	digits := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteByte(byte('0' + g.r.IntN(10)))
		}
		return b.String()
	}
	s := digits(g.r.IntN(prec - scale + 1))
	if g.oneIn(2) {
		frac := digits(g.r.IntN(scale + 1))
		if g.oneIn(4) {
			frac += "000"
		}
		s += "." + frac
	}
	if s == "" || s == "." {
		s = "0"
	}
	switch g.r.IntN(6) {
	case 0:
		s = "-" + s
	case 1:
		s = "+" + s
	case 2:
		s += "e0"
	case 3:
		s = "0000" + s
	}
	return s
}

// fields splits the top level of a record into its fields (tag and value);
// nil if it does not parse.
func fields(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		_, _, n := protowire.ConsumeField(b)
		if n < 0 {
			return nil
		}
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

// maxNest bounds how deep mutations look into a record: past any plan.
const maxNest = 140

// nestDepth is how deep length-delimited fields nest in b, read as a
// message (0 if b does not parse as one), up to limit.
func nestDepth(b []byte, limit int) int {
	fs := fields(b)
	if fs == nil || limit == 0 {
		return 0
	}
	d := 1
	for _, f := range fs {
		if body, ok := bodyOf(f); ok && d < limit {
			d = max(d, 1+nestDepth(body, limit-1))
		}
	}
	return d
}

// bodyOf is the body of a length-delimited field.
func bodyOf(f []byte) ([]byte, bool) {
	_, typ, n := protowire.ConsumeTag(f)
	if typ != protowire.BytesType {
		return nil, false
	}
	body, m := protowire.ConsumeBytes(f[n:])
	return body, m > 0 && len(body) > 0
}

// mutate changes a record at a random nesting level (so that deep records
// change deep down too) the ways that matter to a protobuf reader.
func mutate(r *rand.Rand, rec, other []byte) []byte {
	return mutateAt(r, rec, other, r.IntN(nestDepth(rec, maxNest)+1))
}

// mutateAt goes down depth levels through random length-delimited fields
// that parse as messages (less if it finds none) and changes the message
// there.
func mutateAt(r *rand.Rand, rec, other []byte, depth int) []byte {
	if fs := fields(rec); depth > 0 && fs != nil {
		var nested []int
		for i, f := range fs {
			if body, ok := bodyOf(f); ok && fields(body) != nil {
				nested = append(nested, i)
			}
		}
		if len(nested) > 0 {
			i := nested[r.IntN(len(nested))]
			num, typ, n := protowire.ConsumeTag(fs[i])
			body, _ := protowire.ConsumeBytes(fs[i][n:])
			var out []byte
			for j, f := range fs {
				if j == i {
					f = protowire.AppendBytes(protowire.AppendTag(nil, num, typ), mutateAt(r, body, other, depth-1))
				}
				out = append(out, f...)
			}
			return out
		}
	}
	return mutateHere(r, rec, other)
}

// mutateHere changes the fields of one message: duplicated, dropped and
// reordered fields, messages concatenated (protobuf merges them), unknown
// fields, wrong wire types, and plain byte damage.
func mutateHere(r *rand.Rand, rec, other []byte) []byte {
	fs := fields(rec)
	out := append([]byte(nil), rec...)
	switch op := r.IntN(13); {
	case op == 0 && len(fs) > 0: // duplicate a field
		out = append(out, fs[r.IntN(len(fs))]...)
	case op == 1 && len(fs) > 0: // drop a field
		i := r.IntN(len(fs))
		out = out[:0]
		for j, f := range fs {
			if j != i {
				out = append(out, f...)
			}
		}
	case op == 2 && len(fs) > 1: // reorder
		r.Shuffle(len(fs), func(i, j int) { fs[i], fs[j] = fs[j], fs[i] })
		out = out[:0]
		for _, f := range fs {
			out = append(out, f...)
		}
	case op == 3: // concatenate: protobuf merges the two
		out = append(out, other...)
	case op == 4: // an unknown field, or a known number with any wire type
		num := protowire.Number(1 + r.IntN(30))
		switch typ := protowire.Type(r.IntN(6)); typ {
		case protowire.VarintType:
			out = protowire.AppendVarint(protowire.AppendTag(out, num, typ), r.Uint64()>>r.IntN(64))
		case protowire.Fixed32Type:
			out = protowire.AppendFixed32(protowire.AppendTag(out, num, typ), r.Uint32())
		case protowire.Fixed64Type:
			out = protowire.AppendFixed64(protowire.AppendTag(out, num, typ), r.Uint64())
		case protowire.BytesType:
			out = protowire.AppendBytes(protowire.AppendTag(out, num, typ), other[:r.IntN(len(other)+1)])
		case protowire.StartGroupType:
			out = protowire.AppendTag(out, num, typ)
			if r.IntN(3) > 0 {
				out = protowire.AppendTag(out, num, protowire.EndGroupType)
			}
		default:
			out = protowire.AppendTag(out, num, typ)
		}
	case op == 5 && len(fs) > 0: // change a field's wire type
		i := r.IntN(len(fs))
		num, _, n := protowire.ConsumeTag(fs[i])
		out = out[:0]
		for j, f := range fs {
			if j == i {
				out = protowire.AppendTag(out, num, protowire.Type(r.IntN(6)))
				f = f[n:]
			}
			out = append(out, f...)
		}
	case op == 6: // the message twice
		out = append(out, rec...)
	case op == 7 && len(out) > 0: // flip a bit
		out[r.IntN(len(out))] ^= 1 << r.IntN(8)
	case op == 8 && len(out) > 0: // set a byte
		out[r.IntN(len(out))] = byte(r.IntN(256))
	case op == 9: // cut
		out = out[:r.IntN(len(out)+1)]
	case op == 10: // insert bytes
		i := r.IntN(len(out) + 1)
		ins := make([]byte, 1+r.IntN(3))
		for k := range ins {
			ins[k] = byte(r.IntN(256))
		}
		out = append(out[:i], append(ins, out[i:]...)...)
	case op == 11 && len(fs) > 0: // a field moved to the front
		i := r.IntN(len(fs))
		out = append(append([]byte(nil), fs[i]...), out...)
	case op == 12: // emptied
		out = out[:0]
	}
	return out
}

// differ holds the wire reader to protobuf's parser on one case. Accepted
// records are appended to one set of builders per reader, and their values
// compared every few rows (building an Arrow batch of a deep type is slow).
type differ struct {
	c          *diffCase
	d          decoder
	want, got  *array.RecordBuilder
	nodes      []*bnode
	recs       [][]byte // the records in the builders
	every      int
	seen, accd int
}

func newDiffer(c *diffCase, every int) *differ {
	schema := ArrowSchema(c.cols)
	df := &differ{c: c, every: every,
		want: array.NewRecordBuilder(memory.DefaultAllocator, schema),
		got:  array.NewRecordBuilder(memory.DefaultAllocator, schema)}
	df.nodes = newNodes(df.got.Fields(), c.cols, nil)
	return df
}

func (df *differ) release() {
	df.want.Release()
	df.got.Release()
}

// one requires the same verdict and error from both readers, and appends
// an accepted record's values.
func (df *differ) one(t testing.TB, rec []byte) {
	t.Helper()
	c := df.c
	fe := c.p.check(&df.d, rec)
	m, ofe, panicked := safeOracle(c.p, rec)
	if panicked {
		// protobuf's reflective parser panics on a map entry whose key is
		// followed by a key field of the wrong wire type; the wire reader
		// keeps the first key, as protobuf's generated code does
		// (TestMapKeyWrongWireType).
		return
	}
	df.seen++
	if (fe == nil) != (ofe == nil) {
		t.Fatalf("%s: record %s\nwire reader: %v\nprotobuf:    %v", c.name, hex.EncodeToString(rec), fe, ofe)
	}
	if fe != nil {
		norm := func(s string) string { return strings.ReplaceAll(s, "\u00a0", " ") }
		if fe.column != ofe.column || norm(fe.reason) != norm(ofe.reason) {
			t.Fatalf("%s: record %s\nwire reader: %q: %s\nprotobuf:    %q: %s", c.name, hex.EncodeToString(rec), fe.column, fe.reason, ofe.column, ofe.reason)
		}
		return
	}
	df.accd++
	oracleAppend(df.want.Fields(), m, c.p.fields)
	c.p.appendRecord(&df.d, rec, df.nodes)
	df.recs = append(df.recs, rec)
	if len(df.recs) >= df.every {
		df.flush(t)
	}
}

// flush compares the values appended so far, naming the first record
// whose values differ.
func (df *differ) flush(t testing.TB) {
	t.Helper()
	w, g := df.want.NewRecordBatch(), df.got.NewRecordBatch()
	defer w.Release()
	defer g.Release()
	recs := df.recs
	df.recs = df.recs[:0]
	eq := func(a, b arrow.Array) bool {
		return array.ApproxEqual(a, b, array.WithNaNsEqual(true), array.WithAbsTolerance(0))
	}
	for i := range df.c.cols {
		wc, gc := w.Column(i), g.Column(i)
		if eq(wc, gc) {
			continue
		}
		for row := range recs {
			ws, gs := array.NewSlice(wc, int64(row), int64(row+1)), array.NewSlice(gc, int64(row), int64(row+1))
			same := eq(ws, gs)
			ws.Release()
			gs.Release()
			if !same || row == len(recs)-1 {
				t.Fatalf("%s: record %s: column %s\nwire reader: %v\nprotobuf:    %v", df.c.name, hex.EncodeToString(recs[row]), df.c.cols[i].Name, gc, wc)
			}
		}
	}
}

func safeOracle(p *plan, rec []byte) (m *dynamicpb.Message, fe *fieldErr, panicked bool) {
	defer func() {
		if recover() != nil {
			m, fe, panicked = nil, nil, true
		}
	}()
	m, fe = oracleDecode(p, rec)
	return m, fe, false
}

// TestDecodeMatchesProtobuf runs random records, their mutations and random
// bytes through both readers.
func TestDecodeMatchesProtobuf(t *testing.T) {
	for ci, c := range diffCases(t) {
		t.Run(c.name, func(t *testing.T) {
			iters := 1500
			if c.name == "deep" {
				iters = 100 // slow to build in Arrow; the fuzz target has it too
			}
			if testing.Short() {
				iters /= 5
			}
			r := rand.New(rand.NewPCG(uint64(ci), 7))
			g := &gen{r: r, bad: 40}
			df := newDiffer(c, 64)
			defer df.release()
			for range iters {
				rec := g.record(c.p)
				switch k := r.IntN(10); {
				case k < 3:
					df.one(t, rec)
				case k < 9:
					m := mutate(r, rec, g.record(c.p))
					for r.IntN(2) == 0 {
						m = mutate(r, m, rec)
					}
					df.one(t, m)
				default:
					b := make([]byte, r.IntN(24))
					for i := range b {
						b[i] = byte(r.IntN(256))
					}
					df.one(t, b)
				}
			}
			df.flush(t)
			t.Logf("%d of %d records accepted", df.accd, df.seen)
			// Both verdicts must be well represented, or the test is weak.
			if df.accd < df.seen/10 || df.seen-df.accd < df.seen/10 {
				t.Errorf("%d of %d records accepted", df.accd, df.seen)
			}
		})
	}
}

// FuzzDecode feeds random bytes, and random mutations of valid records, to
// the wire reader and to protobuf's parser.
//
//	go test -run '^$' -fuzz FuzzDecode -fuzztime 2m -parallel 1 ./zbwrap/zerobustest/internal/lake/
func FuzzDecode(f *testing.F) {
	cases := diffCases(f)
	differs := make([]*differ, len(cases))
	for ci, c := range cases {
		differs[ci] = newDiffer(c, 1)
		defer differs[ci].release()
		g := &gen{r: rand.New(rand.NewPCG(uint64(ci), 1))}
		for i := range 4 {
			f.Add(uint8(ci), uint64(i), g.record(c.p))
		}
	}
	f.Add(uint8(0), uint64(0), []byte{0x0a, 0x80})
	f.Fuzz(func(t *testing.T, which uint8, seed uint64, data []byte) {
		ci := int(which) % len(cases)
		df := differs[ci]
		df.one(t, data)
		// The seed drives a mutation of a random valid record.
		r := rand.New(rand.NewPCG(seed, uint64(len(data))))
		g := &gen{r: r, bad: 30}
		rec := mutate(r, g.record(cases[ci].p), data)
		for r.IntN(2) == 0 {
			rec = mutate(r, rec, data)
		}
		df.one(t, rec)
	})
}

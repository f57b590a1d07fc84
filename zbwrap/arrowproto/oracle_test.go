package arrowproto

import (
	"bytes"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// The round-trip oracle. It decodes every record with dynamicpb against the
// schema's descriptor (built by protodesc, as a server would) and compares
// every field with the value read from the Arrow arrays through arrow-go's
// own accessors. It predicts independently which rows must fail and why. It
// shares no code with the encoder: unit conversions use math/big, decimal
// text and float16 widening are computed another way.

// messageDescriptor builds the descriptor of sc with protodesc.
func messageDescriptor(t testing.TB, d *descriptorpb.DescriptorProto) protoreflect.MessageDescriptor {
	t.Helper()
	fd, err := protodesc.NewFile(wrapFile(d), nil)
	if err != nil {
		t.Fatalf("protodesc rejects the descriptor: %v\n%v", err, d)
	}
	return fd.Messages().Get(0)
}

// predicted is the first row error the oracle expects in a row.
type predicted struct {
	path, reason string
}

type oracle struct {
	err *predicted
}

func (o *oracle) fail(path, reason string) {
	if o.err == nil {
		o.err = &predicted{path, reason}
	}
}

// checkBatch verifies b, the encoding of rec by sc, with the oracle. It
// returns the predicted errors by row, for tests that want to look closer.
func checkBatch(t testing.TB, sc *Schema, rec arrow.RecordBatch, b *Batch) map[int]predicted {
	t.Helper()
	return checkBatchDesc(t, sc.Descriptor(), rec, b)
}

// checkBatchDesc is checkBatch with the descriptor given explicitly.
func checkBatchDesc(t testing.TB, d *descriptorpb.DescriptorProto, rec arrow.RecordBatch, b *Batch) map[int]predicted {
	t.Helper()
	md := messageDescriptor(t, d)
	n := int(rec.NumRows())
	if len(b.Records) != len(b.Rows) {
		t.Fatalf("%d records but %d row indices", len(b.Records), len(b.Rows))
	}
	// Every row is either encoded or failed, once, in ascending order.
	seen := make([]int, n)
	for i, r := range b.Rows {
		if r < 0 || r >= n || (i > 0 && b.Rows[i-1] >= r) {
			t.Fatalf("Rows not ascending and in range: %v", b.Rows)
		}
		seen[r]++
	}
	for i, re := range b.Errors {
		if re.Row < 0 || re.Row >= n || (i > 0 && b.Errors[i-1].Row >= re.Row) {
			t.Fatalf("Errors not ascending and in range: %v", b.Errors)
		}
		seen[re.Row]++
	}
	for r, c := range seen {
		if c != 1 {
			t.Fatalf("row %d reported %d times (records and errors)", r, c)
		}
	}
	total := 0
	for _, rec := range b.Records {
		total += len(rec)
	}
	if total != b.Bytes {
		t.Fatalf("Bytes = %d, records add up to %d", b.Bytes, total)
	}

	preds := map[int]predicted{}
	want := make([]map[string]any, n)
	for r := 0; r < n; r++ {
		o := &oracle{}
		want[r] = o.row(rec, r, md)
		if o.err != nil {
			preds[r] = *o.err
		}
	}
	for _, re := range b.Errors {
		p, ok := preds[re.Row]
		if !ok {
			if strings.Contains(re.Reason, "more than the limit") {
				continue // size errors are checked by their own tests
			}
			t.Fatalf("unexpected row error %v", re)
		}
		if p.path != re.Column || !strings.Contains(re.Reason, p.reason) {
			t.Fatalf("row %d: got error at %q (%s), want at %q (%s)", re.Row, re.Column, re.Reason, p.path, p.reason)
		}
		if !strings.Contains(re.Error(), fmt.Sprintf("row %d", re.Row)) {
			t.Fatalf("error message %q does not name the row", re.Error())
		}
	}
	for i, r := range b.Rows {
		if p, ok := preds[r]; ok {
			t.Fatalf("row %d encoded, but expected error at %q (%s)", r, p.path, p.reason)
		}
		m := dynamicpb.NewMessage(md)
		if err := (proto.UnmarshalOptions{}).Unmarshal(b.Records[i], m); err != nil {
			t.Fatalf("row %d does not decode: %v", r, err)
		}
		if err := proto.CheckInitialized(m); err != nil {
			t.Fatalf("row %d misses required fields: %v", r, err)
		}
		got := actualMessage(m)
		if !equalValue(got, want[r]) {
			t.Fatalf("row %d:\n got  %s\n want %s", r, show(got), show(want[r]))
		}
	}
	return preds
}

func show(v any) string { return fmt.Sprintf("%#v", v) }

// actualMessage converts a decoded message to plain Go values: fields by name,
// lists as []any, maps as map[any]any, messages as map[string]any.
func actualMessage(m protoreflect.Message) map[string]any {
	out := map[string]any{}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList():
			l := v.List()
			items := make([]any, l.Len())
			for i := range items {
				items[i] = actualValue(fd, l.Get(i))
			}
			out[string(fd.Name())] = items
		case fd.IsMap():
			mm := map[any]any{}
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				mm[k.Interface()] = actualValue(fd.MapValue(), mv)
				return true
			})
			out[string(fd.Name())] = mm
		default:
			out[string(fd.Name())] = actualValue(fd, v)
		}
		return true
	})
	return out
}

func actualValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	if fd.Message() != nil {
		return actualMessage(v.Message())
	}
	return v.Interface()
}

// equalValue compares plain values; NaNs are equal to NaNs, nil and empty
// byte slices are equal.
func equalValue(a, b any) bool {
	switch x := a.(type) {
	case float32:
		y, ok := b.(float32)
		return ok && (x == y && math.Signbit(float64(x)) == math.Signbit(float64(y)) || x != x && y != y)
	case float64:
		y, ok := b.(float64)
		return ok && (x == y && math.Signbit(x) == math.Signbit(y) || x != x && y != y)
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalValue(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !equalValue(v, w) {
				return false
			}
		}
		return true
	case map[any]any:
		y, ok := b.(map[any]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !equalValue(v, w) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

// row computes the expected message of row r.
func (o *oracle) row(rec arrow.RecordBatch, r int, md protoreflect.MessageDescriptor) map[string]any {
	out := map[string]any{}
	for i, f := range rec.Schema().Fields() {
		fd := md.Fields().ByName(protoreflect.Name(f.Name))
		if v, ok := o.field(rec.Column(i), r, fd, f.Name); ok {
			out[f.Name] = v
		}
	}
	return out
}

// deref follows extension, dictionary and run-end layers to the array and
// index holding element i of a.
func deref(a arrow.Array, i int) (arrow.Array, int) {
	for {
		switch x := a.(type) {
		case array.ExtensionArray:
			a = x.Storage()
		case *array.Dictionary:
			if x.IsNull(i) {
				return x, i
			}
			a, i = x.Dictionary(), x.GetValueIndex(i)
		case *array.RunEndEncoded:
			a, i = x.Values(), x.GetPhysicalIndex(i)
		default:
			return a, i
		}
	}
}

// listRange returns the element range of list-like element i, and its values.
func listRange(a arrow.Array, i int) (arrow.Array, int, int, bool) {
	switch x := a.(type) {
	case *array.Map:
		s, e := x.ValueOffsets(i)
		return x.ListValues(), int(s), int(e), true
	case *array.List:
		s, e := x.ValueOffsets(i)
		return x.ListValues(), int(s), int(e), true
	case *array.LargeList:
		s, e := x.ValueOffsets(i)
		return x.ListValues(), int(s), int(e), true
	case *array.ListView:
		s, e := x.ValueOffsets(i)
		return x.ListValues(), int(s), int(e), true
	case *array.LargeListView:
		s, e := x.ValueOffsets(i)
		return x.ListValues(), int(s), int(e), true
	case *array.FixedSizeList:
		s, e := x.ValueOffsets(i)
		return x.ListValues(), int(s), int(e), true
	}
	return nil, 0, 0, false
}

// field computes field fd for element i of a; ok is false if absent.
func (o *oracle) field(a arrow.Array, i int, fd protoreflect.FieldDescriptor, path string) (any, bool) {
	a, i = deref(a, i)
	if a.IsNull(i) || a.DataType().ID() == arrow.NULL {
		if fd.Cardinality() == protoreflect.Required {
			o.fail(path, "null value in a required field")
		}
		return nil, false
	}
	if !fd.IsList() && !fd.IsMap() {
		// A scalar, a struct, or a list held by a wrapper message.
		return o.value(a, i, fd, path), true
	}
	if m, ok := a.(*array.Map); ok {
		return o.mapField(m, i, fd, path)
	}
	values, s, e, _ := listRange(a, i)
	var items []any
	for k := s; k < e; k++ {
		va, vi := deref(values, k)
		if va.IsNull(vi) || va.DataType().ID() == arrow.NULL {
			o.fail(path+"[]", "null list element")
			items = append(items, nil)
			continue
		}
		items = append(items, o.value(va, vi, fd, path+"[]"))
	}
	return items, len(items) > 0
}

func (o *oracle) mapField(m *array.Map, i int, fd protoreflect.FieldDescriptor, path string) (any, bool) {
	s, e := m.ValueOffsets(i)
	entries := m.ListValues().(*array.Struct)
	keys, items := m.Keys(), m.Items()
	if !fd.IsMap() {
		// A user descriptor may spell a map as repeated key/value messages.
		var out []any
		for k := int(s); k < int(e); k++ {
			if entries.IsNull(k) {
				o.fail(path, "null map entry")
				continue
			}
			ent := map[string]any{}
			for j, name := range []string{"key", "value"} {
				sub := []arrow.Array{keys, items}[j]
				if v, ok := o.field(sub, k, fd.Message().Fields().ByName(protoreflect.Name(name)), path+"."+name); ok {
					ent[name] = v
				} else {
					o.fail(path+"."+name, "null map "+name)
				}
			}
			out = append(out, ent)
		}
		return out, len(out) > 0
	}
	out := map[any]any{}
	dup := false // a key twice: protobuf would keep the last value only
	for k := int(s); k < int(e); k++ {
		if entries.IsNull(k) {
			o.fail(path, "null map entry")
			continue
		}
		kv, ok := o.field(keys, k, fd.MapKey(), path+".key")
		if !ok {
			o.fail(path+".key", "null map key")
			continue
		}
		if _, seen := out[kv]; seen {
			dup = true
		}
		out[kv] = nil
		vv, ok := o.field(items, k, fd.MapValue(), path+".value")
		if !ok {
			o.fail(path+".value", "null map value")
			continue
		}
		out[kv] = vv
	}
	if dup {
		o.fail(path+".key", "duplicate map key")
	}
	return out, len(out) > 0
}

// value computes one non-null value (a scalar, a struct message, or the
// wrapper message of a list that sits where a repeated field cannot).
func (o *oracle) value(a arrow.Array, i int, fd protoreflect.FieldDescriptor, path string) any {
	switch x := a.(type) {
	case *array.Struct:
		md := fd.Message()
		out := map[string]any{}
		st := x.DataType().(*arrow.StructType)
		for k, f := range st.Fields() {
			if v, ok := o.field(x.Field(k), i, md.Fields().ByName(protoreflect.Name(f.Name)), path+"."+f.Name); ok {
				out[f.Name] = v
			}
		}
		return out
	case *array.Map, *array.List, *array.LargeList, *array.ListView, *array.LargeListView, *array.FixedSizeList:
		inner := fd.Message().Fields().Get(0)
		out := map[string]any{}
		if v, ok := o.field(x, i, inner, path); ok {
			out[string(inner.Name())] = v
		}
		return out
	}
	return o.scalar(a, i, fd, path)
}

var (
	bigMaxInt64 = big.NewInt(math.MaxInt64)
	bigMinInt64 = big.NewInt(math.MinInt64)
)

// scalar computes a non-null scalar value in the Go type of fd's kind.
func (o *oracle) scalar(a arrow.Array, i int, fd protoreflect.FieldDescriptor, path string) any {
	switch x := a.(type) {
	case *array.Boolean:
		return x.Value(i)
	case *array.Float16:
		f := half(x.Value(i).Uint16())
		if fd.Kind() == protoreflect.DoubleKind {
			return float64(f)
		}
		return f
	case *array.Float32:
		if fd.Kind() == protoreflect.DoubleKind {
			return float64(x.Value(i))
		}
		return x.Value(i)
	case *array.Float64:
		return x.Value(i)
	case *array.String:
		return o.text(x.Value(i), fd, path)
	case *array.LargeString:
		return o.text(x.Value(i), fd, path)
	case *array.StringView:
		return o.text(x.Value(i), fd, path)
	case *array.Binary:
		return o.text(string(x.Value(i)), fd, path)
	case *array.LargeBinary:
		return o.text(string(x.Value(i)), fd, path)
	case *array.BinaryView:
		return o.text(string(x.Value(i)), fd, path)
	case *array.FixedSizeBinary:
		return bytes.Clone(x.Value(i))
	case *array.Decimal32:
		return decimalString(big.NewInt(int64(x.Value(i))), x.DataType().(*arrow.Decimal32Type).Scale)
	case *array.Decimal64:
		return decimalString(big.NewInt(int64(x.Value(i))), x.DataType().(*arrow.Decimal64Type).Scale)
	case *array.Decimal128:
		return decimalString(x.Value(i).BigInt(), x.DataType().(*arrow.Decimal128Type).Scale)
	case *array.Decimal256:
		return decimalString(x.Value(i).BigInt(), x.DataType().(*arrow.Decimal256Type).Scale)
	}
	v, what := o.integer(a, i)
	return o.intAs(v, what, fd, path)
}

// text is a string or binary value as field fd holds it; a string field
// must hold UTF-8.
func (o *oracle) text(s string, fd protoreflect.FieldDescriptor, path string) any {
	if fd.Kind() == protoreflect.BytesKind {
		return []byte(s)
	}
	if !utf8.ValidString(s) {
		o.fail(path, "not valid UTF-8")
	}
	return s
}

// integer returns integer-like element i of a in the unit the mapping wants
// (days, microseconds).
func (o *oracle) integer(a arrow.Array, i int) (*big.Int, string) {
	micros := func(v int64, unit arrow.TimeUnit) *big.Int {
		b := big.NewInt(v)
		switch unit {
		case arrow.Second:
			return b.Mul(b, big.NewInt(1_000_000))
		case arrow.Millisecond:
			return b.Mul(b, big.NewInt(1_000))
		case arrow.Nanosecond:
			return b.Div(b, big.NewInt(1_000)) // Euclidean: floor for a positive divisor
		}
		return b
	}
	switch x := a.(type) {
	case *array.Int8:
		return big.NewInt(int64(x.Value(i))), ""
	case *array.Int16:
		return big.NewInt(int64(x.Value(i))), ""
	case *array.Int32:
		return big.NewInt(int64(x.Value(i))), ""
	case *array.Int64:
		return big.NewInt(x.Value(i)), ""
	case *array.Uint8:
		return big.NewInt(int64(x.Value(i))), ""
	case *array.Uint16:
		return big.NewInt(int64(x.Value(i))), ""
	case *array.Uint32:
		return big.NewInt(int64(x.Value(i))), ""
	case *array.Uint64:
		return new(big.Int).SetUint64(x.Value(i)), "uint64"
	case *array.Date32:
		return big.NewInt(int64(x.Value(i))), ""
	case *array.Date64:
		b := big.NewInt(int64(x.Value(i)))
		return b.Div(b, big.NewInt(86_400_000)), "date64"
	case *array.Timestamp:
		return micros(int64(x.Value(i)), x.DataType().(*arrow.TimestampType).Unit), "time"
	case *array.Time32:
		return micros(int64(x.Value(i)), x.DataType().(*arrow.Time32Type).Unit), "time"
	case *array.Time64:
		return micros(int64(x.Value(i)), x.DataType().(*arrow.Time64Type).Unit), "time"
	case *array.Duration:
		return micros(int64(x.Value(i)), x.DataType().(*arrow.DurationType).Unit), "time"
	}
	panic(fmt.Sprintf("oracle: no scalar rule for %T", a))
}

// intAs converts v to the Go type of fd's kind, predicting range errors.
func (o *oracle) intAs(v *big.Int, what string, fd protoreflect.FieldDescriptor, path string) any {
	switch fd.Kind() {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		if !v.IsInt64() || v.Int64() != int64(int32(v.Int64())) {
			o.fail(path, "outside the int32 range")
		}
		return int32(v.Int64())
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return uint32(v.Uint64())
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return v.Uint64()
	}
	if v.Cmp(bigMaxInt64) > 0 || v.Cmp(bigMinInt64) < 0 {
		if what == "uint64" {
			o.fail(path, "is above 2^63-1")
		} else {
			o.fail(path, "overflows int64")
		}
		return int64(0)
	}
	return v.Int64()
}

// decimalString formats unscaled v at scale, independently of the encoder.
func decimalString(v *big.Int, scale int32) string {
	neg := v.Sign() < 0
	digits := new(big.Int).Abs(v).String()
	var s string
	switch {
	case scale <= 0:
		s = digits
		if digits != "0" {
			s += strings.Repeat("0", int(-scale))
		}
	case len(digits) <= int(scale):
		s = "0." + strings.Repeat("0", int(scale)-len(digits)) + digits
	default:
		s = digits[:len(digits)-int(scale)] + "." + digits[len(digits)-int(scale):]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// half widens IEEE half-precision bits with math.Ldexp.
func half(h uint16) float32 {
	sign := float64(1)
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	man := float64(h & 0x3ff)
	switch exp {
	case 0:
		return float32(sign * math.Ldexp(man, -24))
	case 0x1f:
		if man == 0 {
			return float32(math.Inf(int(sign)))
		}
		return math.Float32frombits(uint32(h&0x8000)<<16 | 0x7f800000 | uint32(h&0x3ff)<<13)
	}
	return float32(sign * math.Ldexp(1024+man, exp-25))
}

// sortedKeys is a helper for stable test output.
func sortedKeys[M ~map[string]V, V any](m M) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

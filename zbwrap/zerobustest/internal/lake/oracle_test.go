package lake

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// The reference reading of records: protobuf's own parser (dynamicpb) and
// a check of the parsed message. The lake reads records off the wire
// itself; the differential tests hold it to this.

// oracleDecode unmarshals one record and checks every value against its
// Delta type: a required field must be present, no unknown fields, and each
// value must fit its column.
func oracleDecode(p *plan, rec []byte) (*dynamicpb.Message, *fieldErr) {
	if len(rec) > MaxRecordSize {
		return nil, &fieldErr{reason: fmt.Sprintf("record is %d bytes, more than the limit of %d", len(rec), MaxRecordSize)}
	}
	m := dynamicpb.NewMessage(p.md)
	opts := proto.UnmarshalOptions{AllowPartial: true, RecursionLimit: recursionLimit}
	if err := opts.Unmarshal(rec, m); err != nil {
		return nil, &fieldErr{reason: "does not decode with the stream's descriptor: " + err.Error()}
	}
	if fe := checkMessage(m, p.fields, ""); fe != nil {
		return nil, fe
	}
	return m, nil
}

func checkMessage(m protoreflect.Message, fields []fplan, prefix string) *fieldErr {
	if u := m.GetUnknown(); len(u) > 0 {
		return unknownField(m.Descriptor(), u, prefix)
	}
	for i := range fields {
		f := &fields[i]
		switch {
		case f.fd.IsList():
			l := m.Get(f.fd).List()
			for j := 0; j < l.Len(); j++ {
				if fe := checkValue(l.Get(j), f.vp.elem); fe != nil {
					return fe
				}
			}
		case f.fd.IsMap():
			// In key order, so that the first bad entry is well defined.
			mp := m.Get(f.fd).Map()
			for _, k := range sortedKeys(mp) {
				if fe := checkValue(k.Value(), f.vp.key); fe != nil {
					return fe
				}
				if fe := checkValue(mp.Get(k), f.vp.elem); fe != nil {
					return fe
				}
			}
		case !m.Has(f.fd):
			if !f.nullable {
				return &fieldErr{f.name, "NOT NULL column is missing (required field not set)"}
			}
		default:
			if fe := checkValue(m.Get(f.fd), f.vp); fe != nil {
				return fe
			}
		}
	}
	return nil
}

// unknownField names the first unknown field. A known field number sent with
// the wrong wire type also lands among the unknown fields.
func unknownField(md protoreflect.MessageDescriptor, u protoreflect.RawFields, prefix string) *fieldErr {
	num, typ, n := protowire.ConsumeTag(u)
	if n < 0 {
		return &fieldErr{strings.TrimSuffix(prefix, "."), "malformed unknown field"}
	}
	if fd := md.Fields().ByNumber(num); fd != nil {
		return &fieldErr{prefix + string(fd.Name()), fmt.Sprintf("field %d has wire type %s, which does not match its declared type %s", num, wireTypeName(typ), describeKind(fd))}
	}
	return &fieldErr{strings.TrimSuffix(prefix, "."), fmt.Sprintf("unknown field number %d (wire type %s) is not in the stream's descriptor", num, wireTypeName(typ))}
}

func checkValue(v protoreflect.Value, vp *vplan) *fieldErr {
	t := vp.typ
	switch t.Kind {
	case Byte:
		if n := v.Int(); n < -128 || n > 127 {
			return &fieldErr{vp.path, fmt.Sprintf("value %d is out of TINYINT range [-128, 127]", n)}
		}
	case Short:
		if n := v.Int(); n < -32768 || n > 32767 {
			return &fieldErr{vp.path, fmt.Sprintf("value %d is out of SMALLINT range [-32768, 32767]", n)}
		}
	case Date:
		if n := v.Int(); n < minDateDays || n > maxDateDays {
			return &fieldErr{vp.path, fmt.Sprintf("%d days since 1970-01-01 is outside the DATE range 0001-01-01 to 9999-12-31", n)}
		}
	case Timestamp, TimestampNTZ:
		if n := v.Int(); n < minTimeMicros || n > maxTimeMicros {
			return &fieldErr{vp.path, fmt.Sprintf("%d microseconds since the epoch is outside the %s range 0001-01-01 to 9999-12-31", n, t.TypeName())}
		}
	case String:
		if !utf8.ValidString(v.String()) {
			return &fieldErr{vp.path, "STRING value is not valid UTF-8"}
		}
	case Variant:
		if s := v.String(); !json.Valid([]byte(s)) {
			return &fieldErr{vp.path, "VARIANT value is not valid JSON text"}
		}
	case Decimal:
		if _, err := parseDecimal(v.String(), t.Precision, t.Scale); err != nil {
			return &fieldErr{vp.path, err.Error()}
		}
	case Struct:
		return checkMessage(v.Message(), vp.fields, vp.path+".")
	case Array, Map:
		// A wrapped collection (array element or map value).
		return checkMessage(v.Message(), []fplan{{fd: vp.wrap, name: vp.path, vp: vp}}, vp.path+".")
	}
	return nil
}

// oracleAppend appends a record oracleDecode accepted to the column
// builders.
func oracleAppend(bs []array.Builder, m protoreflect.Message, fields []fplan) {
	for i := range fields {
		f := &fields[i]
		if !f.fd.IsList() && !f.fd.IsMap() && !m.Has(f.fd) {
			bs[i].AppendNull()
			continue
		}
		oracleAppendValue(bs[i], m.Get(f.fd), f.vp)
	}
}

func oracleAppendValue(b array.Builder, v protoreflect.Value, vp *vplan) {
	switch vp.typ.Kind {
	case Boolean:
		b.(*array.BooleanBuilder).Append(v.Bool())
	case Byte:
		b.(*array.Int8Builder).Append(int8(v.Int()))
	case Short:
		b.(*array.Int16Builder).Append(int16(v.Int()))
	case Int:
		b.(*array.Int32Builder).Append(int32(v.Int()))
	case Date:
		b.(*array.Date32Builder).Append(arrow.Date32(v.Int()))
	case Long:
		b.(*array.Int64Builder).Append(v.Int())
	case Timestamp, TimestampNTZ:
		b.(*array.TimestampBuilder).Append(arrow.Timestamp(v.Int()))
	case Float:
		b.(*array.Float32Builder).Append(float32(v.Float()))
	case Double:
		b.(*array.Float64Builder).Append(v.Float())
	case String, Variant:
		b.(*array.StringBuilder).Append(v.String())
	case Binary:
		b.(*array.BinaryBuilder).Append(v.Bytes())
	case Decimal:
		n, _ := parseDecimal(v.String(), vp.typ.Precision, vp.typ.Scale)
		b.(*array.Decimal128Builder).Append(n)
	case Struct:
		sb := b.(*array.StructBuilder)
		sb.Append(true)
		bs := make([]array.Builder, sb.NumField())
		for i := range bs {
			bs[i] = sb.FieldBuilder(i)
		}
		oracleAppend(bs, v.Message(), vp.fields)
	case Array:
		if vp.wrap != nil {
			v = v.Message().Get(vp.wrap)
		}
		lb := b.(*array.ListBuilder)
		lb.Append(true)
		vb := lb.ValueBuilder()
		l := v.List()
		for i := 0; i < l.Len(); i++ {
			oracleAppendValue(vb, l.Get(i), vp.elem)
		}
	case Map:
		if vp.wrap != nil {
			v = v.Message().Get(vp.wrap)
		}
		mb := b.(*array.MapBuilder)
		mb.Append(true)
		kb, ib := mb.KeyBuilder(), mb.ItemBuilder()
		m := v.Map()
		for _, k := range sortedKeys(m) {
			oracleAppendValue(kb, k.Value(), vp.key)
			oracleAppendValue(ib, m.Get(k), vp.elem)
		}
	}
}

func sortedKeys(m protoreflect.Map) []protoreflect.MapKey {
	keys := make([]protoreflect.MapKey, 0, m.Len())
	m.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
		keys = append(keys, k)
		return true
	})
	sort.Slice(keys, func(i, j int) bool { return lessMapKey(keys[i], keys[j]) })
	return keys
}

// lessMapKey orders map keys as the materializer does.
func lessMapKey(a, b protoreflect.MapKey) bool {
	switch x := a.Interface().(type) {
	case string:
		return x < b.String()
	case bool:
		return !x && b.Bool()
	}
	return a.Int() < b.Int() // the other key kinds are int32 and int64
}

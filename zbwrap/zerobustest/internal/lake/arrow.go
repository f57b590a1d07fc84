package lake

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

// Arrow record batches (Arrow Flight streams) reach a table through the same
// record log as protobuf records: BindArrow checks the stream's Arrow schema
// against the table and binds the table's own descriptor (DescriptorFor);
// Encode turns each row into the protobuf record a client would have sent
// with that descriptor. Check, Append, the log, recovery and the
// materializer are then those of protobuf streams.
//
// Arrow types per Delta type: BOOLEAN bool; TINYINT int8; SMALLINT int16;
// INT int32; BIGINT int64; FLOAT float32; DOUBLE float64; STRING and
// VARIANT (JSON text) utf8 or large_utf8; BINARY binary or large_binary;
// DATE date32; TIMESTAMP timestamp[us] (any time zone, or none);
// TIMESTAMP_NTZ timestamp[us] without a time zone; DECIMAL(p,s)
// decimal128(p,s); ARRAY list or large_list; MAP map; STRUCT struct.
// Columns and struct fields match by name (case-insensitive, in any order);
// nullable ones may be left out. A null in a NOT NULL column, a null array
// element or map value is an error of the row.

// ArrowBinding is an Arrow schema bound to a table. Safe for concurrent use.
type ArrowBinding struct {
	*Binding
	cols []arrowCol
}

// arrowCol is a table column (or struct field) with the Arrow field that
// carries it.
type arrowCol struct {
	name     string
	num      protowire.Number
	nullable bool
	idx      int // index of the Arrow field; -1: left out
	node     *arrowNode
}

// arrowNode encodes the values of one Arrow array of a Delta type.
type arrowNode struct {
	t      *Type
	fields []arrowCol // Struct: the struct's fields
	elem   *arrowNode // Array element, Map value
	key    *arrowNode // Map key
	wrap   bool       // Array elements / Map values that are arrays or maps travel in a wrapper message
}

// BindArrow checks an Arrow schema against the named table and binds the
// table's descriptor. A missing table is created from the schema when
// autoCreate is true (ErrTableNotFound otherwise). A mismatch is a
// *SchemaError naming the column.
func (l *Lake) BindArrow(fullName string, schema *arrow.Schema, autoCreate bool) (*ArrowBinding, error) {
	name, err := canonicalName(fullName)
	if err != nil {
		return nil, err
	}
	t, err := l.table(name)
	if errors.Is(err, ErrTableNotFound) && autoCreate {
		cols, cerr := ColumnsFromArrow(schema)
		if cerr != nil {
			return nil, cerr
		}
		t, err = l.createTable(name, cols)
		var se *SchemaError
		if errors.As(err, &se) {
			// Another stream created it first, with other columns.
			t, err = l.table(name)
		}
	}
	if err != nil {
		return nil, err
	}
	cols := t.Columns()
	acols, err := matchArrowFields(schema.Fields(), cols, "")
	if err != nil {
		return nil, err
	}
	b, err := l.bind(name, DescriptorFor("ArrowRecord", cols), false)
	if err != nil {
		return nil, err
	}
	return &ArrowBinding{Binding: b, cols: acols}, nil
}

func matchArrowFields(fields []arrow.Field, cols []Column, prefix string) ([]arrowCol, error) {
	byName := make(map[string]int, len(fields))
	for i, f := range fields {
		byName[strings.ToLower(f.Name)] = i
	}
	used := 0
	out := make([]arrowCol, len(cols))
	for i := range cols {
		c := &cols[i]
		path := prefix + c.Name
		out[i] = arrowCol{name: path, num: protowire.Number(i + 1), nullable: c.Nullable, idx: -1}
		j, ok := byName[strings.ToLower(c.Name)]
		if !ok {
			if !c.Nullable {
				return nil, &SchemaError{Column: path, Reason: "NOT NULL column missing from the Arrow schema"}
			}
			continue
		}
		used++
		n, err := matchArrowType(fields[j].Type, &c.Type, path)
		if err != nil {
			return nil, err
		}
		out[i].idx, out[i].node = j, n
	}
	if used < len(fields) {
		known := make(map[string]bool, len(cols))
		for _, c := range cols {
			known[strings.ToLower(c.Name)] = true
		}
		for _, f := range fields {
			if !known[strings.ToLower(f.Name)] {
				return nil, &SchemaError{Column: prefix + f.Name, Reason: "not a column of the table (columns: " + columnNames(cols) + ")"}
			}
		}
		return nil, &SchemaError{Reason: "the Arrow schema names a column twice"}
	}
	return out, nil
}

func isWrapped(t *Type) bool { return t.Kind == Array || t.Kind == Map }

func matchArrowType(dt arrow.DataType, t *Type, path string) (*arrowNode, error) {
	n := &arrowNode{t: t}
	ok := false
	switch t.Kind {
	case Boolean:
		ok = dt.ID() == arrow.BOOL
	case Byte:
		ok = dt.ID() == arrow.INT8
	case Short:
		ok = dt.ID() == arrow.INT16
	case Int:
		ok = dt.ID() == arrow.INT32
	case Long:
		ok = dt.ID() == arrow.INT64
	case Float:
		ok = dt.ID() == arrow.FLOAT32
	case Double:
		ok = dt.ID() == arrow.FLOAT64
	case String, Variant:
		ok = dt.ID() == arrow.STRING || dt.ID() == arrow.LARGE_STRING
	case Binary:
		ok = dt.ID() == arrow.BINARY || dt.ID() == arrow.LARGE_BINARY
	case Date:
		ok = dt.ID() == arrow.DATE32
	case Timestamp, TimestampNTZ:
		ts, isTS := dt.(*arrow.TimestampType)
		ok = isTS && ts.Unit == arrow.Microsecond && (t.Kind == Timestamp || ts.TimeZone == "")
	case Decimal:
		d, isDec := dt.(*arrow.Decimal128Type)
		ok = isDec && int(d.Precision) == t.Precision && int(d.Scale) == t.Scale
	case Array:
		var elem arrow.DataType
		switch lt := dt.(type) {
		case *arrow.ListType:
			elem = lt.Elem()
		case *arrow.LargeListType:
			elem = lt.Elem()
		}
		if elem != nil {
			e, err := matchArrowType(elem, t.Elem, path+".element")
			if err != nil {
				return nil, err
			}
			n.elem, n.wrap, ok = e, isWrapped(t.Elem), true
		}
	case Map:
		if mt, isMap := dt.(*arrow.MapType); isMap {
			k, err := matchArrowType(mt.KeyType(), t.Key, path+".key")
			if err != nil {
				return nil, err
			}
			v, err := matchArrowType(mt.ItemType(), t.Elem, path+".value")
			if err != nil {
				return nil, err
			}
			n.key, n.elem, n.wrap, ok = k, v, isWrapped(t.Elem), true
		}
	case Struct:
		if st, isStruct := dt.(*arrow.StructType); isStruct {
			fs, err := matchArrowFields(st.Fields(), t.Fields, path+".")
			if err != nil {
				return nil, err
			}
			n.fields, ok = fs, true
		}
	}
	if !ok {
		return nil, &SchemaError{Column: path, Reason: fmt.Sprintf("Arrow type %s does not match column type %s (want %s)", dt, t.TypeText(), arrowWant(t))}
	}
	return n, nil
}

// arrowWant names the Arrow types accepted for t.
func arrowWant(t *Type) string {
	switch t.Kind {
	case String, Variant:
		return "utf8 or large_utf8"
	case Binary:
		return "binary or large_binary"
	case Timestamp:
		return "timestamp[us]"
	case TimestampNTZ:
		return "timestamp[us] without a time zone"
	case Array:
		return "list or large_list"
	case Map:
		return "map"
	case Struct:
		return "struct"
	}
	return t.ArrowType().String()
}

// ColumnsFromArrow maps an Arrow schema to table columns, for a table
// created on first use: each Arrow type to the Delta type it carries
// (timestamp[us] with a time zone to TIMESTAMP, without to TIMESTAMP_NTZ),
// nullability kept. Unsupported types are a *SchemaError.
func ColumnsFromArrow(schema *arrow.Schema) ([]Column, error) {
	cols, err := columnsFromArrow(schema.Fields(), "")
	if err != nil {
		return nil, err
	}
	if err := ValidateColumns(cols); err != nil {
		return nil, err
	}
	return cols, nil
}

func columnsFromArrow(fields []arrow.Field, prefix string) ([]Column, error) {
	cols := make([]Column, len(fields))
	for i, f := range fields {
		t, err := typeFromArrow(f.Type, prefix+f.Name)
		if err != nil {
			return nil, err
		}
		cols[i] = Column{Name: f.Name, Type: t, Nullable: f.Nullable}
	}
	return cols, nil
}

func typeFromArrow(dt arrow.DataType, path string) (Type, error) {
	switch dt.ID() {
	case arrow.BOOL:
		return Type{Kind: Boolean}, nil
	case arrow.INT8:
		return Type{Kind: Byte}, nil
	case arrow.INT16:
		return Type{Kind: Short}, nil
	case arrow.INT32:
		return Type{Kind: Int}, nil
	case arrow.INT64:
		return Type{Kind: Long}, nil
	case arrow.FLOAT32:
		return Type{Kind: Float}, nil
	case arrow.FLOAT64:
		return Type{Kind: Double}, nil
	case arrow.STRING, arrow.LARGE_STRING:
		return Type{Kind: String}, nil
	case arrow.BINARY, arrow.LARGE_BINARY:
		return Type{Kind: Binary}, nil
	case arrow.DATE32:
		return Type{Kind: Date}, nil
	case arrow.TIMESTAMP:
		ts := dt.(*arrow.TimestampType)
		if ts.Unit == arrow.Microsecond {
			if ts.TimeZone == "" {
				return Type{Kind: TimestampNTZ}, nil
			}
			return Type{Kind: Timestamp}, nil
		}
	case arrow.DECIMAL128:
		d := dt.(*arrow.Decimal128Type)
		return Type{Kind: Decimal, Precision: int(d.Precision), Scale: int(d.Scale)}, nil
	case arrow.LIST, arrow.LARGE_LIST:
		e, err := typeFromArrow(dt.(arrow.ListLikeType).Elem(), path+".element")
		if err != nil {
			return Type{}, err
		}
		return Type{Kind: Array, Elem: &e}, nil
	case arrow.MAP:
		mt := dt.(*arrow.MapType)
		k, err := typeFromArrow(mt.KeyType(), path+".key")
		if err != nil {
			return Type{}, err
		}
		v, err := typeFromArrow(mt.ItemType(), path+".value")
		if err != nil {
			return Type{}, err
		}
		return Type{Kind: Map, Key: &k, Elem: &v}, nil
	case arrow.STRUCT:
		fs, err := columnsFromArrow(dt.(*arrow.StructType).Fields(), path+".")
		if err != nil {
			return Type{}, err
		}
		return Type{Kind: Struct, Fields: fs}, nil
	}
	return Type{}, &SchemaError{Column: path, Reason: fmt.Sprintf("Arrow type %s has no Delta column type", dt)}
}

// Encode turns each row of rec (whose schema is the bound one) into a
// protobuf record of the table's descriptor. A value the record cannot
// carry (a null in a NOT NULL column, a null array element or map value)
// is a *RecordError naming the row and the column; Check catches values
// out of their column's range.
func (b *ArrowBinding) Encode(rec arrow.RecordBatch) ([][]byte, error) {
	rows := int(rec.NumRows())
	ends := make([]int, rows)
	var buf []byte
	for r := 0; r < rows; r++ {
		var err error
		buf, err = appendFields(buf, b.cols, rec.Column, r)
		if err != nil {
			if ee, ok := err.(*encodeError); ok {
				return nil, &RecordError{Index: r, Column: ee.column, Reason: ee.reason}
			}
			return nil, err
		}
		ends[r] = len(buf)
	}
	out := make([][]byte, rows)
	start := 0
	for r, end := range ends {
		out[r] = buf[start:end:end]
		start = end
	}
	return out, nil
}

type encodeError struct{ column, reason string }

func (e *encodeError) Error() string { return "column " + e.column + ": " + e.reason }

// appendFields appends the fields of row r: col(i) is the Arrow array of
// Arrow field i.
func appendFields(b []byte, cols []arrowCol, col func(int) arrow.Array, r int) ([]byte, error) {
	for i := range cols {
		c := &cols[i]
		if c.idx < 0 {
			continue
		}
		arr := col(c.idx)
		if arr.IsNull(r) {
			if !c.nullable {
				return nil, &encodeError{c.name, "null in a NOT NULL column"}
			}
			continue
		}
		var err error
		if b, err = c.node.appendValue(b, c.num, arr, r, c.name); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// appendValue appends value i of arr (not null) as field num.
func (n *arrowNode) appendValue(b []byte, num protowire.Number, arr arrow.Array, i int, path string) ([]byte, error) {
	switch n.t.Kind {
	case Boolean:
		b = protowire.AppendTag(b, num, protowire.VarintType)
		return protowire.AppendVarint(b, protowire.EncodeBool(arr.(*array.Boolean).Value(i))), nil
	case Byte:
		return appendInt(b, num, int64(arr.(*array.Int8).Value(i))), nil
	case Short:
		return appendInt(b, num, int64(arr.(*array.Int16).Value(i))), nil
	case Int:
		return appendInt(b, num, int64(arr.(*array.Int32).Value(i))), nil
	case Date:
		return appendInt(b, num, int64(arr.(*array.Date32).Value(i))), nil
	case Long:
		return appendInt(b, num, arr.(*array.Int64).Value(i)), nil
	case Timestamp, TimestampNTZ:
		return appendInt(b, num, int64(arr.(*array.Timestamp).Value(i))), nil
	case Float:
		b = protowire.AppendTag(b, num, protowire.Fixed32Type)
		return protowire.AppendFixed32(b, math.Float32bits(arr.(*array.Float32).Value(i))), nil
	case Double:
		b = protowire.AppendTag(b, num, protowire.Fixed64Type)
		return protowire.AppendFixed64(b, math.Float64bits(arr.(*array.Float64).Value(i))), nil
	case String, Variant:
		b = protowire.AppendTag(b, num, protowire.BytesType)
		return protowire.AppendString(b, arr.(interface{ Value(int) string }).Value(i)), nil
	case Binary:
		b = protowire.AppendTag(b, num, protowire.BytesType)
		return protowire.AppendBytes(b, arr.(interface{ Value(int) []byte }).Value(i)), nil
	case Decimal:
		b = protowire.AppendTag(b, num, protowire.BytesType)
		return protowire.AppendString(b, arr.(*array.Decimal128).Value(i).ToString(int32(n.t.Scale))), nil
	case Struct:
		sa := arr.(*array.Struct)
		return appendMessage(b, num, func(m []byte) ([]byte, error) {
			return appendFields(m, n.fields, sa.Field, i)
		})
	case Array:
		la := arr.(array.ListLike)
		start, end := la.ValueOffsets(i)
		vals := la.ListValues()
		for k := int(start); k < int(end); k++ {
			if vals.IsNull(k) {
				return nil, &encodeError{path, fmt.Sprintf("null element at index %d (array elements are never null)", k-int(start))}
			}
			var err error
			if b, err = n.elem.appendElem(b, num, vals, k, path+".element", n.wrap); err != nil {
				return nil, err
			}
		}
		return b, nil
	case Map:
		ma := arr.(*array.Map)
		start, end := ma.ValueOffsets(i)
		keys, items := ma.Keys(), ma.Items()
		for k := int(start); k < int(end); k++ {
			if items.IsNull(k) {
				return nil, &encodeError{path, fmt.Sprintf("null value at entry %d (map values are never null)", k-int(start))}
			}
			var err error
			b, err = appendMessage(b, num, func(m []byte) ([]byte, error) {
				m, err := n.key.appendValue(m, 1, keys, k, path+".key")
				if err != nil {
					return nil, err
				}
				return n.elem.appendElem(m, 2, items, k, path+".value", n.wrap)
			})
			if err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	return nil, &encodeError{path, "unsupported type " + n.t.TypeText()}
}

// appendElem appends an array element or map value: arrays and maps in a
// one-field wrapper message.
func (n *arrowNode) appendElem(b []byte, num protowire.Number, arr arrow.Array, i int, path string, wrap bool) ([]byte, error) {
	if !wrap {
		return n.appendValue(b, num, arr, i, path)
	}
	return appendMessage(b, num, func(m []byte) ([]byte, error) { return n.appendValue(m, 1, arr, i, path) })
}

func appendInt(b []byte, num protowire.Number, v int64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

// appendMessage appends field num holding the message body writes.
func appendMessage(b []byte, num protowire.Number, body func([]byte) ([]byte, error)) ([]byte, error) {
	m, err := body(nil)
	if err != nil {
		return nil, err
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, m), nil
}

func camel(s string) string {
	var b strings.Builder
	up := true
	for _, r := range s {
		if r == '_' {
			up = true
			continue
		}
		if up && r >= 'a' && r <= 'z' {
			r -= 'a' - 'A'
		}
		up = false
		b.WriteRune(r)
	}
	return b.String()
}

// DescriptorFor builds the proto2 descriptor a client would send for cols: fields
// numbered in order, nullable -> optional, NOT NULL -> required, nested types
// inside with relative references, map entries named <Field>Entry, and a
// one-field wrapper message for an array or map inside an array or map.
func DescriptorFor(name string, cols []Column) *descriptorpb.DescriptorProto {
	m := &descriptorpb.DescriptorProto{Name: proto.String(name)}
	for i, c := range cols {
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(c.Name), Number: proto.Int32(int32(i + 1))}
		switch c.Type.Kind {
		case Array:
			f.Label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
			setValueType(m, f, *c.Type.Elem, c.Name+"_elem")
		case Map:
			f.Label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
			entry := &descriptorpb.DescriptorProto{
				Name:    proto.String(camel(c.Name) + "Entry"),
				Options: &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)},
			}
			k := &descriptorpb.FieldDescriptorProto{Name: proto.String("key"), Number: proto.Int32(1), Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()}
			v := &descriptorpb.FieldDescriptorProto{Name: proto.String("value"), Number: proto.Int32(2), Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()}
			setValueType(entry, k, *c.Type.Key, "key")
			setValueType(m, v, *c.Type.Elem, c.Name+"_value")
			entry.Field = []*descriptorpb.FieldDescriptorProto{k, v}
			m.NestedType = append(m.NestedType, entry)
			f.Type = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
			f.TypeName = entry.Name
		default:
			if c.Nullable {
				f.Label = descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
			} else {
				f.Label = descriptorpb.FieldDescriptorProto_LABEL_REQUIRED.Enum()
			}
			setValueType(m, f, c.Type, c.Name)
		}
		m.Field = append(m.Field, f)
	}
	return m
}

func setValueType(parent *descriptorpb.DescriptorProto, f *descriptorpb.FieldDescriptorProto, t Type, name string) {
	T := func(x descriptorpb.FieldDescriptorProto_Type) { f.Type = x.Enum() }
	switch t.Kind {
	case Boolean:
		T(descriptorpb.FieldDescriptorProto_TYPE_BOOL)
	case Byte, Short, Int, Date:
		T(descriptorpb.FieldDescriptorProto_TYPE_INT32)
	case Long, Timestamp, TimestampNTZ:
		T(descriptorpb.FieldDescriptorProto_TYPE_INT64)
	case Float:
		T(descriptorpb.FieldDescriptorProto_TYPE_FLOAT)
	case Double:
		T(descriptorpb.FieldDescriptorProto_TYPE_DOUBLE)
	case String, Decimal, Variant:
		T(descriptorpb.FieldDescriptorProto_TYPE_STRING)
	case Binary:
		T(descriptorpb.FieldDescriptorProto_TYPE_BYTES)
	case Struct:
		sub := DescriptorFor(camel(name)+"Msg", t.Fields)
		parent.NestedType = append(parent.NestedType, sub)
		T(descriptorpb.FieldDescriptorProto_TYPE_MESSAGE)
		f.TypeName = sub.Name
	case Array, Map:
		sub := DescriptorFor(camel(name)+"Wrap", []Column{{Name: "items", Type: t}})
		parent.NestedType = append(parent.NestedType, sub)
		T(descriptorpb.FieldDescriptorProto_TYPE_MESSAGE)
		f.TypeName = sub.Name
	}
}

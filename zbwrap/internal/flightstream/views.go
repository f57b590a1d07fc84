package flightstream

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// View types
//
// Producers such as polars hand out strings and binaries as the view
// layouts (string_view, binary_view), which a Delta table's STRING and
// BINARY columns do not take over Flight (they want utf8 and binary).
// Normalize rewrites those columns, at any depth, into the plain layouts;
// columns without a view type are passed on as they are, without a copy.

// viewFree is the type t with its view layouts replaced, and whether any
// was.
func viewFree(t arrow.DataType) (arrow.DataType, bool) {
	switch tt := t.(type) {
	case *arrow.StringViewType:
		return arrow.BinaryTypes.String, true
	case *arrow.BinaryViewType:
		return arrow.BinaryTypes.Binary, true
	case *arrow.ListType:
		f, ok := viewFreeField(tt.ElemField())
		if !ok {
			return t, false
		}
		return arrow.ListOfField(f), true
	case *arrow.LargeListType:
		f, ok := viewFreeField(tt.ElemField())
		if !ok {
			return t, false
		}
		return arrow.LargeListOfField(f), true
	case *arrow.FixedSizeListType:
		f, ok := viewFreeField(tt.ElemField())
		if !ok {
			return t, false
		}
		return arrow.FixedSizeListOfField(tt.Len(), f), true
	case *arrow.MapType:
		k, kok := viewFreeField(tt.KeyField())
		v, vok := viewFreeField(tt.ItemField())
		if !kok && !vok {
			return t, false
		}
		m := arrow.MapOfFields(k, v)
		m.KeysSorted = tt.KeysSorted
		return m, true
	case *arrow.StructType:
		fields := tt.Fields()
		changed := false
		for i, f := range fields {
			if nf, ok := viewFreeField(f); ok {
				fields[i], changed = nf, true
			}
		}
		if !changed {
			return t, false
		}
		return arrow.StructOf(fields...), true
	}
	return t, false
}

func viewFreeField(f arrow.Field) (arrow.Field, bool) {
	t, ok := viewFree(f.Type)
	f.Type = t
	return f, ok
}

// NormalizeSchema is sc with its view layouts replaced, and whether any
// was.
func NormalizeSchema(sc *arrow.Schema) (*arrow.Schema, bool) {
	fields := sc.Fields()
	changed := false
	for i, f := range fields {
		if nf, ok := viewFreeField(f); ok {
			fields[i], changed = nf, true
		}
	}
	if !changed {
		return sc, false
	}
	md := sc.Metadata()
	return arrow.NewSchema(fields, &md), true
}

// Normalize returns rec with its view columns rewritten into the plain
// layouts, or rec itself (retained) when it has none. The caller releases
// the result.
func Normalize(rec arrow.RecordBatch) arrow.RecordBatch {
	sc, changed := NormalizeSchema(rec.Schema())
	if !changed {
		rec.Retain()
		return rec
	}
	cols := make([]arrow.Array, rec.NumCols())
	for i, c := range rec.Columns() {
		d := normalizeData(c.Data(), sc.Field(i).Type)
		cols[i] = array.MakeFromData(d)
		d.Release()
	}
	out := array.NewRecordBatch(sc, cols, rec.NumRows())
	for _, c := range cols {
		c.Release()
	}
	return out
}

// normalizeData rewrites d as type t (d's type with its views replaced).
// The result has its own reference.
func normalizeData(d arrow.ArrayData, t arrow.DataType) arrow.ArrayData {
	if arrow.TypeEqual(d.DataType(), t) {
		d.Retain()
		return d
	}
	switch d.DataType().ID() {
	case arrow.STRING_VIEW:
		src := array.NewStringViewData(d)
		defer src.Release()
		b := array.NewStringBuilder(memory.DefaultAllocator)
		defer b.Release()
		b.Reserve(src.Len())
		for i := range src.Len() {
			if src.IsNull(i) {
				b.AppendNull()
			} else {
				b.Append(src.Value(i))
			}
		}
		a := b.NewArray()
		defer a.Release()
		out := a.Data()
		out.Retain()
		return out
	case arrow.BINARY_VIEW:
		src := array.NewBinaryViewData(d)
		defer src.Release()
		b := array.NewBinaryBuilder(memory.DefaultAllocator, arrow.BinaryTypes.Binary)
		defer b.Release()
		b.Reserve(src.Len())
		for i := range src.Len() {
			if src.IsNull(i) {
				b.AppendNull()
			} else {
				b.Append(src.Value(i))
			}
		}
		a := b.NewArray()
		defer a.Release()
		out := a.Data()
		out.Retain()
		return out
	}
	// A nested type: the same buffers around normalized children.
	var childTypes []arrow.DataType
	switch tt := t.(type) {
	case arrow.ListLikeType:
		childTypes = []arrow.DataType{tt.Elem()}
		if m, ok := t.(*arrow.MapType); ok {
			childTypes = []arrow.DataType{m.Elem()}
		}
	case *arrow.StructType:
		for _, f := range tt.Fields() {
			childTypes = append(childTypes, f.Type)
		}
	}
	children := make([]arrow.ArrayData, len(d.Children()))
	for i, c := range d.Children() {
		children[i] = normalizeData(c, childTypes[i])
	}
	out := array.NewData(t, d.Len(), d.Buffers(), children, d.NullN(), d.Offset())
	for _, c := range children {
		c.Release()
	}
	return out
}

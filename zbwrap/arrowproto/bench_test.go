package arrowproto

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// Benchmarks: BenchmarkEncode/<shape> is this package's encoder;
// BenchmarkEncodeDynamicpb/<shape> is the row-by-row baseline (one dynamicpb
// message per row, filled from the Arrow arrays, then proto.Marshal). Both
// report the protobuf bytes they produce with b.SetBytes.

const benchRows = 4096

type benchShape struct {
	name string
	rec  func() arrow.RecordBatch
}

var benchShapes = []benchShape{
	{"mixed", mixedBatch},
	{"nested", nestedBatch},
	{"wide", wideBatch},
	{"maps", mapsBatch},
}

func benchText(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + r.IntN(26))
	}
	return string(b)
}

// mixedBatch: 4 int64, 2 float64, 1 bool, 3 utf8 of about 30 bytes, 10% nulls.
func mixedBatch() arrow.RecordBatch {
	r := rand.New(rand.NewPCG(1, 2))
	var fields []arrow.Field
	var cols []arrow.Array
	null := func() bool { return r.IntN(10) == 0 }
	for i := 0; i < 4; i++ {
		b := array.NewInt64Builder(mem)
		for j := 0; j < benchRows; j++ {
			if null() {
				b.AppendNull()
			} else {
				b.Append(r.Int64N(1 << (8 * (1 + i*2))))
			}
		}
		fields = append(fields, arrow.Field{Name: fmt.Sprintf("i%d", i), Type: arrow.PrimitiveTypes.Int64, Nullable: true})
		cols = append(cols, b.NewArray())
	}
	for i := 0; i < 2; i++ {
		b := array.NewFloat64Builder(mem)
		for j := 0; j < benchRows; j++ {
			if null() {
				b.AppendNull()
			} else {
				b.Append(r.NormFloat64())
			}
		}
		fields = append(fields, arrow.Field{Name: fmt.Sprintf("f%d", i), Type: arrow.PrimitiveTypes.Float64, Nullable: true})
		cols = append(cols, b.NewArray())
	}
	bb := array.NewBooleanBuilder(mem)
	for j := 0; j < benchRows; j++ {
		if null() {
			bb.AppendNull()
		} else {
			bb.Append(r.IntN(2) == 0)
		}
	}
	fields = append(fields, arrow.Field{Name: "flag", Type: arrow.FixedWidthTypes.Boolean, Nullable: true})
	cols = append(cols, bb.NewArray())
	for i := 0; i < 3; i++ {
		b := array.NewStringBuilder(mem)
		for j := 0; j < benchRows; j++ {
			if null() {
				b.AppendNull()
			} else {
				b.Append(benchText(r, 25+r.IntN(11)))
			}
		}
		fields = append(fields, arrow.Field{Name: fmt.Sprintf("s%d", i), Type: arrow.BinaryTypes.String, Nullable: true})
		cols = append(cols, b.NewArray())
	}
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, benchRows)
}

// nestedBatch: a struct, a list of int64 and a map<string,string>.
func nestedBatch() arrow.RecordBatch {
	r := rand.New(rand.NewPCG(3, 4))
	st := arrow.StructOf(
		arrow.Field{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		arrow.Field{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
		arrow.Field{Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	)
	lt := arrow.ListOf(arrow.PrimitiveTypes.Int64)
	mt := arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String)
	sb := array.NewStructBuilder(mem, st)
	lb := array.NewListBuilder(mem, arrow.PrimitiveTypes.Int64)
	mb := array.NewMapBuilder(mem, arrow.BinaryTypes.String, arrow.BinaryTypes.String, false)
	for j := 0; j < benchRows; j++ {
		sb.Append(true)
		sb.FieldBuilder(0).(*array.Int64Builder).Append(r.Int64N(1 << 40))
		sb.FieldBuilder(1).(*array.StringBuilder).Append(benchText(r, 10+r.IntN(10)))
		sb.FieldBuilder(2).(*array.Float64Builder).Append(r.Float64())
		lb.Append(true)
		for k := r.IntN(8); k > 0; k-- {
			lb.ValueBuilder().(*array.Int64Builder).Append(r.Int64N(1 << 20))
		}
		mb.Append(true)
		for k := r.IntN(5); k > 0; k-- {
			mb.KeyBuilder().(*array.StringBuilder).Append(benchText(r, 6))
			mb.ItemBuilder().(*array.StringBuilder).Append(benchText(r, 12))
		}
	}
	s := arrow.NewSchema([]arrow.Field{
		{Name: "info", Type: st, Nullable: true}, {Name: "values", Type: lt, Nullable: true}, {Name: "attrs", Type: mt, Nullable: true},
	}, nil)
	return array.NewRecordBatch(s, []arrow.Array{sb.NewArray(), lb.NewArray(), mb.NewArray()}, benchRows)
}

// mapsBatch: a map<string,string> and a map<int64,int64>, each of 0..24
// entries with distinct keys.
func mapsBatch() arrow.RecordBatch {
	r := rand.New(rand.NewPCG(7, 8))
	sb := array.NewMapBuilder(mem, arrow.BinaryTypes.String, arrow.BinaryTypes.String, false)
	ib := array.NewMapBuilder(mem, arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Int64, false)
	for j := 0; j < benchRows; j++ {
		sb.Append(true)
		for k := range r.IntN(25) {
			sb.KeyBuilder().(*array.StringBuilder).Append(fmt.Sprintf("%s%02d", benchText(r, 6), k))
			sb.ItemBuilder().(*array.StringBuilder).Append(benchText(r, 4+r.IntN(12)))
		}
		ib.Append(true)
		base := r.Int64N(1 << 40)
		for k := range r.IntN(25) {
			ib.KeyBuilder().(*array.Int64Builder).Append(base + int64(k)*1000 + r.Int64N(1000))
			ib.ItemBuilder().(*array.Int64Builder).Append(r.Int64N(1 << 20))
		}
	}
	s := arrow.NewSchema([]arrow.Field{
		{Name: "attrs", Type: sb.Type(), Nullable: true}, {Name: "counts", Type: ib.Type(), Nullable: true},
	}, nil)
	return array.NewRecordBatch(s, []arrow.Array{sb.NewArray(), ib.NewArray()}, benchRows)
}

// wideBatch: 200 columns cycling int64, float64, utf8, bool and int32, 10% nulls.
func wideBatch() arrow.RecordBatch {
	r := rand.New(rand.NewPCG(5, 6))
	var fields []arrow.Field
	var cols []arrow.Array
	for i := 0; i < 200; i++ {
		var dt arrow.DataType
		switch i % 5 {
		case 0:
			dt = arrow.PrimitiveTypes.Int64
		case 1:
			dt = arrow.PrimitiveTypes.Float64
		case 2:
			dt = arrow.BinaryTypes.String
		case 3:
			dt = arrow.FixedWidthTypes.Boolean
		default:
			dt = arrow.PrimitiveTypes.Int32
		}
		b := array.NewBuilder(mem, dt)
		for j := 0; j < benchRows; j++ {
			if r.IntN(10) == 0 {
				b.AppendNull()
				continue
			}
			switch b := b.(type) {
			case *array.Int64Builder:
				b.Append(r.Int64N(1 << 30))
			case *array.Float64Builder:
				b.Append(r.Float64())
			case *array.StringBuilder:
				b.Append(benchText(r, 8+r.IntN(8)))
			case *array.BooleanBuilder:
				b.Append(r.IntN(2) == 0)
			case *array.Int32Builder:
				b.Append(r.Int32N(1000))
			}
		}
		fields = append(fields, arrow.Field{Name: fmt.Sprintf("c%d", i), Type: dt, Nullable: true})
		cols = append(cols, b.NewArray())
	}
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, benchRows)
}

func BenchmarkEncode(b *testing.B) {
	for _, shape := range benchShapes {
		b.Run(shape.name, func(b *testing.B) {
			rec := shape.rec()
			sc, err := NewSchema(rec.Schema())
			if err != nil {
				b.Fatal(err)
			}
			out, err := sc.Encode(rec)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(out.Bytes))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := sc.Encode(rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncodeReleased is BenchmarkEncode as the engine uses the
// encoder: each batch is released once sent, so its arena is reused.
func BenchmarkEncodeReleased(b *testing.B) {
	for _, shape := range benchShapes {
		b.Run(shape.name, func(b *testing.B) {
			rec := shape.rec()
			sc, err := NewSchema(rec.Schema())
			if err != nil {
				b.Fatal(err)
			}
			out, err := sc.Encode(rec)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(out.Bytes))
			out.Release()
			b.ReportAllocs()
			for b.Loop() {
				out, err := sc.Encode(rec)
				if err != nil {
					b.Fatal(err)
				}
				out.Release()
			}
		})
	}
}

func BenchmarkEncodeDynamicpb(b *testing.B) {
	for _, shape := range benchShapes {
		b.Run(shape.name, func(b *testing.B) {
			rec := shape.rec()
			sc, err := NewSchema(rec.Schema())
			if err != nil {
				b.Fatal(err)
			}
			md := messageDescriptor(b, sc.Descriptor())
			size := 0
			for _, rec := range dynamicpbEncode(md, rec) {
				size += len(rec)
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				dynamicpbEncode(md, rec)
			}
		})
	}
}

// dynamicpbEncode is the row-by-row baseline: a dynamicpb message per row,
// set field by field from the Arrow arrays, then proto.Marshal.
func dynamicpbEncode(md protoreflect.MessageDescriptor, rec arrow.RecordBatch) [][]byte {
	out := make([][]byte, rec.NumRows())
	fields := md.Fields()
	for r := range out {
		m := dynamicpb.NewMessage(md)
		for c := 0; c < int(rec.NumCols()); c++ {
			setDynamic(m, fields.Get(c), rec.Column(c), r)
		}
		b, err := proto.Marshal(m)
		if err != nil {
			panic(err)
		}
		out[r] = b
	}
	return out
}

func setDynamic(m protoreflect.Message, fd protoreflect.FieldDescriptor, a arrow.Array, i int) {
	if a.IsNull(i) {
		return
	}
	switch a := a.(type) {
	case *array.Struct:
		sub := m.Mutable(fd).Message()
		for k := 0; k < a.NumField(); k++ {
			setDynamic(sub, fd.Message().Fields().Get(k), a.Field(k), i)
		}
	case *array.Map:
		s, e := a.ValueOffsets(i)
		mm := m.Mutable(fd).Map()
		for k := int(s); k < int(e); k++ {
			mm.Set(dynamicScalar(a.Keys(), k).MapKey(), dynamicScalar(a.Items(), k))
		}
	case *array.List:
		s, e := a.ValueOffsets(i)
		vals := a.ListValues().(*array.Int64)
		l := m.Mutable(fd).List()
		for k := int(s); k < int(e); k++ {
			l.Append(protoreflect.ValueOfInt64(vals.Value(k)))
		}
	case *array.Int64:
		m.Set(fd, protoreflect.ValueOfInt64(a.Value(i)))
	case *array.Int32:
		m.Set(fd, protoreflect.ValueOfInt32(a.Value(i)))
	case *array.Float64:
		m.Set(fd, protoreflect.ValueOfFloat64(a.Value(i)))
	case *array.Boolean:
		m.Set(fd, protoreflect.ValueOfBool(a.Value(i)))
	case *array.String:
		m.Set(fd, protoreflect.ValueOfString(a.Value(i)))
	default:
		panic(fmt.Sprintf("baseline: %T", a))
	}
}

// dynamicScalar is element i of a string or int64 array (map keys and items).
func dynamicScalar(a arrow.Array, i int) protoreflect.Value {
	switch a := a.(type) {
	case *array.String:
		return protoreflect.ValueOfString(a.Value(i))
	case *array.Int64:
		return protoreflect.ValueOfInt64(a.Value(i))
	}
	panic(fmt.Sprintf("baseline: map part %T", a))
}

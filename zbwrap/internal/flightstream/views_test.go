package flightstream

import (
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// View columns, at any depth, become the plain layouts with the same
// values; a batch without views is passed on as it is.
func TestNormalize(t *testing.T) {
	sv, bv := arrow.BinaryTypes.StringView, arrow.BinaryTypes.BinaryView
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "s", Type: sv, Nullable: true},
		{Name: "b", Type: bv, Nullable: true},
		{Name: "l", Type: arrow.ListOf(sv), Nullable: true},
		{Name: "ll", Type: arrow.LargeListOf(sv), Nullable: true},
		{Name: "fl", Type: arrow.FixedSizeListOf(2, sv), Nullable: true},
		{Name: "st", Type: arrow.StructOf(arrow.Field{Name: "x", Type: sv, Nullable: true}, arrow.Field{Name: "n", Type: arrow.PrimitiveTypes.Int32}), Nullable: true},
		{Name: "m", Type: arrow.MapOf(sv, bv), Nullable: true},
		{Name: "plain", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
	}, nil)
	json := `[
		{"s": "a", "b": "AQI=", "l": ["x", null, "a string longer than twelve bytes"], "ll": ["y"], "fl": ["p", "q"], "st": {"x": "in", "n": 1}, "m": [{"key": "k", "value": "AA=="}], "plain": ["z"]},
		{"s": null, "b": null, "l": null, "ll": [], "fl": null, "st": null, "m": null, "plain": null},
		{"s": "another string longer than twelve", "b": "", "l": [], "ll": null, "fl": ["r", null], "st": {"x": null, "n": 3}, "m": [], "plain": []}
	]`
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, sc, strings.NewReader(json))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	// A slice, so that offsets are exercised.
	sl := rec.NewSlice(1, 3)
	defer sl.Release()
	for name, in := range map[string]arrow.RecordBatch{"whole": rec, "slice": sl} {
		out := Normalize(in)
		if hasView(out.Schema()) {
			t.Fatalf("%s: views left in %v", name, out.Schema())
		}
		if got := out.Schema().Field(7).Type; !arrow.TypeEqual(got, sc.Field(7).Type) {
			t.Fatalf("%s: a column without views changed type: %v", name, got)
		}
		gotJSON, err := out.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		wantJSON, err := in.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if string(gotJSON) != string(wantJSON) {
			t.Fatalf("%s: values changed\n got %s\nwant %s", name, gotJSON, wantJSON)
		}
		e, err := NewEncoder(out.Schema(), CompressionNone, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Encode(out); err != nil {
			t.Fatalf("%s: encode: %v", name, err)
		}
		out.Release()
	}
	plain := arrow.NewSchema([]arrow.Field{{Name: "plain", Type: arrow.BinaryTypes.String}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, plain)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).Append("x")
	p := b.NewRecordBatch()
	defer p.Release()
	if q := Normalize(p); q != p {
		t.Fatal("a batch without views was copied")
	} else {
		q.Release()
	}
}

func hasView(sc *arrow.Schema) bool {
	var has func(t arrow.DataType) bool
	has = func(t arrow.DataType) bool {
		switch t.ID() {
		case arrow.STRING_VIEW, arrow.BINARY_VIEW:
			return true
		}
		if n, ok := t.(arrow.NestedType); ok {
			for _, f := range n.Fields() {
				if has(f.Type) {
					return true
				}
			}
		}
		return false
	}
	for _, f := range sc.Fields() {
		if has(f.Type) {
			return true
		}
	}
	return false
}

package lake

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/descriptorpb"
)

// Hand-made wire data.
func fv(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
}

func fb(num protowire.Number, parts ...[]byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), cat(parts...))
}

func fs(num protowire.Number, s string) []byte { return fb(num, []byte(s)) }

func f32(num protowire.Number, v uint32) []byte {
	return protowire.AppendFixed32(protowire.AppendTag(nil, num, protowire.Fixed32Type), v)
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// decodeRow reads one checked record into Arrow and prints each column.
func decodeRow(t *testing.T, c *diffCase, rec []byte) map[string]string {
	t.Helper()
	rb := array.NewRecordBuilder(memory.DefaultAllocator, ArrowSchema(c.cols))
	defer rb.Release()
	c.p.appendRecord(&decoder{}, rec, newNodes(rb.Fields(), c.cols, nil))
	batch := rb.NewRecordBatch()
	defer batch.Release()
	out := map[string]string{}
	for i, col := range c.cols {
		out[col.Name] = fmt.Sprint(batch.Column(i))
	}
	return out
}

// deepCase is the "deep" differential case: protobuf's recursion limit is
// reachable in it.
func deepCase(t testing.TB) *diffCase {
	for _, c := range diffCases(t) {
		if c.name == "deep" {
			return c
		}
	}
	t.Fatal("no deep case")
	return nil
}

// nestArrays wraps an array column's element data in n wrapper messages,
// each holding the next in its field 1.
func nestArrays(inner []byte, n int) []byte {
	for range n {
		inner = fb(1, inner)
	}
	return inner
}

// TestWireSemantics pins down how records are read, case by case, with
// the values they give; each record also goes through protobuf's parser.
func TestWireSemantics(t *testing.T) {
	sint32 := descriptorpb.FieldDescriptorProto_TYPE_SINT32.Enum()
	a := newDiffCase(t, "a", mustColumns(t, `id int not null, s string, i8 tinyint, xs array<int> not null,
		st struct<x:int not null, y string>, m map<string, decimal(4,1)> not null,
		ms map<int, struct<a:int not null, b string>> not null, si int, v variant`),
		func(d *descriptorpb.DescriptorProto) { fieldOf(d, "si").Type = sint32 })
	o := newDiffCase(t, "oneof", mustColumns(t, "id int not null, a int, s string, st struct<x:int not null, y string>"),
		func(d *descriptorpb.DescriptorProto) {
			d.OneofDecl = []*descriptorpb.OneofDescriptorProto{{Name: newString("pick")}}
			for _, n := range []string{"a", "s", "st"} {
				fieldOf(d, n).OneofIndex = newInt32(0)
			}
		})
	ms := newDiffCase(t, "map of struct", mustColumns(t, "m map<int, struct<a:array<float> not null>> not null"), nil)
	deep := deepCase(t)
	id := fv(1, 1)
	key := fv(1, 1) // a smallint map key
	// The deep case's map columns: m has 120 nested arrays, so its wrapper
	// messages sit at levels 2 to 120 (W1..W119), its maps' wrappers at 121,
	// 123, 125, 127 and 129 and their entries at 122 to 130; n has one array
	// more, so its map wrappers sit at even levels and entries at odd ones.
	// deepM takes the body of the entry at level 128, deepN the body of the
	// map wrapper at level 128.
	deepM := func(e4 []byte) []byte {
		m4 := fb(1, e4)             // 127
		m3 := fb(1, key, fb(2, m4)) // 125, its entry at 126
		m2 := fb(1, key, fb(2, m3)) // 123
		m1 := fb(1, key, fb(2, m2)) // 121
		return fb(2, nestArrays(fb(1, m1), 118))
	}
	deepN := func(m4 []byte) []byte {
		m3 := fb(1, key, fb(2, m4)) // 126, its entry at 127
		m2 := fb(1, key, fb(2, m3)) // 124
		m1 := fb(1, key, fb(2, m2)) // 122
		return fb(3, nestArrays(fb(1, m1), 119))
	}
	depthErr := ": does not decode with the stream's descriptor: proto: exceeded maximum recursion depth"
	tests := []struct {
		name     string
		c        *diffCase
		rec      []byte
		err      string            // "column: reason" (a prefix of it), or "" if accepted
		want     map[string]string // printed values
		noOracle bool              // protobuf's reflective parser panics on it
	}{
		{"last scalar wins", a, cat(id, fv(1, 2)), "", map[string]string{"id": "[2]"}, false},
		{"bad scalar replaced", a, cat(id, fv(3, 300), fv(3, 5)), "", map[string]string{"i8": "[5]"}, false},
		{"bad scalar last", a, cat(id, fv(3, 5), fv(3, 300)), "i8: value 300 is out of TINYINT range", nil, false},
		{"int32 from a 64-bit varint", a, cat(fv(1, 0xffffffff_00000005)), "", map[string]string{"id": "[5]"}, false},
		{"sint32 high bits", a, cat(id, fv(8, 1<<32|2)), "", map[string]string{"si": "[1]"}, false},
		{"packed and unpacked", a, cat(id, fv(4, 1), fb(4, []byte{2, 3}), fv(4, 4)), "", map[string]string{"xs": "[[1 2 3 4]]"}, false},
		{"packed truncated", a, cat(id, fb(4, []byte{0x80})), ": does not decode with the stream's descriptor: proto: cannot parse invalid wire-format data", nil, false},
		{"struct merged", a, cat(id, fb(5, fv(1, 7)), fb(5, fs(2, "y"))), "", map[string]string{"st": `{[7] ["y"]}`}, false},
		{"struct merge overrides", a, cat(id, fb(5, fv(1, 7), fs(2, "p")), fb(5, fv(1, 8))), "", map[string]string{"st": `{[8] ["p"]}`}, false},
		{"struct field missing", a, cat(id, fb(5, fs(2, "p"))), "st.x: NOT NULL column is missing", nil, false},
		{"struct wrong wire type", a, cat(id, fb(5, f32(1, 7))), "st.x: field 1 has wire type fixed32, which does not match its declared type int32", nil, false},
		{"struct unknown field", a, cat(id, fb(5, fv(1, 7), fv(9, 1))), "st: unknown field number 9 (wire type varint)", nil, false},
		{"map later entry replaces", a, cat(id, fb(6, fs(1, "k"), fs(2, "1.5")), fb(6, fs(1, "k"), fs(2, "2.5"))), "", map[string]string{"m": `[{["k"] [2.5]}]`}, false},
		{"map bad value replaced", a, cat(id, fb(6, fs(1, "k"), fs(2, "x")), fb(6, fs(1, "k"), fs(2, "1"))), "", map[string]string{"m": `[{["k"] [1]}]`}, false},
		{"map bad value kept", a, cat(id, fb(6, fs(1, "k"), fs(2, "1")), fb(6, fs(1, "k"), fs(2, "x"))), `m.value: "x" is not a decimal(4,1) value`, nil, false},
		{"map errors in key order", a, cat(id, fb(6, fs(1, "b"), fs(2, "bad-b")), fb(6, fs(1, "a"), fs(2, "bad-a"))), `m.value: "bad-a"`, nil, false},
		{"map keys sorted", a, cat(id, fb(6, fs(1, "b"), fs(2, "2")), fb(6, fs(1, "a"), fs(2, "1"))), "", map[string]string{"m": `[{["a" "b"] [1 2]}]`}, false},
		{"map key missing", a, cat(id, fb(6, fs(2, "1"))), "", map[string]string{"m": `[{[""] [1]}]`}, false},
		{"map value missing", a, cat(id, fb(6, fs(1, "k"))), `m.value: "" is not a decimal(4,1) value: no digits`, nil, false},
		{"map entry unknown field", a, cat(id, fb(6, fs(1, "k"), fv(3, 1), fs(2, "1"), f32(2, 9))), "", map[string]string{"m": `[{["k"] [1]}]`}, false},
		{"map key wrong wire type", a, cat(id, fb(6, fs(1, "k"), fv(1, 3), fs(2, "1"))), "", map[string]string{"m": `[{["k"] [1]}]`}, true},
		{"map struct value missing", a, cat(id, fb(7, fv(1, 4))), "ms.value.a: NOT NULL column is missing", nil, false},
		{"map struct value merged", a, cat(id, fb(7, fv(1, 4), fb(2, fv(1, 9)), fb(2, fs(2, "q")))), "", map[string]string{"ms": `[{[4] {[9] ["q"]}}]`}, false},
		{"map entry replaced, bad wire data parsed", ms, cat(fb(1, fv(1, 4), fb(2, fv(7, 1), fb(1, []byte{1, 2, 3, 4, 5}))), fb(1, fv(1, 4), fb(2))),
			": does not decode with the stream's descriptor: proto: cannot parse invalid wire-format data", nil, false},
		{"map entry replaced", ms, cat(fb(1, fv(1, 4), fb(2, fv(7, 1), fb(1, []byte{1, 2, 3, 4}))), fb(1, fv(1, 4), fb(2))), "", map[string]string{"m": "[{[4] {[[]]}}]"}, false},
		{"map wrong wire type", a, cat(id, fv(6, 1)), "m: field 6 has wire type varint, which does not match its declared type message MEntry", nil, false},
		{"variant", a, cat(id, fs(9, `{"a":[1]}`)), "", map[string]string{"v": `["{\"a\":[1]}"]`}, false},
		{"unknown field first", a, cat(fv(3, 300), fv(99, 1)), ": unknown field number 99 (wire type varint)", nil, false},
		{"bad wire data first", a, cat(fv(3, 300), fv(99, 1), []byte{0x0a}), ": does not decode with the stream's descriptor: proto: cannot parse invalid wire-format data", nil, false},
		{"bad wire data in a later struct", a, cat(fv(3, 300), fb(5, []byte{0xff})), ": does not decode with the stream's descriptor", nil, false},
		{"field number zero", a, []byte{0x00, 0x01}, ": does not decode", nil, false},
		{"field number too large", a, protowire.AppendTag(nil, protowire.MaxValidNumber+1, protowire.VarintType), ": does not decode", nil, false},
		{"varint overflow", a, cat([]byte{0x08}, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}), ": does not decode", nil, false},
		{"unknown group", a, cat(id, protowire.AppendTag(nil, 20, protowire.StartGroupType), fv(1, 1), protowire.AppendTag(nil, 20, protowire.EndGroupType)), ": unknown field number 20 (wire type group)", nil, false},
		{"unclosed group", a, cat(id, protowire.AppendTag(nil, 20, protowire.StartGroupType), fv(1, 1)), ": does not decode", nil, false},
		{"end group alone", a, cat(id, protowire.AppendTag(nil, 20, protowire.EndGroupType)), ": does not decode", nil, false},
		{"oneof last member", o, cat(id, fv(2, 5), fs(3, "x")), "", map[string]string{"a": "[(null)]", "s": `["x"]`, "st": "{[(null)] [(null)]}"}, false},
		{"oneof member again", o, cat(id, fs(3, "x"), fv(2, 5)), "", map[string]string{"a": "[5]", "s": "[(null)]"}, false},
		{"oneof message after another member", o, cat(id, fb(4, fv(1, 1), fs(2, "p")), fv(2, 5), fb(4, fv(1, 2))), "", map[string]string{"a": "[(null)]", "st": "{[2] [(null)]}"}, false},
		{"oneof dropped member unchecked", o, cat(id, fb(4, fs(2, "p")), fv(2, 5)), "", map[string]string{"a": "[5]", "st": "{[(null)] [(null)]}"}, false},
		{"oneof dropped member parsed", o, cat(id, fb(4, []byte{0xff}), fv(2, 5)), ": does not decode", nil, false},
		{"too deep", deep, fb(1, nestArrays(nil, 127)), depthErr, nil, false},
		{"deepest allowed", deep, fb(1, nestArrays(nil, 126)), "", nil, false},
		{"map value missing at the limit", deep, deepM(key), "", nil, false},
		{"map value past the limit", deep, deepM(cat(key, fb(2))), depthErr, nil, false},
		{"map wrapper at the limit", deep, deepN(nil), "", nil, false},
		{"map entry past the limit", deep, deepN(fb(1, key)), depthErr, nil, false},
		{"map field of any wire type past the limit", deep, deepN(fv(1, 1)), depthErr, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fe := tc.c.p.check(&decoder{}, tc.rec)
			got := ""
			if fe != nil {
				got = fe.column + ": " + fe.reason
			}
			if tc.err == "" && fe != nil || tc.err != "" && !strings.HasPrefix(got, tc.err) {
				t.Fatalf("check = %q, want %q", got, tc.err)
			}
			if fe == nil {
				vals := decodeRow(t, tc.c, tc.rec)
				for col, w := range tc.want {
					if vals[col] != w {
						t.Errorf("%s = %s, want %s", col, vals[col], w)
					}
				}
			}
			if !tc.noOracle {
				df := newDiffer(tc.c, 1)
				defer df.release()
				df.one(t, tc.rec)
			} else if _, _, panicked := safeOracle(tc.c.p, tc.rec); !panicked {
				t.Errorf("protobuf's reflective parser no longer panics: compare with it")
			}
		})
	}
}

func newString(s string) *string { return &s }

// TestCheckConcurrent checks batches on one Binding from many goroutines:
// each gets its own scratch space.
func TestCheckConcurrent(t *testing.T) {
	l := openLake(t, t.TempDir())
	tb := mustCreate(t, l, "c.s.all", allTypesDDL)
	d := DescriptorFor("Row", tb.Columns())
	b := mustBind(t, l, "c.s.all", d)
	md := msgDesc(t, d)
	good := encode(t, md, goodRow(1))
	bad := encode(t, md, with(goodRow(1), "i16", 40000))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				batch := [][]byte{good, good, good}
				at := (g + i) % 4 // 3: no bad record
				if at < 3 {
					batch[at] = bad
				}
				err := b.Check(batch)
				var re *RecordError
				switch {
				case at == 3 && err != nil:
					t.Errorf("valid batch: %v", err)
				case at < 3 && (!errors.As(err, &re) || re.Index != at || re.Column != "i16"):
					t.Errorf("bad record at %d: %v", at, err)
				}
			}
		})
	}
	wg.Wait()
}

// TestLargeList reads a record of 100,000 list elements sent one by one.
func TestLargeList(t *testing.T) {
	dir := t.TempDir()
	l := openLake(t, dir)
	tb := mustCreate(t, l, "c.s.t", "id int not null, xs array<int> not null")
	b := mustBind(t, l, "c.s.t", DescriptorFor("R", tb.Columns()))
	rec := fv(1, 7)
	for i := range 100_000 {
		rec = append(rec, fv(2, uint64(i))...)
	}
	if err := b.Check([][]byte{rec}); err != nil {
		t.Fatal(err)
	}
	// The scratch space of so large a record is not kept for the next.
	d := b.plan.pool.get()
	if cap(d.occ) > 1<<16 {
		t.Errorf("the pool kept %d occurrences of scratch space", cap(d.occ))
	}
	mustAppend(t, b, [][]byte{rec})
	if err := l.Materialize(); err != nil {
		t.Fatal(err)
	}
	xs := readAll(t, dir, "c.s.t").Column(1).Data().Chunk(0).(*array.List)
	vals := xs.ListValues().(*array.Int32)
	if xs.Len() != 1 || vals.Len() != 100_000 || vals.Value(0) != 0 || vals.Value(99_999) != 99_999 {
		t.Fatalf("list of %d values", vals.Len())
	}
}

// TestBuildersSizedFromLastCommit: a commit's string buffers are reserved
// from what the table's last commit held, per row, for the records pending.
func TestBuildersSizedFromLastCommit(t *testing.T) {
	l := openLake(t, t.TempDir())
	tb := mustCreate(t, l, "c.s.t", "id int not null, s string, tags array<string> not null")
	d := DescriptorFor("R", tb.Columns())
	b := mustBind(t, l, "c.s.t", d)
	md := msgDesc(t, d)
	var recs [][]byte
	for i := range 100 {
		recs = append(recs, encode(t, md, map[string]any{"id": i, "s": strings.Repeat("s", 50), "tags": []any{"ab", "cd", "ef"}}))
	}
	mustAppend(t, b, recs)
	if err := l.Materialize(); err != nil {
		t.Fatal(err)
	}
	tb.matMu.Lock()
	h := tb.hint
	tb.matMu.Unlock()
	if h.rows != 100 || h.bytes != int64(100*len(recs[0])) || fmt.Sprint(h.data) != "[5000 600]" {
		t.Fatalf("hint = %+v", h)
	}
	bb := newBatchBuilder(tb.schema, tb.cols)
	defer bb.rb.Release()
	bb.reserve(sizeHint{}, 1000) // no commit yet: nothing reserved
	if c := bb.bins[0].DataCap(); c >= 50_000 {
		t.Errorf("reserved %d bytes without a hint", c)
	}
	bb.reserve(h, 1000)
	if s, tags := bb.bins[0].DataCap(), bb.bins[1].DataCap(); s < 50_000 || tags < 6000 {
		t.Errorf("reserved %d and %d bytes for 1,000 rows", s, tags)
	}
	// A backlog is cut at the bytes one commit may hold.
	bb2 := newBatchBuilder(tb.schema, tb.cols)
	defer bb2.rb.Release()
	bb2.reserve(h, 1<<40)
	rows := maxCommitBytes/int64(len(recs[0])) + 1
	if c := int64(bb2.bins[0].DataCap()); c < 50*rows || c > 2*50*rows {
		t.Errorf("reserved %d bytes for a backlog, want about %d", c, 50*rows)
	}
}

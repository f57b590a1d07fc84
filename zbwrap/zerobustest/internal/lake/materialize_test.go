package lake

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/protobuf/proto"
)

// commitLines reads one version of a table's Delta log as JSON objects.
func commitLines(t testing.TB, tableDir string, version int64) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(tableDir, "_delta_log", commitName(version)))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("version %d: %v", version, err)
		}
		out = append(out, m)
	}
	return out
}

func action(lines []map[string]any, name string) map[string]any {
	for _, l := range lines {
		if a, ok := l[name].(map[string]any); ok {
			return a
		}
	}
	return nil
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestMaterializeOutput(t *testing.T) {
	dir := t.TempDir()
	l := openLake(t, dir)
	tb := mustCreate(t, l, "c.s.all", allTypesDDL)
	d := DescriptorFor("Row", tb.Columns())
	b := mustBind(t, l, "c.s.all", d)
	md := msgDesc(t, d)
	recs := [][]byte{
		encode(t, md, goodRow(1)),
		encode(t, md, map[string]any{"id": 2, "ts": int64(-1), "day": 0, "f": -3.5, "i8": 5}),
		encode(t, md, map[string]any{"id": 3, "scores": map[any]any{"z": 26, "a": 1, "m": 13}, "inner": map[string]any{"x": 0}}),
	}
	if err := b.Check(recs); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, b, recs)
	if err := l.Materialize(); err != nil {
		t.Fatal(err)
	}
	tbl := readAll(t, dir, "c.s.all")
	if tbl.NumRows() != 3 {
		t.Fatalf("%d rows", tbl.NumRows())
	}
	if !tbl.Schema().Equal(ArrowSchema(tb.Columns())) {
		t.Fatalf("schema\n%s\nwant\n%s", tbl.Schema(), ArrowSchema(tb.Columns()))
	}
	col := func(name string) arrow.Array {
		return tbl.Column(tbl.Schema().FieldIndices(name)[0]).Data().Chunk(0)
	}
	want := map[string]string{
		"id":     `[1 2 3]`,
		"b":      `[true (null) (null)]`,
		"i8":     `[-128 5 (null)]`,
		"i16":    `[32767 (null) (null)]`,
		"i32":    `[-7 (null) (null)]`,
		"f":      `[1.5 -3.5 (null)]`,
		"s":      `["héllo" (null) (null)]`,
		"bin":    `["\x00\x01" (null) (null)]`,
		"day":    `[0001-01-01 1970-01-01 (null)]`,
		"ts":     `[253402300799999999 -1 (null)]`,
		"ntz":    `[-62135596800000000 (null) (null)]`,
		"dec":    `[-99999999.99 (null) (null)]`,
		"v":      `["{\"a\":[1,2]}" (null) (null)]`,
		"tags":   `[["x"] [] []]`,
		"scores": `[{["a"] [1]} {[] []} {["a" "m" "z"] [1 13 26]}]`,
		"inner":  `{[3 (null) 0] [["n"] (null) []] [{[1] ["one"]} (null) {[] []}]}`,
		"items":  `[{["k1"] [9]} {[] []} {[] []}]`,
		"nested": `[[[1 2]] [] []]`,
	}
	for name, w := range want {
		if got := fmt.Sprint(col(name)); got != w {
			t.Errorf("%s = %s, want %s", name, got, w)
		}
	}
	if got := col("items").(*array.List).Offsets(); !slices.Equal(got, []int32{0, 1, 1, 1}) {
		t.Errorf("items offsets = %v", got)
	}
	if got := col("inner").(*array.Struct); got.IsValid(1) || !got.IsValid(2) {
		t.Errorf("inner validity: row 1 should be null, row 2 set")
	}

	// The Delta log: version 0 creates the table, version 1 adds one file.
	v0 := commitLines(t, tb.Path(), 0)
	proto := action(v0, "protocol")
	if jsonString(proto) != `{"minReaderVersion":3,"minWriterVersion":7,"readerFeatures":["timestampNtz"],"writerFeatures":["timestampNtz"]}` {
		t.Errorf("protocol = %s", jsonString(proto))
	}
	meta := action(v0, "metaData")
	if meta["schemaString"] != SchemaString(tb.Columns()) || jsonString(meta["format"]) != `{"options":{},"provider":"parquet"}` ||
		jsonString(meta["partitionColumns"]) != `[]` || meta["id"] == "" || meta["createdTime"] == nil {
		t.Errorf("metaData = %s", jsonString(meta))
	}
	v1 := commitLines(t, tb.Path(), 1)
	add := action(v1, "add")
	if add == nil || add["dataChange"] != true || jsonString(add["partitionValues"]) != `{}` || !strings.HasSuffix(add["path"].(string), ".snappy.parquet") {
		t.Fatalf("add = %s", jsonString(add))
	}
	st, err := os.Stat(filepath.Join(tb.Path(), add["path"].(string)))
	if err != nil || float64(st.Size()) != add["size"].(float64) {
		t.Errorf("add size %v, file %v (%v)", add["size"], st, err)
	}
	var stats map[string]map[string]any
	json.Unmarshal([]byte(add["stats"].(string)), &stats)
	if n := jsonString(json.RawMessage(add["stats"].(string))); !strings.Contains(n, `"numRecords":3`) {
		t.Errorf("stats = %s", n)
	}
	checks := map[string]string{
		"minValues.id": "1", "maxValues.id": "3",
		"minValues.i8": "-128", "maxValues.i8": "5",
		"minValues.f": "-3.5", "maxValues.f": "1.5",
		"minValues.day": `"0001-01-01"`, "maxValues.day": `"1970-01-01"`,
		"minValues.ts": `null`, "maxValues.ts": `null`, // 9999-12-31T23:59:59.999999 has no millisecond bound above
		"nullCount.b": "2", "nullCount.id": "0", "nullCount.tags": "0",
		"minValues.s": "null", "minValues.ntz": "null", "nullCount.inner": "null",
	}
	for k, w := range checks {
		part := strings.SplitN(k, ".", 2)
		if got := jsonString(stats[part[0]][part[1]]); got != w {
			t.Errorf("stats %s = %s, want %s", k, got, w)
		}
	}
	ci := action(v1, "commitInfo")
	if jsonString(ci["zerobus"]) != `{"logPosition":3,"rejected":0}` || ci["operation"] != "WRITE" {
		t.Errorf("commitInfo = %s", jsonString(ci))
	}
	// Nothing new: no new version.
	if err := l.Materialize(); err != nil {
		t.Fatal(err)
	}
	if vs, _ := listVersions(tb.Path()); len(vs) != 2 {
		t.Errorf("versions = %v after an idle Materialize", vs)
	}
}

func TestProtocolWithoutNTZ(t *testing.T) {
	l := openLake(t, t.TempDir())
	tb := mustCreate(t, l, "c.s.t", "a int, s struct<x:timestamp>")
	if p := jsonString(action(commitLines(t, tb.Path(), 0), "protocol")); p != `{"minReaderVersion":1,"minWriterVersion":2}` {
		t.Errorf("protocol = %s", p)
	}
	tb = mustCreate(t, l, "c.s.u", "a int, s map<string, array<struct<x:timestamp_ntz>>> not null")
	if p := action(commitLines(t, tb.Path(), 0), "protocol"); p["minReaderVersion"] != 3.0 {
		t.Errorf("nested TIMESTAMP_NTZ: protocol = %s", jsonString(p))
	}
}

func TestMinMaxStats(t *testing.T) {
	l := openLake(t, t.TempDir())
	tb := mustCreate(t, l, "c.s.t", "id bigint not null, d double, ts timestamp, i16 smallint, day date")
	d := DescriptorFor("R", tb.Columns())
	b := mustBind(t, l, "c.s.t", d)
	md := msgDesc(t, d)
	mustAppend(t, b, [][]byte{
		encode(t, md, map[string]any{"id": 1, "d": 1.0, "ts": int64(1_000_999), "i16": -3}),
		encode(t, md, map[string]any{"id": 2, "d": 0.5, "ts": int64(1_000), "i16": 9}),
		encode(t, md, map[string]any{"id": 3, "ts": int64(253402300799999999)}),
	})
	if err := l.Materialize(); err != nil {
		t.Fatal(err)
	}
	var stats map[string]map[string]any
	json.Unmarshal([]byte(action(commitLines(t, tb.Path(), 1), "add")["stats"].(string)), &stats)
	if jsonString(stats["minValues"]) != `{"d":0.5,"i16":-3,"id":1}` || jsonString(stats["maxValues"]) != `{"d":1,"i16":9,"id":3}` {
		t.Errorf("stats = %s", jsonString(stats))
	}
	// Timestamps round outward; a max at the very end of the range has no
	// millisecond bound above it, so the column has no bounds.
	mustAppend(t, b, [][]byte{encode(t, md, map[string]any{"id": 4, "ts": int64(1_000_999)}), encode(t, md, map[string]any{"id": 5, "ts": int64(-1_500), "d": 2.0})})
	if err := l.Materialize(); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal([]byte(action(commitLines(t, tb.Path(), 2), "add")["stats"].(string)), &stats)
	if stats["minValues"]["ts"] != "1969-12-31T23:59:59.998Z" || stats["maxValues"]["ts"] != "1970-01-01T00:00:01.001Z" {
		t.Errorf("timestamp bounds = %v / %v", stats["minValues"]["ts"], stats["maxValues"]["ts"])
	}
	// NaN and infinities hide a float column's bounds; so does all-null.
	fb := array.NewFloat64Builder(memory.DefaultAllocator)
	defer fb.Release()
	for _, vals := range [][]float64{{1, math.NaN()}, {math.Inf(1)}} {
		fb.AppendValues(vals, nil)
		a := fb.NewArray()
		if lo, hi, ok := minMax(a, Double); ok {
			t.Errorf("minMax(%v) = %v, %v", a, lo, hi)
		}
		a.Release()
	}
	fb.AppendNull()
	a := fb.NewArray()
	defer a.Release()
	if _, _, ok := minMax(a, Double); ok {
		t.Errorf("minMax of all nulls has bounds")
	}
	sb := array.NewStringBuilder(memory.DefaultAllocator)
	defer sb.Release()
	sb.Append("x")
	sa := sb.NewArray()
	defer sa.Release()
	if _, _, ok := minMax(sa, String); ok {
		t.Errorf("minMax of strings has bounds")
	}
}

func TestCommitFailureLeavesHarmlessOrphan(t *testing.T) {
	dir := t.TempDir()
	l := openLake(t, dir)
	b, md := idTable(t, l, "t")
	mustAppend(t, b, idRecords(t, md, 0, 10, ""))
	tableDir := b.Table().Path()
	// Version 1 cannot be written: the Parquet file is, its commit is not.
	blocker := filepath.Join(tableDir, "_delta_log", commitName(1))
	if err := os.Mkdir(blocker, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := l.Materialize(); err == nil || !strings.Contains(err.Error(), "version 1") {
		t.Fatalf("Materialize = %v, want a commit error", err)
	}
	parquets, _ := filepath.Glob(filepath.Join(tableDir, "*.parquet"))
	if len(parquets) != 1 {
		t.Fatalf("%d Parquet files after the failed commit, want 1 orphan", len(parquets))
	}
	if s := b.Table().Stats(); s.Materialized != 0 {
		t.Fatalf("Stats = %+v after a failed commit", s)
	}
	os.Remove(blocker)
	mustAppend(t, b, idRecords(t, md, 10, 5, ""))
	if err := l.Materialize(); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, dir, "t"); !slices.Equal(got, seq(0, 15)) {
		t.Fatalf("ids = %v", got)
	}
	crash(t, l)
	reopen(t, dir)
	if got := ids(t, dir, "t"); !slices.Equal(got, seq(0, 15)) {
		t.Fatalf("ids after reopen = %v", got)
	}
}

func TestExactlyOnceAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	l := openLake(t, dir)
	b, md := idTable(t, l, "t")
	mustAppend(t, b, idRecords(t, md, 0, 10, ""))
	if err := l.Materialize(); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, b, idRecords(t, md, 10, 10, ""))
	crash(t, l) // 10 materialized, 10 only durable
	l = reopen(t, dir)
	tb, _ := l.Table("c.s.t")
	if s := tb.Stats(); s.Durable != 20 || s.Materialized != 20 {
		t.Fatalf("Stats = %+v", s)
	}
	vs, _ := listVersions(tb.Path())
	crash(t, l)
	l = reopen(t, dir) // nothing to replay: no new commit
	if vs2, _ := listVersions(tb.Path()); len(vs2) != len(vs) {
		t.Fatalf("versions %v -> %v on an idle reopen", vs, vs2)
	}
	if got := ids(t, dir, "t"); !slices.Equal(got, seq(0, 20)) {
		t.Fatalf("ids = %v", got)
	}
	// Close materializes.
	b, md = idTable(t, l, "t")
	mustAppend(t, b, idRecords(t, md, 20, 5, ""))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, dir, "t"); !slices.Equal(got, seq(0, 25)) {
		t.Fatalf("ids after Close = %v", got)
	}
}

func TestBackgroundMaterializer(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(Options{Dir: dir, MaterializeInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	b, md := idTable(t, l, "t")
	mustAppend(t, b, idRecords(t, md, 0, 7, ""))
	deadline := time.Now().Add(10 * time.Second)
	for b.Table().Stats().Materialized != 7 {
		if time.Now().After(deadline) {
			t.Fatalf("not materialized in time: %+v", b.Table().Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := ids(t, dir, "t"); !slices.Equal(got, seq(0, 7)) {
		t.Fatalf("ids = %v", got)
	}
}

func TestRejectedRecordsAreSkipped(t *testing.T) {
	dir := t.TempDir()
	l := openLake(t, dir)
	b, md := idTable(t, l, "t")
	// Append does not check: records that never passed Check reach the log.
	mustAppend(t, b, [][]byte{encode(t, md, map[string]any{"id": 1}), {0xff, 0xff}, encode(t, md, map[string]any{"s": "no id"}), encode(t, md, map[string]any{"id": 2})})
	if err := l.Materialize(); err != nil {
		t.Fatal(err)
	}
	if s := b.Table().Stats(); s.Durable != 4 || s.Materialized != 2 || s.Rejected != 2 {
		t.Fatalf("Stats = %+v, want 4 durable, 2 materialized, 2 rejected", s)
	}
	// A batch of nothing but bad records commits the position alone.
	mustAppend(t, b, [][]byte{{0xff}})
	if err := l.Materialize(); err != nil {
		t.Fatal(err)
	}
	lines := commitLines(t, b.Table().Path(), 2)
	if action(lines, "add") != nil || jsonString(action(lines, "commitInfo")["zerobus"]) != `{"logPosition":5,"rejected":3}` {
		t.Fatalf("commit of rejected records = %s", jsonString(lines))
	}
	crash(t, l)
	l = reopen(t, dir)
	tb, _ := l.Table("c.s.t")
	if s := tb.Stats(); s.Durable != 5 || s.Materialized != 2 || s.Rejected != 3 {
		t.Fatalf("Stats after reopen = %+v", s)
	}
	if got := ids(t, dir, "t"); !slices.Equal(got, []int64{1, 2}) {
		t.Fatalf("ids = %v", got)
	}
}

func TestDescriptorChangesBetweenBindings(t *testing.T) {
	// Two streams with differently numbered descriptors write one table.
	dir := t.TempDir()
	l := openLake(t, dir)
	tb := mustCreate(t, l, "c.s.t", idDDL)
	d1 := DescriptorFor("Row", tb.Columns())
	d2 := DescriptorFor("Other", tb.Columns())
	d2.Field[0].Number, d2.Field[1].Number = newInt32(7), newInt32(3)
	b1, b2 := mustBind(t, l, "c.s.t", d1), mustBind(t, l, "c.s.t", d2)
	mustAppend(t, b1, [][]byte{encode(t, msgDesc(t, d1), map[string]any{"id": 1, "s": "a"})})
	mustAppend(t, b2, [][]byte{encode(t, msgDesc(t, d2), map[string]any{"id": 2, "s": "b"})})
	mustAppend(t, b1, [][]byte{encode(t, msgDesc(t, d1), map[string]any{"id": 3, "s": "c"})})
	crash(t, l)
	reopen(t, dir) // replayed from the log, descriptors included
	tbl := readAll(t, dir, "c.s.t")
	if got := fmt.Sprint(tbl.Column(1).Data().Chunk(0)); got != `["a" "b" "c"]` {
		t.Fatalf("s = %s", got)
	}
}

func newInt32(v int32) *int32 { return &v }

func TestPlanForBadDescriptorFrame(t *testing.T) {
	l := openLake(t, t.TempDir())
	tb := mustCreate(t, l, "c.s.t", idDDL)
	if tb.planFor([]byte{0xff}) != nil {
		t.Error("garbage descriptor compiled")
	}
	raw, _ := proto.Marshal(DescriptorFor("R", mustColumns(t, "x int")))
	if tb.planFor(raw) != nil {
		t.Error("descriptor of another table compiled")
	}
	raw, _ = proto.Marshal(DescriptorFor("", mustColumns(t, "x int")))
	if tb.planFor(raw) != nil {
		t.Error("descriptor without a name compiled")
	}
}

func TestMapKeyOrder(t *testing.T) {
	dir := t.TempDir()
	l := openLake(t, dir)
	tb := mustCreate(t, l, "c.s.t", "id int not null, mb map<boolean,int> not null, ml map<bigint,string> not null, md map<date,int> not null")
	d := DescriptorFor("R", tb.Columns())
	b := mustBind(t, l, "c.s.t", d)
	md := msgDesc(t, d)
	mustAppend(t, b, [][]byte{encode(t, md, map[string]any{"id": 1,
		"mb": map[any]any{true: 1, false: 0},
		"ml": map[any]any{int64(5): "five", int64(-5): "minus", int64(0): "zero"},
		"md": map[any]any{3: 3, -3: -3}})})
	if err := l.Materialize(); err != nil {
		t.Fatal(err)
	}
	tbl := readAll(t, dir, "c.s.t")
	for i, want := range []string{"", `[{[false true] [0 1]}]`, `[{[-5 0 5] ["minus" "zero" "five"]}]`, `[{[1969-12-29 1970-01-04] [-3 3]}]`} {
		if i == 0 {
			continue
		}
		if got := fmt.Sprint(tbl.Column(i).Data().Chunk(0)); got != want {
			t.Errorf("column %d = %s, want %s", i, got, want)
		}
	}
}

func TestBatchWithoutDescriptorIsRejected(t *testing.T) {
	dir := t.TempDir()
	l := openLake(t, dir)
	b, md := idTable(t, l, "t")
	mustAppend(t, b, idRecords(t, md, 0, 3, ""))
	crash(t, l)
	// A segment whose batch refers to a descriptor it never declared.
	seg := []byte(segMagic)
	for _, f := range encodeBatchFrames(42, idRecords(t, md, 3, 2, "")) {
		seg = append(seg, f...)
	}
	logDir := filepath.Dir(lastSegment(t, dir, "t"))
	if err := os.WriteFile(filepath.Join(logDir, segName(3)), seg, 0o644); err != nil {
		t.Fatal(err)
	}
	l = reopen(t, dir)
	tb, _ := l.Table("c.s.t")
	if s := tb.Stats(); s.Durable != 5 || s.Materialized != 3 || s.Rejected != 2 {
		t.Fatalf("Stats = %+v, want 5 durable, 3 materialized, 2 rejected", s)
	}
}

func TestSealedSegmentMissingRecords(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(Options{Dir: dir, MaterializeInterval: time.Hour, segmentSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, l, "c.s.t", idDDL)
	b, md := idTable(t, l, "t")
	for i := range 6 {
		mustAppend(t, b, idRecords(t, md, i*10, 10, strings.Repeat("z", 50)))
	}
	crash(t, l)
	segs, _ := filepath.Glob(filepath.Join(dir, "c", "s", "t", "_zerobus_log", "*"+segExt))
	slices.Sort(segs)
	// Cut the first segment after its first batch: whole frames, but fewer
	// records than the next segment's name says.
	f, _ := os.Open(segs[0])
	st, _ := f.Stat()
	fr := newFrameReader(f, int64(len(segMagic)), st.Size())
	for {
		fm, err := fr.next()
		if err != nil {
			t.Fatal(err)
		}
		if fm.kind == kindBatch {
			break
		}
	}
	f.Close()
	os.Truncate(segs[0], fr.off)
	if _, err := Open(Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "the next starts at") {
		t.Fatalf("Open = %v, want an error about the missing records", err)
	}
}

func TestLargeRecord(t *testing.T) {
	dir := t.TempDir()
	l := openLake(t, dir)
	b, md := idTable(t, l, "t")
	big := strings.Repeat("a", 10<<20)
	recs := [][]byte{encode(t, md, map[string]any{"id": 1, "s": big}), encode(t, md, map[string]any{"id": 2, "s": "small"})}
	if err := b.Check(recs); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, b, recs)
	crash(t, l)
	reopen(t, dir)
	tbl := readAll(t, dir, "c.s.t")
	s := tbl.Column(1).Data().Chunk(0).(*array.String)
	if s.Len() != 2 || s.Value(0) != big || s.Value(1) != "small" {
		t.Fatalf("large record did not round-trip: %d rows, first %d bytes", s.Len(), len(s.Value(0)))
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	dir := t.TempDir()
	l, err := Open(Options{Dir: dir, MaterializeInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		b, md := idTable(t, l, fmt.Sprintf("t%d", i))
		mustAppend(t, b, idRecords(t, md, 0, 5, ""))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestForeignCommitIsTolerated(t *testing.T) {
	dir := t.TempDir()
	l := openLake(t, dir)
	b, md := idTable(t, l, "t")
	mustAppend(t, b, idRecords(t, md, 0, 4, ""))
	if err := l.Materialize(); err != nil {
		t.Fatal(err)
	}
	// Another engine commits version 2 while the lake runs.
	rewriteCommit(t, b.Table().Path(), 2, []map[string]any{{"commitInfo": map[string]any{"operation": "OPTIMIZE"}}})
	mustAppend(t, b, idRecords(t, md, 4, 4, ""))
	if err := l.Materialize(); err != nil {
		t.Fatalf("Materialize after a foreign commit: %v", err)
	}
	if lines := commitLines(t, b.Table().Path(), 3); jsonString(action(lines, "commitInfo")["zerobus"]) != `{"logPosition":8,"rejected":0}` {
		t.Fatalf("version 3 = %s", jsonString(lines))
	}
	if got := ids(t, dir, "t"); !slices.Equal(got, seq(0, 8)) {
		t.Fatalf("ids = %v", got)
	}
	if s := b.Table().Stats(); s.Materialized != 8 {
		t.Fatalf("Stats = %+v", s)
	}
}

package arrowproto

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/protobuf/encoding/protowire"
)

// checkFrames verifies that b.Frames is field repeated once per record of
// b.Records, in order, and that each record is the very bytes after its
// prefix (a sub-slice, not a copy).
func checkFrames(t testing.TB, b *Batch, field protowire.Number) {
	t.Helper()
	rest := b.Frames
	for i, r := range b.Records {
		num, typ, n := protowire.ConsumeTag(rest)
		if n < 0 || num != field || typ != protowire.BytesType {
			t.Fatalf("record %d: frame starts with field %d type %d (n %d), want field %d bytes", i, num, typ, n, field)
		}
		rest = rest[n:]
		v, m := protowire.ConsumeBytes(rest)
		if m < 0 || len(v) != len(r) {
			t.Fatalf("record %d: frame holds %d bytes (n %d), record has %d", i, len(v), m, len(r))
		}
		if len(r) > 0 && &v[0] != &r[0] {
			t.Fatalf("record %d is not the sub-slice of Frames after its prefix", i)
		}
		rest = rest[m:]
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes after the last frame", len(rest))
	}
	if len(b.Records) == 0 && len(b.Frames) != 0 {
		t.Fatalf("no records but %d frame bytes", len(b.Frames))
	}
}

// scribble fills the whole arena of b, up to its capacity, with garbage and
// releases b, so that the next encode of the schema reuses dirty memory.
func scribble(b *Batch) {
	a := b.mem.arena[:cap(b.mem.arena)]
	for i := range a {
		a[i] = 0xa5
	}
	b.Release()
}

// checkFramedReuse encodes rec framed into the dirty memory of a released
// batch and checks it with the oracle, the framing, and byte for byte
// against plain, the ordinary encoding of rec.
func checkFramedReuse(t testing.TB, sc *Schema, rec arrow.RecordBatch, plain *Batch) {
	t.Helper()
	for _, field := range []protowire.Number{1, 300} {
		first, err := sc.EncodeFramed(rec, field)
		if err != nil {
			t.Fatalf("EncodeFramed: %v", err)
		}
		mem := first.mem
		scribble(first)
		b, err := sc.EncodeFramed(rec, field)
		if err != nil {
			t.Fatalf("EncodeFramed into reused memory: %v", err)
		}
		if b.mem != mem {
			t.Fatalf("a released batch's memory was not reused for the same batch")
		}
		checkFrames(t, b, field)
		if field == 1 {
			checkBatch(t, sc, rec, b)
		}
		if len(b.Records) != len(plain.Records) || b.Bytes != plain.Bytes {
			t.Fatalf("framed: %d records, %d bytes; plain: %d records, %d bytes",
				len(b.Records), b.Bytes, len(plain.Records), plain.Bytes)
		}
		for i := range b.Records {
			if !bytes.Equal(b.Records[i], plain.Records[i]) || b.Rows[i] != plain.Rows[i] {
				t.Fatalf("record %d differs between framed and plain encoding", i)
			}
		}
		b.Release()
	}
}

func TestEncodeFramedTags(t *testing.T) {
	rec := record(t,
		column{"id", fromJSON(t, arrow.PrimitiveTypes.Int64, `[1, null, 300, -5]`)},
		column{"s", fromJSON(t, arrow.BinaryTypes.String, `["a", "", null, "a long enough string to need a two-byte length prefix? no, but fine"]`)},
	)
	defer rec.Release()
	sc, plain := roundTrip(t, rec)
	for _, tc := range []struct {
		field  protowire.Number
		tagLen int
	}{
		{1, 1}, {15, 1}, {16, 2}, {2047, 2}, {2048, 3}, {MaxFieldNumber, 5},
	} {
		b, err := sc.EncodeFramed(rec, tc.field)
		if err != nil {
			t.Fatalf("field %d: %v", tc.field, err)
		}
		checkFrames(t, b, tc.field)
		want := plain.Bytes
		for _, r := range plain.Records {
			want += tc.tagLen + protowire.SizeVarint(uint64(len(r)))
		}
		if len(b.Frames) != want {
			t.Fatalf("field %d: %d frame bytes, want %d", tc.field, len(b.Frames), want)
		}
		b.Release()
	}
}

func TestEncodeFramedRejectsBadFieldNumbers(t *testing.T) {
	rec := record(t, column{"id", fromJSON(t, arrow.PrimitiveTypes.Int64, `[1]`)})
	defer rec.Release()
	sc, err := NewSchema(rec.Schema())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []protowire.Number{0, -1, MaxFieldNumber + 1} {
		if _, err := sc.EncodeFramed(rec, f); err == nil {
			t.Fatalf("field %d accepted", f)
		}
	}
	if _, err := sc.EncodeFramed(nil, 1); !errors.Is(err, ErrSchemaMismatch) {
		t.Fatalf("nil batch: %v, want ErrSchemaMismatch", err)
	}
}

// Rows that fail go to the sink, which lies beyond Frames: the frames of the
// good rows stay contiguous, and reused memory holds no trace of them.
func TestEncodeFramedWithFailedRows(t *testing.T) {
	rec := record(t,
		column{"u", fromJSON(t, arrow.PrimitiveTypes.Uint64, `[1, 18446744073709551615, 3, 18446744073709551615, 5]`)},
		column{"l", fromJSON(t, arrow.ListOf(arrow.PrimitiveTypes.Int32), `[[1], [2, null], null, [4], [null]]`)},
	)
	defer rec.Release()
	sc, plain := roundTrip(t, rec)
	if len(plain.Errors) != 3 || len(plain.Records) != 2 {
		t.Fatalf("got %d errors and %d records, want 3 and 2", len(plain.Errors), len(plain.Records))
	}
	checkFramedReuse(t, sc, rec, plain)
}

func TestReleasedMemoryIsReused(t *testing.T) {
	big := record(t, column{"s", fromJSON(t, arrow.BinaryTypes.String, `["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"]`)})
	defer big.Release()
	small := record(t, column{"s", fromJSON(t, arrow.BinaryTypes.String, `["c"]`)})
	defer small.Release()
	sc, err := NewSchema(big.Schema())
	if err != nil {
		t.Fatal(err)
	}
	b1, err := sc.Encode(small)
	if err != nil {
		t.Fatal(err)
	}
	m := b1.mem
	scribble(b1)
	if b1.Records != nil || b1.Rows != nil || b1.mem != nil {
		t.Fatalf("a released batch keeps its memory")
	}
	b1.Release() // twice: no-op
	if len(sc.mems) != 1 {
		t.Fatalf("%d batches of memory kept after one release, want 1", len(sc.mems))
	}
	// The free arena is too small for big: its slices are reused with a new
	// arena.
	small1 := cap(m.arena)
	b2, err := sc.Encode(big)
	if err != nil {
		t.Fatal(err)
	}
	if b2.mem != m || cap(m.arena) <= small1 {
		t.Fatalf("the released memory was not reused with a larger arena")
	}
	checkBatch(t, sc, big, b2)
	// A smaller batch fits in the released arena.
	scribble(b2)
	b3, err := sc.Encode(small)
	if err != nil {
		t.Fatal(err)
	}
	if b3.mem != m {
		t.Fatalf("the released memory was not reused")
	}
	checkBatch(t, sc, small, b3)
	// Nothing free now: a new batch gets new memory.
	b4, err := sc.Encode(big)
	if err != nil {
		t.Fatal(err)
	}
	if b4.mem == m {
		t.Fatalf("memory in use handed out twice")
	}
	checkBatch(t, sc, big, b4)
	b3.Release()
	b4.Release()
	var nilBatch *Batch
	nilBatch.Release()
}

func TestBetterArena(t *testing.T) {
	for _, tc := range []struct {
		c, best, n int
		want       bool
	}{
		{100, 200, 50, true},  // both fit: smaller wins
		{200, 100, 50, false}, // both fit: larger loses
		{100, 10, 50, true},   // only c fits
		{10, 100, 50, false},  // only best fits
		{40, 20, 50, true},    // neither fits: larger wins
		{20, 40, 50, false},   // neither fits: smaller loses
		{50, 50, 50, false},   // equal: keep best
		{50, 49, 50, true},    // exact fit beats a near miss
		{0, 0, 0, false},      // empty batch
		{1 << 20, 64, 64, false},
	} {
		if got := betterArena(tc.c, tc.best, tc.n); got != tc.want {
			t.Errorf("betterArena(%d, %d, %d) = %v, want %v", tc.c, tc.best, tc.n, got, tc.want)
		}
	}
}

func TestFreeMemoryIsBounded(t *testing.T) {
	rec := record(t, column{"id", fromJSON(t, arrow.PrimitiveTypes.Int64, `[1, 2, 3]`)})
	defer rec.Release()
	sc, err := NewSchema(rec.Schema())
	if err != nil {
		t.Fatal(err)
	}
	var batches []*Batch
	for range maxFreeMems + 4 {
		b, err := sc.Encode(rec)
		if err != nil {
			t.Fatal(err)
		}
		batches = append(batches, b)
	}
	for _, b := range batches {
		b.Release()
	}
	if len(sc.mems) != maxFreeMems {
		t.Fatalf("%d batches of memory kept, want the bound %d", len(sc.mems), maxFreeMems)
	}
	// An arena over half the byte bound is never kept; one that would pass
	// the byte bound is dropped.
	sc.putMem(&batchMem{arena: make([]byte, 0, maxFreeBytes/2+1)})
	sc.mems, sc.memBytes = nil, 0
	sc.putMem(&batchMem{arena: make([]byte, 0, maxFreeBytes/2)})
	sc.putMem(&batchMem{arena: make([]byte, 0, maxFreeBytes/2)})
	sc.putMem(&batchMem{arena: make([]byte, 0, 1)})
	if len(sc.mems) != 2 || sc.memBytes != maxFreeBytes {
		t.Fatalf("kept %d arenas of %d bytes, want 2 of %d", len(sc.mems), sc.memBytes, maxFreeBytes)
	}
}

func TestGetMemTakesTheBestFit(t *testing.T) {
	sc := &Schema{}
	sizes := []int{10, 1000, 100, 50}
	for _, n := range sizes {
		sc.putMem(&batchMem{arena: make([]byte, 0, n)})
	}
	for _, tc := range []struct{ n, want int }{
		{60, 100},    // smallest that fits
		{2000, 1000}, // none fits: the largest, given a new arena
		{5, 10},
		{40, 50},
	} {
		m, rows := sc.getMem(tc.n, 3, false)
		if len(m.arena) != tc.n || len(m.records) != 3 || len(rows) != 3 || &rows[0] != &m.rows[0] {
			t.Fatalf("getMem(%d): arena %d, %d records, %d rows", tc.n, len(m.arena), len(m.records), len(rows))
		}
		if tc.n <= tc.want && cap(m.arena) != tc.want {
			t.Fatalf("getMem(%d) took the arena of %d bytes, want %d", tc.n, cap(m.arena), tc.want)
		}
	}
	if len(sc.mems) != 0 || sc.memBytes != 0 {
		t.Fatalf("%d arenas (%d bytes) left, want none", len(sc.mems), sc.memBytes)
	}
}

// Batches with no failed row share one read-only Rows; a batch with failed
// rows gets its own.
func TestRowsShared(t *testing.T) {
	sc := arrow.NewSchema([]arrow.Field{{Name: "u", Type: arrow.PrimitiveTypes.Uint64}}, nil)
	s, err := NewSchema(sc)
	if err != nil {
		t.Fatal(err)
	}
	batch := func(vals ...uint64) *Batch {
		b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
		defer b.Release()
		b.Field(0).(*array.Uint64Builder).AppendValues(vals, nil)
		rec := b.NewRecordBatch()
		defer rec.Release()
		out, err := s.Encode(rec)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	a, b := batch(1, 2, 3), batch(4, 5, 6, 7, 8)
	if !slices.Equal(a.Rows, []int{0, 1, 2}) || !slices.Equal(b.Rows, []int{0, 1, 2, 3, 4}) {
		t.Fatalf("rows %v %v", a.Rows, b.Rows)
	}
	if cap(a.Rows) != 3 {
		t.Errorf("shared rows have capacity %d: an append could write into them", cap(a.Rows))
	}
	bad := batch(1, 1<<63, 3)
	if !slices.Equal(bad.Rows, []int{0, 2}) || len(bad.Errors) != 1 {
		t.Fatalf("rows with a failure: %v, errors %v", bad.Rows, bad.Errors)
	}
	// The failed batch's own Rows did not touch the shared ones.
	if c := batch(9, 9, 9); !slices.Equal(c.Rows, []int{0, 1, 2}) || !slices.Equal(a.Rows, []int{0, 1, 2}) {
		t.Fatalf("shared rows changed: %v %v", c.Rows, a.Rows)
	}
	for _, x := range []*Batch{a, b, bad} {
		x.Release()
	}
}

// A retained batch keeps its memory until every holder has released it,
// whatever the order and goroutines of the releases.
func TestRetainedBatchKeepsItsMemoryUntilTheLastRelease(t *testing.T) {
	rec := record(t, column{"s", fromJSON(t, arrow.BinaryTypes.String, `["a", "bb", "ccc"]`)})
	defer rec.Release()
	sc, err := NewSchema(rec.Schema())
	if err != nil {
		t.Fatal(err)
	}
	b, err := sc.Encode(rec)
	if err != nil {
		t.Fatal(err)
	}
	const holders = 8
	for range holders {
		b.Retain()
	}
	var wg sync.WaitGroup
	for range holders {
		wg.Go(func() {
			if len(b.Records) != 3 { // readable until the last release
				t.Error("records gone while held")
			}
			b.Release()
		})
	}
	wg.Wait()
	if b.mem == nil || len(sc.mems) != 0 {
		t.Fatal("the memory went back while the Encode's hold was still there")
	}
	b.Release()
	if b.mem != nil || b.Records != nil || len(sc.mems) != 1 {
		t.Fatal("the last release did not give the memory back")
	}
	b.Release() // past the last hold: nothing
	if len(sc.mems) != 1 {
		t.Fatalf("%d memories kept after an extra Release, want 1", len(sc.mems))
	}
}

package debugfiles

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/pyzerobus/pyzerobus/internal/testutil"
	"github.com/pyzerobus/pyzerobus/zbwrap/arrowproto"
)

func TestNew(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		cfg  Config
		bad  []string // settings named in the error
		nil_ bool
	}{
		{name: "both off", cfg: Config{Dir: dir, Table: "t"}, nil_: true},
		{name: "both off and invalid", cfg: Config{MaxFileSize: -1}, nil_: true},
		{name: "arrow", cfg: Config{Dir: dir, Table: "t", Arrow: true}},
		{name: "protobuf", cfg: Config{Dir: dir, Table: "t", Protobuf: true}},
		{name: "no dir", cfg: Config{Table: "t", Arrow: true}, bad: []string{"Dir"}},
		{name: "everything wrong", cfg: Config{Protobuf: true, FlushInterval: -1, MaxFileSize: -1, MaxFilesRetained: -1},
			bad: []string{"Dir", "Table", "FlushInterval", "MaxFileSize", "MaxFilesRetained"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := New(tt.cfg)
			if len(tt.bad) > 0 {
				if !errors.Is(err, ErrInvalidConfig) || w != nil {
					t.Fatalf("New = %v, %v; want ErrInvalidConfig", w, err)
				}
				for _, s := range tt.bad {
					if !strings.Contains(err.Error(), s+" ") {
						t.Errorf("error %q does not name %s", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (w == nil) != tt.nil_ {
				t.Fatalf("New = %v, want nil: %v", w, tt.nil_)
			}
			if w == nil {
				return
			}
			defer w.Close()
			if w.maxSize != DefaultMaxFileSize || w.maxFiles != 0 {
				t.Errorf("defaults: max size %d, max files %d", w.maxSize, w.maxFiles)
			}
			if (w.arrow != nil) != tt.cfg.Arrow || (w.proto != nil) != tt.cfg.Protobuf {
				t.Errorf("outputs: arrow %v, protobuf %v", w.arrow != nil, w.proto != nil)
			}
			// Nothing is created before the first batch.
			if _, err := os.Stat(filepath.Join(dir, "zerobus")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("New created files: %v", err)
			}
		})
	}
}

func TestNilWriterDoesNothing(t *testing.T) {
	var w *Writer
	rec := makeBatch(t, schemaV1(), 0, 1, false)
	defer rec.Release()
	w.OnBatchEncoded(rec, nil, nil)
	if err := w.Flush(); err != nil {
		t.Error(err)
	}
	if err := w.Close(); err != nil {
		t.Error(err)
	}
	if w.Stats() != (Stats{}) {
		t.Error("nil Writer has stats")
	}
}

// TestRoundTrip writes batches and reads them back with arrow-go's IPC reader
// and dynamicpb: the Arrow batches equal the input, the records equal the
// bytes handed in, and the descriptor set loads.
func TestRoundTrip(t *testing.T) {
	for _, mode := range []struct {
		name            string
		arrow, protobuf bool
	}{{"both", true, true}, {"arrow", true, false}, {"protobuf", false, true}} {
		t.Run(mode.name, func(t *testing.T) {
			w := newWriter(t, Config{Arrow: mode.arrow, Protobuf: mode.protobuf})
			cache := arrowproto.NewCache(4)
			var in []arrow.RecordBatch
			var records [][]byte
			for i := range 5 {
				rec := makeBatch(t, schemaV1(), i*100, 100, true)
				defer rec.Release()
				e := encode(t, cache, rec)
				w.OnBatchEncoded(rec, e.desc, e.records)
				in = append(in, rec)
				for _, r := range e.records {
					records = append(records, bytes.Clone(r))
				}
				if i == 0 { // an empty batch, and one whose rows all fail
					empty := makeBatch(t, schemaV1(), 0, 0, true)
					defer empty.Release()
					w.OnBatchEncoded(empty, e.desc, nil)
					in = append(in, empty)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal("second Close:", err)
			}
			st := w.Stats()
			if st.WriteErrors != 0 || st.BatchesDropped != 0 || st.Rotations != 0 || st.BytesWritten == 0 {
				t.Errorf("stats %+v", st)
			}

			if mode.arrow {
				recs, ended := readArrowFile(t, filepath.Join(w.arrowDir(), "main.app.events.arrows"))
				if !ended {
					t.Error("the Arrow stream has no end-of-stream marker after Close")
				}
				if len(recs) != len(in) {
					t.Fatalf("read %d batches, wrote %d", len(recs), len(in))
				}
				for i := range recs {
					if !array.RecordEqual(recs[i], in[i]) {
						t.Errorf("batch %d differs", i)
					}
				}
			} else if _, err := os.Stat(w.arrowDir()); !errors.Is(err, os.ErrNotExist) {
				t.Error("arrow directory written while off")
			}

			// The descriptor file is written when either output is on.
			md := loadDescriptor(t, w.desc.path)
			if md.Fields().Len() != 6 || md.Fields().ByName("attrs") == nil || !md.Fields().ByName("attrs").IsMap() {
				t.Errorf("descriptor: %v", md)
			}
			if mode.protobuf {
				data, err := os.ReadFile(filepath.Join(w.protoDir(), "main.app.events.pb"))
				if err != nil {
					t.Fatal(err)
				}
				got := splitRecords(t, data)
				if len(got) != len(records) {
					t.Fatalf("read %d records, wrote %d", len(got), len(records))
				}
				for i := range got {
					if !bytes.Equal(got[i], records[i]) {
						t.Fatalf("record %d differs", i)
					}
				}
				ids := flat(protoIDs(t, w, dataFiles(t, w, w.protoDir(), extProto)))
				want := slices.DeleteFunc(seq(0, 500), func(id int64) bool { return badRow(int(id)) })
				if !slices.Equal(ids, want) {
					t.Errorf("decoded ids %v, want %v", ids, want)
				}
			} else if _, err := os.Stat(w.protoDir()); !errors.Is(err, os.ErrNotExist) {
				t.Error("proto directory written while off")
			}

			// After Close, batches are dropped and nothing is written.
			before := w.Stats()
			send(t, w, cache, schemaV2(), 0, 1)
			after := w.Stats()
			if after.BatchesDropped == before.BatchesDropped {
				t.Error("a batch after Close was not counted as dropped")
			}
			if after.FilesWritten != before.FilesWritten {
				t.Error("a file was written after Close")
			}
		})
	}
}

// TestRotation rotates hundreds of times, within the same milliseconds too,
// with a 200-character table name: every name fits in 255 bytes, names sort
// in the order the files were written, every file but the active one is a
// complete stream, no file exceeds the limit, and nothing is lost.
func TestRotation(t *testing.T) {
	table := "cat.schema." + strings.Repeat("long_table_name_", 11) + strings.Repeat("x", 13) // 200 characters
	if len(table) != 200 {
		t.Fatalf("table name is %d characters", len(table))
	}
	const maxSize = 8 << 10
	w := newWriter(t, Config{Table: table, Arrow: true, Protobuf: true, MaxFileSize: maxSize})
	// A clock that stands still for 50 rotations at a time, and once steps back.
	var mu sync.Mutex
	clock, calls := time.Date(2026, 11, 27, 10, 15, 0, 0, time.UTC), 0
	w.now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		calls++
		switch {
		case calls == 120:
			clock = clock.Add(-time.Second)
		case calls%50 == 0:
			clock = clock.Add(time.Millisecond)
		}
		return clock
	}
	cache := arrowproto.NewCache(4)
	var want []int64
	const batches, rows = 400, 20
	for i := range batches {
		want = append(want, send(t, w, cache, schemaV1(), i*rows, rows)...)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	if st.Rotations < 100 || st.WriteErrors != 0 || st.BatchesDropped != 0 {
		t.Fatalf("stats %+v, want 100+ rotations and no errors", st)
	}
	for _, d := range []struct{ dir, ext string }{
		{w.arrowDir(), extArrow}, {w.protoDir(), extProto}, {w.descDir(), extDesc},
	} {
		names, err := osFS{}.ReadDirNames(d.dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if len(n) > maxNameLen {
				t.Errorf("name of %d bytes: %s", len(n), n)
			}
		}
		rotated := listRotated(t, w, d.dir, d.ext)
		if d.ext != extDesc && len(rotated) < 40 {
			t.Errorf("%s: %d rotated files", d.dir, len(rotated))
		}
		for _, n := range rotated {
			if len(n) != len(rotated[0]) {
				t.Errorf("names differ in length: %s, %s", n, rotated[0])
			}
		}
	}

	// Arrow: batches in order, each file ended and within the limit.
	files := dataFiles(t, w, w.arrowDir(), extArrow)
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, ended := readArrowFile(t, f); !ended {
			t.Errorf("%s has no end-of-stream marker", filepath.Base(f))
		}
		if fi.Size() > maxSize {
			t.Errorf("%s is %d bytes, over %d", filepath.Base(f), fi.Size(), maxSize)
		}
	}
	if got := flat(arrowIDs(t, files)); !slices.Equal(got, seq(0, batches*rows)) {
		t.Errorf("Arrow files hold %d rows out of order or missing", len(got))
	}
	// Protobuf: records in order.
	pbs := dataFiles(t, w, w.protoDir(), extProto)
	if got := flat(protoIDs(t, w, pbs)); !slices.Equal(got, want) {
		t.Errorf("protobuf files hold %d records, want %d in order", len(got), len(want))
	}
	for _, f := range pbs {
		if fi, _ := os.Stat(f); fi.Size() > maxSize {
			t.Errorf("%s is %d bytes, over %d", filepath.Base(f), fi.Size(), maxSize)
		}
	}
}

// TestOversizedBatch: a batch larger than MaxFileSize gets a file of its own.
func TestOversizedBatch(t *testing.T) {
	w := newWriter(t, Config{Arrow: true, Protobuf: true, MaxFileSize: 512})
	cache := arrowproto.NewCache(4)
	for i := range 3 {
		send(t, w, cache, schemaV1(), i*100, 100)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct{ dir, ext string }{{w.arrowDir(), extArrow}, {w.protoDir(), extProto}} {
		if n := len(listRotated(t, w, d.dir, d.ext)); n != 3 {
			t.Errorf("%s: %d rotated files, want 3", d.ext, n)
		}
		if _, err := os.Stat(filepath.Join(d.dir, w.base+"."+d.ext)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: an active file was left: %v", d.ext, err)
		}
	}
	if got := flat(arrowIDs(t, dataFiles(t, w, w.arrowDir(), extArrow))); !slices.Equal(got, seq(0, 300)) {
		t.Errorf("rows %v", got)
	}
}

// TestRetention keeps the newest N rotated files of each type and leaves
// every other file alone, including names that share a prefix.
func TestRetention(t *testing.T) {
	dir := t.TempDir()
	const keep = 3
	w := newWriter(t, Config{Dir: dir, Table: "events", Arrow: true, Protobuf: true,
		MaxFileSize: 4 << 10, MaxFilesRetained: keep})
	decoys := map[string][]string{
		"arrow": {
			"events2.20200101T000000.000Z.000001.arrows",       // another table sharing the prefix
			"events.x.20200101T000000.000Z.000001.arrows",      // another table
			"events.20200101T000000.000Z.000001.arrows.bak",    // a copy
			"events.20200101T000000.000Z.0000011.arrows",       // not our form
			"xevents.20200101T000000.000Z.000001.arrows",       // suffix match
			"events.20200101T000000.000Z.000001.pb",            // another type
			"events.arrows.20200101T000000.000Z.000001.arrows", // table "events.arrows"
		},
		"proto":       {"events2.20200101T000000.000Z.000001.pb", "events.20200101T000000.000Z.000001.pb.old"},
		"descriptors": {"events2.20200101T000000.000Z.000001.desc", "events2.desc", "events.20200101T000000.000Z.000001.arrows"},
	}
	for sub, names := range decoys {
		if err := os.MkdirAll(filepath.Join(dir, "zerobus", sub), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(dir, "zerobus", sub, n), []byte("decoy"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A rotated file of ours from an earlier run is the oldest: it goes.
	old := filepath.Join(dir, "zerobus", "arrow", "events.20200101T000000.000Z.000001.arrows")
	if err := os.WriteFile(old, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}

	cache := arrowproto.NewCache(4)
	for i := range 60 {
		send(t, w, cache, schemaV1(), i*20, 20)
		if i == 30 { // a second descriptor, so there are descriptor copies to prune
			send(t, w, cache, schemaV2(), 10_000, 20)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.Rotations < 2*keep+10 || st.WriteErrors != 0 {
		t.Fatalf("stats %+v", st)
	}
	for sub, names := range decoys {
		for _, n := range names {
			if data, err := os.ReadFile(filepath.Join(dir, "zerobus", sub, n)); err != nil || string(data) != "decoy" {
				t.Errorf("decoy %s/%s: %q, %v", sub, n, data, err)
			}
		}
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Error("the oldest rotated file survived")
	}
	arrows := listRotated(t, w, w.arrowDir(), extArrow)
	pbs := listRotated(t, w, w.protoDir(), extProto)
	descs := listRotated(t, w, w.descDir(), extDesc)
	if len(arrows) != keep || len(pbs) != keep || len(descs) != keep {
		t.Fatalf("kept %d arrow, %d protobuf, %d descriptor files; want %d each", len(arrows), len(pbs), len(descs), keep)
	}
	// The kept files are the newest: with the active file they end the data.
	files := dataFiles(t, w, w.arrowDir(), extArrow)
	ids := flat(arrowIDs(t, files))
	if ids[len(ids)-1] != 59*20+19 {
		t.Errorf("last row %d, want %d", ids[len(ids)-1], 59*20+19)
	}
	if !slices.IsSorted(ids) {
		t.Error("kept files are not the newest in order")
	}
	// Each kept protobuf file has its descriptor copy.
	for i, pb := range pbs {
		if want := strings.TrimSuffix(pb, ".pb") + ".desc"; descs[i] != want {
			t.Errorf("descriptor copy %s, want %s", descs[i], want)
		}
	}
}

// TestSchemaChange: a new schema rotates the Arrow stream (one schema per
// stream) and the protobuf file; the rotated protobuf file keeps its own
// descriptor and the descriptor file is rewritten.
func TestSchemaChange(t *testing.T) {
	w := newWriter(t, Config{Arrow: true, Protobuf: true})
	cache := arrowproto.NewCache(4)
	want := send(t, w, cache, schemaV1(), 0, 10)
	want = append(want, send(t, w, cache, schemaV1(), 10, 10)...)
	v1desc := loadDescriptor(t, w.desc.path)
	want = append(want, send(t, w, cache, schemaV2(), 20, 10)...)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.Rotations != 2 {
		t.Errorf("%d rotations, want 2 (one per data file)", st.Rotations)
	}
	arrows := dataFiles(t, w, w.arrowDir(), extArrow)
	if len(arrows) != 2 {
		t.Fatalf("%d Arrow files, want 2", len(arrows))
	}
	r0, _ := readArrowFile(t, arrows[0])
	r1, _ := readArrowFile(t, arrows[1])
	if len(r0) != 2 || len(r1) != 1 || !r0[0].Schema().Equal(schemaV1()) || !r1[0].Schema().Equal(schemaV2()) {
		t.Errorf("files hold %d and %d batches of %v and %v", len(r0), len(r1), r0[0].Schema(), r1[0].Schema())
	}
	if md := loadDescriptor(t, w.desc.path); md.Fields().Len() != 7 {
		t.Errorf("descriptor file has %d fields, want the new 7", md.Fields().Len())
	}
	rotated := listRotated(t, w, w.descDir(), extDesc)
	if len(rotated) != 1 {
		t.Fatalf("descriptor copies: %v", rotated)
	}
	if md := loadDescriptor(t, filepath.Join(w.descDir(), rotated[0])); md.Fields().Len() != v1desc.Fields().Len() {
		t.Errorf("the rotated file's descriptor has %d fields, want %d", md.Fields().Len(), v1desc.Fields().Len())
	}
	if got := flat(protoIDs(t, w, dataFiles(t, w, w.protoDir(), extProto))); !slices.Equal(got, want) {
		t.Errorf("records %v, want %v", got, want)
	}
}

// TestEarlierFilesAreKept: a new Writer rotates the active files an earlier
// one left before writing, and the earlier protobuf file keeps the earlier
// descriptor.
func TestEarlierFilesAreKept(t *testing.T) {
	dir := t.TempDir()
	cache := arrowproto.NewCache(4)
	w1 := newWriter(t, Config{Dir: dir, Arrow: true, Protobuf: true})
	want := send(t, w1, cache, schemaV1(), 0, 10)
	if err := w1.Close(); err != nil {
		t.Fatal(err)
	}
	w2 := newWriter(t, Config{Dir: dir, Arrow: true, Protobuf: true})
	want = append(want, send(t, w2, cache, schemaV2(), 10, 10)...)
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	if got := flat(arrowIDs(t, dataFiles(t, w2, w2.arrowDir(), extArrow))); !slices.Equal(got, seq(0, 20)) {
		t.Errorf("Arrow rows %v", got)
	}
	pbs := dataFiles(t, w2, w2.protoDir(), extProto)
	if len(pbs) != 2 {
		t.Fatalf("protobuf files %v", pbs)
	}
	if got := flat(protoIDs(t, w2, pbs)); !slices.Equal(got, want) {
		t.Errorf("records %v, want %v", got, want)
	}
	if n := len(listRotated(t, w2, w2.descDir(), extDesc)); n != 1 {
		t.Errorf("%d descriptor copies, want 1", n)
	}
}

// TestEarlierFileWithoutDescriptor: a protobuf file left without a
// descriptor file is rotated all the same (readers then use the current
// descriptor file).
func TestEarlierFileWithoutDescriptor(t *testing.T) {
	dir := t.TempDir()
	cache := arrowproto.NewCache(4)
	rec := makeBatch(t, schemaV1(), 0, 10, true)
	defer rec.Release()
	e := encode(t, cache, rec)
	var old []byte
	for _, r := range e.records {
		old = protowire.AppendBytes(old, r)
	}
	pbDir := filepath.Join(dir, "zerobus", "proto")
	if err := os.MkdirAll(pbDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pbDir, "main.app.events.pb"), old, 0o600); err != nil {
		t.Fatal(err)
	}
	w := newWriter(t, Config{Dir: dir, Protobuf: true})
	want := append(e.ids, send(t, w, cache, schemaV1(), 10, 10)...)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(listRotated(t, w, w.descDir(), extDesc)); n != 0 {
		t.Errorf("%d descriptor copies, want none", n)
	}
	if got := flat(protoIDs(t, w, dataFiles(t, w, w.protoDir(), extProto))); !slices.Equal(got, want) {
		t.Errorf("records %v, want %v", got, want)
	}
}

// TestBufferedUntilFlush: a batch stays in memory until Flush (or a tick),
// then the file reads up to it without an end-of-stream marker.
func TestBufferedUntilFlush(t *testing.T) {
	w := newWriter(t, Config{Arrow: true, Protobuf: true, FlushInterval: time.Hour})
	cache := arrowproto.NewCache(4)
	want := send(t, w, cache, schemaV1(), 0, 10)
	arrowFile := filepath.Join(w.arrowDir(), w.base+".arrows")
	pbFile := filepath.Join(w.protoDir(), w.base+".pb")
	for _, f := range []string{arrowFile, pbFile} {
		if fi, err := os.Stat(f); err != nil || fi.Size() != 0 {
			t.Fatalf("%s before Flush: %v, %v", f, fi, err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	recs, ended := readArrowFile(t, arrowFile)
	if len(recs) != 1 || ended {
		t.Errorf("after Flush: %d batches, ended %v; want 1, not ended", len(recs), ended)
	}
	if got := flat(protoIDs(t, w, []string{pbFile})); !slices.Equal(got, want) {
		t.Errorf("records %v, want %v", got, want)
	}
	if st := w.Stats(); st.BytesWritten == 0 || st.FilesWritten != 3 {
		t.Errorf("stats %+v, want 3 files", st)
	}
}

// TestPeriodicFlush: with no further sends and no Flush, the ticker makes a
// batch readable within the interval.
func TestPeriodicFlush(t *testing.T) {
	w := newWriter(t, Config{Arrow: true, Protobuf: true, FlushInterval: 20 * time.Millisecond})
	cache := arrowproto.NewCache(4)
	want := send(t, w, cache, schemaV1(), 0, 10)
	arrowFile := filepath.Join(w.arrowDir(), w.base+".arrows")
	pbFile := filepath.Join(w.protoDir(), w.base+".pb")
	testutil.Eventually(t, "the tick", func() bool { return allWritten(w) })
	recs, _ := readArrowFile(t, arrowFile)
	if len(recs) != 1 || recs[0].NumRows() != 10 {
		t.Errorf("read %d batches", len(recs))
	}
	if got := flat(protoIDs(t, w, []string{pbFile})); !slices.Equal(got, want) {
		t.Errorf("records %v, want %v", got, want)
	}
}

// TestConcurrentSenders: many goroutines at once, with rotations; every
// batch is whole and contiguous in each file.
func TestConcurrentSenders(t *testing.T) {
	w := newWriter(t, Config{Arrow: true, Protobuf: true, MaxFileSize: 64 << 10, FlushInterval: 5 * time.Millisecond})
	cache := arrowproto.NewCache(4)
	const senders, batches, rows = 8, 40, 25
	var mu sync.Mutex
	sent := map[int64][]int64{} // first id of a batch -> ids of its records
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for b := range batches {
				start := (s*batches + b) * rows
				ids := send(t, w, cache, schemaV1(), start, rows)
				mu.Lock()
				sent[int64(start)] = ids
				mu.Unlock()
				if b%10 == 0 {
					_ = w.Flush()
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.Rotations == 0 || st.WriteErrors != 0 || st.BatchesDropped != 0 {
		t.Errorf("stats %+v", st)
	}
	// Arrow: each batch read is one batch sent, and all were read.
	seen := map[int64]bool{}
	for _, ids := range arrowIDs(t, dataFiles(t, w, w.arrowDir(), extArrow)) {
		if len(ids) != rows || !slices.Equal(ids, seq(int(ids[0]), rows)) || seen[ids[0]] {
			t.Fatalf("a batch read back is not one batch sent: %v", ids)
		}
		seen[ids[0]] = true
	}
	if len(seen) != senders*batches {
		t.Errorf("read %d batches, sent %d", len(seen), senders*batches)
	}
	// Protobuf: the records of each batch are contiguous and complete.
	ids := flat(protoIDs(t, w, dataFiles(t, w, w.protoDir(), extProto)))
	n := 0
	for len(ids) > 0 {
		start := ids[0] / rows * rows
		want := sent[start]
		if len(ids) < len(want) || !slices.Equal(ids[:len(want)], want) {
			t.Fatalf("records of batch %d are not contiguous", start)
		}
		ids = ids[len(want):]
		n++
	}
	if n != senders*batches {
		t.Errorf("%d batches of records, want %d", n, senders*batches)
	}
}

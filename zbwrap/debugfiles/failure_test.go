package debugfiles

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/pyzerobus/pyzerobus/zbwrap/arrowproto"
)

// faultWriter is a Writer over ffs that writes every batch out at once and
// ticks only when the test says so.
func faultWriter(t *testing.T, cfg Config, ffs *faultFS) (*Writer, *errorLog) {
	t.Helper()
	log := &errorLog{}
	cfg.OnError = log.add
	cfg.FlushInterval = time.Hour
	w := newWriter(t, cfg)
	w.fs = ffs
	w.flushAt = 1
	return w, log
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestFullDiskMidFile: a write that fails half way is cut back to the last
// whole batch; the file is ended, rotated and reads back whole; batches are
// dropped until the next tick, then writing resumes in a new file.
func TestFullDiskMidFile(t *testing.T) {
	for _, tt := range []struct {
		name, match, dir, ext string
	}{
		{"arrow", "/arrow/", "arrow", extArrow},
		{"protobuf", "/proto/", "proto", extProto},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ffs := newFaultFS(tt.match)
			w, log := faultWriter(t, Config{Arrow: true, Protobuf: true}, ffs)
			cache := arrowproto.NewCache(4)
			var want []int64 // records that must survive
			for i := range 3 {
				want = append(want, send(t, w, cache, schemaV1(), i*10, 10)...)
			}
			active := filepath.Join(w.root, tt.dir, w.base+"."+tt.ext)
			good := fileSize(t, active)
			ffs.limitWrites(good + 100) // the next batch gets 100 bytes in
			send(t, w, cache, schemaV1(), 30, 10)
			if n := ffs.count("write"); n != 1 {
				t.Fatalf("%d failed writes, want 1", n)
			}
			st := w.Stats()
			if st.WriteErrors != 1 || st.BatchesDropped != 1 || st.Rotations != 1 {
				t.Errorf("stats %+v", st)
			}
			errs := log.all()
			var e *Error
			if len(errs) != 1 || !errors.As(errs[0], &e) || e.Op != "write" || e.Path != active ||
				!errors.Is(errs[0], syscall.ENOSPC) {
				t.Fatalf("OnError got %v", errs)
			}
			// Until the next tick, batches are dropped without touching the disk.
			send(t, w, cache, schemaV1(), 40, 10)
			if st := w.Stats(); st.BatchesDropped != 2 || st.WriteErrors != 1 {
				t.Errorf("stats %+v", st)
			}
			ffs.limitWrites(-1)
			w.tick()
			want = append(want, send(t, w, cache, schemaV1(), 50, 10)...)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			files := dataFiles(t, w, filepath.Join(w.root, tt.dir), tt.ext)
			if len(files) != 2 {
				t.Fatalf("files %v, want the rotated one and a new one", files)
			}
			if tt.ext == extArrow {
				if _, ended := readArrowFile(t, files[0]); !ended {
					t.Error("the cut file has no end-of-stream marker")
				}
				wantRows := append(seq(0, 30), seq(50, 10)...)
				if got := flat(arrowIDs(t, files)); !slices.Equal(got, wantRows) {
					t.Errorf("rows %v, want %v", got, wantRows)
				}
			} else {
				if fileSize(t, files[0]) != good {
					t.Errorf("cut file is %d bytes, want the last good offset %d", fileSize(t, files[0]), good)
				}
				if got := flat(protoIDs(t, w, files)); !slices.Equal(got, want) {
					t.Errorf("records %v, want %v", got, want)
				}
			}
		})
	}
}

// TestFailures injects one failing operation at a time: sends go on, the
// failure is counted and reported, and whatever is on disk reads back.
func TestFailures(t *testing.T) {
	eio := errors.New("injected I/O error")
	tests := []struct {
		name    string
		match   string
		op      string // the operation that fails
		setup   func(ffs *faultFS)
		cfg     Config
		wantOps []string // Error.Op reported, in order (at least these)
	}{
		{name: "mkdir", match: "/arrow", op: "mkdir", wantOps: []string{"mkdir"}},
		{name: "create", match: "/proto/", op: "create", wantOps: []string{"open"}},
		{name: "descriptor", match: "/descriptors", op: "temp", wantOps: []string{"descriptor"}},
		{name: "descriptor directory", match: "/descriptors", op: "mkdir", wantOps: []string{"descriptor"}},
		{name: "rename", match: "/arrow/", op: "rename", cfg: Config{MaxFileSize: 1000}, wantOps: []string{"rotate"}},
		{name: "retention listing", match: "/proto", op: "readdir", cfg: Config{MaxFileSize: 1000, MaxFilesRetained: 1},
			wantOps: []string{"retention"}},
		{name: "retention remove", match: "/arrow/", op: "remove", cfg: Config{MaxFileSize: 1000, MaxFilesRetained: 1},
			wantOps: []string{"retention"}},
		{name: "truncate after a failed first write", match: "/arrow/", op: "truncate",
			setup: func(ffs *faultFS) { ffs.limitWrites(2000) }, wantOps: []string{"write", "truncate"}},
		{name: "first write", match: "/proto/", op: "write",
			setup: func(ffs *faultFS) { ffs.limitWrites(0) }, wantOps: []string{"write"}},
		{name: "write panics", match: "/arrow/", op: "panic",
			setup: func(ffs *faultFS) { ffs.mu.Lock(); ffs.writePanic = true; ffs.mu.Unlock() }, wantOps: []string{"write"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ffs := newFaultFS(tt.match)
			if tt.op != "write" && tt.op != "panic" {
				ffs.fail(tt.op, eio)
			}
			if tt.setup != nil {
				tt.setup(ffs)
			}
			cfg := tt.cfg
			cfg.Arrow, cfg.Protobuf = true, true
			w, log := faultWriter(t, cfg, ffs)
			cache := arrowproto.NewCache(4)
			for i := range 10 {
				send(t, w, cache, schemaV1(), i*10, 10)
			}
			st := w.Stats()
			if st.WriteErrors == 0 {
				t.Fatalf("no error counted: %+v", st)
			}
			errs := log.all()
			if int64(len(errs)) != st.WriteErrors {
				t.Errorf("%d errors reported, %d counted", len(errs), st.WriteErrors)
			}
			var ops []string
			for _, err := range errs {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("OnError got %T %v, want *Error", err, err)
				}
				if !strings.Contains(e.Path, strings.Trim(tt.match, "/")) {
					t.Errorf("error %v names another path", e)
				}
				ops = append(ops, e.Op)
			}
			for _, op := range tt.wantOps {
				if !slices.Contains(ops, op) {
					t.Errorf("reported ops %v, want %s among them", ops, op)
				}
			}
			if tt.op == "panic" && !errors.Is(errs[0], errPanic) {
				t.Errorf("a panic reported as %v", errs[0])
			}
			// Lift the fault: after the next tick, everything works again.
			ffs.set(func(f *faultFS) { f.errs = map[string]error{}; f.writeLimit = -1; f.writePanic = false })
			w.tick()
			before := w.Stats()
			send(t, w, cache, schemaV1(), 1000, 10)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if after := w.Stats(); after.WriteErrors != before.WriteErrors || after.BatchesDropped != before.BatchesDropped {
				t.Errorf("after the fault: %+v, before %+v", after, before)
			}
			// Whatever is on disk reads back, ending with the last batch.
			ids := flat(arrowIDs(t, dataFiles(t, w, w.arrowDir(), extArrow)))
			if len(ids) == 0 || ids[len(ids)-1] != 1009 || !slices.IsSorted(ids) {
				t.Errorf("Arrow rows %v", ids)
			}
			recs := flat(protoIDs(t, w, dataFiles(t, w, w.protoDir(), extProto)))
			if len(recs) == 0 || recs[len(recs)-1] != 1009 || !slices.IsSorted(recs) {
				t.Errorf("records %v", recs)
			}
		})
	}
}

// TestFailureOnCloseAndFlush: Flush and Close return the failure (also
// reported), and a panicking OnError does not escape.
func TestFailureOnCloseAndFlush(t *testing.T) {
	ffs := newFaultFS("/arrow/")
	var logs bytes.Buffer
	w := newWriter(t, Config{Arrow: true, FlushInterval: time.Hour,
		Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
		OnError: func(error) { panic("telemetry is broken") }})
	w.fs = ffs
	cache := arrowproto.NewCache(4)
	send(t, w, cache, schemaV1(), 0, 10)
	ffs.limitWrites(0)
	err := w.Flush()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Flush = %v, want ENOSPC", err)
	}
	ffs.limitWrites(-1)
	w.tick()
	send(t, w, cache, schemaV1(), 10, 10)
	ffs.limitWrites(0)
	var e *Error
	if err := w.Close(); !errors.As(err, &e) || e.Op != "write" {
		t.Errorf("Close = %v, want a write *Error", err)
	}
	if st := w.Stats(); st.WriteErrors != 2 || st.BatchesDropped != 2 {
		t.Errorf("stats %+v", st)
	}
	if !strings.Contains(logs.String(), "op=write") || !strings.Contains(logs.String(), "no space left") {
		t.Errorf("log: %s", logs.String())
	}
	// Nothing readable was written: no file is left.
	if files := dataFiles(t, w, w.arrowDir(), extArrow); len(files) != 0 {
		t.Errorf("files left: %v", files)
	}
}

// TestDevFull writes into a real device that is always full: the active
// file is a symbolic link to /dev/full.
func TestDevFull(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full here:", err)
	}
	log := &errorLog{}
	w := newWriter(t, Config{Protobuf: true, FlushInterval: time.Hour, OnError: log.add})
	if err := os.MkdirAll(w.protoDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	active := filepath.Join(w.protoDir(), w.base+".pb")
	if err := os.Symlink("/dev/full", active); err != nil {
		t.Fatal(err)
	}
	cache := arrowproto.NewCache(4)
	send(t, w, cache, schemaV1(), 0, 10)
	if err := w.Flush(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Flush = %v, want ENOSPC", err)
	}
	if _, err := os.Lstat(active); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the failed file is still there: %v", err)
	}
	w.tick()
	want := send(t, w, cache, schemaV1(), 10, 10)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := flat(protoIDs(t, w, dataFiles(t, w, w.protoDir(), extProto))); !slices.Equal(got, want) {
		t.Errorf("records %v, want %v", got, want)
	}
	if len(log.all()) == 0 {
		t.Error("no error reported")
	}
}

// TestReadOnlyDirectory: sends go on, every batch is counted as dropped,
// and the directory costs one attempt per file type per tick.
func TestReadOnlyDirectory(t *testing.T) {
	var dir string
	if os.Geteuid() == 0 { // root writes through permissions: use a read-only mount
		dir = mountTmpfs(t, "size=64k", readOnlyMount)
	} else {
		dir = t.TempDir()
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
	}
	log := &errorLog{}
	w := newWriter(t, Config{Dir: dir, Arrow: true, Protobuf: true, FlushInterval: time.Hour, OnError: log.add})
	cache := arrowproto.NewCache(4)
	for i := range 20 {
		send(t, w, cache, schemaV1(), i*10, 10)
	}
	st := w.Stats()
	if st.WriteErrors != 2 || st.BatchesDropped != 40 || st.FilesWritten != 0 {
		t.Errorf("stats %+v, want 2 errors (one per type) and 40 drops", st)
	}
	for _, err := range log.all() {
		var e *Error
		if !errors.As(err, &e) || e.Op != "mkdir" {
			t.Errorf("reported %v", err)
		}
	}
	w.tick()
	send(t, w, cache, schemaV1(), 1000, 10)
	if st := w.Stats(); st.WriteErrors != 4 {
		t.Errorf("after a tick: %d errors, want 4", st.WriteErrors)
	}
	if err := w.Close(); err != nil {
		t.Errorf("Close = %v, want nil: nothing was pending", err)
	}
}

// TestDiskFillsUp fills a small real file system: the batch that does not
// fit is dropped, every file on disk reads back whole, and writing resumes
// once there is room.
func TestDiskFillsUp(t *testing.T) {
	dir := mountTmpfs(t, "size=128k", 0)
	log := &errorLog{}
	w := newWriter(t, Config{Dir: dir, Arrow: true, Protobuf: true, MaxFileSize: 24 << 10,
		FlushInterval: time.Hour, OnError: log.add})
	cache := arrowproto.NewCache(4)
	i := 0
	for ; w.Stats().WriteErrors == 0; i++ {
		if i > 1000 {
			t.Fatal("the file system never filled up")
		}
		send(t, w, cache, schemaV1(), i*10, 10)
		_ = w.Flush()
	}
	if !errors.Is(log.all()[0], syscall.ENOSPC) {
		t.Errorf("reported %v, want ENOSPC", log.all()[0])
	}
	checkReadable := func() {
		t.Helper()
		ids := flat(arrowIDs(t, dataFiles(t, w, w.arrowDir(), extArrow)))
		if !slices.IsSorted(ids) || len(ids) == 0 || len(ids)%10 != 0 {
			t.Errorf("Arrow rows: %d, sorted %v", len(ids), slices.IsSorted(ids))
		}
		recs := flat(protoIDs(t, w, dataFiles(t, w, w.protoDir(), extProto)))
		if !slices.IsSorted(recs) {
			t.Error("records out of order")
		}
	}
	checkReadable()
	// Make room: drop the rotated files.
	for _, d := range []struct{ dir, ext string }{{w.arrowDir(), extArrow}, {w.protoDir(), extProto}} {
		for _, n := range listRotated(t, w, d.dir, d.ext) {
			if err := os.Remove(filepath.Join(d.dir, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	w.tick()
	errsBefore := w.Stats().WriteErrors
	send(t, w, cache, schemaV1(), 100_000, 10)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.WriteErrors != errsBefore {
		t.Errorf("errors after making room: %+v", st)
	}
	checkReadable()
	ids := flat(arrowIDs(t, dataFiles(t, w, w.arrowDir(), extArrow)))
	if ids[len(ids)-1] != 100_009 {
		t.Errorf("the last batch is missing: %v", ids[len(ids)-10:])
	}
}

// TestRotationFailures: failures while a file rotates or ends.
func TestRotationFailures(t *testing.T) {
	eio := errors.New("injected I/O error")
	fixed := time.Date(2026, 11, 27, 10, 15, 0, 0, time.UTC)
	tests := []struct {
		name    string
		match   string
		cfg     Config
		flushAt int // 0: write every batch at once
		// run sends batches, injecting the fault on the way, and returns the
		// ids that must read back from the Arrow files (nil: not checked).
		run     func(t *testing.T, w *Writer, ffs *faultFS, c *arrowproto.Cache) []int64
		wantOps []string
		dropped int64
	}{
		{name: "arrow: flush fails on a schema change", match: "/arrow/", flushAt: flushAt,
			run: func(t *testing.T, w *Writer, ffs *faultFS, c *arrowproto.Cache) []int64 {
				send(t, w, c, schemaV1(), 0, 10)
				send(t, w, c, schemaV1(), 10, 10)
				ffs.limitWrites(0)
				send(t, w, c, schemaV2(), 20, 10)
				return nil
			}, wantOps: []string{"write"}, dropped: 3},
		{name: "arrow: flush fails when full", match: "/arrow/", flushAt: flushAt, cfg: Config{MaxFileSize: 3000}, // batches of 2160 and 1504 bytes
			run: func(t *testing.T, w *Writer, ffs *faultFS, c *arrowproto.Cache) []int64 {
				send(t, w, c, schemaV1(), 0, 10)
				ffs.limitWrites(0)
				send(t, w, c, schemaV1(), 10, 10)
				return nil
			}, wantOps: []string{"write"}, dropped: 2},
		{name: "protobuf: flush fails on a new descriptor", match: "/proto/", flushAt: flushAt,
			run: func(t *testing.T, w *Writer, ffs *faultFS, c *arrowproto.Cache) []int64 {
				send(t, w, c, schemaV1(), 0, 10)
				ffs.limitWrites(0)
				send(t, w, c, schemaV2(), 10, 10)
				return nil // both were pending
			}, wantOps: []string{"write"}, dropped: 2},
		{name: "protobuf: flush fails when full", match: "/proto/", flushAt: flushAt, cfg: Config{MaxFileSize: 600}, // batches of 357 and 422 bytes
			run: func(t *testing.T, w *Writer, ffs *faultFS, c *arrowproto.Cache) []int64 {
				send(t, w, c, schemaV1(), 0, 10)
				ffs.limitWrites(0)
				send(t, w, c, schemaV1(), 10, 10)
				return nil // both were pending
			}, wantOps: []string{"write"}, dropped: 2},
		{name: "close fails at rotation", match: "/arrow/", cfg: Config{MaxFileSize: 1000},
			run: func(t *testing.T, w *Writer, ffs *faultFS, c *arrowproto.Cache) []int64 {
				ffs.fail("close", eio)
				send(t, w, c, schemaV1(), 0, 10)
				send(t, w, c, schemaV1(), 10, 10)
				ffs.fail("close", nil)
				return seq(0, 20)
			}, wantOps: []string{"close"}},
		{name: "close fails on Close", match: "/arrow/",
			run: func(t *testing.T, w *Writer, ffs *faultFS, c *arrowproto.Cache) []int64 {
				send(t, w, c, schemaV1(), 0, 10)
				ffs.fail("close", eio)
				var e *Error
				if err := w.Close(); !errors.As(err, &e) || e.Op != "close" {
					t.Errorf("Close = %v", err)
				}
				ffs.fail("close", nil)
				return seq(0, 10)
			}, wantOps: []string{"close"}},
		{name: "descriptor copy: mkdir fails", match: "/descriptors", cfg: Config{MaxFileSize: 300}, // a file per batch
			run: func(t *testing.T, w *Writer, ffs *faultFS, c *arrowproto.Cache) []int64 {
				send(t, w, c, schemaV1(), 0, 10)
				ffs.fail("mkdir", eio)
				send(t, w, c, schemaV1(), 10, 10)
				ffs.fail("mkdir", nil)
				return seq(0, 20)
			}, wantOps: []string{"descriptor"}},
		{name: "descriptor copy: write fails", match: "/descriptors", cfg: Config{MaxFileSize: 300}, // a file per batch
			run: func(t *testing.T, w *Writer, ffs *faultFS, c *arrowproto.Cache) []int64 {
				send(t, w, c, schemaV1(), 0, 10)
				ffs.fail("temp", eio)
				send(t, w, c, schemaV1(), 10, 10)
				ffs.fail("temp", nil)
				return seq(0, 20)
			}, wantOps: []string{"descriptor"}},
		{name: "an earlier file cannot be rotated", match: "/arrow/",
			run: func(t *testing.T, w *Writer, ffs *faultFS, c *arrowproto.Cache) []int64 {
				if err := os.MkdirAll(w.arrowDir(), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(w.arrowDir(), w.base+".arrows"), nil, 0o600); err != nil {
					t.Fatal(err) // an empty one is simply reused
				}
				send(t, w, c, schemaV1(), 0, 10)
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				w2 := newWriter(t, Config{Dir: filepath.Dir(w.root), Arrow: true, OnError: w.onError, FlushInterval: time.Hour})
				w2.fs = ffs
				ffs.fail("rename", eio)
				send(t, w2, c, schemaV1(), 10, 10)
				if st := w2.Stats(); st.BatchesDropped != 1 || st.WriteErrors != 1 {
					t.Errorf("stats %+v", st)
				}
				ffs.fail("rename", nil)
				w2.tick()
				send(t, w2, c, schemaV1(), 20, 10)
				if err := w2.Close(); err != nil {
					t.Fatal(err)
				}
				return append(seq(0, 10), seq(20, 10)...)
			}, wantOps: []string{"rotate"}},
		{name: "end-of-stream marker does not fit after a failure", match: "/arrow/",
			run: func(t *testing.T, w *Writer, ffs *faultFS, c *arrowproto.Cache) []int64 {
				send(t, w, c, schemaV1(), 0, 10)
				ffs.limitWrites(fileSize(t, filepath.Join(w.arrowDir(), w.base+".arrows")) + 4)
				send(t, w, c, schemaV1(), 10, 10)
				ffs.limitWrites(-1)
				return seq(0, 10)
			}, wantOps: []string{"write"}, dropped: 1},
		{name: "an empty failed file cannot be removed", match: "/arrow/",
			run: func(t *testing.T, w *Writer, ffs *faultFS, c *arrowproto.Cache) []int64 {
				ffs.limitWrites(0)
				ffs.fail("remove", eio)
				send(t, w, c, schemaV1(), 0, 10)
				ffs.limitWrites(-1)
				ffs.fail("remove", nil)
				return nil
			}, wantOps: []string{"write", "remove"}, dropped: 1},
		{name: "a failed file cannot be rotated", match: "/arrow/",
			run: func(t *testing.T, w *Writer, ffs *faultFS, c *arrowproto.Cache) []int64 {
				send(t, w, c, schemaV1(), 0, 10)
				ffs.limitWrites(0)
				ffs.fail("rename", eio)
				send(t, w, c, schemaV1(), 10, 10)
				ffs.limitWrites(-1)
				ffs.fail("rename", nil)
				return seq(0, 10) // rotated when the next file opens
			}, wantOps: []string{"write", "rotate"}, dropped: 1},
		{name: "rotated names taken", match: "/arrow/", cfg: Config{MaxFileSize: 1000},
			run: func(t *testing.T, w *Writer, ffs *faultFS, c *arrowproto.Cache) []int64 {
				if err := os.MkdirAll(w.arrowDir(), 0o755); err != nil {
					t.Fatal(err)
				}
				for n := 1; n <= 20; n++ { // 16 tries are all taken, then 4 more
					name := filepath.Join(w.arrowDir(), rotatedName(w.base, fixed, n, extArrow))
					if err := os.WriteFile(name, []byte("not ours"), 0o600); err != nil {
						t.Fatal(err)
					}
				}
				send(t, w, c, schemaV1(), 0, 10) // rotates: no free name in 16 tries
				if data, _ := os.ReadFile(filepath.Join(w.arrowDir(), rotatedName(w.base, fixed, 1, extArrow))); string(data) != "not ours" {
					t.Error("a rotated file was overwritten")
				}
				w.tick()
				send(t, w, c, schemaV1(), 10, 10) // seq 17..20 taken, 21 free
				if _, err := os.Stat(filepath.Join(w.arrowDir(), rotatedName(w.base, fixed, 21, extArrow))); err != nil {
					t.Error(err)
				}
				return nil
			}, wantOps: []string{"rotate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ffs := newFaultFS(tt.match)
			cfg := tt.cfg
			cfg.Arrow, cfg.Protobuf = true, true
			w, log := faultWriter(t, cfg, ffs)
			w.now = func() time.Time { return fixed }
			if tt.flushAt > 0 {
				w.flushAt = tt.flushAt
			}
			want := tt.run(t, w, ffs, arrowproto.NewCache(4))
			var ops []string
			for _, err := range log.all() {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("reported %T %v", err, err)
				}
				ops = append(ops, e.Op)
			}
			for _, op := range tt.wantOps {
				if !slices.Contains(ops, op) {
					t.Errorf("reported %v, want %s among them", ops, op)
				}
			}
			if st := w.Stats(); tt.dropped > 0 && st.BatchesDropped != tt.dropped {
				t.Errorf("dropped %d, want %d", st.BatchesDropped, tt.dropped)
			}
			_ = w.Close()
			if want == nil {
				return
			}
			if tt.match == "/proto/" || tt.match == "/descriptors" {
				got := flat(protoIDs(t, w, dataFiles(t, w, w.protoDir(), extProto)))
				want = slices.DeleteFunc(want, func(id int64) bool { return badRow(int(id)) })
				if !slices.Equal(got, want) {
					t.Errorf("records %v, want %v", got, want)
				}
				return
			}
			if got := flat(arrowIDs(t, dataFiles(t, w, w.arrowDir(), extArrow))); !slices.Equal(got, want) {
				t.Errorf("rows %v, want %v", got, want)
			}
		})
	}
}

// brokenBatch is a record batch whose columns are missing: the IPC writer
// cannot encode it.
type brokenBatch struct{ arrow.RecordBatch }

func (brokenBatch) Column(int) arrow.Array { return nil }

// TestUnencodableBatch: a batch the IPC writer rejects is dropped and ends
// the file; the batches before it stay readable.
func TestUnencodableBatch(t *testing.T) {
	log := &errorLog{}
	w := newWriter(t, Config{Arrow: true, OnError: log.add, FlushInterval: time.Hour})
	cache := arrowproto.NewCache(4)
	send(t, w, cache, schemaV1(), 0, 10)
	rec := makeBatch(t, schemaV1(), 10, 10, false)
	defer rec.Release()
	w.OnBatchEncoded(brokenBatch{rec}, nil, nil)
	send(t, w, cache, schemaV1(), 20, 10) // no tick needed: the directory is fine
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var e *Error
	if errs := log.all(); len(errs) != 1 || !errors.As(errs[0], &e) || e.Op != "encode" {
		t.Fatalf("reported %v", errs)
	}
	if st := w.Stats(); st.BatchesDropped != 1 || st.Rotations != 1 {
		t.Errorf("stats %+v", st)
	}
	files := dataFiles(t, w, w.arrowDir(), extArrow)
	if got := flat(arrowIDs(t, files)); !slices.Equal(got, append(seq(0, 10), seq(20, 10)...)) {
		t.Errorf("rows %v", got)
	}
	if _, ended := readArrowFile(t, files[0]); !ended {
		t.Error("the file ended by the failure has no end-of-stream marker")
	}
}

// TestActivePathIsADirectory: a directory where the active file should be
// is a failure like any other, until it is gone.
func TestActivePathIsADirectory(t *testing.T) {
	log := &errorLog{}
	w := newWriter(t, Config{Arrow: true, OnError: log.add, FlushInterval: time.Hour})
	active := filepath.Join(w.arrowDir(), w.base+".arrows")
	if err := os.MkdirAll(filepath.Join(active, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	cache := arrowproto.NewCache(4)
	send(t, w, cache, schemaV1(), 0, 10)
	var e *Error
	if errs := log.all(); len(errs) != 1 || !errors.As(errs[0], &e) || e.Op != "open" || !errors.Is(e, syscall.EISDIR) {
		t.Fatalf("reported %v", errs)
	}
	if err := os.RemoveAll(active); err != nil {
		t.Fatal(err)
	}
	w.tick()
	send(t, w, cache, schemaV1(), 10, 10)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := flat(arrowIDs(t, dataFiles(t, w, w.arrowDir(), extArrow))); !slices.Equal(got, seq(10, 10)) {
		t.Errorf("rows %v", got)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	eio := errors.New("injected I/O error")
	tests := []struct {
		name  string
		setup func(ffs *faultFS)
		dir   string // relative to the temp dir
		op    error
	}{
		{name: "ok", dir: "."},
		{name: "no directory", dir: "missing", op: fs.ErrNotExist},
		{name: "write fails", dir: ".", setup: func(f *faultFS) { f.limitWrites(2) }, op: syscall.ENOSPC},
		{name: "close fails", dir: ".", setup: func(f *faultFS) { f.fail("close", eio) }, op: eio},
		{name: "rename fails", dir: ".", setup: func(f *faultFS) { f.fail("rename", eio) }, op: eio},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			ffs := newFaultFS(root)
			if tt.setup != nil {
				tt.setup(ffs)
			}
			name := filepath.Join(root, tt.dir, "t.desc")
			if err := os.WriteFile(filepath.Join(root, "t.desc"), []byte("old"), 0o600); err != nil {
				t.Fatal(err)
			}
			err := writeFileAtomic(ffs, name, "t", []byte("new content"))
			if tt.op == nil {
				if data, _ := os.ReadFile(name); err != nil || string(data) != "new content" {
					t.Fatalf("err %v, content %q", err, data)
				}
				return
			}
			if !errors.Is(err, tt.op) {
				t.Errorf("err %v, want %v", err, tt.op)
			}
			if data, _ := os.ReadFile(filepath.Join(root, "t.desc")); string(data) != "old" {
				t.Errorf("the old file became %q", data)
			}
			if names, _ := os.ReadDir(root); len(names) != 1 {
				t.Errorf("temporary files left: %v", names)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	e := &Error{Op: "write", Path: "/d/zerobus/arrow/t.arrows", Err: syscall.ENOSPC}
	if got, want := e.Error(), "debugfiles: write /d/zerobus/arrow/t.arrows: no space left on device"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(e, syscall.ENOSPC) {
		t.Error("Error does not unwrap")
	}
}

// TestDamagedFileIsSetAside: a file that cannot be cut back to its last
// whole batch is renamed with "~" appended, out of the readers' way.
func TestDamagedFileIsSetAside(t *testing.T) {
	eio := errors.New("injected I/O error")
	for _, tt := range []struct {
		name, match, dir, ext string
		renameFails           bool
	}{
		{name: "arrow", match: "/arrow/", dir: "arrow", ext: extArrow},
		{name: "protobuf", match: "/proto/", dir: "proto", ext: extProto},
		{name: "arrow, rename fails", match: "/arrow/", dir: "arrow", ext: extArrow, renameFails: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ffs := newFaultFS(tt.match)
			w, log := faultWriter(t, Config{Arrow: true, Protobuf: true}, ffs)
			cache := arrowproto.NewCache(4)
			send(t, w, cache, schemaV1(), 0, 10)
			dir := filepath.Join(w.root, tt.dir)
			good := fileSize(t, filepath.Join(dir, w.base+"."+tt.ext))
			ffs.limitWrites(good + 100)
			ffs.fail("truncate", eio)
			if tt.renameFails {
				ffs.fail("rename", eio)
			}
			send(t, w, cache, schemaV1(), 10, 10)
			ffs.set(func(f *faultFS) { f.errs = map[string]error{}; f.writeLimit = -1 })
			w.tick()
			want := send(t, w, cache, schemaV1(), 20, 10)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			var ops []string
			for _, err := range log.all() {
				var e *Error
				if errors.As(err, &e) {
					ops = append(ops, e.Op)
				}
			}
			if !slices.Contains(ops, "write") || !slices.Contains(ops, "truncate") {
				t.Errorf("reported %v", ops)
			}
			names, err := osFS{}.ReadDirNames(dir)
			if err != nil {
				t.Fatal(err)
			}
			var damaged []string
			for _, n := range names {
				if strings.HasSuffix(n, "."+tt.ext+damagedSuffix) {
					damaged = append(damaged, n)
					if fileSize(t, filepath.Join(dir, n)) != good+100 {
						t.Errorf("%s is not the damaged file", n)
					}
				}
			}
			if len(damaged) != 1 {
				t.Fatalf("files %v, want one set aside", names)
			}
			files := dataFiles(t, w, dir, tt.ext)
			if len(files) != 1 {
				t.Fatalf("data files %v, want only the new one", files)
			}
			if tt.ext == extArrow {
				if got := flat(arrowIDs(t, files)); !slices.Equal(got, seq(20, 10)) {
					t.Errorf("rows %v", got)
				}
			} else if got := flat(protoIDs(t, w, files)); !slices.Equal(got, want) {
				t.Errorf("records %v, want %v", got, want)
			}
			if n := len(listRotated(t, w, w.descDir(), extDesc)); n != 0 {
				t.Errorf("%d descriptor copies for a damaged file", n)
			}
		})
	}
}

// TestPanicWhileGivingUp: a panic while a failed file is being given up is
// contained too; the next file starts a new stream.
func TestPanicWhileGivingUp(t *testing.T) {
	ffs := newFaultFS("/arrow/")
	w, log := faultWriter(t, Config{Arrow: true}, ffs)
	cache := arrowproto.NewCache(4)
	send(t, w, cache, schemaV1(), 0, 10)
	ffs.set(func(f *faultFS) { f.writePanic = true }) // the batch's write, then the trailer's
	send(t, w, cache, schemaV1(), 10, 10)
	if st := w.Stats(); st.BatchesDropped != 1 || st.WriteErrors != 1 || !errors.Is(log.all()[0], errPanic) {
		t.Fatalf("stats %+v, errors %v", st, log.all())
	}
	send(t, w, cache, schemaV1(), 15, 1) // dropped until the tick
	ffs.set(func(f *faultFS) { f.writePanic = false })
	w.tick()
	send(t, w, cache, schemaV1(), 20, 10)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := flat(arrowIDs(t, dataFiles(t, w, w.arrowDir(), extArrow)))
	if want := append(seq(0, 10), seq(20, 10)...); !slices.Equal(got, want) {
		t.Errorf("rows %v, want %v", got, want)
	}
}

package lake

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

const idDDL = "id bigint not null, s string"

// idTable creates c.s.<name> with idDDL and binds it.
func idTable(t testing.TB, l *Lake, name string) (*Binding, protoreflect.MessageDescriptor) {
	t.Helper()
	tb, err := l.Table("c.s." + name)
	if err != nil {
		tb = mustCreate(t, l, "c.s."+name, idDDL)
	}
	d := DescriptorFor("Row", tb.Columns())
	return mustBind(t, l, "c.s."+name, d), msgDesc(t, d)
}

// idRecords makes n records with ids from first on.
func idRecords(t testing.TB, md protoreflect.MessageDescriptor, first, n int, pad string) [][]byte {
	recs := make([][]byte, n)
	for i := range recs {
		recs[i] = encode(t, md, map[string]any{"id": first + i, "s": pad})
	}
	return recs
}

func ids(t testing.TB, dir, table string) []int64 {
	t.Helper()
	return int64Column(t, readAll(t, dir, "c.s."+table), 0)
}

func seq(first, n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(first + i)
	}
	return out
}

func crash(t testing.TB, l *Lake) {
	t.Helper()
	if err := l.close(false); err != nil {
		t.Fatalf("crash: %v", err)
	}
}

func reopen(t testing.TB, dir string) *Lake {
	t.Helper()
	return openLake(t, dir)
}

func lastSegment(t testing.TB, dir, table string) string {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, "c", "s", table, "_zerobus_log", "*"+segExt))
	sort.Strings(segs)
	if len(segs) == 0 {
		t.Fatal("no log segment")
	}
	return segs[len(segs)-1]
}

func TestAppendOrderAndDurability(t *testing.T) {
	dir := t.TempDir()
	l := openLake(t, dir)
	b, md := idTable(t, l, "t")
	var chans []<-chan error
	for i := range 50 {
		chans = append(chans, b.Append(idRecords(t, md, i*10, 10, "x")))
	}
	for i, ch := range chans {
		if err := <-ch; err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	if s := b.Table().Stats(); s.Durable != 500 || s.Materialized != 0 {
		t.Fatalf("Stats = %+v, want 500 durable, 0 materialized", s)
	}
	// Crash before anything is materialized: the acknowledged records are
	// in the log, and Open replays them into the table in order.
	crash(t, l)
	l = reopen(t, dir)
	tb, _ := l.Table("c.s.t")
	if s := tb.Stats(); s.Durable != 500 || s.Materialized != 500 {
		t.Fatalf("Stats after reopen = %+v, want 500/500", s)
	}
	if got := ids(t, dir, "t"); !slices.Equal(got, seq(0, 500)) {
		t.Fatalf("ids = %v..., want 0..499 in order", got[:min(len(got), 20)])
	}
}

func TestAppendEmpty(t *testing.T) {
	l := openLake(t, t.TempDir())
	b, md := idTable(t, l, "t")
	first := b.Append(idRecords(t, md, 0, 3, ""))
	if err := <-b.Append(nil); err != nil {
		t.Fatalf("empty append: %v", err)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if got := b.Table().Stats().Durable; got != 3 {
		t.Fatalf("Durable = %d", got)
	}
}

func TestAppendWaitsForFsync(t *testing.T) {
	l := openLake(t, t.TempDir())
	b, md := idTable(t, l, "t")
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	b.Table().log.syncFile = func(f *os.File) error {
		entered <- struct{}{}
		<-release
		return f.Sync()
	}
	done := b.Append(idRecords(t, md, 0, 5, ""))
	<-entered // the writer is inside fsync
	select {
	case err := <-done:
		t.Fatalf("acknowledged (%v) while fsync had not returned", err)
	case <-time.After(50 * time.Millisecond):
	}
	if got := b.Table().Stats().Durable; got != 0 {
		t.Fatalf("Durable = %d before fsync returned", got)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := b.Table().Stats().Durable; got != 5 {
		t.Fatalf("Durable = %d after fsync", got)
	}
}

func TestGroupCommit(t *testing.T) {
	l := openLake(t, t.TempDir())
	b, md := idTable(t, l, "t")
	log := b.Table().log
	log.syncFile = func(f *os.File) error {
		time.Sleep(5 * time.Millisecond) // a slow disk: appends pile up meanwhile
		return f.Sync()
	}
	const appenders, each = 32, 5
	rec := idRecords(t, md, 0, 1, "")
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range appenders {
		wg.Go(func() {
			for range each {
				if err := <-b.Append(rec); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d appends failed", failed.Load())
	}
	syncs := log.syncs.Load()
	t.Logf("%d appends, %d fsyncs", appenders*each, syncs)
	if syncs < 1 || syncs > appenders*each/4 {
		t.Fatalf("%d fsyncs for %d concurrent appends: group commit does not group", syncs, appenders*each)
	}
	if got := b.Table().Stats().Durable; got != appenders*each {
		t.Fatalf("Durable = %d", got)
	}
}

func TestConcurrentAppendsManyTables(t *testing.T) {
	dir := t.TempDir()
	l := openLake(t, dir)
	const tables, writers, batches, size = 3, 4, 25, 8
	var wg sync.WaitGroup
	errs := make(chan error, tables*writers)
	for ti := range tables {
		name := fmt.Sprintf("t%d", ti)
		mustCreate(t, l, "c.s."+name, idDDL)
		for w := range writers {
			wg.Go(func() {
				b, md := idTable(t, l, name) // one binding per stream
				for i := range batches {
					recs := idRecords(t, md, w*1_000_000+i*size, size, "p")
					if err := b.Check(recs); err != nil {
						errs <- err
						return
					}
					if err := <-b.Append(recs); err != nil {
						errs <- err
						return
					}
					if i == batches/2 && w == 0 {
						if err := l.Materialize(); err != nil {
							errs <- err
							return
						}
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := l.Materialize(); err != nil {
		t.Fatal(err)
	}
	for ti := range tables {
		got := ids(t, dir, fmt.Sprintf("t%d", ti))
		if len(got) != writers*batches*size {
			t.Fatalf("table %d has %d rows, want %d", ti, len(got), writers*batches*size)
		}
		// Each stream's records keep their order; nothing is duplicated.
		last := map[int64]int64{}
		for _, id := range got {
			w := id / 1_000_000
			if prev, ok := last[w]; ok && id != prev+1 {
				t.Fatalf("table %d: stream %d: id %d after %d", ti, w, id, prev)
			}
			last[w] = id
		}
	}
}

func TestFsyncFailureIsSticky(t *testing.T) {
	l := openLake(t, t.TempDir())
	b, md := idTable(t, l, "t")
	mustAppend(t, b, idRecords(t, md, 0, 2, ""))
	boom := errors.New("disk on fire")
	b.Table().log.syncFile = func(*os.File) error { return boom }
	if err := <-b.Append(idRecords(t, md, 2, 2, "")); !errors.Is(err, boom) {
		t.Fatalf("Append with failing fsync = %v", err)
	}
	b.Table().log.syncFile = (*os.File).Sync
	if err := <-b.Append(idRecords(t, md, 4, 2, "")); !errors.Is(err, boom) {
		t.Fatalf("Append after a failed fsync = %v, want the sticky error", err)
	}
	if got := b.Table().Stats().Durable; got != 2 {
		t.Fatalf("Durable = %d, want 2", got)
	}
}

// frameBytes builds one frame with the given body.
func frameBytes(body []byte) []byte {
	f := make([]byte, frameHeader, frameHeader+len(body))
	f = append(f, body...)
	binary.LittleEndian.PutUint32(f[0:4], uint32(len(body)))
	binary.LittleEndian.PutUint32(f[4:8], crc32.Checksum(body, castagnoli))
	return f
}

func TestTornTailIsCutOff(t *testing.T) {
	valid := encodeBatchFrames(7, [][]byte{{8, 1}})[0]
	flipped := append([]byte(nil), valid...)
	flipped[len(flipped)-1] ^= 0xff
	badCount := frameBytes(append([]byte{kindBatch, 7}, protowire.AppendVarint(nil, 3)...))
	unknownKind := frameBytes([]byte{9, 7, 1})
	tails := map[string][]byte{
		"half header":     {1, 2, 3},
		"length past end": append(binary.LittleEndian.AppendUint32(nil, 1000), make([]byte, 12)...),
		"huge length":     append(binary.LittleEndian.AppendUint32(nil, 0xffffffff), make([]byte, 12)...),
		"bad checksum":    flipped,
		"zeros":           make([]byte, 4096),
		"bad batch":       badCount,
		"unknown kind":    unknownKind,
		"half frame":      valid[:len(valid)-2],
	}
	for name, tail := range tails {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			l := openLake(t, dir)
			b, md := idTable(t, l, "t")
			for i := range 3 {
				mustAppend(t, b, idRecords(t, md, i*10, 10, "x"))
			}
			crash(t, l)
			seg := lastSegment(t, dir, "t")
			before, _ := os.Stat(seg)
			f, err := os.OpenFile(seg, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write(tail)
			f.Close()

			l = reopen(t, dir)
			after, _ := os.Stat(seg)
			if after.Size() != before.Size() {
				t.Fatalf("segment is %d bytes after recovery, want %d (torn tail cut off)", after.Size(), before.Size())
			}
			b, md = idTable(t, l, "t")
			if s := b.Table().Stats(); s.Durable != 30 || s.Materialized != 30 {
				t.Fatalf("Stats = %+v, want 30/30", s)
			}
			mustAppend(t, b, idRecords(t, md, 30, 5, "y"))
			if err := l.Materialize(); err != nil {
				t.Fatal(err)
			}
			if got := ids(t, dir, "t"); !slices.Equal(got, seq(0, 35)) {
				t.Fatalf("ids = %v, want 0..34", got)
			}
		})
	}
}

func TestTornSegmentCreation(t *testing.T) {
	dir := t.TempDir()
	l := openLake(t, dir)
	b, md := idTable(t, l, "t")
	mustAppend(t, b, idRecords(t, md, 0, 4, ""))
	crash(t, l)
	// A segment whose creation was cut short: magic header incomplete, and
	// one holding only a descriptor frame.
	logDir := filepath.Dir(lastSegment(t, dir, "t"))
	os.WriteFile(filepath.Join(logDir, segName(4)), []byte("ZBL"), 0o644)
	os.WriteFile(filepath.Join(logDir, "junk.zlog"), []byte("x"), 0o644) // not a segment name: ignored
	l = reopen(t, dir)
	if _, err := os.Stat(filepath.Join(logDir, segName(4))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("empty torn segment was kept: %v", err)
	}
	b, md = idTable(t, l, "t")
	mustAppend(t, b, idRecords(t, md, 4, 4, ""))
	crash(t, l)
	desc := appendDescriptorFrame([]byte(segMagic), 99, b.plan.desc)
	os.WriteFile(filepath.Join(logDir, segName(8)), desc, 0o644)
	l = reopen(t, dir)
	if got := ids(t, dir, "t"); !slices.Equal(got, seq(0, 8)) {
		t.Fatalf("ids = %v", got)
	}
	tb, _ := l.Table("c.s.t")
	if s := tb.Stats(); s.Durable != 8 || s.Materialized != 8 {
		t.Fatalf("Stats = %+v", s)
	}
}

func TestSegmentsRotateAndAreDropped(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(Options{Dir: dir, MaterializeInterval: time.Hour, segmentSize: 2048})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	mustCreate(t, l, "c.s.t", idDDL)
	b, md := idTable(t, l, "t")
	pad := strings.Repeat("p", 100)
	for i := range 30 {
		mustAppend(t, b, idRecords(t, md, i*10, 10, pad))
	}
	logDir := filepath.Dir(lastSegment(t, dir, "t"))
	segs, _ := filepath.Glob(filepath.Join(logDir, "*"+segExt))
	if len(segs) < 5 {
		t.Fatalf("%d segments, want several with a 2 KiB segment size", len(segs))
	}
	if err := l.Materialize(); err != nil {
		t.Fatal(err)
	}
	segs, _ = filepath.Glob(filepath.Join(logDir, "*"+segExt))
	if len(segs) != 1 {
		t.Fatalf("%d segments left after materializing everything, want 1", len(segs))
	}
	// More appends after a restart continue the sequence.
	crash(t, l)
	l, err = Open(Options{Dir: dir, MaterializeInterval: time.Hour, segmentSize: 2048})
	if err != nil {
		t.Fatal(err)
	}
	b, md = idTable(t, l, "t")
	for i := range 10 {
		mustAppend(t, b, idRecords(t, md, 300+i*10, 10, pad))
	}
	crash(t, l) // not materialized: replayed across several segments by Open
	l = reopen(t, dir)
	if got := ids(t, dir, "t"); !slices.Equal(got, seq(0, 400)) {
		t.Fatalf("ids: %d rows, want 0..399", len(got))
	}
	tb, _ := l.Table("c.s.t")
	if s := tb.Stats(); s.Durable != 400 || s.Materialized != 400 {
		t.Fatalf("Stats = %+v", s)
	}
}

func TestCorruptSealedSegment(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(Options{Dir: dir, MaterializeInterval: time.Hour, segmentSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, l, "c.s.t", idDDL)
	b, md := idTable(t, l, "t")
	for i := range 10 {
		mustAppend(t, b, idRecords(t, md, i*10, 10, strings.Repeat("z", 50)))
	}
	crash(t, l)
	segs, _ := filepath.Glob(filepath.Join(dir, "c", "s", "t", "_zerobus_log", "*"+segExt))
	sort.Strings(segs)
	data, _ := os.ReadFile(segs[0])
	data[len(data)-5] ^= 0xff // inside a record of a sealed segment
	os.WriteFile(segs[0], data, 0o644)
	_, err = Open(Options{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), segs[0]) || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("Open with a corrupt sealed segment = %v, want an error naming %s", err, segs[0])
	}
	// Not a segment at all.
	os.WriteFile(segs[0], []byte("garbage!garbage!"), 0o644)
	if _, err := Open(Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "not a record log segment") {
		t.Fatalf("Open with a foreign segment = %v", err)
	}
}

func TestMissingSegmentsAreSkipped(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(Options{Dir: dir, MaterializeInterval: time.Hour, segmentSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, l, "c.s.t", idDDL)
	b, md := idTable(t, l, "t")
	for i := range 10 {
		mustAppend(t, b, idRecords(t, md, i*10, 10, strings.Repeat("z", 50)))
	}
	crash(t, l)
	segs, _ := filepath.Glob(filepath.Join(dir, "c", "s", "t", "_zerobus_log", "*"+segExt))
	sort.Strings(segs)
	os.Remove(segs[0]) // lost by hand: its records cannot come back
	l = reopen(t, dir)
	got := ids(t, dir, "t")
	if len(got) == 0 || len(got) >= 100 || got[len(got)-1] != 99 {
		t.Fatalf("ids = %v: want the records of the remaining segments", got)
	}
	// A log that lost everything continues from the table's position.
	crash(t, l)
	os.RemoveAll(filepath.Join(dir, "c", "s", "t", "_zerobus_log"))
	l = reopen(t, dir)
	b, md = idTable(t, l, "t")
	mustAppend(t, b, idRecords(t, md, 1000, 3, ""))
	if err := l.Materialize(); err != nil {
		t.Fatal(err)
	}
	if s := b.Table().Stats(); s.Durable != 103 {
		t.Fatalf("Stats = %+v, want durable 103", s)
	}
}

func TestFrameReaderEdges(t *testing.T) {
	if _, err := batchRecords([]byte{0x80}, nil); err == nil {
		t.Error("bad count accepted")
	}
	if _, err := batchRecords([]byte{1, 5, 1}, nil); err == nil {
		t.Error("short record accepted")
	}
	if _, err := batchRecords([]byte{1, 1, 1, 9}, nil); err == nil {
		t.Error("trailing bytes accepted")
	}
	// A big append is split into several frames.
	recs := make([][]byte, 3)
	for i := range recs {
		recs[i] = make([]byte, frameTarget/2+1)
	}
	if n := len(encodeBatchFrames(1, recs)); n != 3 {
		t.Errorf("%d frames for 3 records of half a frame each, want 3", n)
	}
}

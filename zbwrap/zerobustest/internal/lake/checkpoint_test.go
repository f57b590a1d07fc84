package lake

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// checkpointTable commits n versions of two rows each (ids 2v-2 and 2v-1 in
// version v) with checkpoints every 3 versions.
func checkpointTable(t *testing.T, n int) (*Lake, *Table) {
	t.Helper()
	old := checkpointInterval
	checkpointInterval = 3
	t.Cleanup(func() { checkpointInterval = old })
	l := openLake(t, t.TempDir())
	tb := mustCreate(t, l, "main.default.ck", "id bigint not null, s string")
	d := DescriptorFor("Row", tb.Columns())
	b := mustBind(t, l, "main.default.ck", d)
	md := msgDesc(t, d)
	for v := 1; v <= n; v++ {
		id := int64(2*v - 2)
		mustAppend(t, b, [][]byte{
			encode(t, md, map[string]any{"id": id, "s": "row"}),
			encode(t, md, map[string]any{"id": id + 1}),
		})
		if err := l.Materialize(); err != nil {
			t.Fatal(err)
		}
	}
	return l, tb
}

func TestCheckpointsEveryInterval(t *testing.T) {
	_, tb := checkpointTable(t, 7)
	logDir := deltaLogDir(tb.Path())
	for v, want := range map[int64]bool{3: true, 6: true, 1: false, 7: false} {
		_, err := os.Stat(filepath.Join(logDir, checkpointName(v)))
		if (err == nil) != want {
			t.Errorf("checkpoint of version %d: exists %v, want %v", v, err == nil, want)
		}
	}
	var last struct{ Version, Size int64 }
	data, err := os.ReadFile(filepath.Join(logDir, lastCheckpointName))
	if err != nil || json.Unmarshal(data, &last) != nil {
		t.Fatalf("_last_checkpoint: %s %v", data, err)
	}
	if last.Version != 6 || last.Size != 2+6 {
		t.Fatalf("_last_checkpoint %+v, want version 6 with 8 actions", last)
	}

	// The checkpoint holds the protocol, the metadata and one add per file
	// committed up to version 6, with its stats.
	ck, err := readParquet(filepath.Join(logDir, checkpointName(6)))
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Release()
	for i, f := range checkpointSchema.Fields() {
		if g := ck.Schema().Field(i); g.Name != f.Name || !arrow.TypeEqual(g.Type, f.Type) {
			t.Fatalf("checkpoint column %d is %s %s, want %s %s", i, g.Name, g.Type, f.Name, f.Type)
		}
	}
	snap, err := readSnapshot(tb.Path())
	if err != nil {
		t.Fatal(err)
	}
	var protocols, metadata int
	var paths []string
	for r := 0; r < int(ck.NumRows()); r++ {
		row := func(col string) *array.Struct {
			c := ck.Column(ck.Schema().FieldIndices(col)[0]).Data().Chunk(0).(*array.Struct)
			if c.IsNull(r) {
				return nil
			}
			return c
		}
		if row("protocol") != nil {
			protocols++
		}
		if m := row("metaData"); m != nil {
			metadata++
			if got := m.Field(4).(*array.String).Value(r); got != SchemaString(tb.Columns()) {
				t.Errorf("metaData.schemaString %s", got)
			}
		}
		if a := row("add"); a != nil {
			paths = append(paths, a.Field(0).(*array.String).Value(r))
			if stats := a.Field(5).(*array.String).Value(r); !strings.Contains(stats, `"numRecords":2`) {
				t.Errorf("add.stats %s", stats)
			}
		}
	}
	if protocols != 1 || metadata != 1 || !slices.Equal(paths, snap.files[:6]) {
		t.Fatalf("checkpoint has %d protocol, %d metaData rows and files %v; want 1, 1 and %v", protocols, metadata, paths, snap.files[:6])
	}
	if st := tb.Stats(); st.CheckpointFailures != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// A checkpoint that cannot be written leaves the commit in place and is
// counted.
func TestCheckpointFailureIsNotACommitFailure(t *testing.T) {
	l, tb := checkpointTable(t, 2)
	// Without version 1, the state for the checkpoint of version 3 cannot
	// be built.
	if err := os.Remove(filepath.Join(deltaLogDir(tb.Path()), commitName(1))); err != nil {
		t.Fatal(err)
	}
	d := DescriptorFor("Row", tb.Columns())
	b := mustBind(t, l, "main.default.ck", d)
	mustAppend(t, b, [][]byte{encode(t, msgDesc(t, d), map[string]any{"id": 100})})
	if err := l.Materialize(); err != nil {
		t.Fatalf("Materialize with a failing checkpoint: %v", err)
	}
	if _, err := os.Stat(filepath.Join(deltaLogDir(tb.Path()), commitName(3))); err != nil {
		t.Fatal("version 3 was not committed")
	}
	if st := tb.Stats(); st.CheckpointFailures != 1 || st.Materialized != 5 {
		t.Fatalf("stats %+v", st)
	}
}

// deltalake reads the table from the checkpoint alone: the commits before
// it are deleted, as log cleanup does.
func TestDeltalakeReadsCheckpoints(t *testing.T) {
	py := pythonWithDeltalake(t)
	_, tb := checkpointTable(t, 7)
	for v := int64(0); v < 6; v++ {
		if err := os.Remove(filepath.Join(deltaLogDir(tb.Path()), commitName(v))); err != nil {
			t.Fatal(err)
		}
	}
	// os._exit: deltalake 1.6 can abort in interpreter teardown after
	// to_pyarrow_table ("terminate called without an active exception"),
	// with or without checkpoints; the answer is out by then.
	const reader = `
import json, os, sys, deltalake
dt = deltalake.DeltaTable(sys.argv[1])
ids = sorted(dt.to_pyarrow_table().column("id").to_pylist())
print(json.dumps({"version": dt.version(), "files": len(dt.file_uris()), "ids": ids}), flush=True)
os._exit(0)
`
	out := runPython(t, py, reader, tb.Path())
	var got struct {
		Version, Files int
		IDs            []int64
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := make([]int64, 14)
	for i := range want {
		want[i] = int64(i)
	}
	if got.Version != 7 || got.Files != 7 || !slices.Equal(got.IDs, want) {
		t.Fatalf("deltalake read version %d, %d files, ids %v", got.Version, got.Files, got.IDs)
	}
}

func TestCheckpointErrors(t *testing.T) {
	_, tb := checkpointTable(t, 1)
	s, err := replayLog(tb.Path(), 1)
	if err != nil {
		t.Fatal(err)
	}
	logDir := deltaLogDir(tb.Path())
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// No temporary directory, then no log directory to place it in: an
	// error naming the version, and no _last_checkpoint.
	if err := writeCheckpoint(tb.Path(), filepath.Join(notADir, "tmp"), 1, s); err == nil || !strings.Contains(err.Error(), "checkpoint 1") {
		t.Fatalf("writeCheckpoint with no temporary directory: %v", err)
	}
	if err := writeCheckpoint(t.TempDir(), t.TempDir(), 1, s); err == nil {
		t.Fatal("writeCheckpoint into a table without _delta_log succeeded")
	}
	if _, err := os.Stat(filepath.Join(logDir, lastCheckpointName)); !os.IsNotExist(err) {
		t.Fatalf("_last_checkpoint after failed checkpoints: %v", err)
	}
	// A log without metadata has nothing to checkpoint.
	dir := t.TempDir()
	if err := writeCommit(dir, t.TempDir(), 0, []deltaAction{{Protocol: &protocolAction{MinReaderVersion: 1, MinWriterVersion: 2}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := replayLog(dir, 0); err == nil || !strings.Contains(err.Error(), "metaData") {
		t.Fatalf("replayLog without metaData: %v", err)
	}
}

package zbwrap

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"google.golang.org/protobuf/encoding/protowire"
)

// debugFiles returns the table's active Arrow and protobuf debug files.
func debugFiles(dir string) (arrowPath, protoPath, descPath string) {
	base := filepath.Join(dir, "zerobus")
	return filepath.Join(base, "arrow", testTable+".arrows"),
		filepath.Join(base, "proto", testTable+".pb"),
		filepath.Join(base, "descriptors", testTable+".desc")
}

// readDebug reads back what the debug files hold: the ids of the Arrow rows
// and the number of length-prefixed records.
func readDebug(t *testing.T, dir string) (ids []int64, records int) {
	t.Helper()
	arrowPath, protoPath, descPath := debugFiles(dir)
	f, err := os.Open(arrowPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := ipc.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	for r.Next() {
		col := r.RecordBatch().Column(0).(*array.Int64)
		ids = append(ids, col.Int64Values()...)
	}
	if err := r.Err(); err != nil {
		t.Fatalf("Arrow debug file: %v", err)
	}
	pb, err := os.ReadFile(protoPath)
	if err != nil {
		t.Fatal(err)
	}
	for len(pb) > 0 {
		n, k := protowire.ConsumeVarint(pb)
		if k < 0 || uint64(len(pb)-k) < n {
			t.Fatalf("protobuf debug file: bad length prefix after %d records", records)
		}
		pb = pb[k+int(n):]
		records++
	}
	if st, err := os.Stat(descPath); err != nil || st.Size() == 0 {
		t.Fatalf("descriptor file: %v", err)
	}
	return ids, records
}

// Writer-disabled mode with debug_enabled converts, writes both debug files
// and the descriptor, and never dials.
func TestDebugFilesWriterDisabled(t *testing.T) {
	dir := t.TempDir()
	w, err := New(context.Background(), Config{
		TableName:             testTable,
		ZerobusWriterDisabled: true,
		DebugEnabled:          true,
		DebugOutputDir:        dir,
	})
	if err != nil {
		t.Fatal(err)
	}
	for k := range 3 {
		rec := makeBatch(k*100, 100, 40)
		res, err := w.SendBatch(context.Background(), rec)
		rec.Release()
		if err != nil || res.SuccessfulCount != 100 {
			t.Fatalf("batch %d: %v %+v", k, err, res)
		}
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	ids, records := readDebug(t, dir)
	if len(ids) != 300 || ids[0] != 0 || ids[299] != 299 || records != 300 {
		t.Fatalf("debug files hold %d rows (first %v) and %d records, want 300 of each", len(ids), ids[:min(len(ids), 1)], records)
	}
}

// With a server, only the flag asked for is written, and the sends are
// acknowledged as usual.
func TestDebugFilesArrowOnlyWithServer(t *testing.T) {
	srv := newServer(t)
	dir := t.TempDir()
	w := newWrapper(t, srv, WithDebugArrow(true), WithDebugOutputDir(dir))
	rec := makeBatch(0, 50, 40)
	defer rec.Release()
	if res, err := w.SendBatch(context.Background(), rec); err != nil || res.SuccessfulCount != 50 {
		t.Fatalf("SendBatch: %v %+v", err, res)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	arrowPath, protoPath, _ := debugFiles(dir)
	if _, err := os.Stat(arrowPath); err != nil {
		t.Fatalf("Arrow debug file: %v", err)
	}
	if _, err := os.Stat(protoPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("protobuf debug file written with only debug_arrow_enabled: %v", err)
	}
}

// A debug flag without an output directory is a configuration error naming
// the setting; a bad debug setting fails New.
func TestDebugFilesConfiguration(t *testing.T) {
	_, err := New(context.Background(), Config{TableName: testTable, ZerobusWriterDisabled: true, DebugProtobufEnabled: true})
	var ze *Error
	if !errors.As(err, &ze) || ze.Kind != KindConfiguration || !strings.Contains(err.Error(), "debug_output_dir") {
		t.Fatalf("New = %v, want a configuration error naming debug_output_dir", err)
	}
	_, err = New(context.Background(), Config{TableName: testTable, ZerobusWriterDisabled: true,
		DebugEnabled: true, DebugOutputDir: t.TempDir(), DebugMaxFilesRetained: -2})
	if !errors.Is(err, ErrConfiguration) {
		t.Fatalf("New with debug_max_files_retained -2 = %v, want a configuration error", err)
	}
}

// Flush writes out the debug files' buffers: what was sent is in the files
// before Close, without waiting for the flush interval.
func TestFlushWritesOutDebugFiles(t *testing.T) {
	dir := t.TempDir()
	w, err := New(context.Background(), Config{TableName: testTable, ZerobusWriterDisabled: true,
		DebugEnabled: true, DebugOutputDir: dir, DebugFlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(context.Background())
	for k := range 2 {
		rec := makeBatch(k*100, 100, 40)
		_, err := w.SendBatch(context.Background(), rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	ids, records := readDebug(t, dir)
	if len(ids) != 200 || records != 200 {
		t.Fatalf("after Flush the debug files hold %d rows and %d records, want 200 of each", len(ids), records)
	}
}

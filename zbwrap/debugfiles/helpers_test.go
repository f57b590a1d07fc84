package debugfiles

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/pyzerobus/pyzerobus/zbwrap/arrowproto"
)

var kinds = []string{"click", "view", "buy"}

// schemaV1 is the test table; schemaV2 adds a column.
func schemaV1() *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "kind", Type: arrow.BinaryTypes.String},
		{Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		{Name: "addr", Type: arrow.StructOf(
			arrow.Field{Name: "city", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "zip", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		), Nullable: true},
		{Name: "attrs", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int64), Nullable: true},
	}, nil)
}

func schemaV2() *arrow.Schema {
	fs := slices.Clone(schemaV1().Fields())
	fs = append(fs, arrow.Field{Name: "extra", Type: arrow.BinaryTypes.String, Nullable: true})
	return arrow.NewSchema(fs, nil)
}

// badRow tells whether row id gets a null list element, which protobuf
// cannot carry: the row fails to convert and has no record.
func badRow(id int) bool { return id%50 == 7 }

// makeBatch builds rows start..start+n-1 of schema (V1 or V2), with failing
// rows if bad.
func makeBatch(tb testing.TB, schema *arrow.Schema, start, n int, bad bool) arrow.RecordBatch {
	tb.Helper()
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	tags := b.Field(3).(*array.ListBuilder)
	tagv := tags.ValueBuilder().(*array.StringBuilder)
	addr := b.Field(4).(*array.StructBuilder)
	attrs := b.Field(5).(*array.MapBuilder)
	for i := start; i < start+n; i++ {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		b.Field(1).(*array.StringBuilder).Append(kinds[i%3])
		if i%5 == 0 {
			b.Field(2).AppendNull()
		} else {
			b.Field(2).(*array.Float64Builder).Append(float64(i) / 2)
		}
		tags.Append(true)
		for j := range i % 3 {
			tagv.Append(fmt.Sprintf("t%d", j))
		}
		if bad && badRow(i) {
			tagv.AppendNull()
		}
		if i%7 == 0 {
			addr.AppendNull()
		} else {
			addr.Append(true)
			addr.FieldBuilder(0).(*array.StringBuilder).Append(fmt.Sprintf("city%d", i%4))
			addr.FieldBuilder(1).(*array.Int32Builder).Append(int32(10000 + i))
		}
		attrs.Append(true)
		if i%4 != 0 {
			attrs.KeyBuilder().(*array.StringBuilder).Append("a")
			attrs.ItemBuilder().(*array.Int64Builder).Append(int64(i))
			attrs.KeyBuilder().(*array.StringBuilder).Append("b")
			attrs.ItemBuilder().(*array.Int64Builder).Append(int64(2 * i))
		}
		if len(b.Fields()) > 6 {
			b.Field(6).(*array.StringBuilder).Append(fmt.Sprintf("x%d", i))
		}
	}
	return b.NewRecordBatch()
}

// encoded is a batch as the engine hands it to the hook.
type encoded struct {
	rec     arrow.RecordBatch
	desc    []byte
	records [][]byte
	ids     []int64 // of the records
}

// encode converts rec with arrowproto, as the engine does.
func encode(tb testing.TB, cache *arrowproto.Cache, rec arrow.RecordBatch) encoded {
	tb.Helper()
	sc, err := cache.Get(rec.Schema())
	if err != nil {
		tb.Fatal(err)
	}
	b, err := sc.Encode(rec)
	if err != nil {
		tb.Fatal(err)
	}
	ids := rec.Column(0).(*array.Int64)
	e := encoded{rec: rec, desc: sc.DescriptorBytes(), records: b.Records}
	for _, r := range b.Rows {
		e.ids = append(e.ids, ids.Value(r))
	}
	return e
}

// send builds, encodes and writes rows start..start+n-1; it returns the ids
// that have a record.
func send(tb testing.TB, w *Writer, cache *arrowproto.Cache, schema *arrow.Schema, start, n int) []int64 {
	tb.Helper()
	rec := makeBatch(tb, schema, start, n, true)
	defer rec.Release()
	e := encode(tb, cache, rec)
	w.OnBatchEncoded(rec, e.desc, e.records)
	return e.ids
}

func newWriter(tb testing.TB, cfg Config) *Writer {
	tb.Helper()
	if cfg.Dir == "" {
		cfg.Dir = tb.TempDir()
	}
	if cfg.Table == "" {
		cfg.Table = "main.app.events"
	}
	w, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = w.Close() })
	return w
}

// paths of the files of w.
func (w *Writer) arrowDir() string { return filepath.Join(w.root, "arrow") }
func (w *Writer) protoDir() string { return filepath.Join(w.root, "proto") }
func (w *Writer) descDir() string  { return filepath.Join(w.root, "descriptors") }

// listRotated returns the rotated files of ext in dir, oldest first.
func listRotated(tb testing.TB, w *Writer, dir, ext string) []string {
	tb.Helper()
	names, err := osFS{}.ReadDirNames(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		tb.Fatal(err)
	}
	return matchRotated(names, rotatedPattern(w.base, ext))
}

// dataFiles returns the rotated files then the active one (if present).
func dataFiles(tb testing.TB, w *Writer, dir, ext string) []string {
	tb.Helper()
	var out []string
	for _, n := range listRotated(tb, w, dir, ext) {
		out = append(out, filepath.Join(dir, n))
	}
	active := filepath.Join(dir, w.base+"."+ext)
	if _, err := os.Stat(active); err == nil {
		out = append(out, active)
	}
	return out
}

// readArrowFile reads every batch of an IPC stream file with arrow-go's
// reader; it reports whether the stream ends with the end-of-stream marker.
func readArrowFile(tb testing.TB, path string) (recs []arrow.RecordBatch, ended bool) {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := ipc.NewReader(bytes.NewReader(data))
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	defer r.Release()
	for r.Next() {
		rec := r.RecordBatch()
		rec.Retain()
		recs = append(recs, rec)
	}
	if err := r.Err(); err != nil && !errors.Is(err, io.EOF) {
		tb.Fatalf("%s: %v", path, err)
	}
	tb.Cleanup(func() {
		for _, r := range recs {
			r.Release()
		}
	})
	return recs, bytes.HasSuffix(data, []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
}

// arrowIDs reads the id column of every batch of the files, in order, one
// slice per batch.
func arrowIDs(tb testing.TB, files []string) [][]int64 {
	tb.Helper()
	var out [][]int64
	for _, f := range files {
		recs, _ := readArrowFile(tb, f)
		for _, r := range recs {
			out = append(out, slices.Clone(r.Column(0).(*array.Int64).Int64Values()))
		}
	}
	return out
}

// splitRecords splits a .pb file's content at its varint lengths.
func splitRecords(tb testing.TB, data []byte) [][]byte {
	tb.Helper()
	var out [][]byte
	for len(data) > 0 {
		n, k := protowire.ConsumeVarint(data)
		if k < 0 || uint64(len(data)-k) < n {
			tb.Fatalf("bad record length at %d bytes before the end", len(data))
		}
		out = append(out, data[k:k+int(n)])
		data = data[k+int(n):]
	}
	return out
}

// loadDescriptor reads a .desc file and returns the record message type.
func loadDescriptor(tb testing.TB, path string) protoreflect.MessageDescriptor {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(data, &set); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	fd, err := files.FindFileByPath(set.GetFile()[0].GetName())
	if err != nil {
		tb.Fatal(err)
	}
	return fd.Messages().Get(0)
}

// protoIDs decodes every record of the files (each with the descriptor it
// was written with) and returns the ids, one slice per file.
func protoIDs(tb testing.TB, w *Writer, files []string) [][]int64 {
	tb.Helper()
	var out [][]int64
	for _, f := range files {
		desc := filepath.Join(w.descDir(), strings.TrimSuffix(filepath.Base(f), "."+extProto)+"."+extDesc)
		if _, err := os.Stat(desc); err != nil {
			desc = w.desc.path
		}
		md := loadDescriptor(tb, desc)
		data, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		var ids []int64
		for i, r := range splitRecords(tb, data) {
			m := dynamicpb.NewMessage(md)
			if err := proto.Unmarshal(r, m); err != nil {
				tb.Fatalf("%s: record %d: %v", f, i, err)
			}
			ids = append(ids, m.Get(md.Fields().ByName("id")).Int())
		}
		out = append(out, ids)
	}
	return out
}

func seq(start, n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(start + i)
	}
	return out
}

func flat(xs [][]int64) []int64 {
	var out []int64
	for _, x := range xs {
		out = append(out, x...)
	}
	return out
}

// allWritten tells whether nothing is waiting in memory to be written.
func allWritten(w *Writer) bool {
	for _, o := range []*sync.Mutex{&w.arrow.mu, &w.proto.mu} {
		o.Lock()
	}
	defer w.arrow.mu.Unlock()
	defer w.proto.mu.Unlock()
	return w.arrow.pending.Len() == 0 && w.proto.pending.Len() == 0 && w.arrow.f != nil && w.proto.f != nil
}

// errorLog collects the errors passed to OnError.
type errorLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorLog) add(err error) {
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
}

func (l *errorLog) all() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.errs)
}

// faultFS is the real file system with failures injected into the
// operations on paths containing match.
type faultFS struct {
	osFS
	mu         sync.Mutex
	match      string
	errs       map[string]error // by operation: mkdir, create, temp, rename, remove, readdir, truncate, close
	writeLimit int64            // bytes a file takes before its writes fail; < 0: no limit
	writePanic bool
	calls      map[string]int // failed operations
}

func newFaultFS(match string) *faultFS {
	return &faultFS{match: match, errs: map[string]error{}, writeLimit: -1, calls: map[string]int{}}
}

// fault returns the error injected into op on path, if any.
func (f *faultFS) fault(op, path string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.errs[op]
	if err == nil || !strings.Contains(path, f.match) {
		return nil
	}
	f.calls[op]++
	return err
}

func (f *faultFS) fail(op string, err error) {
	f.mu.Lock()
	f.errs[op] = err
	f.mu.Unlock()
}

func (f *faultFS) set(fn func(f *faultFS)) {
	f.mu.Lock()
	fn(f)
	f.mu.Unlock()
}

func (f *faultFS) limitWrites(n int64) {
	f.mu.Lock()
	f.writeLimit = n
	f.mu.Unlock()
}

func (f *faultFS) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func (f *faultFS) MkdirAll(dir string) error {
	if err := f.fault("mkdir", dir); err != nil {
		return err
	}
	return f.osFS.MkdirAll(dir)
}

func (f *faultFS) Create(name string) (file, error) {
	if err := f.fault("create", name); err != nil {
		return nil, err
	}
	of, err := f.osFS.Create(name)
	if err != nil {
		return nil, err
	}
	return &faultFile{file: of, fs: f}, nil
}

func (f *faultFS) CreateTemp(dir, pattern string) (file, error) {
	if err := f.fault("temp", dir); err != nil {
		return nil, err
	}
	of, err := f.osFS.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return &faultFile{file: of, fs: f}, nil
}

func (f *faultFS) Rename(from, to string) error {
	if err := f.fault("rename", to); err != nil {
		return err
	}
	return f.osFS.Rename(from, to)
}

func (f *faultFS) Remove(name string) error {
	if err := f.fault("remove", name); err != nil {
		return err
	}
	return f.osFS.Remove(name)
}

func (f *faultFS) ReadDirNames(dir string) ([]string, error) {
	if err := f.fault("readdir", dir); err != nil {
		return nil, err
	}
	return f.osFS.ReadDirNames(dir)
}

// faultFile writes through to a real file until its fs's write limit, then
// writes what fits and fails with ENOSPC, like a full disk.
type faultFile struct {
	file
	fs *faultFS
	n  int64
}

func (f *faultFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	limit, panics, match := f.fs.writeLimit, f.fs.writePanic, strings.Contains(f.Name(), f.fs.match)
	f.fs.mu.Unlock()
	if match && panics {
		panic("injected write panic")
	}
	if match && limit >= 0 && f.n+int64(len(p)) > limit {
		k := max(0, limit-f.n)
		n, _ := f.file.Write(p[:k])
		f.n += int64(n)
		f.fs.mu.Lock()
		f.fs.calls["write"]++
		f.fs.mu.Unlock()
		return n, &fs.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	n, err := f.file.Write(p)
	f.n += int64(n)
	return n, err
}

func (f *faultFile) Close() error {
	err := f.file.Close()
	if ferr := f.fs.fault("close", f.Name()); ferr != nil {
		return ferr
	}
	return err
}

func (f *faultFile) Truncate(size int64) error {
	if err := f.fs.fault("truncate", f.Name()); err != nil {
		return err
	}
	f.n = size
	return f.file.Truncate(size)
}

package bindings

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/cdata"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

const (
	testTable  = "main.default.events"
	testID     = "sp-test"
	testSecret = "facade-secret-0123456789"
)

func newServer(t testing.TB, opts ...zerobustest.Option) *zerobustest.Server {
	t.Helper()
	srv, err := zerobustest.NewServer(append([]zerobustest.Option{zerobustest.WithClient(testID, testSecret)}, opts...)...)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// configFor is the JSON configuration of a Wrapper for srv, with extra keys.
func configFor(srv *zerobustest.Server, extra map[string]any) string {
	m := map[string]any{
		"zerobus_endpoint":    srv.Endpoint(),
		"unity_catalog_url":   srv.WorkspaceURL(),
		"client_id":           testID,
		"client_secret":       testSecret,
		"table_name":          testTable,
		"retry_base_delay_ms": 5,
		"retry_max_delay_ms":  50,
		"ack_timeout_ms":      2000,
		"flush_timeout_ms":    20000,
	}
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func newWrapper(t testing.TB, cfg string, notify bool) *Wrapper {
	t.Helper()
	w, err := NewWrapper(cfg, 10, notify)
	if err != nil {
		t.Fatalf("NewWrapper: %v", err)
	}
	t.Cleanup(func() { _, _ = w.Close(20000, -1) })
	return w
}

var testSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "payload", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

// makeBatch builds rows id = first .. first+n-1.
func makeBatch(first, n int) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, testSchema)
	defer b.Release()
	for i := range n {
		b.Field(0).(*array.Int64Builder).Append(int64(first + i))
		b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("row-%d", first+i))
	}
	return b.NewRecordBatch()
}

// u64Batch has a uint64 column: values at or above 2^63 cannot be encoded.
func u64Batch(vals ...uint64) arrow.RecordBatch {
	sc := arrow.NewSchema([]arrow.Field{{Name: "u", Type: arrow.PrimitiveTypes.Uint64}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	b.Field(0).(*array.Uint64Builder).AppendValues(vals, nil)
	return b.NewRecordBatch()
}

// batches makes count batches of n rows each, ids consecutive from 0.
func batches(count, n int) []arrow.RecordBatch {
	out := make([]arrow.RecordBatch, count)
	for i := range out {
		out[i] = makeBatch(i*n, n)
	}
	return out
}

// cStream is an ArrowArrayStream in Go memory, as a producer exports it.
type cStream struct{ s cdata.CArrowArrayStream }

// exportStream exports recs as a C stream and returns it and its address.
func exportStream(t testing.TB, sc *arrow.Schema, recs ...arrow.RecordBatch) (*cStream, int64) {
	t.Helper()
	rdr, err := array.NewRecordReader(sc, recs)
	if err != nil {
		t.Fatalf("NewRecordReader: %v", err)
	}
	defer rdr.Release()
	return exportReader(rdr)
}

func exportReader(rdr array.RecordReader) (*cStream, int64) {
	cs := &cStream{}
	cdata.ExportRecordReader(rdr, &cs.s)
	return cs, int64(uintptr(unsafe.Pointer(&cs.s)))
}

// ipcBytes writes recs in the Arrow IPC stream (or file) format.
func ipcBytes(t testing.TB, file bool, sc *arrow.Schema, recs ...arrow.RecordBatch) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w interface {
		Write(arrow.RecordBatch) error
		Close() error
	}
	if file {
		fw, err := ipc.NewFileWriter(&buf, ipc.WithSchema(sc))
		if err != nil {
			t.Fatal(err)
		}
		w = fw
	} else {
		w = ipc.NewWriter(&buf, ipc.WithSchema(sc))
	}
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// waitResult waits for an operation and decodes its result.
func waitResult(t testing.TB, w *Wrapper, id int64) resultView {
	t.Helper()
	done, err := w.Wait(id, 60_000)
	if err != nil || !done {
		t.Fatalf("Wait(%d) = %v, %v", id, done, err)
	}
	out, err := w.Result(id)
	if err != nil {
		t.Fatalf("Result(%d): %v", id, err)
	}
	var r resultView
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("result JSON %s: %v", out, err)
	}
	return r
}

// resultView decodes resultJSON (whose failed runs are arrays).
type resultView struct {
	Op              int64       `json:"op"`
	Success         bool        `json:"success"`
	TotalRows       int         `json:"total_rows"`
	SuccessfulCount int         `json:"successful_count"`
	FailedCount     int         `json:"failed_count"`
	Attempts        int         `json:"attempts"`
	BatchSizeBytes  int         `json:"batch_size_bytes"`
	Batches         int         `json:"batches"`
	Failed          [][4]int    `json:"failed"`
	Errors          []errorInfo `json:"errors"`
	Error           *errorInfo  `json:"error"`
	Cancelled       bool        `json:"cancelled"`
	InputError      *errorInfo  `json:"input_error"`
}

// errorOf decodes a facade error, failing the test for any other error.
func errorOf(t testing.TB, err error) errorInfo {
	t.Helper()
	if err == nil {
		t.Fatal("expected an error, got nil")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, ErrorPrefix) {
		t.Fatalf("error %q lacks the prefix %q", msg, ErrorPrefix)
	}
	var info errorInfo
	if err := json.Unmarshal([]byte(msg[len(ErrorPrefix):]), &info); err != nil {
		t.Fatalf("error JSON %q: %v", msg, err)
	}
	return info
}

// blockingReader yields one batch, then blocks in Next until release is
// closed, then ends.
type blockingReader struct {
	refs    int64
	mu      sync.Mutex
	sent    bool
	cur     arrow.RecordBatch
	release chan struct{}
	started chan struct{}
}

func newBlockingReader() *blockingReader {
	return &blockingReader{refs: 1, release: make(chan struct{}), started: make(chan struct{})}
}

func (b *blockingReader) Retain() { b.mu.Lock(); b.refs++; b.mu.Unlock() }
func (b *blockingReader) Release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refs--
	if b.refs == 0 && b.cur != nil {
		b.cur.Release()
		b.cur = nil
	}
}
func (b *blockingReader) Schema() *arrow.Schema { return testSchema }
func (b *blockingReader) Next() bool {
	b.mu.Lock()
	if b.cur != nil {
		b.cur.Release()
		b.cur = nil
	}
	first := !b.sent
	b.sent = true
	b.mu.Unlock()
	if first {
		b.cur = makeBatch(0, 100)
		return true
	}
	close(b.started)
	<-b.release
	return false
}
func (b *blockingReader) RecordBatch() arrow.RecordBatch { return b.cur }
func (b *blockingReader) Record() arrow.RecordBatch      { return b.cur }
func (b *blockingReader) Err() error                     { return nil }

// checkNoLeaks fails the test if facade goroutines outlive it.
func checkNoLeaks(t testing.TB) {
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			var left []string
			for g := range strings.SplitSeq(string(buf), "\n\n") {
				if (strings.Contains(g, "bindings.(*Wrapper).") || strings.Contains(g, "zbwrap.(*ReaderSend).")) &&
					!strings.Contains(g, "_test.go") {
					left = append(left, g)
				}
			}
			if len(left) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%d goroutines leaked:\n%s", len(left), strings.Join(left, "\n\n"))
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

package bindings

/*
#include <stdint.h>

// The ArrowArrayStream of the Arrow C stream interface, with opaque
// callbacks: the facade only looks at release.
struct zbArrowArrayStream {
	void* get_schema;
	void* get_next;
	void* get_last_error;
	void* release;
	void* private_data;
};

static int zb_stream_released(uintptr_t addr) {
	return ((struct zbArrowArrayStream*)addr)->release == NULL;
}

static void* zb_stream_ptr(uintptr_t addr) { return (void*)addr; }
*/
import "C"

import (
	"bytes"
	"errors"
	"io"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/cdata"
	"github.com/apache/arrow-go/v18/arrow/ipc"
)

// source is an operation's input. The engine reads it (and recovers a
// panic of its Next as an input error); the operation releases it once the
// send has ended.
type source = array.RecordReader

// importStream takes over the ArrowArrayStream at addr (moving it out: the
// caller's struct is left released) and reads its schema. A zero address
// or an already released stream is refused before anything is touched.
func importStream(addr int64) (source, error) {
	if addr == 0 {
		return nil, newError(kindConversion, "import stream", "the Arrow C stream address is 0")
	}
	if C.zb_stream_released(C.uintptr_t(addr)) != 0 {
		return nil, newError(kindConversion, "import stream",
			"the Arrow C stream was already released or consumed (its release callback is NULL)")
	}
	ptr := (*cdata.CArrowArrayStream)(C.zb_stream_ptr(C.uintptr_t(addr)))
	rdr, err := cdata.ImportCRecordReader(ptr, nil)
	if err != nil {
		return nil, newError(kindConversion, "import stream", "cannot read the Arrow C stream's schema: %v", err)
	}
	return rdr.(array.RecordReader), nil
}

// ipcMagic starts (and ends) the Arrow IPC file format.
var ipcMagic = []byte("ARROW1")

// fileSource reads the Arrow IPC file format in order, as an
// array.RecordReader. A batch stays valid until the next Next.
type fileSource struct {
	r    *ipc.FileReader
	cur  arrow.RecordBatch
	err  error
	refs atomic.Int64 // the file reader closes when it drops to 0
}

func (f *fileSource) Retain() { f.refs.Add(1) }
func (f *fileSource) Release() {
	if f.refs.Add(-1) == 0 {
		_ = f.r.Close()
	}
}
func (f *fileSource) Schema() *arrow.Schema          { return f.r.Schema() }
func (f *fileSource) RecordBatch() arrow.RecordBatch { return f.cur }
func (f *fileSource) Record() arrow.RecordBatch      { return f.cur }
func (f *fileSource) Err() error                     { return f.err }

func (f *fileSource) Next() bool {
	f.cur = nil
	if f.err != nil {
		return false
	}
	rec, err := f.r.Read()
	if err != nil {
		if !errors.Is(err, io.EOF) {
			f.err = err
		}
		return false
	}
	f.cur = rec
	return true
}

// openIPC reads Arrow IPC bytes, stream or file format.
func openIPC(data []byte) (src source, err error) {
	defer func() {
		// A reader can panic on malformed flatbuffers: that is bad input.
		if r := recover(); r != nil {
			src, err = nil, newError(kindConversion, "read IPC", "malformed Arrow IPC data: %v", r)
		}
	}()
	if len(data) == 0 {
		return nil, newError(kindConversion, "read IPC", "no Arrow IPC data (0 bytes)")
	}
	if bytes.HasPrefix(data, ipcMagic) {
		fr, err := ipc.NewFileReader(bytes.NewReader(data))
		if err != nil {
			return nil, newError(kindConversion, "read IPC", "invalid Arrow IPC file: %v", err)
		}
		fs := &fileSource{r: fr}
		fs.refs.Store(1)
		return fs, nil
	}
	r, err := ipc.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, newError(kindConversion, "read IPC", "invalid Arrow IPC stream: %v", err)
	}
	return r, nil
}

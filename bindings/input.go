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

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/cdata"
	"github.com/apache/arrow-go/v18/arrow/ipc"
)

// source yields record batches. A batch stays valid until the next Read
// unless retained; Read returns io.EOF at the end.
type source interface {
	Read() (arrow.RecordBatch, error)
	Release()
}

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
	return rdr.(source), nil
}

// ipcMagic starts (and ends) the Arrow IPC file format.
var ipcMagic = []byte("ARROW1")

// fileSource reads the Arrow IPC file format in order.
type fileSource struct{ r *ipc.FileReader }

func (f fileSource) Read() (arrow.RecordBatch, error) { return f.r.Read() }
func (f fileSource) Release()                         { _ = f.r.Close() }

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
		return fileSource{fr}, nil
	}
	r, err := ipc.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, newError(kindConversion, "read IPC", "invalid Arrow IPC stream: %v", err)
	}
	return r, nil
}

// readBatch reads the next batch, turning a panic of the reader into an
// error. It returns (nil, nil) at the end.
func readBatch(src source) (rec arrow.RecordBatch, err error) {
	defer func() {
		if r := recover(); r != nil {
			rec, err = nil, newError(kindConversion, "read input", "malformed Arrow data: %v", r)
		}
	}()
	rec, err = src.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil
	}
	if err != nil {
		return nil, newError(kindConversion, "read input", "reading the Arrow input failed: %v", err)
	}
	return rec, nil
}

package debugfiles

import (
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
)

// eosLen is the size of the Arrow IPC end-of-stream marker.
const eosLen = 8

// arrowOutput writes the input batches of one table as an Arrow IPC stream.
type arrowOutput struct {
	mu sync.Mutex
	sink
	ipcw   *ipc.Writer // writes into sink.pending; nil before a file's first batch
	schema *arrow.Schema
}

func newArrowOutput(w *Writer) *arrowOutput {
	a := &arrowOutput{}
	a.sink = newSink(w, a, "arrow", extArrow)
	return a
}

// write appends rec to the stream. The batch is encoded into memory first,
// so the file receives it whole or not at all, and a batch that would not
// fit in a non-empty file starts the next one.
func (a *arrowOutput) write(rec arrow.RecordBatch) {
	a.mu.Lock()
	defer a.mu.Unlock()
	defer a.recoverInto()
	if !a.usable() {
		return
	}
	if a.ipcw != nil && !rec.Schema().Equal(a.schema) {
		// An IPC stream has one schema.
		if a.rotate(); a.broken {
			a.drop()
			return
		}
	}
	for attempt := 0; ; attempt++ {
		if a.f == nil {
			a.ipcw, a.schema = nil, nil // a new file starts a new stream
		}
		if !a.open() {
			a.drop()
			return
		}
		if a.ipcw == nil {
			a.schema = rec.Schema()
			a.ipcw = ipc.NewWriter(&a.pending, ipc.WithSchema(a.schema))
		}
		mark := a.pending.Len()
		if err := a.ipcw.Write(rec); err != nil {
			a.pending.Truncate(mark)
			a.drop()
			// The IPC writer is unusable after a failure: end the file
			// after the batches before this one.
			a.w.report("encode", a.active, err)
			a.rotate()
			return
		}
		n := a.pending.Len() - mark
		if attempt == 0 && a.batches > 0 && a.size+int64(n)+eosLen > a.w.maxSize {
			a.pending.Truncate(mark)
			if a.rotate(); a.broken {
				a.drop()
				return
			}
			continue
		}
		a.accept(n, eosLen)
		return
	}
}

// end closes the IPC writer, which appends the end-of-stream marker.
func (a *arrowOutput) end() {
	if a.ipcw == nil {
		return
	}
	_ = a.ipcw.Close() // writes into memory only
	a.ipcw, a.schema = nil, nil
}

// trailer is the end-of-stream marker: a continuation token and a zero
// length.
func (a *arrowOutput) trailer() []byte { return []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0} }

func (a *arrowOutput) rotated(string) {}

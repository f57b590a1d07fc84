package zbwrap

import (
	"context"
	"fmt"
	"iter"
	"sort"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// ReaderResult is the outcome of a SendReader or StartReader send. Rows are
// numbered 0..TotalRows-1 in the order the reader returned them. Every row
// read is either acknowledged or in exactly one failed run:
// TotalRows == SuccessfulCount + FailedCount.
type ReaderResult struct {
	// Success is true when the reader was read to its end and every row
	// was acknowledged (or, with the writer disabled, converted).
	Success bool
	// Error is nil on success, else an *Error: with failed rows, a summary
	// of the kind of the first failed row, wrapping that row's error; else
	// the InputError; else, for a send cancelled before the end of the
	// reader, a Retryable KindTransmission error wrapping the context's
	// cause.
	Error error
	// TotalRows is the number of rows read from the reader.
	TotalRows       int
	SuccessfulCount int
	FailedCount     int
	// Failed lists the failed rows as runs, ascending by Start and not
	// overlapping.
	Failed []FailedRun
	// Errors are the distinct errors of Failed, at most MaxDistinctErrors
	// and one shared error per kind beyond.
	Errors []*Error
	// Attempts is the most calls any chunk's requests were written on.
	Attempts int
	// BatchSizeBytes is the size of the encoded records of all chunks.
	BatchSizeBytes int
	// Batches is the number of chunks converted and resolved.
	Batches int
	// Latency runs from StartReader to the result.
	Latency time.Duration
	// Cancelled is true when the send was cancelled (Cancel, or the
	// context ending) before it ended.
	Cancelled bool
	// InputError is set when reading the reader failed (its Err, or a
	// panic in Next): an *Error of KindConversion wrapping the reader's
	// error. The rows read before are reported as usual.
	InputError error
}

// FailedRun is a run of consecutive failed rows sharing an error.
type FailedRun struct {
	// Start is the first row's number, Count the number of rows.
	Start, Count int
	// Error says why; runs failed together share one *Error.
	Error *Error
	// MayHaveLanded: as for FailedRow, the table may hold the rows.
	MayHaveLanded bool
}

// IsPartialSuccess reports whether some rows succeeded and some failed.
func (r *ReaderResult) IsPartialSuccess() bool {
	return r.SuccessfulCount > 0 && r.FailedCount > 0
}

// FailedIndices yields the numbers of the failed rows, ascending.
func (r *ReaderResult) FailedIndices() iter.Seq[int] {
	return func(yield func(int) bool) {
		for _, f := range r.Failed {
			for i := f.Start; i < f.Start+f.Count; i++ {
				if !yield(i) {
					return
				}
			}
		}
	}
}

// ExtractFailedRows returns the failed rows of rec as a new record batch,
// to retry or inspect them, where rec holds rows first..first+len-1 of
// what was sent (for a reader over kept batches: first is the number of
// rows of the batches before rec). Release it.
func (r *ReaderResult) ExtractFailedRows(rec arrow.RecordBatch, first int) (arrow.RecordBatch, error) {
	if rec == nil || first < 0 || first+int(rec.NumRows()) > r.TotalRows {
		n := -1
		if rec != nil {
			n = int(rec.NumRows())
		}
		return nil, &Error{Kind: KindConfiguration, Op: "extract rows",
			Msg: fmt.Sprintf("rows %d..%d are not all in the result's %d rows", first, first+n-1, r.TotalRows)}
	}
	end := first + int(rec.NumRows())
	b := array.NewInt64Builder(memory.DefaultAllocator)
	defer b.Release()
	// The first run that ends after first.
	k := sort.Search(len(r.Failed), func(i int) bool { return r.Failed[i].Start+r.Failed[i].Count > first })
	for _, f := range r.Failed[k:] {
		if f.Start >= end {
			break
		}
		for i := max(f.Start, first); i < min(f.Start+f.Count, end); i++ {
			b.Append(int64(i - first))
		}
	}
	idx := b.NewArray()
	defer idx.Release()
	vals, ids := compute.NewDatum(rec), compute.NewDatum(idx)
	defer vals.Release()
	defer ids.Release()
	out, err := compute.Take(context.Background(), *compute.DefaultTakeOptions(), vals, ids)
	if err != nil {
		return nil, &Error{Kind: KindConversion, Op: "extract rows", Err: err}
	}
	return out.(*compute.RecordDatum).Value, nil
}

func (r *ReaderResult) String() string {
	return fmt.Sprintf("ReaderResult{success=%t rows=%d ok=%d failed=%d runs=%d batches=%d attempts=%d bytes=%d cancelled=%t input_error=%v latency=%s}",
		r.Success, r.TotalRows, r.SuccessfulCount, r.FailedCount, len(r.Failed), r.Batches, r.Attempts,
		r.BatchSizeBytes, r.Cancelled, r.InputError, r.Latency)
}

package zbwrap

import (
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TransmissionResult is the outcome of one batch. Every row of the batch is
// in exactly one of SuccessfulRows and FailedRows:
// TotalRows == SuccessfulCount + FailedCount.
type TransmissionResult struct {
	// Success is true when every row was acknowledged (or, with the writer
	// disabled, converted).
	Success bool
	// Error summarizes the failure (nil on success): an *Error of the kind
	// of the first failed row, whose Result is this result.
	Error error
	// Attempts is how many calls the batch's requests were written on at
	// most (1 without recovery; 0 if nothing was sent).
	Attempts int
	// Latency runs from the call to the batch's resolution.
	Latency time.Duration
	// BatchSizeBytes is the size of the encoded records.
	BatchSizeBytes int
	TotalRows      int
	// SuccessfulCount and SuccessfulRows: rows durably acknowledged, in
	// ascending index order.
	SuccessfulCount int
	SuccessfulRows  []int
	// FailedCount and FailedRows: rows that failed, ascending by index.
	FailedCount int
	FailedRows  []FailedRow
	// Offset is the batch's offset for SendBatchAsync, -1 for SendBatch.
	Offset int64
}

// FailedRow is one row that failed.
type FailedRow struct {
	// Index is the row's index in the batch.
	Index int
	// Error says why; rows failed together share one *Error.
	Error *Error
	// MayHaveLanded is true when the row's request reached the network (it
	// was written on a call that then failed before acknowledging it, or it
	// was still queued when the caller stopped waiting): the table may hold
	// it. When false the row certainly did not land: it was never written,
	// or the server rejected its request.
	MayHaveLanded bool
}

// IsPartialSuccess reports whether some rows succeeded and some failed.
func (r *TransmissionResult) IsPartialSuccess() bool {
	return r.SuccessfulCount > 0 && r.FailedCount > 0
}

// FailedIndices returns the indexes of the failed rows, ascending.
func (r *TransmissionResult) FailedIndices() []int {
	out := make([]int, len(r.FailedRows))
	for i, f := range r.FailedRows {
		out[i] = f.Index
	}
	return out
}

// SuccessfulIndices returns the indexes of the acknowledged rows, ascending.
func (r *TransmissionResult) SuccessfulIndices() []int {
	return append([]int(nil), r.SuccessfulRows...)
}

// ExtractFailedBatch returns the failed rows of rec (the batch this result
// is for) as a new record batch, to retry or inspect them. Release it.
func (r *TransmissionResult) ExtractFailedBatch(rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	return r.take(rec, r.FailedIndices())
}

// ExtractSuccessfulBatch returns the acknowledged rows of rec as a new
// record batch. Release it.
func (r *TransmissionResult) ExtractSuccessfulBatch(rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	return r.take(rec, r.SuccessfulRows)
}

func (r *TransmissionResult) take(rec arrow.RecordBatch, rows []int) (arrow.RecordBatch, error) {
	if rec == nil || int(rec.NumRows()) != r.TotalRows {
		n := -1
		if rec != nil {
			n = int(rec.NumRows())
		}
		return nil, &Error{Kind: KindConfiguration, Op: "extract rows",
			Msg: fmt.Sprintf("the record batch has %d rows, the result is for %d", n, r.TotalRows)}
	}
	// The rows are ascending: each run of consecutive rows is a slice, and
	// the slices of a column are concatenated into new buffers. (Not
	// compute.Take: package compute links Parquet and Thrift into every
	// program that imports the engine.)
	var runs []arrow.RecordBatch
	defer func() {
		for _, s := range runs {
			s.Release()
		}
	}()
	for i := 0; i < len(rows); {
		j := i + 1
		for j < len(rows) && rows[j] == rows[j-1]+1 {
			j++
		}
		runs = append(runs, rec.NewSlice(int64(rows[i]), int64(rows[j-1]+1)))
		i = j
	}
	if len(runs) == 0 {
		runs = append(runs, rec.NewSlice(0, 0))
	}
	cols := make([]arrow.Array, 0, rec.NumCols())
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	parts := make([]arrow.Array, len(runs))
	for c := range int(rec.NumCols()) {
		for k, s := range runs {
			parts[k] = s.Column(c)
		}
		col, err := array.Concatenate(parts, memory.DefaultAllocator)
		if err != nil {
			return nil, &Error{Kind: KindConversion, Op: "extract rows", Err: err}
		}
		cols = append(cols, col)
	}
	return array.NewRecordBatch(rec.Schema(), cols, int64(len(rows))), nil
}

// ErrorsByKind groups the failed rows by error kind.
func (r *TransmissionResult) ErrorsByKind() map[Kind][]FailedRow {
	out := map[Kind][]FailedRow{}
	for _, f := range r.FailedRows {
		out[f.Error.Kind] = append(out[f.Error.Kind], f)
	}
	return out
}

// ErrorStats counts the failed rows of a result.
type ErrorStats struct {
	Failed        int
	ByKind        map[Kind]int
	Retryable     int // rows whose error is Retryable
	MayHaveLanded int // rows the table may hold anyway
	// Distinct is the number of distinct errors (rows failed together share
	// one).
	Distinct int
}

// ErrorStats counts the failed rows by kind, retryability and whether they
// may have landed.
func (r *TransmissionResult) ErrorStats() ErrorStats {
	s := ErrorStats{Failed: len(r.FailedRows), ByKind: map[Kind]int{}}
	seen := map[*Error]bool{}
	for _, f := range r.FailedRows {
		s.ByKind[f.Error.Kind]++
		if f.Error.Retryable() {
			s.Retryable++
		}
		if f.MayHaveLanded {
			s.MayHaveLanded++
		}
		if !seen[f.Error] {
			seen[f.Error] = true
			s.Distinct++
		}
	}
	return s
}

func (r *TransmissionResult) String() string {
	return fmt.Sprintf("TransmissionResult{success=%t rows=%d ok=%d failed=%d attempts=%d bytes=%d latency=%s}",
		r.Success, r.TotalRows, r.SuccessfulCount, r.FailedCount, r.Attempts, r.BatchSizeBytes, r.Latency)
}

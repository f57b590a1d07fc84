package zbwrap

import "github.com/pyzerobus/pyzerobus/zbwrap/internal/stream"

// Stats counts what a Wrapper did.
type Stats struct {
	Batches    int64 `json:"batches"`    // batches resolved
	RowsAcked  int64 `json:"rows_acked"` // rows acknowledged (or converted, writer disabled)
	RowsFailed int64 `json:"rows_failed"`
	Streams    int   `json:"streams"` // streams open now

	CallsOpened      int64 `json:"calls_opened"` // stream calls opened (reconnections included)
	OpenFailures     int64 `json:"open_failures"`
	CallFailures     int64 `json:"call_failures"`
	CloseSignals     int64 `json:"close_signals"`
	RequestsWritten  int64 `json:"requests_written"` // request writes, replays included
	RequestsAcked    int64 `json:"requests_acked"`
	ReplayedRequests int64 `json:"replayed_requests"` // writes of a request already written on a failed call
	ReplayedRecords  int64 `json:"replayed_records"`
	// RecordsMaybeDuplicated counts acknowledged records whose request was
	// written on more than one call: the table may hold them twice. This is
	// the only way duplicates arise.
	RecordsMaybeDuplicated int64 `json:"records_maybe_duplicated"`
}

// Stats returns a snapshot.
func (w *Wrapper) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := stats(w.retired)
	for _, s := range w.streams {
		add(&st, s.Stats())
	}
	st.Batches, st.RowsAcked, st.RowsFailed = w.counts.batches, w.counts.rowsOK, w.counts.rowsFailed
	st.Streams = w.openStreamsLocked()
	return st
}

// openStreams is how many streams w has open.
func (w *Wrapper) openStreams() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.openStreamsLocked()
}

func (w *Wrapper) openStreamsLocked() int {
	n := 0
	for _, s := range w.streams {
		if m, ok := s.batchStream.(*multiStream); ok {
			n += m.count()
		} else {
			n++
		}
	}
	return n
}

func stats(s stream.Stats) Stats {
	var st Stats
	add(&st, s)
	return st
}

func add(st *Stats, s stream.Stats) {
	st.CallsOpened += s.Opens
	st.OpenFailures += s.OpenFailures
	st.CallFailures += s.CallFailures
	st.CloseSignals += s.CloseSignals
	st.RequestsWritten += s.RequestsWritten
	st.RequestsAcked += s.RequestsAcked
	st.ReplayedRequests += s.ReplayedRequests
	st.ReplayedRecords += s.ReplayedRecords
	st.RecordsMaybeDuplicated += s.RecordsMaybeDup
}

// retire folds a finished stream's counters in; w.mu held.
func (w *Wrapper) retire(s stream.Stats) { addStreamStats(&w.retired, s) }

// addStreamStats adds the counters of s to r.
func addStreamStats(r *stream.Stats, s stream.Stats) {
	r.Opens += s.Opens
	r.OpenFailures += s.OpenFailures
	r.CallFailures += s.CallFailures
	r.CloseSignals += s.CloseSignals
	r.RequestsWritten += s.RequestsWritten
	r.RequestsAcked += s.RequestsAcked
	r.RecordsAcked += s.RecordsAcked
	r.ReplayedRequests += s.ReplayedRequests
	r.ReplayedRecords += s.ReplayedRecords
	r.RecordsMaybeDup += s.RecordsMaybeDup
}

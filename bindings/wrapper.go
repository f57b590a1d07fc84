package bindings

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/pyzerobus/pyzerobus/zbwrap"
)

// Wrapper is a zbwrap.Wrapper with its operations. It is safe for
// concurrent use from any number of Python threads.
type Wrapper struct {
	zw    *zbwrap.Wrapper
	ext   extras
	logs  *logHandler
	slots chan struct{} // one token per chunk being converted and sent

	mu       sync.Mutex
	closed   bool
	nextID   int64
	ops      map[int64]*operation
	running  sync.WaitGroup
	notify   bool    // keep a completion log (Completions)
	doneLog  []int64 // ids completed after sequence number doneBase
	doneBase int64
	changed  chan struct{} // closed and replaced at each completion
}

// NewWrapper validates a configuration (a JSON object as ParseConfig
// returns; keys left out take their defaults) and creates a Wrapper; it
// opens no connection. pyLogLevel is the Python logging level from which
// engine log records are kept for Logs. With notify the Wrapper keeps the
// completion log that Completions reads (for an event loop).
func NewWrapper(configJSON string, pyLogLevel int, notify bool) (w *Wrapper, err error) {
	defer recoverError(&err)
	s, err := parseSettings(configJSON, nil)
	if err != nil {
		return nil, err
	}
	roots, err := s.ext.rootCAs()
	if err != nil {
		return nil, configError([]problem{{Setting: "tls_ca_file", Message: err.Error()}}, nil)
	}
	logs := newLogHandler(parseLevel(pyLogLevel))
	opts := []zbwrap.Option{zbwrap.WithLogger(sloggerOf(logs))}
	if roots != nil {
		opts = append(opts, zbwrap.WithRootCAs(roots))
	}
	zw, err := zbwrap.New(context.Background(), s.cfg, opts...)
	if err != nil {
		return nil, configError(nil, err)
	}
	return &Wrapper{
		zw:      zw,
		ext:     s.ext,
		logs:    logs,
		slots:   make(chan struct{}, s.ext.MaxConcurrentBatches),
		ops:     map[int64]*operation{},
		notify:  notify,
		changed: make(chan struct{}),
	}, nil
}

// SendStream starts sending the Arrow C stream (ArrowArrayStream) at addr
// and returns the operation's id. The stream is moved out of the caller's
// struct before SendStream returns, so the caller may free it at once; its
// batches are read and sent in the background. addr 0, or a stream whose
// release callback is NULL, is refused.
func (w *Wrapper) SendStream(addr int64) (id int64, err error) {
	defer recoverError(&err)
	if err := w.checkOpen(); err != nil {
		return -1, err
	}
	src, err := importStream(addr)
	if err != nil {
		return -1, err
	}
	return w.start(src)
}

// SendIPC starts sending Arrow IPC data (stream or file format) and returns
// the operation's id. Malformed data is refused at once when its schema
// cannot be read, or reported in the operation's result when a later
// message is malformed.
func (w *Wrapper) SendIPC(data []byte) (id int64, err error) {
	defer recoverError(&err)
	if err := w.checkOpen(); err != nil {
		return -1, err
	}
	src, err := openIPC(data)
	if err != nil {
		return -1, err
	}
	return w.start(src)
}

func (w *Wrapper) checkOpen() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return newError(kindTransmission, "send", "the wrapper is closed")
	}
	return nil
}

// start registers an operation reading src and runs it.
func (w *Wrapper) start(src source) (int64, error) {
	w.mu.Lock()
	if w.closed { // closed since checkOpen
		w.mu.Unlock()
		src.Release()
		return -1, newError(kindTransmission, "send", "the wrapper is closed")
	}
	o := newOperation(w.nextID)
	w.nextID++
	w.ops[o.id] = o
	w.running.Add(1)
	w.mu.Unlock()
	go w.run(o, src)
	return o.id, nil
}

func (w *Wrapper) op(id int64) (*operation, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	o := w.ops[id]
	if o == nil {
		return nil, newError(kindTransmission, "operation", "no operation %d (unknown, or its result was already taken)", id)
	}
	return o, nil
}

// Wait waits at most timeoutMs milliseconds (0: just look) for an operation
// to finish and reports whether it has.
func (w *Wrapper) Wait(id int64, timeoutMs int64) (done bool, err error) {
	defer recoverError(&err)
	o, err := w.op(id)
	if err != nil {
		return false, err
	}
	if timeoutMs <= 0 {
		return o.finished(), nil
	}
	t := time.NewTimer(time.Duration(timeoutMs) * time.Millisecond)
	defer t.Stop()
	select {
	case <-o.done:
		return true, nil
	case <-t.C:
		return false, nil
	}
}

// Progress returns how many rows of an operation are resolved
// (acknowledged or failed) so far.
func (w *Wrapper) Progress(id int64) (rows int64, err error) {
	defer recoverError(&err)
	o, err := w.op(id)
	if err != nil {
		return 0, err
	}
	return o.resolved.Load(), nil
}

// Cancel ends an operation early: no more input is read, rows not yet
// written to the network fail (certainly not stored), rows already written
// fail as possibly stored. It reports whether the operation was still
// running. The Wrapper stays usable.
func (w *Wrapper) Cancel(id int64) (running bool, err error) {
	defer recoverError(&err)
	o, err := w.op(id)
	if err != nil {
		return false, err
	}
	o.cancel()
	return !o.finished(), nil
}

// Result returns the result of a finished operation as JSON and forgets
// the operation. Failed rows are in the result, not an error: the error is
// for an unknown or unfinished operation.
func (w *Wrapper) Result(id int64) (out string, err error) {
	defer recoverError(&err)
	o, err := w.op(id)
	if err != nil {
		return "", err
	}
	if !o.finished() {
		return "", newError(kindTransmission, "result", "operation %d has not finished", id)
	}
	w.mu.Lock()
	delete(w.ops, id)
	w.mu.Unlock()
	b, err := json.Marshal(o.result)
	if err != nil {
		return "", newError(kindInternal, "result", "encode: %v", err)
	}
	return string(b), nil
}

// completions is the JSON answer of Completions.
type completions struct {
	Seq int64   `json:"seq"`
	Ops []int64 `json:"ops"`
}

// Completions waits at most timeoutMs milliseconds for operations to finish
// after the completion sequence number after (start with 0) and returns
// {"seq": n, "ops": [ids]}: the operations that finished after `after`, up
// to sequence number n (pass n next time). Entries up to after are
// forgotten. It needs a Wrapper made with notify.
func (w *Wrapper) Completions(after int64, timeoutMs int64) (out string, err error) {
	defer recoverError(&err)
	if !w.notify {
		return "", newError(kindTransmission, "completions", "the wrapper keeps no completion log (created without notify)")
	}
	deadline := time.Now().Add(time.Duration(timeoutMs) * time.Millisecond)
	for {
		w.mu.Lock()
		if after > w.doneBase { // forget what the caller has seen
			n := min(after-w.doneBase, int64(len(w.doneLog)))
			w.doneLog = append(w.doneLog[:0], w.doneLog[n:]...)
			w.doneBase += n
		}
		seq := w.doneBase + int64(len(w.doneLog))
		if seq > after || timeoutMs <= 0 || !time.Now().Before(deadline) {
			ids := []int64{}
			if seq > after {
				ids = append(ids, w.doneLog[max(after-w.doneBase, 0):]...)
			}
			w.mu.Unlock()
			b, _ := json.Marshal(completions{Seq: seq, Ops: ids}) // plain values
			return string(b), nil
		}
		changed := w.changed
		w.mu.Unlock()
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// Logs returns the engine's log records kept since the last call, as JSON
// lines ("" when none).
func (w *Wrapper) Logs() (out string, err error) {
	defer recoverError(&err)
	return w.logs.buf.drain(), nil
}

// Flush waits at most timeoutMs milliseconds until everything the engine
// has queued is resolved.
func (w *Wrapper) Flush(timeoutMs int64) (err error) {
	defer recoverError(&err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(timeoutMs)*time.Millisecond)
	defer cancel()
	return wrapError(w.zw.Flush(ctx))
}

// Close refuses new sends, waits at most timeoutMs milliseconds for the
// running operations (then cancels them), and closes the engine, which
// flushes and ends its streams. Results of finished operations can still
// be taken. Calling it again does nothing.
func (w *Wrapper) Close(timeoutMs int64) (err error) {
	defer recoverError(&err)
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	timeout := time.Duration(timeoutMs) * time.Millisecond
	idle := make(chan struct{})
	go func() { w.running.Wait(); close(idle) }()
	select {
	case <-idle:
	case <-time.After(timeout):
		w.mu.Lock()
		for _, o := range w.ops {
			o.cancel()
		}
		w.mu.Unlock()
		<-idle
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return wrapError(w.zw.Close(ctx))
}

// statsJSON is the JSON form of zbwrap.Stats.
type statsJSON struct {
	Batches                int64 `json:"batches"`
	RowsAcked              int64 `json:"rows_acked"`
	RowsFailed             int64 `json:"rows_failed"`
	Streams                int   `json:"streams"`
	CallsOpened            int64 `json:"calls_opened"`
	OpenFailures           int64 `json:"open_failures"`
	CallFailures           int64 `json:"call_failures"`
	CloseSignals           int64 `json:"close_signals"`
	RequestsWritten        int64 `json:"requests_written"`
	RequestsAcked          int64 `json:"requests_acked"`
	ReplayedRequests       int64 `json:"replayed_requests"`
	ReplayedRecords        int64 `json:"replayed_records"`
	RecordsMaybeDuplicated int64 `json:"records_maybe_duplicated"`
	OperationsRunning      int   `json:"operations_running"`
}

// Stats returns the engine's counters as JSON.
func (w *Wrapper) Stats() (out string, err error) {
	defer recoverError(&err)
	s := w.zw.Stats()
	w.mu.Lock()
	running := 0
	for _, o := range w.ops {
		if !o.finished() {
			running++
		}
	}
	w.mu.Unlock()
	b, _ := json.Marshal(statsJSON{ // plain values
		Batches: s.Batches, RowsAcked: s.RowsAcked, RowsFailed: s.RowsFailed, Streams: s.Streams,
		CallsOpened: s.CallsOpened, OpenFailures: s.OpenFailures, CallFailures: s.CallFailures,
		CloseSignals: s.CloseSignals, RequestsWritten: s.RequestsWritten, RequestsAcked: s.RequestsAcked,
		ReplayedRequests: s.ReplayedRequests, ReplayedRecords: s.ReplayedRecords,
		RecordsMaybeDuplicated: s.RecordsMaybeDuplicated, OperationsRunning: running,
	})
	return string(b), nil
}

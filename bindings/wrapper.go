package bindings

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/pyzerobus/pyzerobus/zbwrap"
	"github.com/pyzerobus/pyzerobus/zbwrap/telemetry/otelsetup"
)

// Wrapper is a zbwrap.Wrapper with its operations. It is safe for
// concurrent use from any number of Python threads.
type Wrapper struct {
	zw      *zbwrap.Wrapper
	chunk   [2]int // batch_rows, batch_bytes
	logs    *logHandler
	limiter *zbwrap.Limiter // max_concurrent_batches chunks of all operations
	headers *headerBox      // the Python provider's headers, or nil (OAuth)

	mu       sync.Mutex
	closed   bool
	closing  *closer // set by the first Close
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
	return makeWrapper(configJSON, pyLogLevel, notify, nil)
}

// NewWrapperWithHeaders is NewWrapper for a wrapper whose call headers come
// from a Python provider instead of OAuth (client_id, client_secret and
// unity_catalog_url are then not needed): a Python thread serves them
// through HeadersWanted and SetHeaders.
func NewWrapperWithHeaders(configJSON string, pyLogLevel int, notify bool) (w *Wrapper, err error) {
	defer recoverError(&err)
	return makeWrapper(configJSON, pyLogLevel, notify, newHeaderBox())
}

func makeWrapper(configJSON string, pyLogLevel int, notify bool, box *headerBox) (*Wrapper, error) {
	s, err := parseSettings(configJSON, zbwrap.ConfigJSON, nil)
	if err != nil {
		return nil, err
	}
	if probs := s.problems(); len(probs) > 0 {
		return nil, configError(probs, nil)
	}
	roots, err := s.rootCAs()
	if err != nil {
		return nil, configError([]problem{{Setting: "tls_ca_file", Message: err.Error()}}, nil)
	}
	logs := newLogHandler(parseLevel(pyLogLevel))
	// The observability_* settings and OTEL_* variables choose exporters.
	opts := []zbwrap.Option{zbwrap.WithLogger(sloggerOf(logs)), zbwrap.WithExporters(otelsetup.New)}
	if lookup := otelLookup(); lookup != nil {
		opts = append(opts, zbwrap.WithEnvLookup(lookup))
	}
	if roots != nil {
		opts = append(opts, zbwrap.WithRootCAs(roots))
	}
	if box != nil {
		opts = append(opts, zbwrap.WithHeadersProvider(box))
	}
	zw, err := zbwrap.New(context.Background(), s.Config, opts...)
	if err != nil {
		return nil, configError(nil, err)
	}
	return &Wrapper{
		zw:      zw,
		chunk:   [2]int{s.BatchRows, s.BatchBytes},
		logs:    logs,
		limiter: s.limiter(zw),
		ops:     map[int64]*operation{},
		notify:  notify,
		changed: make(chan struct{}),
		headers: box,
	}, nil
}

// SendStream starts sending the Arrow C stream (ArrowArrayStream) at addr
// and returns the operation's id. The stream is moved out of the caller's
// struct before SendStream returns, so the caller may free it at once; its
// batches are read and sent in the background. addr 0, or a stream whose
// release callback is NULL, is refused. descriptor, if not empty, is a
// serialized google.protobuf.DescriptorProto in base64 (standard
// encoding): the rows go as records of that message (zbwrap.WithDescriptor).
func (w *Wrapper) SendStream(addr int64, descriptor string) (id int64, err error) {
	defer recoverError(&err)
	if err := w.checkOpen(); err != nil {
		return -1, err
	}
	opts, err := descriptorOption(descriptor)
	if err != nil {
		return -1, err
	}
	src, err := importStream(addr)
	if err != nil {
		return -1, err
	}
	return w.start(src, opts...)
}

// descriptorOption decodes SendStream's and SendIPC's descriptor argument.
func descriptorOption(b64 string) ([]zbwrap.SendOption, error) {
	if b64 == "" {
		return nil, nil
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, newError(kindConfig, "descriptor", "the descriptor is not base64: %v", err)
	}
	desc := &descriptorpb.DescriptorProto{}
	if err := proto.Unmarshal(raw, desc); err != nil {
		return nil, newError(kindConfig, "descriptor", "not a serialized DescriptorProto: %v", err)
	}
	return []zbwrap.SendOption{zbwrap.WithDescriptor(desc)}, nil
}

// SendIPC starts sending Arrow IPC data (stream or file format) and returns
// the operation's id. Malformed data is refused at once when its schema
// cannot be read, or reported in the operation's result when a later
// message is malformed. descriptor is as for SendStream.
func (w *Wrapper) SendIPC(data []byte, descriptor string) (id int64, err error) {
	defer recoverError(&err)
	if err := w.checkOpen(); err != nil {
		return -1, err
	}
	opts, err := descriptorOption(descriptor)
	if err != nil {
		return -1, err
	}
	src, err := openIPC(data)
	if err != nil {
		return -1, err
	}
	return w.start(src, opts...)
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
func (w *Wrapper) start(src source, opts ...zbwrap.SendOption) (int64, error) {
	w.mu.Lock()
	if w.closed { // closed since checkOpen
		w.mu.Unlock()
		src.Release()
		return -1, newError(kindTransmission, "send", "the wrapper is closed")
	}
	send, err := w.zw.StartReader(context.Background(), src, append(w.readerOptions(), opts...)...)
	if err != nil { // settings were validated: cannot happen
		w.mu.Unlock()
		src.Release()
		return -1, wrapError(err)
	}
	o := &operation{id: w.nextID, send: send, done: make(chan struct{})}
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
	return o.send.Resolved(), nil
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
// has queued is resolved, and reports whether it is. Time running out is
// not an error: the caller waits in slices (and sees signals between them).
func (w *Wrapper) Flush(timeoutMs int64) (done bool, err error) {
	defer recoverError(&err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(timeoutMs)*time.Millisecond)
	defer cancel()
	err = w.zw.Flush(ctx)
	if err != nil && ctx.Err() != nil {
		return false, nil
	}
	return true, wrapError(err)
}

// closer is the one close of a Wrapper: it runs in its own goroutine,
// owned by the Wrapper, and ends by its deadline.
type closer struct {
	done chan struct{}
	err  error // set before done closes

	ctx    context.Context // cancelled at the deadline
	cancel context.CancelFunc

	mu       sync.Mutex
	deadline time.Time
	timer    *time.Timer
}

func newCloser(deadline time.Time) *closer {
	ctx, cancel := context.WithCancel(context.Background())
	c := &closer{done: make(chan struct{}), ctx: ctx, cancel: cancel, deadline: deadline}
	c.timer = time.AfterFunc(time.Until(deadline), cancel)
	return c
}

// bring moves the deadline to d if d is earlier.
func (c *closer) bring(d time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !d.Before(c.deadline) {
		return
	}
	c.deadline = d
	c.timer.Stop()
	c.timer = time.AfterFunc(time.Until(d), c.cancel)
}

// Close refuses new sends and closes the Wrapper within timeoutMs
// milliseconds, one deadline for every step: running operations are
// waited for until then and cancelled after, and the engine flushes and
// ends its streams. Close itself waits at most waitMs (negative: until the
// close ends) and reports whether the close has ended; it goes on in the
// background otherwise. A later call waits again and may bring the deadline
// closer, never further. The error is the close's, once done. Results of
// finished operations can still be taken.
func (w *Wrapper) Close(timeoutMs, waitMs int64) (done bool, err error) {
	defer recoverError(&err)
	deadline := time.Now().Add(time.Duration(max(timeoutMs, 0)) * time.Millisecond)
	w.mu.Lock()
	c := w.closing
	if c == nil {
		w.closed = true
		c = newCloser(deadline)
		w.closing = c
		go w.shutdown(c)
	} else {
		c.bring(deadline)
	}
	w.mu.Unlock()
	select {
	case <-c.done:
		return true, c.err
	default:
	}
	if waitMs < 0 {
		<-c.done
		return true, c.err
	}
	t := time.NewTimer(time.Duration(waitMs) * time.Millisecond)
	defer t.Stop()
	select {
	case <-c.done:
		return true, c.err
	case <-t.C:
		return false, nil
	}
}

// shutdown is the body of Close, in the closer's goroutine.
func (w *Wrapper) shutdown(c *closer) {
	defer close(c.done)
	defer c.cancel()
	defer func() {
		if r := recover(); r != nil {
			c.err = panicError(r)
		}
	}()
	idle := make(chan struct{})
	go func() { w.running.Wait(); close(idle) }()
	select {
	case <-idle:
	case <-c.ctx.Done():
		w.mu.Lock()
		for _, o := range w.ops {
			o.cancel()
		}
		w.mu.Unlock()
		<-idle
	}
	c.err = wrapError(w.zw.Close(c.ctx))
}

// statsJSON is the JSON form of the facade's counters: the engine's and
// the operations still running.
type statsJSON struct {
	zbwrap.Stats
	OperationsRunning int `json:"operations_running"`
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
	b, _ := json.Marshal(statsJSON{Stats: s, OperationsRunning: running}) // plain values
	return string(b), nil
}

package debugfiles

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// Defaults of the Config fields left zero.
const (
	DefaultFlushInterval = 5 * time.Second
	DefaultMaxFileSize   = 100 << 20
)

// ErrInvalidConfig is matched by the error New returns for a bad Config.
var ErrInvalidConfig = errors.New("debugfiles: invalid config")

// errPanic marks a failure that was a recovered panic.
var errPanic = errors.New("panic")

// Config says what to write and where.
type Config struct {
	// Dir is the output directory; files go under Dir/zerobus. Required.
	Dir string
	// Table is the table name the files are named after. Required.
	Table string
	// Arrow writes the input batches as Arrow IPC streams.
	Arrow bool
	// Protobuf writes the encoded records, length-delimited.
	Protobuf bool
	// FlushInterval is how often buffered bytes are written out even when no
	// batch arrives. Zero means DefaultFlushInterval.
	FlushInterval time.Duration
	// MaxFileSize is the size in bytes at which a file rotates. Zero means
	// DefaultMaxFileSize.
	MaxFileSize int64
	// MaxFilesRetained is how many rotated files of each type are kept, the
	// newest ones. Zero keeps them all.
	MaxFilesRetained int
	// Logger receives a record for each failure. Nil discards them.
	Logger *slog.Logger
	// OnError, if set, is called with each failure (an *Error), for example
	// to count it in telemetry. It runs on the goroutine that failed while
	// the Writer holds a lock: it must be quick and must not call the
	// Writer's methods other than Stats.
	OnError func(error)
}

// Stats counts what a Writer did since New.
type Stats struct {
	// FilesWritten is the number of data files opened plus descriptor files
	// written.
	FilesWritten int64
	// BytesWritten is the number of bytes written to data files.
	BytesWritten int64
	// Rotations is the number of data files given their rotated name.
	Rotations int64
	// WriteErrors is the number of failed file operations.
	WriteErrors int64
	// BatchesDropped is the number of batches, counted once per file type,
	// that did not reach a file: lost to a failure, or arriving while the
	// Writer waits for the next tick after one, or after Close.
	BatchesDropped int64
}

// Error is a failed file operation.
type Error struct {
	Op   string // mkdir, open, write, truncate, close, rotate, remove, retention, descriptor, encode
	Path string
	Err  error
}

func (e *Error) Error() string {
	return fmt.Sprintf("debugfiles: %s %s: %v", e.Op, e.Path, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Writer writes the debug files of one table. Its methods are safe for
// concurrent use, and a nil *Writer does nothing.
type Writer struct {
	root     string // Dir/zerobus
	base     string // the table's file name stem
	maxSize  int64
	maxFiles int
	flushAt  int
	logger   *slog.Logger
	onError  func(error)
	fs       fileSystem
	now      func() time.Time

	arrow *arrowOutput // nil when off
	proto *protoOutput // nil when off
	desc  *descFile

	files, bytes, rotations, writeErrors, dropped atomic.Int64

	closeOnce sync.Once
	closed    atomic.Bool
	stop      chan struct{}
	done      chan struct{}
	closeErr  error
}

// New returns a Writer for cfg, or nil and no error when both outputs are
// off. It creates no file: directories and files appear with the first
// batch. Only a bad Config is an error; a directory that cannot be written
// is reported like any other write failure, so a send never fails because
// of its debug files. The Writer runs a goroutine that flushes every
// FlushInterval until Close.
func New(cfg Config) (*Writer, error) {
	if !cfg.Arrow && !cfg.Protobuf {
		return nil, nil
	}
	var bad []error
	check := func(ok bool, setting, msg string) {
		if !ok {
			bad = append(bad, fmt.Errorf("%w: %s %s", ErrInvalidConfig, setting, msg))
		}
	}
	check(cfg.Dir != "", "Dir", "is required")
	check(cfg.Table != "", "Table", "is required")
	check(cfg.FlushInterval >= 0, "FlushInterval", "must not be negative")
	check(cfg.MaxFileSize >= 0, "MaxFileSize", "must not be negative")
	check(cfg.MaxFilesRetained >= 0, "MaxFilesRetained", "must not be negative")
	if err := errors.Join(bad...); err != nil {
		return nil, err
	}
	w := &Writer{
		root:     filepath.Join(cfg.Dir, "zerobus"),
		base:     fileBase(cfg.Table),
		maxSize:  cfg.MaxFileSize,
		maxFiles: cfg.MaxFilesRetained,
		flushAt:  flushAt,
		logger:   cfg.Logger,
		onError:  cfg.OnError,
		fs:       osFS{},
		now:      time.Now,
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if w.maxSize == 0 {
		w.maxSize = DefaultMaxFileSize
	}
	if w.logger == nil {
		w.logger = slog.New(slog.DiscardHandler)
	}
	interval := cfg.FlushInterval
	if interval == 0 {
		interval = DefaultFlushInterval
	}
	w.desc = newDescFile(w)
	if cfg.Arrow {
		w.arrow = newArrowOutput(w)
	}
	if cfg.Protobuf {
		// The descriptor file an earlier Writer left describes the active
		// protobuf file it left.
		stale, _ := w.fs.ReadFile(w.desc.path)
		w.proto = newProtoOutput(w, stale)
	}
	go w.loop(interval)
	return w, nil
}

// OnBatchEncoded writes one batch: rec to the Arrow file, records to the
// protobuf file, and descriptor (a serialized DescriptorProto) to the
// descriptor file if it changed. A nil rec writes no Arrow batch. It never fails and never panics: failures
// are logged, counted in Stats and passed to OnError. It keeps no reference
// to rec or records after it returns. Concurrent calls are serialized per
// file, so each batch is contiguous in each file.
func (w *Writer) OnBatchEncoded(rec arrow.RecordBatch, descriptor []byte, records [][]byte) {
	if w == nil {
		return
	}
	if w.arrow != nil && rec != nil {
		w.arrow.write(rec)
	}
	if w.proto != nil {
		w.proto.write(descriptor, records)
	} else if descriptor != nil && !w.closed.Load() {
		w.desc.update(descriptor, nil)
	}
}

// Flush writes out what has been buffered. A failure is also reported as
// OnBatchEncoded's are.
func (w *Writer) Flush() error {
	if w == nil {
		return nil
	}
	var errs []error
	if w.arrow != nil {
		w.arrow.mu.Lock()
		errs = append(errs, w.arrow.flush())
		w.arrow.mu.Unlock()
	}
	if w.proto != nil {
		w.proto.mu.Lock()
		errs = append(errs, w.proto.flush())
		w.proto.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Close stops the flush goroutine, ends the Arrow stream, writes out what is
// buffered and closes the files, which keep their active names. Batches
// after Close are dropped. Close is idempotent.
func (w *Writer) Close() error {
	if w == nil {
		return nil
	}
	w.closeOnce.Do(func() {
		w.closed.Store(true)
		close(w.stop)
		<-w.done
		var errs []error
		if w.arrow != nil {
			w.arrow.mu.Lock()
			errs = append(errs, w.arrow.close())
			w.arrow.mu.Unlock()
		}
		if w.proto != nil {
			w.proto.mu.Lock()
			errs = append(errs, w.proto.close())
			w.proto.mu.Unlock()
		}
		w.closeErr = errors.Join(errs...)
	})
	return w.closeErr
}

// Stats returns the counters.
func (w *Writer) Stats() Stats {
	if w == nil {
		return Stats{}
	}
	return Stats{
		FilesWritten:   w.files.Load(),
		BytesWritten:   w.bytes.Load(),
		Rotations:      w.rotations.Load(),
		WriteErrors:    w.writeErrors.Load(),
		BatchesDropped: w.dropped.Load(),
	}
}

func (w *Writer) loop(interval time.Duration) {
	defer close(w.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			w.tick()
		}
	}
}

// tick flushes every file and ends the pause after a failure.
func (w *Writer) tick() {
	if w.arrow != nil {
		w.arrow.mu.Lock()
		w.arrow.tick()
		w.arrow.mu.Unlock()
	}
	if w.proto != nil {
		w.proto.mu.Lock()
		w.proto.tick()
		w.proto.mu.Unlock()
	}
	w.desc.tick()
}

// report counts, logs and passes on a failure.
func (w *Writer) report(op, path string, err error) error {
	e := &Error{Op: op, Path: path, Err: err}
	w.writeErrors.Add(1)
	w.logger.Warn("debug file operation failed", "op", op, "path", path, "err", err)
	if w.onError != nil {
		func() {
			defer func() { _ = recover() }()
			w.onError(e)
		}()
	}
	return e
}

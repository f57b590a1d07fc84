package debugfiles

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
)

// flushAt is how many accepted bytes make the Writer write them out before
// the next tick.
const flushAt = 1 << 20

// format is what a file type adds to a sink.
type format interface {
	// end appends the file's trailer, if it has one, to the sink's pending
	// bytes, and forgets the encoder state of the file.
	end()
	// trailer is what ends a file that has data.
	trailer() []byte
	// rotated runs after the active file got its rotated name, whose stem
	// ("<base>.<stamp>.<seq>") it is given.
	rotated(stem string)
}

// sink is one file type of one table: the active file, the bytes accepted
// for it but not yet written, its rotations and its retention. Whole batches
// are appended to pending and pending is written in one call, so the file
// only ever grows by whole batches; a failed write is truncated back to the
// last good offset. The owner of a sink holds its lock around every call.
type sink struct {
	w      *Writer
	format format
	ext    string
	dir    string
	active string         // path of the active file
	re     *regexp.Regexp // matches the rotated file names, and nothing else
	st     stamper

	f              file
	size           int64 // bytes accepted into the active file: written + pending
	written        int64 // bytes of the active file on disk: the last good offset
	batches        int   // batches accepted into the active file
	pending        bytes.Buffer
	pendingBatches int
	// broken is set by a failure; batches are dropped until the next tick
	// so that a full disk costs one attempt per interval, not one per batch.
	broken bool
	// damaged is set while the active file on disk could not be cut back
	// to a whole batch and still has to be set aside.
	damaged  bool
	closed   bool
	inFlight bool // a batch is being written and not yet counted
}

func newSink(w *Writer, f format, sub, ext string) sink {
	dir := filepath.Join(w.root, sub)
	return sink{
		w: w, format: f, ext: ext, dir: dir,
		active: filepath.Join(dir, w.base+"."+ext),
		re:     rotatedPattern(w.base, ext),
	}
}

// usable tells whether a batch may be written now; when not, the batch is
// counted as dropped. From here until accept or drop, the batch is the
// sink's to count.
func (s *sink) usable() bool {
	s.inFlight = true
	if s.closed || s.broken {
		s.drop()
		return false
	}
	return true
}

// drop counts the batch being written as dropped.
func (s *sink) drop() {
	if s.inFlight {
		s.inFlight = false
		s.w.dropped.Add(1)
	}
}

// open makes sure there is an active file. An active file left non-empty by
// an earlier Writer is rotated first: it may hold another schema, and an
// ended Arrow stream cannot be continued.
func (s *sink) open() bool {
	if s.f != nil {
		return true
	}
	if err := s.w.fs.MkdirAll(s.dir); err != nil {
		s.fail("mkdir", s.dir, err)
		return false
	}
	if fi, err := s.w.fs.Stat(s.active); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
		damaged := s.damaged
		if err := s.renameActive(damaged); err != nil {
			s.fail("rotate", s.active, err)
			return false
		}
		s.damaged = false
		if !damaged {
			s.w.rotations.Add(1)
			s.prune()
		}
	}
	f, err := s.w.fs.Create(s.active)
	if err != nil {
		s.fail("open", s.active, err)
		return false
	}
	s.f = f
	s.w.files.Add(1)
	return true
}

// accept counts a batch of n bytes just appended to pending, writes pending
// out when it is large, and rotates when the file is full.
func (s *sink) accept(n int, trailer int64) {
	s.size += int64(n)
	s.batches++
	s.pendingBatches++ // counted with pending from here
	s.inFlight = false
	if s.size+trailer >= s.w.maxSize {
		s.rotate()
		return
	}
	if s.pending.Len() >= s.w.flushAt {
		s.flush()
	}
}

// flush writes pending to the active file in one call.
func (s *sink) flush() error {
	if s.f == nil || s.pending.Len() == 0 {
		return nil
	}
	n, err := s.f.Write(s.pending.Bytes())
	if err != nil {
		return s.fail("write", s.active, err)
	}
	s.written += int64(n)
	s.w.bytes.Add(int64(n))
	s.pendingBatches = 0
	s.resetPending()
	return nil
}

// resetPending empties pending, giving back the memory of an outsized batch.
func (s *sink) resetPending() {
	if s.pending.Cap() > 4*s.w.flushAt {
		s.pending = bytes.Buffer{}
	}
	s.pending.Reset()
}

// rotate ends, writes and closes the active file and gives it its rotated
// name; the next batch opens a new active file. The caller knows a file is
// open.
func (s *sink) rotate() error {
	s.format.end()
	if err := s.flush(); err != nil {
		return err
	}
	f := s.f
	s.f, s.size, s.written, s.batches = nil, 0, 0, 0
	var first error
	if err := f.Close(); err != nil {
		first = s.w.report("close", s.active, err)
	}
	if err := s.renameActive(false); err != nil {
		s.broken = true
		return s.w.report("rotate", s.active, err)
	}
	s.w.rotations.Add(1)
	s.prune()
	return first
}

// renameActive gives the active file the next rotated name that is free. A
// damaged file gets that name with "~" appended, which readers and
// retention ignore: it is kept for a person to look at.
func (s *sink) renameActive(damaged bool) error {
	for range 16 {
		at, seq := s.st.next(s.w.now())
		name := rotatedName(s.w.base, at, seq, s.ext)
		if damaged {
			name += damagedSuffix
		}
		to := filepath.Join(s.dir, name)
		if exists(s.w.fs, to) {
			continue
		}
		if err := s.w.fs.Rename(s.active, to); err != nil {
			return err
		}
		if !damaged {
			s.format.rotated(strings.TrimSuffix(name, "."+s.ext))
		}
		return nil
	}
	return fmt.Errorf("no free rotated name for %s", s.active)
}

// prune removes all but the newest maxFiles rotated files of this type.
func (s *sink) prune() {
	pruneDir(s.w, s.dir, s.re)
}

func pruneDir(w *Writer, dir string, re *regexp.Regexp) {
	if w.maxFiles == 0 {
		return
	}
	names, err := w.fs.ReadDirNames(dir)
	if err != nil {
		w.report("retention", dir, err)
		return
	}
	old := matchRotated(names, re)
	for _, n := range old[:max(0, len(old)-w.maxFiles)] {
		if err := w.fs.Remove(filepath.Join(dir, n)); err != nil {
			w.report("retention", filepath.Join(dir, n), err)
		}
	}
}

// fail reports a failed operation and gives up the active file: what was
// written before stays (cut back to the last good offset, ended and
// rotated), what was pending is dropped, and batches are dropped until the
// next tick. A file that cannot be cut back is set aside under its rotated
// name plus "~", so that it breaks no reader.
func (s *sink) fail(op, path string, err error) error {
	e := s.w.report(op, path, err)
	s.abandon()
	s.broken = true
	return e
}

// abandon drops pending and closes the active file, keeping only its good
// part.
func (s *sink) abandon() {
	s.w.dropped.Add(int64(s.pendingBatches))
	s.pendingBatches = 0
	s.format.end() // forget the encoder's state
	s.resetPending()
	f, written := s.f, s.written
	s.f, s.size, s.written, s.batches = nil, 0, 0, 0
	if f == nil {
		return
	}
	damaged := false
	if err := f.Truncate(written); err != nil {
		s.w.report("truncate", s.active, err)
		damaged = true
	} else if t := s.format.trailer(); written > 0 && len(t) > 0 {
		if _, err := f.Write(t); err != nil {
			// A stream without its trailer still reads; half a trailer does not.
			damaged = f.Truncate(written) != nil
		}
	}
	_ = f.Close()
	if written == 0 {
		if err := s.w.fs.Remove(s.active); err != nil {
			s.w.report("remove", s.active, err)
		}
		return
	}
	// If the rename fails, the next open sets the file aside.
	s.damaged = damaged
	if err := s.renameActive(damaged); err != nil {
		s.w.report("rotate", s.active, err)
		return
	}
	s.damaged = false
	if !damaged {
		s.w.rotations.Add(1)
		s.prune()
	}
}

// tick writes pending out and ends a pause after a failure.
func (s *sink) tick() {
	s.broken = false
	s.flush()
}

// close ends, writes and closes the active file, which keeps its name.
func (s *sink) close() error {
	s.closed = true
	if s.f == nil { // nothing pending either: a file is opened before a batch is accepted
		return nil
	}
	s.format.end()
	if err := s.flush(); err != nil {
		return err
	}
	f := s.f
	s.f = nil
	if err := f.Close(); err != nil {
		return s.w.report("close", s.active, err)
	}
	return nil
}

// recoverInto turns a panic of a file type's code into a failure, so a send
// never dies of its debug files.
func (s *sink) recoverInto() {
	r := recover()
	if r == nil {
		return
	}
	s.drop()
	defer func() {
		if recover() != nil { // giving up the file panicked too: forget it
			s.f, s.size, s.written, s.batches, s.pendingBatches = nil, 0, 0, 0, 0
			s.pending = bytes.Buffer{}
			s.broken = true
		}
	}()
	s.fail("write", s.active, fmt.Errorf("%w: %v", errPanic, r))
}

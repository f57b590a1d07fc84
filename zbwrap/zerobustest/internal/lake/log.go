package lake

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/encoding/protowire"
)

// The record log of one table: segment files in <table>/_zerobus_log/, each
// named after the sequence number of its first record
// (00000000000000000042.zlog) and starting with segMagic. Then frames:
//
//	uint32 LE  n    length of body
//	uint32 LE  crc  CRC-32C (Castagnoli) of body
//	body:      kind byte, uvarint binding id, then
//	           kindDescriptor: the serialized DescriptorProto
//	           kindBatch:      uvarint count, count x (uvarint len, record)
//
// A binding's descriptor frame precedes its first batch frame in every
// segment, so a segment decodes on its own. A process writes only to
// segments it created; on open a torn frame at the tail of the last segment
// (written but never fsynced, so never acknowledged) is cut off.
const (
	segMagic       = "ZBLOG\x001\n"
	segExt         = ".zlog"
	frameHeader    = 8
	kindDescriptor = 1
	kindBatch      = 2
	// maxFrameBody bounds a frame read from disk, so a garbage length never
	// makes us allocate gigabytes.
	maxFrameBody = MaxRecordSize + 1<<20
	// frameTarget is the size at which an append is split into frames.
	frameTarget = 4 << 20
	// defaultSegmentSize is the size after which the writer starts a new segment.
	defaultSegmentSize = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrClosed reports a Lake (or a Binding of it) used after Close.
var ErrClosed = errors.New("lake: closed")

func segName(first int64) string { return fmt.Sprintf("%020d%s", first, segExt) }

// encodeBatchFrames encodes records as batch frames of about frameTarget
// bytes each, with header and CRC.
func encodeBatchFrames(bid uint64, records [][]byte) [][]byte {
	var frames [][]byte
	for start := 0; start < len(records); {
		size, end := 0, start
		for end < len(records) && (end == start || size+len(records[end]) < frameTarget) {
			size += protowire.SizeVarint(uint64(len(records[end]))) + len(records[end])
			end++
		}
		body := 1 + protowire.SizeVarint(bid) + protowire.SizeVarint(uint64(end-start)) + size
		f := make([]byte, frameHeader, frameHeader+body)
		f = append(f, kindBatch)
		f = protowire.AppendVarint(f, bid)
		f = protowire.AppendVarint(f, uint64(end-start))
		for _, r := range records[start:end] {
			f = protowire.AppendVarint(f, uint64(len(r)))
			f = append(f, r...)
		}
		sealFrame(f)
		frames = append(frames, f)
		start = end
	}
	return frames
}

func appendDescriptorFrame(dst []byte, bid uint64, desc []byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, frameHeader)...)
	dst = append(dst, kindDescriptor)
	dst = protowire.AppendVarint(dst, bid)
	dst = append(dst, desc...)
	sealFrame(dst[start:])
	return dst
}

// sealFrame fills in the header of a frame whose body follows it.
func sealFrame(f []byte) {
	body := f[frameHeader:]
	binary.LittleEndian.PutUint32(f[0:4], uint32(len(body)))
	binary.LittleEndian.PutUint32(f[4:8], crc32.Checksum(body, castagnoli))
}

// frame is one decoded frame.
type frame struct {
	kind    byte
	bid     uint64
	payload []byte // descriptor bytes, or count + records
	size    int64  // bytes on disk, header included
}

// errTorn marks a frame that is incomplete or fails its checksum.
var errTorn = errors.New("torn or corrupt frame")

// frameReader reads frames sequentially from a segment.
type frameReader struct {
	r   *bufio.Reader
	off int64 // offset of the next frame
	end int64 // read no further than this
	buf []byte
}

func newFrameReader(f *os.File, off, end int64) *frameReader {
	fr := &frameReader{off: off, end: end}
	fr.r = bufio.NewReaderSize(&limitedFile{f: f, pos: off, fr: fr}, 1<<20)
	return fr
}

// limitedFile reads a file sequentially up to its frameReader's end, which
// grows as the log becomes durable.
type limitedFile struct {
	f   *os.File
	pos int64
	fr  *frameReader
}

func (r *limitedFile) Read(p []byte) (int, error) {
	left := r.fr.end - r.pos
	if left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	n, err := r.f.ReadAt(p, r.pos)
	r.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// next returns the next frame, io.EOF at the end, or errTorn. The frame's
// payload is valid until the next call.
func (fr *frameReader) next() (frame, error) {
	if fr.off == fr.end {
		return frame{}, io.EOF
	}
	var hdr [frameHeader]byte
	if fr.end-fr.off < frameHeader {
		return frame{}, errTorn
	}
	if _, err := io.ReadFull(fr.r, hdr[:]); err != nil {
		return frame{}, fmt.Errorf("%w: %v", errTorn, err)
	}
	n := int64(binary.LittleEndian.Uint32(hdr[0:4]))
	if n < 2 || n > maxFrameBody || fr.end-fr.off-frameHeader < n {
		return frame{}, errTorn
	}
	if int64(cap(fr.buf)) < n {
		fr.buf = make([]byte, n)
	}
	body := fr.buf[:n]
	if _, err := io.ReadFull(fr.r, body); err != nil {
		return frame{}, fmt.Errorf("%w: %v", errTorn, err)
	}
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(hdr[4:8]) {
		return frame{}, errTorn
	}
	fm := frame{kind: body[0], size: frameHeader + n}
	bid, k := protowire.ConsumeVarint(body[1:])
	if k < 0 || fm.kind != kindDescriptor && fm.kind != kindBatch {
		return frame{}, errTorn
	}
	fm.bid, fm.payload = bid, body[1+k:]
	fr.off += fm.size
	return fm, nil
}

// batchRecords splits a batch frame's payload into its records.
func batchRecords(payload []byte, dst [][]byte) ([][]byte, error) {
	count, k := protowire.ConsumeVarint(payload)
	if k < 0 || count > uint64(len(payload)) {
		return nil, errTorn
	}
	payload = payload[k:]
	dst = dst[:0]
	for range count {
		r, k := protowire.ConsumeBytes(payload)
		if k < 0 {
			return nil, errTorn
		}
		dst = append(dst, r)
		payload = payload[k:]
	}
	if len(payload) != 0 {
		return nil, errTorn
	}
	return dst, nil
}

// segment is one log file as far as it is durable.
type segment struct {
	first int64 // sequence number of its first record
	path  string
	size  int64 // durable bytes
}

// appendReq is one Append waiting for the writer.
type appendReq struct {
	bid    uint64
	desc   []byte
	frames [][]byte
	n      int64
	done   chan error
}

// tableLog is the record log of one table. Append hands requests to one
// writer goroutine that writes every waiting request and fsyncs once (group
// commit), then acknowledges them in order.
type tableLog struct {
	dir      string
	segLimit int64
	syncFile func(*os.File) error // (*os.File).Sync; tests inject failures
	syncs    atomic.Int64         // fsyncs of segment files, for tests

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []*appendReq
	closing bool
	err     error     // sticky: after a failed write or fsync nothing more is written
	segs    []segment // durable segments, oldest first
	durable int64     // sequence number after the last durable record

	// Owned by the writer goroutine.
	f      *os.File
	fsize  int64
	fdescs map[uint64]bool // bindings whose descriptor is in the current segment
	buf    []byte
	done   chan struct{}
}

// openLog recovers a table's log: it lists the segments, cuts a torn tail
// off the last one, and drops a last segment without records. from is the
// position the Delta table holds; the log continues at least from there.
func openLog(dir string, segLimit int64, from int64) (*tableLog, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lake: record log: %w", err)
	}
	w := &tableLog{dir: dir, segLimit: segLimit, syncFile: (*os.File).Sync, done: make(chan struct{})}
	w.cond = sync.NewCond(&w.mu)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("lake: record log: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, segExt) {
			continue
		}
		first, err := strconv.ParseInt(strings.TrimSuffix(name, segExt), 10, 64)
		if err != nil || first < 0 {
			continue
		}
		w.segs = append(w.segs, segment{first: first, path: filepath.Join(dir, name)})
	}
	sort.Slice(w.segs, func(i, j int) bool { return w.segs[i].first < w.segs[j].first })
	for i := range w.segs[:max(len(w.segs)-1, 0)] {
		st, err := os.Stat(w.segs[i].path)
		if err != nil {
			return nil, fmt.Errorf("lake: record log: %w", err)
		}
		w.segs[i].size = st.Size()
	}
	w.durable = from
	if n := len(w.segs); n > 0 {
		last := &w.segs[n-1]
		records, size, err := recoverSegment(last.path)
		if err != nil {
			return nil, err
		}
		if records == 0 {
			if err := os.Remove(last.path); err != nil {
				return nil, fmt.Errorf("lake: record log: %w", err)
			}
			w.segs = w.segs[:n-1]
			w.durable = max(w.durable, last.first)
		} else {
			last.size = size
			w.durable = max(w.durable, last.first+records)
		}
	}
	return w, nil
}

// recoverSegment counts the records of a segment and truncates it after the
// last whole frame.
func recoverSegment(path string) (records, size int64, err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, 0, fmt.Errorf("lake: record log: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("lake: record log: %w", err)
	}
	magic := make([]byte, len(segMagic))
	if _, err := f.ReadAt(magic, 0); err != nil || string(magic) != segMagic {
		return 0, 0, nil // torn while being created: no record in it
	}
	fr := newFrameReader(f, int64(len(segMagic)), st.Size())
	var recs [][]byte
	for {
		fm, err := fr.next()
		if err != nil {
			break // io.EOF, or the torn tail
		}
		if fm.kind == kindBatch {
			if recs, err = batchRecords(fm.payload, recs); err != nil {
				fr.off -= fm.size
				break
			}
			records += int64(len(recs))
		}
	}
	if fr.off < st.Size() {
		if err := f.Truncate(fr.off); err != nil {
			return 0, 0, fmt.Errorf("lake: record log: truncate torn tail of %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			return 0, 0, fmt.Errorf("lake: record log: %w", err)
		}
	}
	return records, fr.off, nil
}

func (w *tableLog) start() { go w.run() }

// append queues records and returns the channel that gets the outcome.
func (w *tableLog) append(bid uint64, desc []byte, records [][]byte) <-chan error {
	done := make(chan error, 1)
	for i, r := range records {
		if len(r) > MaxRecordSize {
			done <- &RecordError{Index: i, Reason: fmt.Sprintf("record is %d bytes, more than the limit of %d", len(r), MaxRecordSize)}
			return done
		}
	}
	req := &appendReq{bid: bid, desc: desc, frames: encodeBatchFrames(bid, records), n: int64(len(records)), done: done}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closing {
		done <- ErrClosed
		return done
	}
	w.queue = append(w.queue, req)
	w.cond.Signal()
	return done
}

// run is the writer goroutine. It stops once close has been called and the
// queue is empty.
func (w *tableLog) run() {
	defer close(w.done)
	var spare []*appendReq
	for {
		w.mu.Lock()
		for len(w.queue) == 0 && !w.closing {
			w.cond.Wait()
		}
		if len(w.queue) == 0 {
			w.mu.Unlock()
			if w.f != nil {
				w.f.Close()
			}
			return
		}
		group := w.queue
		w.queue = spare[:0]
		err := w.err
		w.mu.Unlock()
		if err == nil {
			err = w.writeGroup(group)
		}
		for i, r := range group {
			r.done <- err
			group[i] = nil
		}
		spare = group
	}
}

// writeGroup writes every request of the group, fsyncs once and publishes
// the new durable position.
func (w *tableLog) writeGroup(group []*appendReq) error {
	var n int64
	for _, r := range group {
		n += r.n
	}
	if n == 0 {
		return nil
	}
	created := false
	if w.f == nil || w.fsize >= w.segLimit {
		if err := w.newSegment(); err != nil {
			return w.fail(err)
		}
		created = true
	}
	buf := w.buf[:0]
	for _, r := range group {
		if r.n == 0 {
			continue
		}
		if !w.fdescs[r.bid] {
			buf = appendDescriptorFrame(buf, r.bid, r.desc)
			w.fdescs[r.bid] = true
		}
		for _, f := range r.frames {
			buf = append(buf, f...)
		}
	}
	if cap(buf) <= 64<<20 {
		w.buf = buf
	}
	if _, err := w.f.Write(buf); err != nil {
		return w.fail(fmt.Errorf("lake: record log write: %w", err))
	}
	w.syncs.Add(1)
	if err := w.syncFile(w.f); err != nil {
		return w.fail(fmt.Errorf("lake: record log fsync: %w", err))
	}
	if created {
		if err := syncDir(w.dir); err != nil {
			return w.fail(err)
		}
	}
	w.fsize += int64(len(buf))
	w.mu.Lock()
	if created {
		w.segs = append(w.segs, segment{first: w.durable, path: w.f.Name()})
	}
	w.segs[len(w.segs)-1].size = w.fsize
	w.durable += n
	w.mu.Unlock()
	return nil
}

func (w *tableLog) fail(err error) error {
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
	return err
}

// newSegment closes the current segment (already fsynced) and creates the
// next one, named after the next record's sequence number.
func (w *tableLog) newSegment() error {
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
	w.mu.Lock()
	first := w.durable
	w.mu.Unlock()
	path := filepath.Join(w.dir, segName(first))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("lake: record log: %w", err)
	}
	if _, err := f.WriteString(segMagic); err != nil {
		f.Close()
		return fmt.Errorf("lake: record log: %w", err)
	}
	w.f, w.fsize, w.fdescs = f, int64(len(segMagic)), map[uint64]bool{}
	return nil
}

// snapshot returns the durable segments and position.
func (w *tableLog) snapshot() ([]segment, int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]segment(nil), w.segs...), w.durable
}

func (w *tableLog) durableCount() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.durable
}

// dropBefore deletes the segments (never the newest) whose records all lie
// before pos.
func (w *tableLog) dropBefore(pos int64) error {
	w.mu.Lock()
	var drop []segment
	for len(w.segs) > 1 && w.segs[1].first <= pos {
		drop = append(drop, w.segs[0])
		w.segs = w.segs[1:]
	}
	w.mu.Unlock()
	for _, s := range drop {
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("lake: record log: %w", err)
		}
	}
	return nil
}

// close stops the writer after it has written every queued request.
func (w *tableLog) close() {
	w.mu.Lock()
	w.closing = true
	w.cond.Signal()
	w.mu.Unlock()
	<-w.done
}

// syncDir fsyncs a directory so the entries created in it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("lake: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("lake: sync %s: %w", dir, err)
	}
	return nil
}

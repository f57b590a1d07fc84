package arrowproto

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math/bits"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"google.golang.org/protobuf/encoding/protowire"
)

// How a batch is encoded
//
// Two passes over the columns, each column at a time. The size pass adds each
// column's bytes to every row's size and, for every nested message and packed
// list, stores the length in a per-element size table (the "slots"). The rows'
// offsets in the arena follow from the sizes; the write pass then writes each
// column into every row at the row's cursor, taking length prefixes from the
// size tables. The size and the write of a value never disagree, including for
// values that make their row fail (they are encoded as a zero value), so rows
// that fail are simply written into a scratch region at the end of the arena
// (the "sink") and left out of the result.

// encoder is the scratch state of one Encode call.
type encoder struct {
	s       *Schema
	cols    []col
	slots   [][]int
	slotBuf []int
	sizes   []int    // row sizes, then row cursors
	useFast []bool   // per top-level column: the fast path runs for this batch
	nvCols  [][]byte // unpacked validity of fast columns, by field.nv
	nvBuf   []byte
	keys    []mapKey // keys of one map value
	keyTab  []int32  // hash table of keys
	bad     []bool
	errs    []RowError
	row     int
	dec     [160]byte // decimal text scratch
}

// Encode encodes every row of rec. It fails only if rec's schema differs from
// the compiled one (ErrSchemaMismatch) or rec's buffers are found malformed
// (ErrInvalidData; the package documentation says what can be checked); rows
// that cannot be encoded are listed in Batch.Errors.
// The Batch does not reference rec's memory.
func (s *Schema) Encode(rec arrow.RecordBatch) (*Batch, error) {
	return s.encode(rec, 0)
}

// EncodeFramed is Encode that also frames the records for a containing
// message: each record is written preceded by the tag of field (wire type
// bytes) and the record's length, back to back in Batch.Frames. Frames is
// then exactly the encoding of field repeated once per record, so a message
// that holds the records in that field (for Zerobus, field 1 of
// ProtoEncodedRecordBatch) can carry any run of them as one contiguous range
// of Frames, without a copy. Records are sub-slices of Frames, each after its
// prefix. field must be in 1..MaxFieldNumber.
func (s *Schema) EncodeFramed(rec arrow.RecordBatch, field protowire.Number) (*Batch, error) {
	if field < 1 || field > MaxFieldNumber {
		return nil, fmt.Errorf("arrowproto: framing field number %d is outside 1..%d", field, MaxFieldNumber)
	}
	return s.encode(rec, field)
}

// encode encodes rec, framing each record as field when field > 0.
func (s *Schema) encode(rec arrow.RecordBatch, field protowire.Number) (*Batch, error) {
	if rec == nil {
		return nil, fmt.Errorf("%w: nil record batch", ErrSchemaMismatch)
	}
	if rs := rec.Schema(); rs != s.arrow && rs != s.seen.Load() {
		if schemaKey(rs) != s.key {
			return nil, fmt.Errorf("%w: got %s", ErrSchemaMismatch, rs)
		}
		s.seen.Store(rs) // an equal schema value: remember it, the next batch likely shares it
	}
	n := int(rec.NumRows())
	e := s.getEncoder()
	defer s.putEncoder(e)
	for i := range s.top {
		a := rec.Column(i)
		if a == nil || a.Len() != n {
			return nil, invalid(s.top[i].path, "column length differs from the batch's %d rows", n)
		}
		if err := e.bind(s.top[i].col, a.Data(), 0, n); err != nil {
			return nil, err
		}
	}
	e.prepare(n)

	sizes := e.sizes
	for _, f := range s.top {
		e.sizeColumn(f, n)
	}

	// Lay the rows out, each after its prefix when framed; failed rows go to
	// the sink after the good ones.
	var tag uint64
	tagLen := 0
	if field > 0 {
		tag = uint64(protowire.EncodeTag(field, protowire.BytesType))
		tagLen = varintLen(tag)
	}
	total, framed, sink, good := 0, 0, 0, 0
	for r, sz := range sizes {
		if !e.bad[r] && sz > s.maxRecord {
			e.oversize(r, sz)
		}
		if e.bad[r] {
			sink = max(sink, sz)
			continue
		}
		total += sz
		if tagLen > 0 {
			framed += tagLen + varintLen(uint64(sz))
		}
		good++
	}
	framed += total
	// With no failed row, Rows is 0..n-1: shared, not written per batch.
	shared := good == n
	m, rows := s.getMem(framed+sink, good, shared)
	arena := m.arena
	b := &Batch{Records: m.records, Rows: rows, Bytes: total, s: s, mem: m}
	b.refs.Store(1)
	off, k := 0, 0
	for r, sz := range sizes {
		if e.bad[r] {
			sizes[r] = framed
			continue
		}
		if tagLen > 0 {
			off = putVarint(arena, off, tag)
			off = putVarint(arena, off, uint64(sz))
		}
		b.Records[k] = arena[off : off+sz : off+sz]
		if !shared {
			b.Rows[k] = r
		}
		k++
		sizes[r] = off
		off += sz
	}
	if tagLen > 0 {
		b.Frames = arena[:framed:framed]
	}

	// Write in blocks of rows small enough to stay in cache while every
	// column visits them.
	for block, lo := max(16, writeBlockBytes*n/(total+1)), 0; lo < n; lo += block {
		hi := min(lo+block, n)
		for _, f := range s.top {
			e.writeColumn(f, lo, hi, arena, sizes)
		}
	}
	if len(e.errs) > 0 {
		b.Errors = slices.Clone(e.errs)
		slices.SortFunc(b.Errors, func(x, y RowError) int { return x.Row - y.Row })
	}
	return b, nil
}

// Reuse of batch memory
//
// A released Batch gives its arena and its Records and Rows slices back to
// its Schema, on a small free list bounded in count and bytes. Encode takes
// the smallest arena that fits, so a stream of similar batches allocates
// nothing per batch after the first few, and the arena is not zeroed: the
// write pass writes every byte of every good record (rows that fail are
// written to the sink, which is never read).

// batchMem is the reusable memory of one Batch.
type batchMem struct {
	arena   []byte
	records [][]byte
	rows    []int
}

// The memory kept for reuse is bounded: the bytes match the default
// in-flight window of a Zerobus stream, which a sender fills and empties in
// bursts as acknowledgements arrive; memory dropped beyond the bounds is
// left to the garbage collector.
const (
	maxFreeMems  = 256
	maxFreeBytes = 64 << 20
)

// getMem returns memory for a batch of good records and an arena of n
// bytes, and the batch's Rows: the shared identity if shared, else the
// memory's own, to be filled.
func (s *Schema) getMem(n, good int, shared bool) (*batchMem, []int) {
	var m *batchMem
	s.mu.Lock()
	if k := len(s.mems); k > 0 {
		// The smallest arena that fits; if none does, the largest (its arena
		// is replaced below, its slices are reused).
		pick := 0
		for i := 1; i < k; i++ {
			if betterArena(cap(s.mems[i].arena), cap(s.mems[pick].arena), n) {
				pick = i
			}
		}
		m = s.mems[pick]
		s.mems[pick] = s.mems[k-1]
		s.mems[k-1] = nil
		s.mems = s.mems[:k-1]
		s.memBytes -= cap(m.arena)
	}
	var rows []int
	if shared {
		if len(s.identity) < good {
			id := make([]int, max(good, 2*len(s.identity)))
			for i := range id {
				id[i] = i
			}
			s.identity = id
		}
		rows = s.identity[:good:good]
	}
	s.mu.Unlock()
	switch {
	case m == nil:
		// Exactly the size (the allocator's size class may round it up):
		// a batch that is never released costs its bytes only, in zeroing
		// and in garbage collector pacing.
		m = &batchMem{arena: append([]byte(nil), make([]byte, n)...)}
	case cap(m.arena) < n:
		// Batches are being released and reused: leave room to grow, the
		// next batch of the stream is likely a little larger or smaller.
		m.arena = make([]byte, n, n+n/8)
		// Stale records would keep the old arena alive.
		clear(m.records[:cap(m.records)])
	}
	m.arena = m.arena[:n]
	m.records = grow(m.records, good)
	if !shared {
		m.rows = grow(m.rows, good)
		rows = m.rows
	}
	return m, rows
}

// betterArena reports whether an arena of capacity c serves a batch of n
// bytes better than one of capacity best: one that fits beats one that does
// not; of two that fit, the smaller; of two that do not, the larger.
func betterArena(c, best, n int) bool {
	switch {
	case c >= n && best >= n:
		return c < best
	case c >= n || best >= n:
		return c >= n
	}
	return c > best
}

// putMem keeps m for reuse if the free list has room.
func (s *Schema) putMem(m *batchMem) {
	size := cap(m.arena)
	if size > maxFreeBytes/2 {
		return
	}
	s.mu.Lock()
	if len(s.mems) < maxFreeMems && s.memBytes+size <= maxFreeBytes {
		s.mems = append(s.mems, m)
		s.memBytes += size
	}
	s.mu.Unlock()
}

// Retain adds a holder of the batch's memory, for another goroutine (a
// stream writing the records, say): each Retain asks for one more Release.
// Retain and Release are safe for concurrent use.
func (b *Batch) Retain() { b.refs.Add(1) }

// Release drops a hold on the batch's memory; the last one (the Encode's,
// without Retain) gives it back (the records' buffer, Records, Rows and
// Frames) to its Schema, for a later Encode to reuse. Records, Rows and
// Frames must not be used after that; Errors and Bytes may. Release is
// optional (a batch never released is garbage collected as usual), and
// Release past the last hold does nothing.
func (b *Batch) Release() {
	if b == nil || b.refs.Add(-1) != 0 || b.mem == nil {
		return
	}
	m := b.mem
	b.mem = nil
	b.Records, b.Rows, b.Frames = nil, nil, nil
	b.s.putMem(m)
}

// The scratch of finished encodes is kept on a small free list (not a
// sync.Pool, which the garbage collector empties: under the allocation rate
// of large batches that would mean new scratch for most batches).

// maxFree bounds the scratch kept per Schema.
const maxFree = 8

func (s *Schema) getEncoder() *encoder {
	s.mu.Lock()
	if n := len(s.free); n > 0 {
		e := s.free[n-1]
		s.free = s.free[:n-1]
		s.mu.Unlock()
		return e
	}
	s.mu.Unlock()
	return &encoder{s: s, cols: make([]col, len(s.specs)), slots: make([][]int, s.nslots)}
}

// writeBlockBytes is the output size of one block of rows in the write pass.
const writeBlockBytes = 64 << 10

// maxPooledRows bounds the scratch kept between batches.
const maxPooledRows = 1 << 20

func (s *Schema) putEncoder(e *encoder) {
	if cap(e.sizes) > maxPooledRows || cap(e.slotBuf) > 4*maxPooledRows {
		return
	}
	clear(e.cols) // drop references to the batch's buffers
	e.errs = e.errs[:0]
	s.mu.Lock()
	if len(s.free) < maxFree {
		s.free = append(s.free, e)
	}
	s.mu.Unlock()
}

// prepare sizes the scratch for n rows and the bound arrays.
func (e *encoder) prepare(n int) {
	e.sizes = grow(e.sizes, n)
	clear(e.sizes)
	e.bad = grow(e.bad, n)
	clear(e.bad)
	e.errs = e.errs[:0]
	total := 0
	for _, leaf := range e.s.slotLeaf {
		total += e.cols[leaf].n
	}
	e.slotBuf = grow(e.slotBuf, total)
	at := 0
	for i, leaf := range e.s.slotLeaf {
		m := e.cols[leaf].n
		e.slots[i] = e.slotBuf[at : at+m : at+m]
		at += m
	}
	e.unpackAll(n)
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// fail records that the current row cannot be encoded (the first reason only).
func (e *encoder) fail(path string, reason func() string) {
	if e.bad[e.row] {
		return
	}
	e.bad[e.row] = true
	e.errs = append(e.errs, RowError{Row: e.row, Column: path, Reason: reason()})
}

// oversize fails row r, naming its largest column.
func (e *encoder) oversize(r, size int) {
	e.row = r
	big, bigSize := "", -1
	for _, f := range e.s.top {
		if sz := e.sizeField(f, r); sz > bigSize {
			big, bigSize = f.path, sz
		}
	}
	e.fail(big, func() string {
		return fmt.Sprintf("encoded record is %d bytes, more than the limit of %d (this column: %d bytes)", size, e.s.maxRecord, bigSize)
	})
}

// resolve follows dictionary and run-end layers from element i of spec to
// the col and index holding the value, and reports whether it is non-null.
func (e *encoder) resolve(spec, i int) (*col, int, bool) {
	c := &e.cols[spec]
	if c.lay == layPlain { // the common case, inlined
		return c, i, c.kind != kNull && (c.valid == nil || bitSet(c.valid, c.off+i))
	}
	return e.resolveLayers(c, i)
}

func (e *encoder) resolveLayers(c *col, i int) (*col, int, bool) {
	for {
		switch c.lay {
		case layDict:
			if !c.validAt(i) {
				return c, i, false
			}
			i = c.index(i)
		case layREE:
			i = c.physical(i)
		default:
			return c, i, c.kind != kNull && c.validAt(i)
		}
		c = &e.cols[c.child]
	}
}

func varintLen(v uint64) int { return int(9*uint32(bits.Len64(v))+64) / 64 }

func putVarint(b []byte, p int, v uint64) int {
	if v < 1<<7 {
		b[p] = byte(v)
		return p + 1
	}
	if v < 1<<14 {
		_ = b[p+1]
		b[p] = byte(v) | 0x80
		b[p+1] = byte(v >> 7)
		return p + 2
	}
	for v >= 0x80 {
		b[p] = byte(v) | 0x80
		v >>= 7
		p++
	}
	b[p] = byte(v)
	return p + 1
}

func putTag(b []byte, p int, tag uint64, n int) int {
	switch n {
	case 1:
		b[p] = byte(tag)
		return p + 1
	case 2:
		_ = b[p+1]
		b[p] = byte(tag)
		b[p+1] = byte(tag >> 8)
		return p + 2
	}
	for i := 0; i < n; i++ {
		b[p+i] = byte(tag >> (8 * i))
	}
	return p + n
}

func zigzag(x int64) uint64 { return uint64(x<<1) ^ uint64(x>>63) }

// zeroSize is the size of the zero value that stands in for a null element.
func zeroSize(w wireKind) int {
	switch w {
	case wFixed32, wFloat:
		return 4
	case wFixed64, wDouble:
		return 8
	}
	return 1 // a varint 0, false, or a zero length
}

// sizeField returns the bytes field f takes in element i of its message.
func (e *encoder) sizeField(f *field, i int) int {
	if f.rep {
		return e.sizeRepeated(f, i)
	}
	c, j, ok := e.resolve(f.col, i)
	if !ok {
		if f.required {
			e.fail(f.path, func() string { return "null value in a required field" })
		} else if f.nullErr != "" {
			e.fail(f.path, func() string { return f.nullErr })
		}
		return 0
	}
	return f.tagLen + e.sizeValue(f.path, f.val, c, j)
}

func (e *encoder) sizeRepeated(f *field, i int) int {
	lc, j, ok := e.resolve(f.col, i)
	if !ok {
		return 0
	}
	start, end := lc.listRange(j)
	if start >= end {
		return 0
	}
	if f.packFast {
		if ec := &e.cols[f.ecol]; ec.valid == nil {
			total := packedSize(ec, start, end)
			e.slots[f.slot][j] = total
			return f.tagLen + varintLen(uint64(total)) + total
		}
	}
	epath := f.epath
	total := 0
	for k := start; k < end; k++ {
		c, jj, ok := e.resolve(f.ecol, k)
		if !ok {
			e.fail(epath, func() string { return f.elemNull + " (protobuf repeated fields cannot hold nulls)" })
			total += zeroSize(f.val.wire)
			continue
		}
		total += e.sizeValue(epath, f.val, c, jj)
	}
	if f.val.mapKeys && end-start > 1 && !e.bad[e.row] {
		e.checkKeys(f, start, end)
	}
	if f.packed {
		e.slots[f.slot][j] = total
		return f.tagLen + varintLen(uint64(total)) + total
	}
	return total + (end-start)*f.tagLen
}

// checkInt reports the row errors of integer value x of element j of c.
func (e *encoder) checkInt(path string, v *value, c *col, j int, x int64, ovf bool) {
	switch {
	case ovf:
		e.fail(path, func() string {
			return fmt.Sprintf("value %d overflows int64 when converted to microseconds", int64(le64(c.raw, c.off+j)))
		})
	case v.ovf64 && x < 0:
		e.fail(path, func() string { return fmt.Sprintf("uint64 value %d is above 2^63-1", uint64(x)) })
	case v.check32 && x != int64(int32(x)):
		e.fail(path, func() string {
			return fmt.Sprintf("date64 value %d ms is %d days, outside the int32 range", int64(le64(c.raw, c.off+j)), x)
		})
	}
}

// sizeValue returns the size of value j of c (with its length prefix).
func (e *encoder) sizeValue(path string, v *value, c *col, j int) int {
	switch v.wire {
	case wVarint, wZigzag, wFixed32, wFixed64:
		x, ovf := c.intAt(j)
		if ovf || v.ovf64 || v.check32 {
			e.checkInt(path, v, c, j, x, ovf)
		}
		switch v.wire {
		case wVarint:
			return varintLen(uint64(x))
		case wZigzag:
			return varintLen(zigzag(x))
		case wFixed32:
			return 4
		}
		return 8
	case wFloat:
		return 4
	case wDouble:
		return 8
	case wBool:
		return 1
	case wBytes:
		d := e.bytes(c, j)
		if c.utf8 && !utf8.Valid(d) {
			e.badUTF8(path, d)
		}
		return varintLen(uint64(len(d))) + len(d)
	}
	// wMessage
	body := 0
	for _, cf := range v.fields {
		body += e.sizeField(cf, j)
	}
	e.slots[v.slot][j] = body
	return varintLen(uint64(body)) + body
}

// badUTF8 fails the current row for string value d, which is not UTF-8.
func (e *encoder) badUTF8(path string, d []byte) {
	e.fail(path, func() string {
		at := 0
		for at < len(d) {
			r, size := utf8.DecodeRune(d[at:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			at += size
		}
		return fmt.Sprintf("string value is not valid UTF-8 (byte %d of %d is 0x%02x); protobuf strings must be UTF-8", at, len(d), d[at])
	})
}

// checkUTF8 fails the rows whose value of fast string field f (elements
// 0..n-1 of c; nv is the field's unpacked validity, nil for no nulls) is not
// UTF-8.
func (e *encoder) checkUTF8(c *col, f *field, nv []byte, n int) {
	for r := range n {
		if nv != nil && nv[r] == 0 {
			continue
		}
		if d := c.bytesAt(r); !utf8.Valid(d) {
			e.row = r
			e.badUTF8(f.path, d)
		}
	}
}

// bytes returns the bytes of value j of c: binary data or decimal text.
func (e *encoder) bytes(c *col, j int) []byte {
	if c.kind >= kDecimal32 && c.kind <= kDecimal256 {
		return decimalText(e.dec[:0], c, j)
	}
	return c.bytesAt(j)
}

func (e *encoder) writeField(f *field, i int, b []byte, p int) int {
	if f.rep {
		return e.writeRepeated(f, i, b, p)
	}
	c, j, ok := e.resolve(f.col, i)
	if !ok {
		return p
	}
	p = putTag(b, p, f.tag, f.tagLen)
	return e.writeValue(f.val, c, j, b, p)
}

func (e *encoder) writeRepeated(f *field, i int, b []byte, p int) int {
	lc, j, ok := e.resolve(f.col, i)
	if !ok {
		return p
	}
	start, end := lc.listRange(j)
	if start >= end {
		return p
	}
	if f.packed {
		p = putTag(b, p, f.tag, f.tagLen)
		p = putVarint(b, p, uint64(e.slots[f.slot][j]))
		if ec := &e.cols[f.ecol]; f.packFast && ec.valid == nil {
			return packedWrite(ec, start, end, b, p)
		}
	}
	for k := start; k < end; k++ {
		if !f.packed {
			p = putTag(b, p, f.tag, f.tagLen)
		}
		c, jj, ok := e.resolve(f.ecol, k)
		if !ok {
			// Only rows that fail have null elements; they go to the sink.
			p += zeroSize(f.val.wire)
			continue
		}
		p = e.writeValue(f.val, c, jj, b, p)
	}
	return p
}

func (e *encoder) writeValue(v *value, c *col, j int, b []byte, p int) int {
	switch v.wire {
	case wVarint:
		x, _ := c.intAt(j)
		return putVarint(b, p, uint64(x))
	case wZigzag:
		x, _ := c.intAt(j)
		return putVarint(b, p, zigzag(x))
	case wFixed32:
		x, _ := c.intAt(j)
		binary.LittleEndian.PutUint32(b[p:], uint32(x))
		return p + 4
	case wFixed64:
		x, _ := c.intAt(j)
		binary.LittleEndian.PutUint64(b[p:], uint64(x))
		return p + 8
	case wFloat:
		binary.LittleEndian.PutUint32(b[p:], c.float32Bits(j))
		return p + 4
	case wDouble:
		binary.LittleEndian.PutUint64(b[p:], c.float64Bits(j))
		return p + 8
	case wBool:
		if bitSet(c.raw, c.off+j) {
			b[p] = 1
		} else {
			b[p] = 0
		}
		return p + 1
	case wBytes:
		d := e.bytes(c, j)
		p = putVarint(b, p, uint64(len(d)))
		return p + copy(b[p:], d)
	}
	// wMessage
	p = putVarint(b, p, uint64(e.slots[v.slot][j]))
	for _, cf := range v.fields {
		p = e.writeField(cf, j, b, p)
	}
	return p
}

// sizeColumn adds top-level field f's size to every row.
func (e *encoder) sizeColumn(f *field, n int) {
	sizes := e.sizes[:n]
	switch {
	case !e.useFast[f.top]:
		for r := range sizes {
			e.row = r
			sizes[r] += e.sizeField(f, r)
		}
	case f.fast == fastStruct:
		e.sizeStruct(f, sizes)
	default:
		c := &e.cols[f.col]
		sizeFast(c, f, e.nvCols[f.nv], sizes)
		if c.utf8 {
			e.checkUTF8(c, f, e.nvCols[f.nv], n)
		}
	}
}

// writeColumn writes top-level field f into rows lo..hi-1 at their cursors.
func (e *encoder) writeColumn(f *field, lo, hi int, b []byte, pos []int) {
	switch {
	case !e.useFast[f.top]:
		for r := lo; r < hi; r++ {
			pos[r] = e.writeField(f, r, b, pos[r])
		}
	case f.fast == fastStruct:
		e.writeStruct(f, lo, hi, b, pos)
	default:
		writeFast(&e.cols[f.col], f, e.nvCols[f.nv], lo, hi, b, pos)
	}
}

// Duplicate map keys
//
// A map value that holds a key twice would reach the server as a protobuf map
// that keeps only the last value of the key, so it makes its row fail. Keys
// are compared as protobuf compares them: integers after unit conversion,
// strings by their bytes, decimals by their value (equal values at one scale
// have equal text). Small maps compare every pair; larger ones go through a
// small open-addressing hash table.

// mapKey is one key of a map value: the key's integer value (integer and
// bool keys) or a hash of its bytes (string and decimal keys), and where it
// is: element j of the key column's values, entry k of the map's entries.
type mapKey struct {
	n    uint64
	j, k int32
}

var keySeed = maphash.MakeSeed()

// maxPairwiseKeys is the largest map whose keys are compared pairwise.
const maxPairwiseKeys = 8

// checkKeys fails the current row if entries start..end-1 of map field f
// (none of them null, nor their keys: the row would have failed) hold a key
// twice.
func (e *encoder) checkKeys(f *field, start, end int) {
	kf := f.val.fields[0]
	var c *col // the key values: the same col for every entry
	keys := e.keys[:0]
	for k := start; k < end; k++ {
		var j int
		if kc := &e.cols[kf.col]; kc.lay == layPlain {
			c, j = kc, k
		} else {
			c, j, _ = e.resolveLayers(kc, k)
		}
		var n uint64
		switch kf.val.wire {
		case wBytes:
			n = maphash.Bytes(keySeed, keyBytes(c, j))
		case wBool:
			if bitSet(c.raw, c.off+j) {
				n = 1
			}
		default:
			x, _ := c.intAt(j)
			n = uint64(x)
		}
		keys = append(keys, mapKey{n, int32(j), int32(k)})
	}
	e.keys = keys
	bytesKeys := kf.val.wire == wBytes
	same := func(x, y *mapKey) bool {
		return x.n == y.n && (!bytesKeys || bytes.Equal(keyBytes(c, int(x.j)), keyBytes(c, int(y.j))))
	}
	first, second := -1, -1
	if len(keys) <= maxPairwiseKeys {
	pairs:
		for i := 1; i < len(keys); i++ {
			for h := range i {
				if same(&keys[h], &keys[i]) {
					first, second = int(keys[h].k), int(keys[i].k)
					break pairs
				}
			}
		}
	} else {
		first, second = e.dupKey(keys, same)
	}
	if first < 0 {
		return
	}
	e.fail(kf.path, func() string {
		return fmt.Sprintf("duplicate map key %s (entries %d and %d of the map; a protobuf map keeps one value per key)",
			e.keyText(kf, second), first-start, second-start)
	})
}

// keyBytes is string or decimal key j of c: its bytes, or a decimal's
// fixed-width value (equal values at one scale have equal text).
func keyBytes(c *col, j int) []byte {
	if c.kind >= kDecimal32 && c.kind <= kDecimal256 {
		p := (c.off + j) * c.width
		return c.raw[p : p+c.width]
	}
	return c.bytesAt(j)
}

// dupKey returns the entry indices of the first key of keys found twice (the
// earlier entry first), or -1, -1, through a table at most half full of
// indices into keys plus one (0: empty), probed linearly from a
// multiplicative hash of n.
func (e *encoder) dupKey(keys []mapKey, same func(x, y *mapKey) bool) (int, int) {
	shift := 64 - bits.Len(uint(2*len(keys)-1))
	size := 1 << (64 - shift)
	tab := grow(e.keyTab, size)
	e.keyTab = tab
	clear(tab)
	for i := range keys {
		key := &keys[i]
		h := int((key.n * 0x9e3779b97f4a7c15) >> shift)
		for ; tab[h] != 0; h = (h + 1) & (size - 1) {
			if o := &keys[tab[h]-1]; same(o, key) {
				return int(o.k), int(key.k)
			}
		}
		tab[h] = int32(i + 1)
	}
	return -1, -1
}

// keyText shows key field kf of entry k for an error message.
func (e *encoder) keyText(kf *field, k int) string {
	c, j, _ := e.resolve(kf.col, k)
	switch kf.val.wire {
	case wBool:
		return strconv.FormatBool(bitSet(c.raw, c.off+j))
	case wBytes:
		b := e.bytes(c, j)
		if c.kind >= kDecimal32 && c.kind <= kDecimal256 {
			return string(b)
		}
		const maxShown = 64
		if len(b) > maxShown {
			return strconv.Quote(string(b[:maxShown])) + "..."
		}
		return strconv.Quote(string(b))
	}
	x, _ := c.intAt(j)
	if c.kind == kUint64 {
		return strconv.FormatUint(uint64(x), 10)
	}
	return strconv.FormatInt(x, 10)
}

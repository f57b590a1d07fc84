package arrowproto

import (
	"encoding/binary"
	"unsafe"
)

// Column fast paths: a top-level scalar column of a common type, read
// straight from its buffers by a loop specialised for the type, with no
// per-value dispatch. Everything else takes the general path (resolve, then
// switch on the value kind), which gives the same bytes.

type fastKind uint8

const (
	fastNone fastKind = iota
	fastVarint
	fastFloat32
	fastFloat64
	fastBool
	fastBinary
	fastLargeBinary
)

// fastKind picks the fast path of top-level field f, if it has one.
func (c *compiler) fastKind(f *field) fastKind {
	sp := &c.specs[f.col]
	if f.rep || f.required || sp.lay != layPlain {
		return fastNone
	}
	switch v := f.val; {
	case v.wire == wVarint && sp.kind >= kInt8 && sp.kind <= kUint32: // not kUint64, which may overflow
		return fastVarint
	case v.wire == wFloat && sp.kind == kFloat32:
		return fastFloat32
	case v.wire == wDouble && sp.kind == kFloat64:
		return fastFloat64
	case v.wire == wBool:
		return fastBool
	case v.wire == wBytes && sp.kind == kBinary:
		return fastBinary
	case v.wire == wBytes && sp.kind == kLargeBinary:
		return fastLargeBinary
	}
	return fastNone
}

type fixedInt interface {
	int8 | int16 | int32 | int64 | uint8 | uint16 | uint32
}

// view reinterprets the values of c as a []T covering its n elements, or
// returns nil if the buffer is not aligned for T (then the general path runs).
func view[T fixedInt | float32 | float64](b []byte, off, n int) []T {
	var zero T
	w := int(unsafe.Sizeof(zero))
	if n == 0 || uintptr(unsafe.Pointer(unsafe.SliceData(b)))%uintptr(w) != 0 {
		return nil
	}
	all := unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/w)
	return all[off : off+n]
}

func sizeFast(e *encoder, f *field, n int) bool {
	if f.fast == fastNone {
		return false
	}
	if n == 0 {
		return true
	}
	c := &e.cols[f.col]
	sizes := e.sizes[:n]
	t := f.tagLen
	nv := e.nvCols[f.top]
	switch f.fast {
	case fastVarint:
		switch c.kind {
		case kInt8:
			return sizeVarints(view[int8](c.raw, c.off, n), nv, t, sizes)
		case kInt16:
			return sizeVarints(view[int16](c.raw, c.off, n), nv, t, sizes)
		case kInt32:
			return sizeVarints(view[int32](c.raw, c.off, n), nv, t, sizes)
		case kInt64:
			return sizeVarints(view[int64](c.raw, c.off, n), nv, t, sizes)
		case kUint8:
			return sizeVarints(view[uint8](c.raw, c.off, n), nv, t, sizes)
		case kUint16:
			return sizeVarints(view[uint16](c.raw, c.off, n), nv, t, sizes)
		}
		return sizeVarints(view[uint32](c.raw, c.off, n), nv, t, sizes)
	case fastFloat32:
		sizeFixed(nv, t+4, sizes)
	case fastFloat64:
		sizeFixed(nv, t+8, sizes)
	case fastBool:
		sizeFixed(nv, t+1, sizes)
	case fastBinary:
		o := view[int32](c.offs, c.off, n+1)
		if o == nil {
			return false
		}
		sizeBinaries(o, nv, t, sizes)
	default: // fastLargeBinary
		o := view[int64](c.offs, c.off, n+1)
		if o == nil {
			return false
		}
		sizeBinaries(o, nv, t, sizes)
	}
	return true
}

// present turns a validity byte (0 or 1) into a mask of all ones or zero.
func present(v byte) int { return -int(v) }

func sizeVarints[T fixedInt](vals []T, nv []byte, t int, sizes []int) bool {
	if vals == nil {
		return false
	}
	sizes = sizes[:len(vals)]
	if nv == nil {
		for r, v := range vals {
			sizes[r] += t + varintLen(uint64(v))
		}
		return true
	}
	nv = nv[:len(vals)]
	for r, v := range vals {
		sizes[r] += (t + varintLen(uint64(v))) & present(nv[r])
	}
	return true
}

func sizeBinaries[O int32 | int64](o []O, nv []byte, t int, sizes []int) {
	o = o[:len(sizes)+1]
	if nv == nil {
		for r := range sizes {
			l := uint64(o[r+1] - o[r])
			sizes[r] += t + varintLen(l) + int(l)
		}
		return
	}
	nv = nv[:len(sizes)]
	for r := range sizes {
		l := uint64(o[r+1] - o[r])
		sizes[r] += (t + varintLen(l) + int(l)) & present(nv[r])
	}
}

func sizeFixed(nv []byte, sz int, sizes []int) {
	if nv == nil {
		for r := range sizes {
			sizes[r] += sz
		}
		return
	}
	nv = nv[:len(sizes)]
	for r := range sizes {
		sizes[r] += sz & present(nv[r])
	}
}

// unpackTable[b] holds the 8 bits of b as 8 bytes of 0 or 1.
var unpackTable = func() (t [256]uint64) {
	for b := range t {
		for i := 0; i < 8; i++ {
			if b&(1<<i) != 0 {
				t[b] |= 1 << (8 * i)
			}
		}
	}
	return t
}()

// unpackAll expands the validity of the fast top-level columns that have
// nulls, once for both passes.
func (e *encoder) unpackAll(n int) {
	e.nvCols = grow(e.nvCols, len(e.s.top))
	clear(e.nvCols)
	k := 0
	for _, f := range e.s.top {
		if f.fast != fastNone && e.cols[f.col].valid != nil {
			k++
		}
	}
	if k == 0 {
		return
	}
	e.nvBuf = grow(e.nvBuf, k*(n+8))
	at := 0
	for i, f := range e.s.top {
		if c := &e.cols[f.col]; f.fast != fastNone && c.valid != nil {
			e.nvCols[i] = unpack(e.nvBuf[at:at+n+8], c.valid, c.off, n)
			at += n + 8
		}
	}
}

// unpack expands validity bits off..off+n-1 into one byte (0 or 1) per
// element in dst, which has room for n+8 bytes.
func unpack(dst, bm []byte, off, n int) []byte {
	i := 0
	// Whole bytes of the bitmap, shifted when off is not a multiple of 8.
	for ; i+8 <= n && (off+i)/8+1 < len(bm); i += 8 {
		k, s := (off+i)>>3, uint(off+i)&7
		v := bm[k]>>s | bm[k+1]<<(8-s)
		binary.LittleEndian.PutUint64(dst[i:], unpackTable[v])
	}
	for ; i < n; i++ {
		dst[i] = bm[(off+i)>>3] >> ((off + i) & 7) & 1
	}
	return dst[:n]
}

// writeFast writes rows lo..hi-1 of top-level field f; pos holds the
// cursors of those rows.
func writeFast(e *encoder, f *field, lo, hi int, b []byte, pos []int) bool {
	if f.fast == fastNone {
		return false
	}
	n := hi - lo // at least 1
	c := &e.cols[f.col]
	pos = pos[lo:hi]
	off := c.off + lo // buffer position of row lo
	nv := e.nvCols[f.top]
	if nv != nil {
		nv = nv[lo:hi]
	}
	switch f.fast {
	case fastVarint:
		switch c.kind {
		case kInt8:
			return writeVarints(view[int8](c.raw, off, n), nv, f, b, pos)
		case kInt16:
			return writeVarints(view[int16](c.raw, off, n), nv, f, b, pos)
		case kInt32:
			return writeVarints(view[int32](c.raw, off, n), nv, f, b, pos)
		case kInt64:
			return writeVarints(view[int64](c.raw, off, n), nv, f, b, pos)
		case kUint8:
			return writeVarints(view[uint8](c.raw, off, n), nv, f, b, pos)
		case kUint16:
			return writeVarints(view[uint16](c.raw, off, n), nv, f, b, pos)
		}
		return writeVarints(view[uint32](c.raw, off, n), nv, f, b, pos)
	case fastFloat32:
		for r, p := range pos {
			if nv == nil || nv[r] != 0 {
				p = putTag(b, p, f.tag, f.tagLen)
				k := 4 * (off + r)
				pos[r] = p + copy(b[p:p+4], c.raw[k:k+4])
			}
		}
	case fastFloat64:
		for r, p := range pos {
			if nv == nil || nv[r] != 0 {
				p = putTag(b, p, f.tag, f.tagLen)
				k := 8 * (off + r)
				binary.LittleEndian.PutUint64(b[p:], binary.LittleEndian.Uint64(c.raw[k:]))
				pos[r] = p + 8
			}
		}
	case fastBool:
		for r, p := range pos {
			if nv == nil || nv[r] != 0 {
				p = putTag(b, p, f.tag, f.tagLen)
				if bitSet(c.raw, off+r) {
					b[p] = 1
				}
				pos[r] = p + 1
			}
		}
	case fastBinary:
		o := view[int32](c.offs, off, n+1)
		if o == nil {
			return false
		}
		for r, p := range pos {
			if nv == nil || nv[r] != 0 {
				d := c.data[o[r]:o[r+1]]
				p = putTag(b, p, f.tag, f.tagLen)
				p = putVarint(b, p, uint64(len(d)))
				pos[r] = p + copy(b[p:], d)
			}
		}
	default: // fastLargeBinary
		o := view[int64](c.offs, off, n+1)
		if o == nil {
			return false
		}
		for r, p := range pos {
			if nv == nil || nv[r] != 0 {
				d := c.data[o[r]:o[r+1]]
				p = putTag(b, p, f.tag, f.tagLen)
				p = putVarint(b, p, uint64(len(d)))
				pos[r] = p + copy(b[p:], d)
			}
		}
	}
	return true
}

func writeVarints[T fixedInt](vals []T, nv []byte, f *field, b []byte, pos []int) bool {
	if vals == nil {
		return false
	}
	pos = pos[:len(vals)]
	for r, v := range vals {
		if nv == nil || nv[r] != 0 {
			p := putTag(b, pos[r], f.tag, f.tagLen)
			pos[r] = putVarint(b, p, uint64(v))
		}
	}
	return true
}

// Packed lists of a plain column without nulls, of a kind whose values can
// never fail: one loop over the elements, no per-element dispatch.

func packFastKind(k vkind, v *value) bool {
	switch v.wire {
	case wVarint:
		return k >= kInt8 && k <= kUint32 // not kUint64, which may overflow
	case wFloat:
		return k == kFloat32
	case wDouble:
		return k == kFloat64
	case wBool:
		return k == kBool
	}
	return false
}

// packedSize is the payload size of elements start..end-1 of c.
func packedSize(c *col, start, end int) int {
	n := end - start
	k0 := c.off + start
	switch c.kind {
	case kFloat32:
		return 4 * n
	case kFloat64:
		return 8 * n
	case kBool:
		return n
	}
	total := 0
	for k := k0; k < k0+n; k++ {
		total += varintLen(varintValue(c, k))
	}
	return total
}

// varintValue is the varint of integer element at buffer position k.
func varintValue(c *col, k int) uint64 {
	switch c.kind {
	case kInt64:
		return le64(c.raw, k)
	case kInt32:
		return uint64(int64(int32(le32(c.raw, k))))
	case kInt16:
		return uint64(int64(int16(le16(c.raw, k))))
	case kInt8:
		return uint64(int64(int8(c.raw[k])))
	case kUint32:
		return uint64(le32(c.raw, k))
	case kUint16:
		return uint64(le16(c.raw, k))
	}
	return uint64(c.raw[k]) // kUint8
}

// packedWrite writes elements start..end-1 of c at b[p:].
func packedWrite(c *col, start, end int, b []byte, p int) int {
	k0, k1 := c.off+start, c.off+end
	switch c.kind {
	case kFloat32:
		return p + copy(b[p:], c.raw[4*k0:4*k1])
	case kFloat64:
		return p + copy(b[p:], c.raw[8*k0:8*k1])
	case kBool:
		for k := k0; k < k1; k++ {
			if bitSet(c.raw, k) {
				b[p] = 1
			} else {
				b[p] = 0
			}
			p++
		}
		return p
	case kInt64:
		for k := k0; k < k1; k++ {
			p = putVarint(b, p, le64(c.raw, k))
		}
		return p
	}
	for k := k0; k < k1; k++ {
		p = putVarint(b, p, varintValue(c, k))
	}
	return p
}

package arrowproto

import (
	"encoding/binary"
	"unsafe"
)

// Column fast paths: a top-level scalar column of a common type, or a
// top-level struct column whose fields all are such scalars, read straight
// from its buffers by loops specialised for the type, with no per-value
// dispatch. Everything else, and any column whose buffers are not aligned for
// their type, takes the general path (resolve, then switch on the value
// kind), which gives the same bytes.

type fastKind uint8

const (
	fastNone fastKind = iota
	fastVarint
	fastFloat32
	fastFloat64
	fastBool
	fastBinary
	fastLargeBinary
	fastStruct // a struct of fast scalars
)

// fastKind picks the fast path of field f (top-level, or a field of a
// top-level struct), if it has one.
func (c *compiler) fastKind(f *field) fastKind {
	sp := &c.specs[f.col]
	if f.rep || f.required || f.nullErr != "" || sp.lay != layPlain {
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
	case v.wire == wMessage && sp.kind == kStruct && len(v.fields) > 0:
		kinds := make([]fastKind, len(v.fields))
		for i, cf := range v.fields {
			if kinds[i] = c.fastKind(cf); kinds[i] == fastNone || kinds[i] == fastStruct {
				return fastNone
			}
		}
		for i, cf := range v.fields {
			cf.fast = kinds[i]
		}
		return fastStruct
	}
	return fastNone
}

// assignNV numbers the unpacked validity tables of fast field f (and of its
// fields, for a struct), from *next on.
func assignNV(f *field, next *int) {
	f.nv = *next
	*next++
	if f.fast == fastStruct {
		for _, cf := range f.val.fields {
			assignNV(cf, next)
		}
	}
}

type fixedInt interface {
	int8 | int16 | int32 | int64 | uint8 | uint16 | uint32
}

var kindWidth = [...]int{kInt8: 1, kInt16: 2, kInt32: 4, kInt64: 8, kUint8: 1, kUint16: 2, kUint32: 4}

func aligned(b []byte, w int) bool {
	return uintptr(unsafe.Pointer(unsafe.SliceData(b)))%uintptr(w) == 0
}

// fastAligned reports whether the buffers the fast path of f reads through
// typed views are aligned for their type (they usually are; IPC and C data
// do not promise it).
func (e *encoder) fastAligned(f *field) bool {
	c := &e.cols[f.col]
	switch f.fast {
	case fastVarint:
		return aligned(c.raw, kindWidth[c.kind])
	case fastBinary:
		return aligned(c.offs, 4)
	case fastLargeBinary:
		return aligned(c.offs, 8)
	case fastStruct:
		for _, cf := range f.val.fields {
			if !e.fastAligned(cf) {
				return false
			}
		}
	}
	return true
}

// view reinterprets b, which fastAligned has checked, as a []T and returns
// elements off..off+n-1.
func view[T fixedInt](b []byte, off, n int) []T {
	var zero T
	w := int(unsafe.Sizeof(zero))
	all := unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/w)
	return all[off : off+n]
}

// sizeFast adds the bytes of fast scalar field f, for elements 0..n-1 of its
// column, to sizes; nv is the field's unpacked validity (nil: no nulls).
func sizeFast(c *col, f *field, nv []byte, sizes []int) {
	n, t := len(sizes), f.tagLen
	if n == 0 {
		return
	}
	switch f.fast {
	case fastVarint:
		switch c.kind {
		case kInt8:
			sizeVarints(view[int8](c.raw, c.off, n), nv, t, sizes)
		case kInt16:
			sizeVarints(view[int16](c.raw, c.off, n), nv, t, sizes)
		case kInt32:
			sizeVarints(view[int32](c.raw, c.off, n), nv, t, sizes)
		case kInt64:
			sizeVarints(view[int64](c.raw, c.off, n), nv, t, sizes)
		case kUint8:
			sizeVarints(view[uint8](c.raw, c.off, n), nv, t, sizes)
		case kUint16:
			sizeVarints(view[uint16](c.raw, c.off, n), nv, t, sizes)
		default:
			sizeVarints(view[uint32](c.raw, c.off, n), nv, t, sizes)
		}
	case fastFloat32:
		sizeFixed(nv, t+4, sizes)
	case fastFloat64:
		sizeFixed(nv, t+8, sizes)
	case fastBool:
		sizeFixed(nv, t+1, sizes)
	case fastBinary:
		sizeBinaries(view[int32](c.offs, c.off, n+1), nv, t, sizes)
	default: // fastLargeBinary
		sizeBinaries(view[int64](c.offs, c.off, n+1), nv, t, sizes)
	}
}

// present turns a validity byte (0 or 1) into a mask of all ones or zero.
func present(v byte) int { return -int(v) }

func sizeVarints[T fixedInt](vals []T, nv []byte, t int, sizes []int) {
	sizes = sizes[:len(vals)]
	if nv == nil {
		for r, v := range vals {
			sizes[r] += t + varintLen(uint64(v))
		}
		return
	}
	nv = nv[:len(vals)]
	for r, v := range vals {
		sizes[r] += (t + varintLen(uint64(v))) & present(nv[r])
	}
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

// sizeStruct adds a fast struct column's size to every row, and records
// each row's message length in the struct's size table.
func (e *encoder) sizeStruct(f *field, sizes []int) {
	body := e.slots[f.val.slot][:len(sizes)]
	clear(body)
	for _, cf := range f.val.fields {
		c := &e.cols[cf.col]
		sizeFast(c, cf, e.nvCols[cf.nv], body)
		if c.utf8 {
			e.checkUTF8(c, cf, e.nvCols[cf.nv], len(body))
		}
	}
	sv := e.nvCols[f.nv]
	for r, l := range body {
		if sv == nil || sv[r] != 0 {
			sizes[r] += f.tagLen + varintLen(uint64(l)) + l
		}
	}
}

// writeStruct writes a fast struct column into rows lo..hi-1.
func (e *encoder) writeStruct(f *field, lo, hi int, b []byte, pos []int) {
	body := e.slots[f.val.slot]
	sv := e.nvCols[f.nv]
	for r := lo; r < hi; r++ {
		if sv == nil || sv[r] != 0 {
			p := putTag(b, pos[r], f.tag, f.tagLen)
			pos[r] = putVarint(b, p, uint64(body[r]))
		}
	}
	for _, cf := range f.val.fields {
		writeFast(&e.cols[cf.col], cf, e.nvCols[cf.nv], lo, hi, b, pos)
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

// unpackAll decides which top-level columns take their fast path for this
// batch, and expands the validity bitmaps those paths read into one byte per
// row, once for both passes. The fields of a fast struct see the struct's
// nulls as their own.
func (e *encoder) unpackAll(n int) {
	top := e.s.top
	e.useFast = grow(e.useFast, len(top))
	e.nvCols = grow(e.nvCols, e.s.nnv)
	clear(e.nvCols)
	need := 0
	for i, f := range top {
		e.useFast[i] = f.fast != fastNone && e.fastAligned(f)
		if e.useFast[i] {
			need += e.nvNeeded(f)
		}
	}
	e.nvBuf = grow(e.nvBuf, need*(n+8))
	buf := e.nvBuf
	next := func(bm []byte, off int) []byte {
		dst := buf[:n+8]
		buf = buf[n+8:]
		return unpack(dst, bm, off, n)
	}
	for i, f := range top {
		if !e.useFast[i] {
			continue
		}
		c := &e.cols[f.col]
		if c.valid != nil {
			e.nvCols[f.nv] = next(c.valid, c.off)
		}
		if f.fast != fastStruct {
			continue
		}
		sv := e.nvCols[f.nv]
		for _, cf := range f.val.fields {
			cc := &e.cols[cf.col]
			switch {
			case cc.valid == nil:
				e.nvCols[cf.nv] = sv
			case sv == nil:
				e.nvCols[cf.nv] = next(cc.valid, cc.off)
			default:
				nv := next(cc.valid, cc.off)
				for r := range nv {
					nv[r] &= sv[r]
				}
				e.nvCols[cf.nv] = nv
			}
		}
	}
}

// nvNeeded counts the validity tables field f needs unpacked.
func (e *encoder) nvNeeded(f *field) int {
	k := 0
	if e.cols[f.col].valid != nil {
		k++
	}
	if f.fast == fastStruct {
		for _, cf := range f.val.fields {
			if e.cols[cf.col].valid != nil {
				k++
			}
		}
	}
	return k
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

// writeFast writes fast scalar field f into rows lo..hi-1 (elements lo..hi-1
// of its column); pos holds the rows' cursors, nv the field's validity.
func writeFast(c *col, f *field, nv []byte, lo, hi int, b []byte, pos []int) {
	n := hi - lo // at least 1
	pos = pos[lo:hi]
	off := c.off + lo // buffer position of row lo
	if nv != nil {
		nv = nv[lo:hi]
	}
	switch f.fast {
	case fastVarint:
		switch c.kind {
		case kInt8:
			writeVarints(view[int8](c.raw, off, n), nv, f, b, pos)
		case kInt16:
			writeVarints(view[int16](c.raw, off, n), nv, f, b, pos)
		case kInt32:
			writeVarints(view[int32](c.raw, off, n), nv, f, b, pos)
		case kInt64:
			writeVarints(view[int64](c.raw, off, n), nv, f, b, pos)
		case kUint8:
			writeVarints(view[uint8](c.raw, off, n), nv, f, b, pos)
		case kUint16:
			writeVarints(view[uint16](c.raw, off, n), nv, f, b, pos)
		default:
			writeVarints(view[uint32](c.raw, off, n), nv, f, b, pos)
		}
	case fastFloat32:
		tag, tagLen, raw := f.tag, f.tagLen, c.raw
		for r, p := range pos {
			if nv == nil || nv[r] != 0 {
				p = putTag(b, p, tag, tagLen)
				binary.LittleEndian.PutUint32(b[p:], le32(raw, off+r))
				pos[r] = p + 4
			}
		}
	case fastFloat64:
		tag, tagLen, raw := f.tag, f.tagLen, c.raw
		for r, p := range pos {
			if nv == nil || nv[r] != 0 {
				p = putTag(b, p, tag, tagLen)
				binary.LittleEndian.PutUint64(b[p:], le64(raw, off+r))
				pos[r] = p + 8
			}
		}
	case fastBool:
		tag, tagLen, raw := f.tag, f.tagLen, c.raw
		for r, p := range pos {
			if nv == nil || nv[r] != 0 {
				p = putTag(b, p, tag, tagLen)
				b[p] = raw[(off+r)>>3] >> ((off + r) & 7) & 1 // the arena is not zeroed: write false too
				pos[r] = p + 1
			}
		}
	case fastBinary:
		writeBinaries(view[int32](c.offs, off, n+1), c.data, nv, f, b, pos)
	default: // fastLargeBinary
		writeBinaries(view[int64](c.offs, off, n+1), c.data, nv, f, b, pos)
	}
}

func writeBinaries[O int32 | int64](o []O, data, nv []byte, f *field, b []byte, pos []int) {
	o = o[:len(pos)+1]
	tag, tagLen := f.tag, f.tagLen
	for r, p := range pos {
		if nv == nil || nv[r] != 0 {
			d := data[o[r]:o[r+1]]
			p = putTag(b, p, tag, tagLen)
			p = putVarint(b, p, uint64(len(d)))
			pos[r] = p + copy(b[p:], d)
		}
	}
}

func writeVarints[T fixedInt](vals []T, nv []byte, f *field, b []byte, pos []int) {
	pos = pos[:len(vals)]
	tag, tagLen := f.tag, f.tagLen
	for r, v := range vals {
		if nv == nil || nv[r] != 0 {
			p := putTag(b, pos[r], tag, tagLen)
			pos[r] = putVarint(b, p, uint64(v))
		}
	}
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

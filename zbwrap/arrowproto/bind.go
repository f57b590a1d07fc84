package arrowproto

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// col is a colSpec bound to the array of one batch. Logical element i of the
// col is at position off+i of its buffers.
type col struct {
	lay   layout
	kind  vkind
	n     int
	off   int
	valid []byte // validity bitmap; nil when the array has no nulls
	raw   []byte // fixed-width values, bool bitmap, views, dictionary indices
	offs  []byte // offsets (binary, lists); run ends (REE)
	lens  []byte // list view sizes
	data  []byte // binary values
	bufs  []*memory.Buffer
	width int
	utf8  bool // values must be checked for UTF-8 one by one (spec's utf8, unless all were found valid at bind)
	mult  int64
	div   int64
	scale int32
	child int // spec of the values (dict, REE) or elements (lists)
	reOff int // REE: run ends offset and length
	reN   int
	hint  int // REE: last physical index found
}

func le16(b []byte, k int) uint16 { return binary.LittleEndian.Uint16(b[2*k:]) }
func le32(b []byte, k int) uint32 { return binary.LittleEndian.Uint32(b[4*k:]) }
func le64(b []byte, k int) uint64 { return binary.LittleEndian.Uint64(b[8*k:]) }

func bitSet(b []byte, i int) bool { return b[i>>3]&(1<<(i&7)) != 0 }

func (c *col) validAt(i int) bool {
	return c.valid == nil || bitSet(c.valid, c.off+i)
}

// intAt returns integer-like element j converted per the kind (units folded
// in), and whether the conversion overflowed int64.
func (c *col) intAt(j int) (int64, bool) {
	k := c.off + j
	switch c.kind {
	case kInt8:
		return int64(int8(c.raw[k])), false
	case kUint8:
		return int64(c.raw[k]), false
	case kInt16:
		return int64(int16(le16(c.raw, k))), false
	case kUint16:
		return int64(le16(c.raw, k)), false
	case kInt32:
		return int64(int32(le32(c.raw, k))), false
	case kUint32:
		return int64(le32(c.raw, k)), false
	case kInt64, kUint64:
		return int64(le64(c.raw, k)), false
	case kScaled32:
		return int64(int32(le32(c.raw, k))) * c.mult, false
	case kScaled64:
		v := int64(le64(c.raw, k))
		return v * c.mult, v > math.MaxInt64/c.mult || v < math.MinInt64/c.mult
	}
	// kFloor64, kDate64
	return floorDiv(int64(le64(c.raw, k)), c.div), false
}

// floorDiv divides rounding toward negative infinity (d > 0).
func floorDiv(v, d int64) int64 {
	q := v / d
	if v%d < 0 {
		q--
	}
	return q
}

// float32Bits returns element j as the bits of a float32 (float16 widened).
func (c *col) float32Bits(j int) uint32 {
	k := c.off + j
	if c.kind == kFloat16 {
		return f16to32(le16(c.raw, k))
	}
	return le32(c.raw, k)
}

// float64Bits returns element j as the bits of a float64.
func (c *col) float64Bits(j int) uint64 {
	k := c.off + j
	switch c.kind {
	case kFloat64:
		return le64(c.raw, k)
	case kFloat16:
		return math.Float64bits(float64(math.Float32frombits(f16to32(le16(c.raw, k)))))
	}
	return math.Float64bits(float64(math.Float32frombits(le32(c.raw, k))))
}

// f16to32 widens IEEE half-precision bits to single precision, exactly
// (subnormals, infinities and NaN payloads included).
func f16to32(h uint16) uint32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	man := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f:
		return sign | 0x7f800000 | man<<13
	case exp != 0:
		return sign | (exp+112)<<23 | man<<13
	case man == 0:
		return sign
	}
	// Subnormal half: normalize.
	e := uint32(113)
	for man&0x400 == 0 {
		man <<= 1
		e--
	}
	return sign | e<<23 | (man&0x3ff)<<13
}

// bytesAt returns binary-like element j.
func (c *col) bytesAt(j int) []byte {
	k := c.off + j
	switch c.kind {
	case kBinary:
		return c.data[le32(c.offs, k):le32(c.offs, k+1)]
	case kLargeBinary:
		return c.data[le64(c.offs, k):le64(c.offs, k+1)]
	case kFixedBinary:
		return c.raw[k*c.width : (k+1)*c.width]
	}
	// kBinaryView
	v := c.raw[16*k : 16*k+16]
	size := int(int32(binary.LittleEndian.Uint32(v)))
	if size <= 12 {
		return v[4 : 4+size]
	}
	buf := c.bufs[binary.LittleEndian.Uint32(v[8:])].Bytes()
	o := int(binary.LittleEndian.Uint32(v[12:]))
	return buf[o : o+size]
}

// listRange returns the element range of list-like element j.
func (c *col) listRange(j int) (int, int) {
	k := c.off + j
	switch c.kind {
	case kList, kMap:
		return int(int32(le32(c.offs, k))), int(int32(le32(c.offs, k+1)))
	case kLargeList:
		return int(int64(le64(c.offs, k))), int(int64(le64(c.offs, k+1)))
	case kListView:
		s := int(int32(le32(c.offs, k)))
		return s, s + int(int32(le32(c.lens, k)))
	case kLargeListView:
		s := int(int64(le64(c.offs, k)))
		return s, s + int(int64(le64(c.lens, k)))
	}
	// kFixedList
	return k * c.width, (k + 1) * c.width
}

// index returns dictionary index i.
func (c *col) index(i int) int {
	v, _ := c.intAt(i)
	return int(v)
}

// runEnd returns run end p.
func (c *col) runEnd(p int) int64 {
	k := c.reOff + p
	switch c.kind {
	case kInt16:
		return int64(int16(le16(c.offs, k)))
	case kInt32:
		return int64(int32(le32(c.offs, k)))
	}
	return int64(le64(c.offs, k))
}

// physical returns the values index of run-end encoded element i.
func (c *col) physical(i int) int {
	pos := int64(c.off + i)
	// Elements are mostly visited in order: try the last run and the next.
	if h := c.hint; h < c.reN && c.runEnd(h) > pos && (h == 0 || c.runEnd(h-1) <= pos) {
		return h
	}
	if h := c.hint + 1; h < c.reN && c.runEnd(h) > pos && c.runEnd(h-1) <= pos {
		c.hint = h
		return h
	}
	lo, hi := 0, c.reN
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if c.runEnd(m) > pos {
			hi = m
		} else {
			lo = m + 1
		}
	}
	c.hint = lo
	return lo
}

// Binding: every check below keeps the encoder's reads within the buffers as
// Go knows them, so malformed data (from IPC or hand-built arrays) is an
// ErrInvalidData error instead of a panic. Arrays imported through the C data
// interface come with buffer lengths derived from their own length, offset
// and offsets (the interface carries none): a buffer shorter than the array
// claims cannot be detected here.

func invalid(path, format string, args ...any) error {
	return fmt.Errorf("%w: column %q: %s", ErrInvalidData, path, fmt.Sprintf(format, args...))
}

func bufBytes(d arrow.ArrayData, i int) []byte {
	bs := d.Buffers()
	if i >= len(bs) || bs[i] == nil {
		return nil
	}
	return bs[i].Bytes()
}

// isNil reports whether d is nil, including a nil *array.Data in an
// interface (what array.Data.Dictionary returns when there is none).
func isNil(d arrow.ArrayData) bool {
	if x, ok := d.(*array.Data); ok {
		return x == nil
	}
	return d == nil
}

func storageID(dt arrow.DataType) arrow.Type {
	for {
		ext, ok := dt.(arrow.ExtensionType)
		if !ok {
			return dt.ID()
		}
		dt = ext.StorageType()
	}
}

// bind binds spec id to data d, whose logical elements x..x+n-1 the col covers.
func (e *encoder) bind(id int, d arrow.ArrayData, x, n int) error {
	sp := &e.s.specs[id]
	if isNil(d) {
		return invalid(sp.path, "missing array data")
	}
	if got := storageID(d.DataType()); int(got) != sp.typeID {
		return invalid(sp.path, "array type %s, the schema says %s", strings.ToLower(got.String()), strings.ToLower(arrow.Type(sp.typeID).String()))
	}
	if d.Offset() < 0 || x < 0 || n < 0 || x+n > d.Len() {
		return invalid(sp.path, "array of length %d cannot hold elements %d..%d", d.Len(), x, x+n)
	}
	c := &e.cols[id]
	*c = col{lay: sp.lay, kind: sp.kind, n: n, off: d.Offset() + x, width: sp.width, mult: sp.mult, div: sp.div, scale: sp.scale}
	end := c.off + n
	if sp.lay != layREE && sp.kind != kNull && d.NullN() != 0 {
		c.valid = bufBytes(d, 0)
		if len(c.valid)*8 < end {
			return invalid(sp.path, "validity bitmap too short")
		}
	}
	switch {
	case sp.lay == layDict:
		return e.bindDict(c, sp, d, end)
	case sp.lay == layREE:
		return e.bindREE(c, sp, d, end)
	}
	switch sp.kind {
	case kNull:
		return nil
	case kBool:
		c.raw = bufBytes(d, 1)
		if len(c.raw)*8 < end {
			return invalid(sp.path, "values buffer too short")
		}
	case kBinary, kLargeBinary:
		c.offs, c.data = bufBytes(d, 1), bufBytes(d, 2)
		if err := checkOffsets(sp, c.offs, c.off, n, sp.kind == kLargeBinary, len(c.data)); err != nil {
			return err
		}
		c.utf8 = sp.utf8 && n > 0 && !allUTF8(c, n)
	case kBinaryView:
		c.utf8 = sp.utf8
		return e.bindViews(c, sp, d, end)
	case kStruct:
		ch := d.Children()
		if len(ch) != len(sp.children) {
			return invalid(sp.path, "struct has %d children, the schema says %d", len(ch), len(sp.children))
		}
		for i, cid := range sp.children {
			if err := e.bind(cid, ch[i], c.off, n); err != nil {
				return err
			}
		}
	case kList, kLargeList, kMap, kListView, kLargeListView, kFixedList:
		return e.bindList(c, sp, d, n)
	default: // fixed width: numbers, temporals, decimals, fixed size binary
		c.raw = bufBytes(d, 1)
		if len(c.raw) < end*sp.width {
			return invalid(sp.path, "values buffer too short")
		}
	}
	return nil
}

// checkOffsets verifies offsets off..off+n are non-decreasing, from >= 0, up
// to at most limit.
func checkOffsets(sp *colSpec, b []byte, off, n int, large bool, limit int) error {
	w := 4
	if large {
		w = 8
	}
	if len(b) < (off+n+1)*w {
		if n == 0 && len(b) == 0 {
			return nil // an empty array may have no offsets buffer
		}
		return invalid(sp.path, "offsets buffer too short")
	}
	var first, last int64
	var ok bool
	switch {
	case large && aligned(b, 8):
		first, last, ok = monotonic(view[int64](b, off, n+1))
	case large:
		first, last, ok = monotonicBytes(b, off, n, func(b []byte, k int) int64 { return int64(le64(b, k)) })
	case aligned(b, 4):
		first, last, ok = monotonic(view[int32](b, off, n+1))
	default:
		first, last, ok = monotonicBytes(b, off, n, func(b []byte, k int) int64 { return int64(int32(le32(b, k))) })
	}
	switch {
	case first < 0:
		return invalid(sp.path, "negative offset")
	case !ok:
		return invalid(sp.path, "offsets decrease")
	case last > int64(limit):
		return invalid(sp.path, "offset %d beyond the values (%d)", last, limit)
	}
	return nil
}

// allUTF8 reports whether every value of string col c (n > 0 values, offsets
// checked) is valid UTF-8, looking at all their bytes at once: the bytes the
// values cover must be valid UTF-8 as a whole, and no value may start inside
// a multi-byte character. (Valid as a whole, the bytes could still split a
// character between two values: "\xc3" and "\xa9" make "é".) It reports
// false for offsets not aligned for their type; the values are then checked
// one by one.
func allUTF8(c *col, n int) bool {
	if c.kind == kLargeBinary {
		return aligned(c.offs, 8) && valuesUTF8(view[int64](c.offs, c.off, n+1), c.data)
	}
	return aligned(c.offs, 4) && valuesUTF8(view[int32](c.offs, c.off, n+1), c.data)
}

func valuesUTF8[O int32 | int64](o []O, data []byte) bool {
	first, last := o[0], o[len(o)-1]
	if d := data[first:last]; isASCII(d) {
		return true // and an ASCII byte always starts a character
	} else if !utf8.Valid(d) {
		return false
	}
	for _, x := range o[1 : len(o)-1] {
		if x < last && !utf8.RuneStart(data[x]) {
			return false
		}
	}
	return true
}

// isASCII reports whether b holds only ASCII bytes, reading 32 bytes at a
// time (as fast as utf8.Valid on ASCII; the gain is that ASCII text needs no
// look at the value boundaries).
func isASCII(b []byte) bool {
	const high = 0x8080808080808080
	for len(b) >= 32 {
		le := binary.LittleEndian
		if (le.Uint64(b)|le.Uint64(b[8:])|le.Uint64(b[16:])|le.Uint64(b[24:]))&high != 0 {
			return false
		}
		b = b[32:]
	}
	var acc byte
	for _, c := range b {
		acc |= c
	}
	return acc < 0x80
}

// monotonic reports the first and last of offsets o and whether they never
// decrease.
func monotonic[O int32 | int64](o []O) (first, last int64, ok bool) {
	ok = true
	for i := 0; i+1 < len(o); i++ {
		if o[i+1] < o[i] {
			ok = false
		}
	}
	return int64(o[0]), int64(o[len(o)-1]), ok
}

// monotonicBytes is monotonic for offsets off..off+n of a buffer that is not
// aligned for their type, read through get.
func monotonicBytes(b []byte, off, n int, get func([]byte, int) int64) (first, last int64, ok bool) {
	first, ok = get(b, off), true
	prev := first
	for k := off + 1; k <= off+n; k++ {
		v := get(b, k)
		ok = ok && v >= prev
		prev = v
	}
	return first, prev, ok
}

func (e *encoder) bindViews(c *col, sp *colSpec, d arrow.ArrayData, end int) error {
	c.raw = bufBytes(d, 1)
	if len(c.raw) < 16*end {
		return invalid(sp.path, "views buffer too short")
	}
	if bs := d.Buffers(); len(bs) > 2 {
		c.bufs = bs[2:]
	}
	for k := c.off; k < end; k++ {
		if c.valid != nil && !bitSet(c.valid, k) {
			continue
		}
		v := c.raw[16*k:]
		size := int64(int32(binary.LittleEndian.Uint32(v)))
		if size < 0 {
			return invalid(sp.path, "negative view size at element %d", k-c.off)
		}
		if size <= 12 {
			continue
		}
		bi := int64(binary.LittleEndian.Uint32(v[8:]))
		o := int64(binary.LittleEndian.Uint32(v[12:]))
		if bi >= int64(len(c.bufs)) || c.bufs[bi] == nil || o+size > int64(c.bufs[bi].Len()) {
			return invalid(sp.path, "view at element %d points outside its data buffers", k-c.off)
		}
	}
	return nil
}

func (e *encoder) bindList(c *col, sp *colSpec, d arrow.ArrayData, n int) error {
	ch := d.Children()
	if len(ch) != 1 || isNil(ch[0]) {
		return invalid(sp.path, "list array without its values")
	}
	c.child = sp.children[0]
	clen := ch[0].Len()
	switch sp.kind {
	case kList, kMap, kLargeList:
		c.offs = bufBytes(d, 1)
		if err := checkOffsets(sp, c.offs, c.off, n, sp.kind == kLargeList, clen); err != nil {
			return err
		}
	case kListView, kLargeListView:
		c.offs, c.lens = bufBytes(d, 1), bufBytes(d, 2)
		w := 4
		if sp.kind == kLargeListView {
			w = 8
		}
		end := c.off + n
		if len(c.offs) < end*w || len(c.lens) < end*w {
			return invalid(sp.path, "list view buffers too short")
		}
		for k := c.off; k < end; k++ {
			if c.valid != nil && !bitSet(c.valid, k) {
				continue
			}
			var o, s int64
			if w == 4 {
				o, s = int64(int32(le32(c.offs, k))), int64(int32(le32(c.lens, k)))
			} else {
				o, s = int64(le64(c.offs, k)), int64(le64(c.lens, k))
			}
			if o < 0 || s < 0 || o > int64(clen) || s > int64(clen)-o {
				return invalid(sp.path, "list view element %d is outside its values", k-c.off)
			}
		}
	case kFixedList:
		if c.width < 0 || int64(c.off+n)*int64(c.width) > int64(clen) {
			return invalid(sp.path, "fixed size list values too short")
		}
	}
	return e.bind(c.child, ch[0], 0, clen)
}

func (e *encoder) bindDict(c *col, sp *colSpec, d arrow.ArrayData, end int) error {
	dict := d.Dictionary()
	if isNil(dict) {
		return invalid(sp.path, "dictionary array without a dictionary")
	}
	c.child = sp.children[0]
	w := map[vkind]int{kInt8: 1, kUint8: 1, kInt16: 2, kUint16: 2, kInt32: 4, kUint32: 4, kInt64: 8, kUint64: 8}[sp.kind]
	c.raw = bufBytes(d, 1)
	if len(c.raw) < end*w {
		return invalid(sp.path, "dictionary indices too short")
	}
	dn := dict.Len()
	for k := c.off; k < end; k++ {
		if c.valid != nil && !bitSet(c.valid, k) {
			continue
		}
		if v, _ := c.intAt(k - c.off); v < 0 || v >= int64(dn) || (sp.kind == kUint64 && int64(le64(c.raw, k)) < 0) {
			return invalid(sp.path, "dictionary index %d at element %d is outside the dictionary (%d values)", v, k-c.off, dn)
		}
	}
	return e.bind(c.child, dict, 0, dn)
}

func (e *encoder) bindREE(c *col, sp *colSpec, d arrow.ArrayData, end int) error {
	ch := d.Children()
	if len(ch) != 2 || isNil(ch[0]) || isNil(ch[1]) {
		return invalid(sp.path, "run-end encoded array without run ends and values")
	}
	re := ch[0]
	c.child = sp.children[0]
	c.offs, c.reOff, c.reN = bufBytes(re, 1), re.Offset(), re.Len()
	w := map[vkind]int{kInt16: 2, kInt32: 4, kInt64: 8}[sp.kind]
	if k, _ := intKind(re.DataType()); k != sp.kind {
		return invalid(sp.path, "run ends of type %s, the schema says another", re.DataType())
	}
	if c.reOff < 0 || len(c.offs) < (c.reOff+c.reN)*w {
		return invalid(sp.path, "run ends buffer too short")
	}
	if re.NullN() != 0 {
		return invalid(sp.path, "run ends contain nulls")
	}
	if ch[1].Len() < c.reN {
		return invalid(sp.path, "fewer values (%d) than runs (%d)", ch[1].Len(), c.reN)
	}
	prev := int64(0)
	for p := 0; p < c.reN; p++ {
		v := c.runEnd(p)
		if v <= prev {
			return invalid(sp.path, "run ends must be positive and increasing")
		}
		prev = v
	}
	if end > c.off && prev < int64(end) {
		return invalid(sp.path, "run ends stop at %d, before the array's end %d", prev, end)
	}
	return e.bind(c.child, ch[1], 0, ch[1].Len())
}

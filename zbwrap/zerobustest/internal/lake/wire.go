package lake

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Records are read straight off the protobuf wire format, guided by a plan
// compiled once per Binding: no generic protobuf message is built. The
// reading follows what protobuf's own parser does with the stream's
// descriptor, exactly: a singular scalar sent twice keeps the last value, a
// singular message sent twice is merged, a oneof keeps its last member, a
// repeated scalar may come packed or not, a map entry lacking its key or
// value gets the default, a later map entry replaces an earlier one with the
// same key, a field with the wrong wire type is an unknown field, and
// messages nest at most recursionLimit deep.
//
// Each message is read in two steps: scan records where each of its fields
// occurs (and finds bad wire data at its level), then its fields are checked
// or appended in column order, nested messages recursively. protobuf parses
// a whole record before anything is checked, so bad wire data anywhere comes
// before any other error: when a check fails, wireCheck parses the whole
// record again for protobuf's verdict. A record passes only if every byte
// protobuf parses was read; the bytes a passing walk skips (a oneof member a
// later one replaced, a map entry a later one with its key replaced) are
// parsed by wireCheck on the spot.

// recursionLimit bounds the nesting of messages (map entries count).
const recursionLimit = 2 * maxTypeDepth

// The errors protobuf's parser gives for bad wire data.
var (
	errWireData  = errors.New("proto: cannot parse invalid wire-format data")
	errWireDepth = errors.New("proto: exceeded maximum recursion depth")
)

// wenc is how one value of a field is encoded on the wire.
type wenc uint8

const (
	encVarint32 wenc = iota // int32: the low 32 bits of a varint
	encZigzag32             // sint32
	encFixed32S             // sfixed32
	encVarint64             // int64
	encZigzag64             // sint64
	encFixed64S             // sfixed64
	encBool
	encFloat
	encDouble
	encBytes   // string, bytes
	encMessage // a nested message
)

// wireType is the wire type of one value encoded as e.
func (e wenc) wireType() protowire.Type {
	switch e {
	case encFixed32S, encFloat:
		return protowire.Fixed32Type
	case encFixed64S, encDouble:
		return protowire.Fixed64Type
	case encBytes, encMessage:
		return protowire.BytesType
	}
	return protowire.VarintType
}

func encOf(k protoreflect.Kind) wenc {
	switch k {
	case protoreflect.Int32Kind:
		return encVarint32
	case protoreflect.Sint32Kind:
		return encZigzag32
	case protoreflect.Sfixed32Kind:
		return encFixed32S
	case protoreflect.Int64Kind:
		return encVarint64
	case protoreflect.Sint64Kind:
		return encZigzag64
	case protoreflect.Sfixed64Kind:
		return encFixed64S
	case protoreflect.BoolKind:
		return encBool
	case protoreflect.FloatKind:
		return encFloat
	case protoreflect.DoubleKind:
		return encDouble
	case protoreflect.StringKind, protoreflect.BytesKind:
		return encBytes
	}
	return encMessage // matchValue admits no other kind
}

// intValue is an integer value as protobuf reads it from its raw wire bits
// (a varint, or fixed32/fixed64 bits): int32 kinds keep their low 32 bits.
// A bool is 0 or 1.
func intValue(e wenc, raw uint64) int64 {
	switch e {
	case encVarint32, encFixed32S:
		return int64(int32(raw))
	case encZigzag32:
		return int64(int32(protowire.DecodeZigZag(raw & 0xffffffff)))
	case encZigzag64:
		return protowire.DecodeZigZag(raw)
	case encBool:
		if raw != 0 {
			return 1
		}
		return 0
	}
	return int64(raw)
}

type shape uint8

const (
	shapeSingle shape = iota
	shapeList
	shapeMap
)

// mplan is how one message is read: its fields in table column order and a
// lookup from field number.
type mplan struct {
	fields []wfield
	dense  []int32                    // field number -> index+1 (0: not a field)
	sparse map[protowire.Number]int32 // field numbers past dense
	oneofs [][]int32                  // the field indices of each oneof
	prefix string                     // column path prefix of the fields: "" at the top, "a.b." below
}

// wfield is one field of a message.
type wfield struct {
	num      protowire.Number
	shape    shape
	wt       protowire.Type // wire type of one value
	packed   bool           // a repeated scalar, which may also come packed
	required bool           // a singular NOT NULL column
	oneof    int32          // index in mplan.oneofs, or -1
	name     string         // the descriptor's field name
	kind     string         // the declared protobuf type, for errors
	path     string         // column path
	val      *wval          // the value (list: element; map: value)
	key      *wval          // map key
	entry    *mplan         // map entry: key (1) and value (2)
}

// wval is how one value is read and checked against its Delta type.
type wval struct {
	kind        Kind
	typ         *Type
	enc         wenc
	path        string
	prec, scale int
	msg         *mplan // encMessage: the STRUCT, or the wrapper of an ARRAY or MAP
}

func (mp *mplan) lookup(num protowire.Number) int {
	if uint64(num) < uint64(len(mp.dense)) {
		return int(mp.dense[num]) - 1
	}
	if i, ok := mp.sparse[num]; ok {
		return int(i) - 1
	}
	return -1
}

// maxDense bounds the dense field-number table of a message.
const maxDense = 4096

// buildMsg compiles the wire plan of a message whose fields were matched to
// columns.
func buildMsg(fields []fplan, prefix string) *mplan {
	mp := &mplan{fields: make([]wfield, len(fields)), prefix: prefix}
	oneofs := map[protoreflect.OneofDescriptor]int32{}
	for i := range fields {
		fp := &fields[i]
		fd := fp.fd
		wf := wfield{num: fd.Number(), oneof: -1, name: string(fd.Name()), kind: describeKind(fd), path: fp.name}
		switch {
		case fd.IsMap():
			wf.shape = shapeMap
			wf.wt = protowire.BytesType
			wf.key = buildVal(fd.MapKey(), fp.vp.key)
			wf.val = buildVal(fd.MapValue(), fp.vp.elem)
			wf.entry = &mplan{dense: []int32{0, 1, 2}, fields: []wfield{
				{num: 1, wt: wf.key.enc.wireType(), oneof: -1, val: wf.key},
				{num: 2, wt: wf.val.enc.wireType(), oneof: -1, val: wf.val},
			}}
		case fd.IsList():
			wf.shape = shapeList
			wf.val = buildVal(fd, fp.vp.elem)
			wf.wt = wf.val.enc.wireType()
			wf.packed = wf.wt != protowire.BytesType
		default:
			wf.val = buildVal(fd, fp.vp)
			wf.wt = wf.val.enc.wireType()
			wf.required = !fp.nullable
			if od := fd.ContainingOneof(); od != nil {
				g, ok := oneofs[od]
				if !ok {
					g = int32(len(mp.oneofs))
					oneofs[od] = g
					mp.oneofs = append(mp.oneofs, nil)
				}
				mp.oneofs[g] = append(mp.oneofs[g], int32(i))
				wf.oneof = g
			}
		}
		mp.fields[i] = wf
	}
	maxNum := 0
	for i := range mp.fields {
		if n := int(mp.fields[i].num); n < maxDense {
			maxNum = max(maxNum, n)
		}
	}
	mp.dense = make([]int32, maxNum+1)
	for i := range mp.fields {
		if n := mp.fields[i].num; n < maxDense {
			mp.dense[n] = int32(i + 1)
		} else {
			if mp.sparse == nil {
				mp.sparse = map[protowire.Number]int32{}
			}
			mp.sparse[n] = int32(i + 1)
		}
	}
	return mp
}

func buildVal(fd protoreflect.FieldDescriptor, vp *vplan) *wval {
	t := vp.typ
	v := &wval{kind: t.Kind, typ: t, enc: encOf(fd.Kind()), path: vp.path, prec: t.Precision, scale: t.Scale}
	switch t.Kind {
	case Struct:
		v.msg = buildMsg(vp.fields, vp.path+".")
	case Array, Map:
		// A wrapper message carries the collection in its only field.
		v.msg = buildMsg([]fplan{{fd: vp.wrap, name: vp.path, vp: vp}}, vp.path+".")
	}
	return v
}

// occ is one occurrence of a field on the wire, with the correct wire type:
// the bounds of its value (of the body, for a length-delimited value).
// Occurrences of a field are chained in wire order; index 0 is no
// occurrence.
type occ struct {
	off, end int32
	next     int32
	wt       protowire.Type
	raw      uint64 // the bits of a varint, fixed32 or fixed64 value
}

// inst is the wire data of one message: the bodies of a chain of
// occurrences (a singular message sent more than once is their merge), or
// the single span [lo, hi) when head is 0.
type inst struct {
	head   int32
	lo, hi int32
}

// mapEnt is one map entry: its key and where its value is.
type mapEnt struct {
	kord         int64  // integer key (bool as 0/1), for ordering
	kraw         uint64 // the key's raw wire bits
	ks           []byte // string key
	vhead, vlast int32  // the value's occurrences (0: none)
}

// decoder holds the scratch space for reading records. It is reused from
// record to record so that reading allocates nothing once warm.
type decoder struct {
	rec   []byte
	occ   []occ   // occurrences of the messages being read; stack
	slots []int32 // first and last occurrence per field of the messages being read; stack
	ents  []mapEnt
}

func (d *decoder) reset(rec []byte) {
	d.rec = rec
	if d.occ == nil {
		d.occ = make([]occ, 1, 64)
	}
	d.occ = d.occ[:1]
	d.slots = d.slots[:0]
	d.ents = d.ents[:0]
}

// decoderPool keeps decoders for one plan.
type decoderPool struct{ p sync.Pool }

func (dp *decoderPool) get() *decoder {
	if d, ok := dp.p.Get().(*decoder); ok {
		return d
	}
	return &decoder{}
}

func (dp *decoderPool) put(d *decoder) {
	d.rec = nil
	if cap(d.occ) > 1<<16 || cap(d.slots) > 1<<16 || cap(d.ents) > 1<<14 {
		return // do not keep the scratch of an outsized record
	}
	dp.p.Put(d)
}

// wireBad is the walk's report of bad wire data; check then asks wireCheck
// for protobuf's exact error.
var wireBad = &fieldErr{reason: "bad wire data"}

// scan reads the fields of one message, recording the occurrences of its
// fields in d.occ and, per field, the first and last occurrence in d.slots
// from base on. unk is the offset of the first unknown field (or of a field
// with the wrong wire type), -1 if none. ok is false for bad wire data at
// this level (nested messages are read when they are visited).
func (d *decoder) scan(mp *mplan, in inst, level int) (base, unk int, ok bool) {
	base, n := len(d.slots), 2*len(mp.fields)
	d.slots = slices.Grow(d.slots, n)[:base+n]
	slots := d.slots[base:]
	clear(slots)
	if level > recursionLimit {
		return base, -1, false
	}
	d.occ, unk, ok = scanFields(d.rec, mp, in, level, slots, d.occ)
	return base, unk, ok
}

// scanFields is scan on local slices.
func scanFields(rec []byte, mp *mplan, in inst, level int, slots []int32, occs []occ) (_ []occ, unk int, ok bool) {
	unk = -1
	lo, hi, o := int(in.lo), int(in.hi), in.head
	if o != 0 {
		lo, hi = int(occs[o].off), int(occs[o].end)
	}
	for {
		for pos := lo; pos < hi; {
			start := pos
			var num protowire.Number
			var wt protowire.Type
			if c := rec[pos]; c < 0x80 {
				num, wt = protowire.Number(c>>3), protowire.Type(c&7)
				pos++
			} else {
				v, k := protowire.ConsumeVarint(rec[pos:hi])
				if k < 0 {
					return occs, unk, false
				}
				num, wt = protowire.DecodeTag(v)
				pos += k
			}
			if num < protowire.MinValidNumber || num > protowire.MaxValidNumber {
				return occs, unk, false
			}
			vs, ve := pos, 0
			var raw uint64
			switch wt {
			case protowire.VarintType:
				v, k := protowire.ConsumeVarint(rec[pos:hi])
				if k < 0 {
					return occs, unk, false
				}
				ve, raw = pos+k, v
			case protowire.Fixed32Type:
				if ve = pos + 4; ve <= hi {
					raw = uint64(binary.LittleEndian.Uint32(rec[pos:]))
				}
			case protowire.Fixed64Type:
				if ve = pos + 8; ve <= hi {
					raw = binary.LittleEndian.Uint64(rec[pos:])
				}
			case protowire.BytesType:
				l, k := protowire.ConsumeVarint(rec[pos:hi])
				if k < 0 || l > uint64(hi-pos-k) {
					return occs, unk, false
				}
				vs = pos + k
				ve = vs + int(l)
			default:
				// Groups and reserved wire types: never a field of ours.
				k := protowire.ConsumeFieldValue(num, wt, rec[pos:hi])
				if k < 0 {
					return occs, unk, false
				}
				ve = pos + k
			}
			if ve > hi {
				return occs, unk, false
			}
			pos = ve
			i := mp.lookup(num)
			if i < 0 {
				if unk < 0 {
					unk = start
				}
				continue
			}
			f := &mp.fields[i]
			if f.shape == shapeMap && level+1 > recursionLimit {
				return occs, unk, false // protobuf counts the entry before its wire type
			}
			if wt != f.wt && (!f.packed || wt != protowire.BytesType) {
				if unk < 0 {
					unk = start
				}
				continue
			}
			j := int32(len(occs))
			// Set in place: a struct literal built on the stack and copied
			// stalls on store forwarding.
			occs = append(occs, occ{})
			e := &occs[j]
			e.off, e.end, e.wt, e.raw = int32(vs), int32(ve), wt, raw
			if first := &slots[2*i]; *first == 0 {
				*first = j
			} else {
				occs[slots[2*i+1]].next = j
			}
			slots[2*i+1] = j
		}
		if o == 0 {
			break
		}
		if o = occs[o].next; o == 0 {
			break
		}
		lo, hi = int(occs[o].off), int(occs[o].end)
	}
	return occs, unk, true
}

// occs gives the occurrences of field i that count: for a oneof member, none
// if another member came later, else those after the last other member.
// cut is the last occurrence of another member of its oneof (0 if none).
func (d *decoder) occs(mp *mplan, base, i int) (first, last, cut int32) {
	first, last = d.slots[base+2*i], d.slots[base+2*i+1]
	f := &mp.fields[i]
	if f.oneof < 0 {
		return first, last, 0
	}
	for _, j := range mp.oneofs[f.oneof] {
		if int(j) != i {
			cut = max(cut, d.slots[base+2*int(j)+1])
		}
	}
	if last < cut {
		return 0, 0, cut
	}
	for first != 0 && first < cut {
		first = d.occ[first].next
	}
	return first, last, cut
}

// raw reads a scalar occurrence: its raw bits, or its bytes. (Fields are
// read one by one: copying a whole occ just after it was written stalls.)
func (d *decoder) raw(o *occ) (uint64, []byte) {
	if o.wt == protowire.BytesType {
		return 0, d.rec[o.off:o.end]
	}
	return o.raw, nil
}

// check reads one record and checks every value against its Delta type. A
// record protobuf cannot parse gets protobuf's error.
func (p *plan) check(d *decoder, rec []byte) *fieldErr {
	if len(rec) > MaxRecordSize {
		return &fieldErr{reason: fmt.Sprintf("record is %d bytes, more than the limit of %d", len(rec), MaxRecordSize)}
	}
	d.reset(rec)
	fe := d.checkMsg(p.root, inst{hi: int32(len(rec))}, 1)
	if fe == nil {
		return nil
	}
	// Bad wire data anywhere in the record comes first, as protobuf parses
	// the whole record before anything is checked.
	if err := wireCheck(rec, p.root, 1); err != nil {
		return &fieldErr{reason: "does not decode with the stream's descriptor: " + err.Error()}
	}
	if fe == wireBad {
		// The walk and wireCheck disagree: a bug, but the record is bad.
		return &fieldErr{reason: "does not decode with the stream's descriptor: " + errWireData.Error()}
	}
	return fe
}

// checkMsg checks one message: no unknown fields, then each field in column
// order.
func (d *decoder) checkMsg(mp *mplan, in inst, level int) *fieldErr {
	mark := len(d.occ)
	base, unk, ok := d.scan(mp, in, level)
	fe := d.checkFields(mp, base, unk, ok, level)
	d.slots, d.occ = d.slots[:base], d.occ[:mark]
	return fe
}

func (d *decoder) checkFields(mp *mplan, base, unk int, ok bool, level int) *fieldErr {
	if !ok {
		return wireBad
	}
	if unk >= 0 {
		return mp.unknownErr(d.rec[unk:])
	}
	for i := range mp.fields {
		f := &mp.fields[i]
		first, last, cut := d.occs(mp, base, i)
		if cut != 0 && f.val.enc == encMessage {
			// Members the oneof dropped were parsed all the same.
			for o := d.slots[base+2*i]; o != 0 && o < cut; o = d.occ[o].next {
				if wireCheck(d.rec[d.occ[o].off:d.occ[o].end], f.val.msg, level+1) != nil {
					return wireBad
				}
			}
		}
		var fe *fieldErr
		switch f.shape {
		case shapeList:
			fe = d.checkList(f, first, level)
		case shapeMap:
			fe = d.checkMap(f, first, level)
		default:
			switch {
			case first == 0:
				if f.required {
					fe = &fieldErr{f.path, "NOT NULL column is missing (required field not set)"}
				}
			case f.val.enc == encMessage:
				fe = d.checkMsg(f.val.msg, inst{head: first}, level+1)
			default:
				raw, b := d.raw(&d.occ[last])
				fe = checkScalar(f.val, raw, b)
			}
		}
		if fe != nil {
			return fe
		}
	}
	return nil
}

func (d *decoder) checkList(f *wfield, first int32, level int) *fieldErr {
	v := f.val
	for o := first; o != 0; o = d.occ[o].next {
		oc := &d.occ[o]
		switch {
		case oc.wt != f.wt:
			// Packed: the elements follow one another.
			for b := d.rec[oc.off:oc.end]; len(b) > 0; {
				raw, k := consumeRaw(f.wt, b)
				if k < 0 {
					return wireBad
				}
				b = b[k:]
				if fe := checkScalar(v, raw, nil); fe != nil {
					return fe
				}
			}
		case v.enc == encMessage:
			if fe := d.checkMsg(v.msg, inst{lo: oc.off, hi: oc.end}, level+1); fe != nil {
				return fe
			}
		default:
			raw, b := d.raw(oc)
			if fe := checkScalar(v, raw, b); fe != nil {
				return fe
			}
		}
	}
	return nil
}

// consumeRaw reads one packed element of wire type wt.
func consumeRaw(wt protowire.Type, b []byte) (uint64, int) {
	switch wt {
	case protowire.Fixed32Type:
		v, k := protowire.ConsumeFixed32(b)
		return uint64(v), k
	case protowire.Fixed64Type:
		return protowire.ConsumeFixed64(b)
	}
	return protowire.ConsumeVarint(b)
}

// checkMap checks the entries of a map. All of them are checked in wire
// order first; if one is bad, the map as protobuf builds it (a later entry
// replaces an earlier one with the same key) is checked in key order, so
// the error names what the map holds.
func (d *decoder) checkMap(f *wfield, first int32, level int) *fieldErr {
	mark, omark := len(d.ents), len(d.occ)
	fe := d.checkEntries(f, first, level)
	d.ents, d.occ = d.ents[:mark], d.occ[:omark]
	return fe
}

func (d *decoder) checkEntries(f *wfield, first int32, level int) *fieldErr {
	mark := len(d.ents)
	if !d.collectMap(f, first, level) {
		return wireBad
	}
	for i := mark; i < len(d.ents); i++ {
		if fe := d.checkEntry(f, i, level); fe != nil {
			if fe == wireBad {
				return fe
			}
			// The map keeps the last entry of each key, but protobuf
			// parses them all.
			for o := first; o != 0; o = d.occ[o].next {
				if wireCheckEntry(d.rec[d.occ[o].off:d.occ[o].end], f, level+1) != nil {
					return wireBad
				}
			}
			end := d.sortMap(mark)
			for i := mark; i < end; i++ {
				if fe := d.checkEntry(f, i, level); fe != nil {
					return fe
				}
			}
			return nil // a later entry with its key replaced the bad one
		}
	}
	return nil
}

func (d *decoder) checkEntry(f *wfield, i, level int) *fieldErr {
	e := d.ents[i]
	if fe := checkScalar(f.key, e.kraw, e.ks); fe != nil {
		return fe
	}
	v := f.val
	switch {
	case v.enc != encMessage:
		raw, b := uint64(0), []byte(nil)
		if e.vlast != 0 {
			raw, b = d.raw(&d.occ[e.vlast])
		}
		return checkScalar(v, raw, b)
	case e.vhead == 0:
		// An entry without its value holds an empty message; protobuf
		// parses nothing, so it does not count a level either.
		return d.checkMsg(v.msg, inst{}, level+1)
	}
	return d.checkMsg(v.msg, inst{head: e.vhead}, level+2)
}

// collectMap reads the entries of a map field onto d.ents, in wire order.
// The occurrences of their values stay on d.occ. An entry's unknown fields
// are dropped, as protobuf does.
func (d *decoder) collectMap(f *wfield, first int32, level int) bool {
	for o := first; o != 0; o = d.occ[o].next {
		oc := &d.occ[o]
		base, _, ok := d.scan(f.entry, inst{lo: oc.off, hi: oc.end}, level+1)
		kl := d.slots[base+1]
		vf, vl := d.slots[base+2], d.slots[base+3]
		d.slots = d.slots[:base]
		if !ok {
			return false
		}
		e := mapEnt{vhead: vf, vlast: vl}
		if kl != 0 {
			e.kraw, e.ks = d.raw(&d.occ[kl])
			e.kord = intValue(f.key.enc, e.kraw)
		}
		d.ents = append(d.ents, e)
	}
	return true
}

// sortMap orders the entries from mark on by key and keeps the last entry of
// each key, as a map does; it returns the end of the kept entries.
func (d *decoder) sortMap(mark int) int {
	ents := d.ents[mark:]
	sorted := true
	for i := 1; i < len(ents); i++ {
		if cmpKey(&ents[i-1], &ents[i]) >= 0 {
			sorted = false
			break
		}
	}
	if sorted {
		return len(d.ents)
	}
	sortEnts(ents)
	n := 0
	for i := range ents {
		if i+1 < len(ents) && cmpKey(&ents[i], &ents[i+1]) == 0 {
			continue // a later entry has the same key
		}
		ents[n] = ents[i]
		n++
	}
	return mark + n
}

func cmpKey(a, b *mapEnt) int {
	switch {
	case a.kord < b.kord:
		return -1
	case a.kord > b.kord:
		return 1
	}
	return bytes.Compare(a.ks, b.ks)
}

// sortEnts sorts entries by key, keeping wire order among equal keys.
func sortEnts(ents []mapEnt) {
	slices.SortStableFunc(ents, func(a, b mapEnt) int { return cmpKey(&a, &b) })
}

// unknownErr names the first unknown field of a message: a field number the
// descriptor lacks, or a known one sent with the wrong wire type.
func (mp *mplan) unknownErr(b []byte) *fieldErr {
	num, typ, _ := protowire.ConsumeTag(b)
	if i := mp.lookup(num); i >= 0 {
		f := &mp.fields[i]
		return &fieldErr{mp.prefix + f.name, fmt.Sprintf("field %d has wire type %s, which does not match its declared type %s", num, wireTypeName(typ), f.kind)}
	}
	return &fieldErr{strings.TrimSuffix(mp.prefix, "."), fmt.Sprintf("unknown field number %d (wire type %s) is not in the stream's descriptor", num, wireTypeName(typ))}
}

// wireCheck parses a message at a nesting level as protobuf does and
// returns protobuf's error for bad wire data: the first one in wire order,
// nested messages included.
func wireCheck(b []byte, mp *mplan, level int) error {
	if level > recursionLimit {
		return errWireDepth
	}
	for len(b) > 0 {
		num, wt, n := protowire.ConsumeTag(b)
		if n < 0 || num > protowire.MaxValidNumber {
			return errWireData
		}
		b = b[n:]
		if i := mp.lookup(num); i >= 0 {
			k, err := wireCheckField(&mp.fields[i], wt, b, level)
			if err != nil {
				return err
			}
			if k >= 0 {
				b = b[k:]
				continue
			}
		}
		k := protowire.ConsumeFieldValue(num, wt, b)
		if k < 0 {
			return errWireData
		}
		b = b[k:]
	}
	return nil
}

// wireCheckField parses one value of a known field: its length, or -1 when
// the wire type makes it an unknown field.
func wireCheckField(f *wfield, wt protowire.Type, b []byte, level int) (int, error) {
	switch f.shape {
	case shapeMap:
		if level+1 > recursionLimit {
			return 0, errWireDepth
		}
		if wt != protowire.BytesType {
			return -1, nil
		}
		body, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return 0, errWireData
		}
		return n, wireCheckEntry(body, f, level+1)
	case shapeList:
		if f.packed && wt == protowire.BytesType {
			body, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return 0, errWireData
			}
			for len(body) > 0 {
				_, k := consumeRaw(f.wt, body)
				if k < 0 {
					return 0, errWireData
				}
				body = body[k:]
			}
			return n, nil
		}
	}
	return wireCheckValue(f.val, f.wt, wt, b, level)
}

// wireCheckValue parses one value encoded as v.enc (wire type want) that came
// with wire type wt.
func wireCheckValue(v *wval, want, wt protowire.Type, b []byte, level int) (int, error) {
	if wt != want {
		return -1, nil
	}
	n := protowire.ConsumeFieldValue(0, wt, b)
	if n < 0 {
		return 0, errWireData
	}
	if v.enc == encMessage {
		body, _ := protowire.ConsumeBytes(b)
		if err := wireCheck(body, v.msg, level+1); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// wireCheckEntry parses a map entry: key (1) and value (2) of the right wire
// type; anything else is skipped.
func wireCheckEntry(b []byte, f *wfield, level int) error {
	for len(b) > 0 {
		num, wt, n := protowire.ConsumeTag(b)
		if n < 0 || num > protowire.MaxValidNumber {
			return errWireData
		}
		b = b[n:]
		k := -1
		var err error
		switch num {
		case 1:
			k, err = wireCheckValue(f.key, f.key.enc.wireType(), wt, b, level)
		case 2:
			k, err = wireCheckValue(f.val, f.val.enc.wireType(), wt, b, level)
		}
		if err != nil {
			return err
		}
		if k < 0 {
			if k = protowire.ConsumeFieldValue(num, wt, b); k < 0 {
				return errWireData
			}
		}
		b = b[k:]
	}
	return nil
}

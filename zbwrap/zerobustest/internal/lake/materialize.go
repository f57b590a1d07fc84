package lake

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

// Bounds of one commit: one Parquet file holds at most this much.
const (
	maxCommitRecords = 1 << 20
	maxCommitBytes   = 64 << 20
)

// cursor is where the materializer reads a table's log.
type cursor struct {
	seg   int64 // first sequence number of the segment being read (-1: none yet)
	f     *os.File
	fr    *frameReader
	seq   int64            // sequence number of the next record in the segment
	plans map[uint64]*plan // descriptors declared so far in the segment
}

func (c *cursor) close() {
	if c.f != nil {
		c.f.Close()
	}
	*c = cursor{seg: -1}
}

// batchBuilder accumulates converted records for one Parquet file.
type batchBuilder struct {
	rb      *array.RecordBuilder
	nodes   []*bnode               // the builders of rb's columns
	bins    []*array.BinaryBuilder // the STRING, VARIANT and BINARY builders, nested ones included
	dec     decoder
	rows    int64
	bytes   int64
	skipped int64
}

// materialize writes the durable records of t that are not in its Delta
// table yet, one commit (one Parquet file) at a time.
func (t *Table) materialize() error {
	t.matMu.Lock()
	defer t.matMu.Unlock()
	for retries := 0; ; {
		more, err := t.materializeOnce()
		if err != nil {
			// Resume from what the Delta log holds. If its version moved
			// (another engine committed it, or our commit landed but a later
			// fsync failed), try again at the next version.
			t.cur.close()
			before := t.version
			t.resync()
			if t.version != before && retries < 3 {
				retries++
				continue
			}
			return fmt.Errorf("lake: materialize %s: %w", t.name, err)
		}
		if !more {
			return nil
		}
	}
}

// resync reloads the Delta version and log position from the Delta log.
func (t *Table) resync() {
	st, err := loadTableState(t.dir)
	if err != nil {
		return // keep what we know; the next attempt reports the error again
	}
	t.version, t.mark = st.version, st.mark
	t.materialized.Store(st.mark.LogPosition - st.mark.Rejected)
	t.rejected.Store(st.mark.Rejected)
}

// materializeOnce writes at most one commit and reports whether records
// remain.
func (t *Table) materializeOnce() (bool, error) {
	segs, durable := t.log.snapshot()
	pos := t.mark.LogPosition
	if pos >= durable {
		return false, nil
	}
	bb := newBatchBuilder(t.schema, t.cols)
	defer bb.rb.Release()
	bb.reserve(t.hint, durable-pos)
	next, err := t.readInto(bb, segs, pos, durable)
	if err != nil {
		return false, err
	}
	if bb.rows > 0 {
		t.hint = bb.sizes()
	}
	if next == pos {
		// The segments holding records from pos on are gone (deleted by
		// hand): skip to the oldest record left.
		switch {
		case len(segs) == 0:
			next = durable
		case segs[0].first > pos:
			next = segs[0].first
		default:
			return false, fmt.Errorf("record log has no readable record at position %d (durable up to %d)", pos, durable)
		}
	}
	mark := logMark{LogPosition: next, Rejected: t.mark.Rejected + bb.skipped}
	if err := t.commit(bb, mark); err != nil {
		return false, err
	}
	t.mark = mark
	t.materialized.Store(mark.LogPosition - mark.Rejected)
	t.rejected.Store(mark.Rejected)
	if err := t.log.dropBefore(mark.LogPosition); err != nil {
		return false, err
	}
	return next < durable, nil
}

// readInto converts records from pos on into bb, stopping at a frame
// boundary once bb is full, and returns the position after the last record
// read.
func (t *Table) readInto(bb *batchBuilder, segs []segment, pos, durable int64) (int64, error) {
	c := &t.cur
	if c.seg >= 0 && c.seq != pos {
		c.close()
	}
	for pos < durable && bb.rows+bb.skipped < maxCommitRecords && bb.bytes < maxCommitBytes {
		// Find the segment holding pos.
		idx := sort.Search(len(segs), func(i int) bool { return segs[i].first > pos }) - 1
		if idx < 0 {
			return pos, nil
		}
		s := segs[idx]
		if c.seg != s.first {
			c.close()
			f, err := os.Open(s.path)
			if err != nil {
				return pos, err
			}
			magic := make([]byte, len(segMagic))
			if _, err := f.ReadAt(magic, 0); err != nil || string(magic) != segMagic {
				f.Close()
				return pos, fmt.Errorf("%s is not a record log segment", s.path)
			}
			*c = cursor{seg: s.first, f: f, seq: s.first, plans: map[uint64]*plan{}}
			c.fr = newFrameReader(f, int64(len(segMagic)), s.size)
		}
		c.fr.end = s.size
		fm, err := c.fr.next()
		if err == io.EOF {
			if idx == len(segs)-1 {
				return pos, nil // caught up with the durable end
			}
			// A whole sealed segment holds every record up to the next
			// one's first, so pos would have moved on before its end.
			return pos, fmt.Errorf("segment %s holds records %d to %d, the next starts at %d", s.path, s.first, c.seq-1, segs[idx+1].first)
		}
		if err != nil {
			return pos, fmt.Errorf("%s at offset %d: %w", s.path, c.fr.off, err)
		}
		switch fm.kind {
		case kindDescriptor:
			c.plans[fm.bid] = t.planFor(fm.payload)
		case kindBatch:
			recs, err := batchRecords(fm.payload, nil)
			if err != nil {
				return pos, fmt.Errorf("%s at offset %d: %w", s.path, c.fr.off-fm.size, err)
			}
			p := c.plans[fm.bid]
			for _, r := range recs {
				if c.seq >= pos {
					bb.add(p, r)
				}
				c.seq++
			}
			pos = max(pos, c.seq)
		}
	}
	return pos, nil
}

// planFor compiles a descriptor frame; nil if it no longer matches the
// table (its records are then rejected).
func (t *Table) planFor(raw []byte) *plan {
	var dp descriptorpb.DescriptorProto
	if err := proto.Unmarshal(raw, &dp); err != nil {
		return nil
	}
	md, desc, err := compileDescriptor(&dp)
	if err != nil {
		return nil
	}
	p, err := compilePlan(md, desc, t.cols)
	if err != nil {
		return nil
	}
	return p
}

// add decodes one record into the builders, or counts it as rejected.
func (bb *batchBuilder) add(p *plan, rec []byte) {
	if p == nil || p.check(&bb.dec, rec) != nil {
		bb.skipped++
		return
	}
	p.appendRecord(&bb.dec, rec, bb.nodes)
	bb.rows++
	bb.bytes += int64(len(rec))
}

func newBatchBuilder(schema *arrow.Schema, cols []Column) *batchBuilder {
	bb := &batchBuilder{rb: array.NewRecordBuilder(memory.DefaultAllocator, schema)}
	bb.nodes = newNodes(bb.rb.Fields(), cols, &bb.bins)
	return bb
}

// sizeHint is what a table's last commit held: its rows, their record
// bytes, and the data bytes of each binary builder.
type sizeHint struct {
	rows, bytes int64
	data        []int
}

func (bb *batchBuilder) sizes() sizeHint {
	h := sizeHint{rows: bb.rows, bytes: bb.bytes, data: make([]int, len(bb.bins))}
	for i, b := range bb.bins {
		h.data[i] = b.DataLen()
	}
	return h
}

// reserve sizes the builders for the records pending, as the last commit
// suggests (growing a large string buffer by doubling copies it over and
// over).
func (bb *batchBuilder) reserve(h sizeHint, pending int64) {
	if h.rows == 0 {
		return // no commit yet
	}
	rows := min(pending, maxCommitRecords, maxCommitBytes/max(1, h.bytes/h.rows)+1)
	bb.rb.Reserve(int(rows))
	for i, b := range bb.bins {
		b.ReserveData(int(min(int64(h.data[i])*rows/h.rows, maxCommitBytes)))
	}
}

// bnode is the Arrow builder of a column or of a nested value.
type bnode struct {
	b    array.Builder
	kids []*bnode // STRUCT fields; ARRAY element; MAP key and value
	self []*bnode // this node alone: the builder of a wrapper message's field
}

// newNodes makes the builder tree of the columns, listing its binary
// builders on bins (if not nil).
func newNodes(bs []array.Builder, cols []Column, bins *[]*array.BinaryBuilder) []*bnode {
	out := make([]*bnode, len(cols))
	for i := range cols {
		out[i] = newNode(bs[i], &cols[i].Type, bins)
	}
	return out
}

func newNode(b array.Builder, t *Type, bins *[]*array.BinaryBuilder) *bnode {
	n := &bnode{b: b}
	n.self = []*bnode{n}
	switch t.Kind {
	case String, Variant:
		if bins != nil {
			*bins = append(*bins, b.(*array.StringBuilder).BinaryBuilder)
		}
	case Binary:
		if bins != nil {
			*bins = append(*bins, b.(*array.BinaryBuilder))
		}
	case Struct:
		sb := b.(*array.StructBuilder)
		for i := range t.Fields {
			n.kids = append(n.kids, newNode(sb.FieldBuilder(i), &t.Fields[i].Type, bins))
		}
	case Array:
		n.kids = []*bnode{newNode(b.(*array.ListBuilder).ValueBuilder(), t.Elem, bins)}
	case Map:
		mb := b.(*array.MapBuilder)
		n.kids = []*bnode{newNode(mb.KeyBuilder(), t.Key, bins), newNode(mb.ItemBuilder(), t.Elem, bins)}
	}
	return n
}

// appendRecord appends a record that passed check to the column builders.
func (p *plan) appendRecord(d *decoder, rec []byte, nodes []*bnode) {
	d.reset(rec)
	d.appendMsg(p.root, inst{hi: int32(len(rec))}, nodes, 1)
}

// appendMsg appends the fields of a checked message, one value per builder:
// null for a missing singular field, an empty list or map for a missing
// repeated or map field. Map entries go in key order.
func (d *decoder) appendMsg(mp *mplan, in inst, nodes []*bnode, level int) {
	mark := len(d.occ)
	base, _, _ := d.scan(mp, in, level)
	for i := range mp.fields {
		f, n := &mp.fields[i], nodes[i]
		first, last, _ := d.occs(mp, base, i)
		switch f.shape {
		case shapeList:
			n.b.(*array.ListBuilder).Append(true)
			d.appendList(f, first, n.kids[0], level)
		case shapeMap:
			n.b.(*array.MapBuilder).Append(true)
			d.appendMap(f, first, n.kids[0], n.kids[1], level)
		default:
			switch {
			case first == 0:
				n.b.AppendNull()
			case f.val.enc == encMessage:
				d.appendValueMsg(n, f.val, inst{head: first}, level+1)
			default:
				raw, b := d.raw(&d.occ[last])
				appendScalar(n, f.val, raw, b)
			}
		}
	}
	d.slots, d.occ = d.slots[:base], d.occ[:mark]
}

func (d *decoder) appendList(f *wfield, first int32, en *bnode, level int) {
	v := f.val
	for o := first; o != 0; o = d.occ[o].next {
		oc := &d.occ[o]
		switch {
		case oc.wt != f.wt: // packed
			for b := d.rec[oc.off:oc.end]; len(b) > 0; {
				raw, k := consumeRaw(f.wt, b)
				b = b[k:]
				appendScalar(en, v, raw, nil)
			}
		case v.enc == encMessage:
			d.appendValueMsg(en, v, inst{lo: oc.off, hi: oc.end}, level+1)
		default:
			raw, b := d.raw(oc)
			appendScalar(en, v, raw, b)
		}
	}
}

func (d *decoder) appendMap(f *wfield, first int32, kn, vn *bnode, level int) {
	mark, omark := len(d.ents), len(d.occ)
	d.collectMap(f, first, level)
	end := d.sortMap(mark)
	v := f.val
	for i := mark; i < end; i++ {
		e := d.ents[i]
		appendScalar(kn, f.key, e.kraw, e.ks)
		switch {
		case v.enc != encMessage:
			raw, b := uint64(0), []byte(nil)
			if e.vlast != 0 {
				raw, b = d.raw(&d.occ[e.vlast])
			}
			appendScalar(vn, v, raw, b)
		case e.vhead == 0:
			d.appendValueMsg(vn, v, inst{}, level+1)
		default:
			d.appendValueMsg(vn, v, inst{head: e.vhead}, level+2)
		}
	}
	d.ents, d.occ = d.ents[:mark], d.occ[:omark]
}

// appendValueMsg appends a value a message carries: a STRUCT, or an ARRAY
// or MAP in its wrapper.
func (d *decoder) appendValueMsg(n *bnode, v *wval, in inst, level int) {
	if v.kind == Struct {
		n.b.(*array.StructBuilder).Append(true)
		d.appendMsg(v.msg, in, n.kids, level)
		return
	}
	d.appendMsg(v.msg, in, n.self, level)
}

// appendScalar appends one checked scalar. The builder's type is the
// column's Arrow type, so the assertions hold.
func appendScalar(n *bnode, v *wval, raw uint64, b []byte) {
	switch v.kind {
	case Boolean:
		n.b.(*array.BooleanBuilder).Append(raw != 0)
	case Byte:
		n.b.(*array.Int8Builder).Append(int8(intValue(v.enc, raw)))
	case Short:
		n.b.(*array.Int16Builder).Append(int16(intValue(v.enc, raw)))
	case Int:
		n.b.(*array.Int32Builder).Append(int32(intValue(v.enc, raw)))
	case Date:
		n.b.(*array.Date32Builder).Append(arrow.Date32(intValue(v.enc, raw)))
	case Long:
		n.b.(*array.Int64Builder).Append(intValue(v.enc, raw))
	case Timestamp, TimestampNTZ:
		n.b.(*array.TimestampBuilder).Append(arrow.Timestamp(intValue(v.enc, raw)))
	case Float:
		n.b.(*array.Float32Builder).Append(math.Float32frombits(uint32(raw)))
	case Double:
		n.b.(*array.Float64Builder).Append(math.Float64frombits(raw))
	case String, Variant:
		n.b.(*array.StringBuilder).BinaryBuilder.Append(b)
	case Binary:
		n.b.(*array.BinaryBuilder).Append(b)
	case Decimal:
		num, _ := parseDecimal(b, v.prec, v.scale)
		n.b.(*array.Decimal128Builder).Append(num)
	}
}

// commit writes bb as one Parquet file and the next Delta version holding it
// and the new log position. A batch without rows (all rejected) commits the
// position alone.
func (t *Table) commit(bb *batchBuilder, mark logMark) error {
	now := time.Now()
	var actions []deltaAction
	if bb.rows > 0 {
		rec := bb.rb.NewRecordBatch()
		defer rec.Release()
		add, err := t.writeParquet(rec, now)
		if err != nil {
			return err
		}
		actions = append(actions, deltaAction{Add: add})
	}
	actions = append(actions, deltaAction{CommitInfo: &commitInfo{
		Timestamp:           now.UnixMilli(),
		Operation:           "WRITE",
		OperationParameters: map[string]string{"mode": "Append", "partitionBy": "[]"},
		IsBlindAppend:       true,
		EngineInfo:          engineInfo,
		Zerobus:             &mark,
	}})
	if err := writeCommit(t.dir, t.tmpDir(), t.version+1, actions); err != nil {
		return err
	}
	t.version++
	t.checkpointAfter(actions)
	return nil
}

// checkpointAfter keeps the checkpoint state up to date with the version
// just committed, and writes a checkpoint when that version is a multiple
// of checkpointInterval. The state is built from the commits the first
// time it is needed. A failed checkpoint is counted, not returned: the
// version is committed, and readers replay the commits instead.
func (t *Table) checkpointAfter(actions []deltaAction) {
	if t.ckpt != nil {
		t.ckpt.apply(actions)
	}
	if t.version%checkpointInterval != 0 {
		return
	}
	if t.ckpt == nil {
		s, err := replayLog(t.dir, t.version)
		if err != nil {
			t.checkpointFailures.Add(1)
			return
		}
		t.ckpt = s
	}
	if err := writeCheckpoint(t.dir, t.tmpDir(), t.version, t.ckpt); err != nil {
		t.checkpointFailures.Add(1)
	}
}

// nopCloser hides the file's Close from the Parquet writer, which closes its
// sink: the file is fsynced before it is closed.
type nopCloser struct{ io.Writer }

func (t *Table) writeParquet(rec arrow.RecordBatch, now time.Time) (*addAction, error) {
	name := "part-00000-" + uuid.NewString() + "-c000.snappy.parquet"
	path := filepath.Join(t.dir, name)
	if err := writeParquetFile(path, rec); err != nil {
		return nil, fmt.Errorf("write %s: %w", name, err)
	}
	if err := syncDir(t.dir); err != nil {
		return nil, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	return &addAction{
		Path:             name,
		PartitionValues:  map[string]string{},
		Size:             st.Size(),
		ModificationTime: now.UnixMilli(),
		DataChange:       true,
		Stats:            fileStats(rec, t.cols),
	}, nil
}

// writeParquetFile writes rec as a new Snappy-compressed Parquet file at
// path and fsyncs it; on an error it removes the file.
func writeParquetFile(path string, rec arrow.RecordBatch) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy), parquet.WithCreatedBy(engineInfo))
	err = func() error {
		w, err := pqarrow.NewFileWriter(rec.Schema(), nopCloser{f}, props, pqarrow.DefaultWriterProps())
		if err != nil {
			return err
		}
		if err := w.Write(rec); err != nil {
			w.Close()
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
		return f.Sync()
	}()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// fileStats is the Delta stats JSON of a file: numRecords, and for top-level
// columns nullCount, with minValues/maxValues for the numeric, date and
// timestamp ones. Timestamp bounds are rounded outward to milliseconds (the
// precision Delta readers parse).
func fileStats(rec arrow.RecordBatch, cols []Column) string {
	type stats struct {
		NumRecords int64          `json:"numRecords"`
		MinValues  map[string]any `json:"minValues"`
		MaxValues  map[string]any `json:"maxValues"`
		NullCount  map[string]any `json:"nullCount"`
	}
	s := stats{NumRecords: rec.NumRows(), MinValues: map[string]any{}, MaxValues: map[string]any{}, NullCount: map[string]any{}}
	for i, c := range cols {
		arr := rec.Column(i)
		switch c.Type.Kind {
		case Array, Map:
			s.NullCount[c.Name] = arr.NullN()
			continue
		case Struct:
			continue // nested null counts would need a nested object
		}
		s.NullCount[c.Name] = arr.NullN()
		lo, hi, ok := minMax(arr, c.Type.Kind)
		if ok {
			s.MinValues[c.Name], s.MaxValues[c.Name] = lo, hi
		}
	}
	out, _ := json.Marshal(s)
	return string(out)
}

// minMax finds the bounds of a numeric, date or timestamp column, rendered
// as Delta stats values. ok is false for other kinds, all-null columns, and
// floating point columns holding NaN or infinities.
func minMax(arr arrow.Array, k Kind) (lo, hi any, ok bool) {
	var mn, mx float64
	var imn, imx int64
	first := true
	n := arr.Len()
	for i := 0; i < n; i++ {
		if arr.IsNull(i) {
			continue
		}
		var iv int64
		var fv float64
		isFloat := false
		switch a := arr.(type) {
		case *array.Int8:
			iv = int64(a.Value(i))
		case *array.Int16:
			iv = int64(a.Value(i))
		case *array.Int32:
			iv = int64(a.Value(i))
		case *array.Int64:
			iv = a.Value(i)
		case *array.Date32:
			iv = int64(a.Value(i))
		case *array.Timestamp:
			if k != Timestamp {
				return nil, nil, false
			}
			iv = int64(a.Value(i))
		case *array.Float32:
			fv, isFloat = float64(a.Value(i)), true
		case *array.Float64:
			fv, isFloat = a.Value(i), true
		default:
			return nil, nil, false
		}
		if isFloat {
			if math.IsNaN(fv) || math.IsInf(fv, 0) {
				return nil, nil, false
			}
			if first || fv < mn {
				mn = fv
			}
			if first || fv > mx {
				mx = fv
			}
		} else {
			if first || iv < imn {
				imn = iv
			}
			if first || iv > imx {
				imx = iv
			}
		}
		first = false
	}
	if first {
		return nil, nil, false
	}
	switch k {
	case Float, Double:
		return mn, mx, true
	case Date:
		day := func(d int64) string { return time.Unix(d*86400, 0).UTC().Format("2006-01-02") }
		return day(imn), day(imx), true
	case Timestamp:
		floor := imn - mod(imn, 1000)
		ceil := imx + (1000-mod(imx, 1000))%1000
		if ceil > maxTimeMicros {
			return nil, nil, false
		}
		const layout = "2006-01-02T15:04:05.000Z"
		return time.UnixMicro(floor).UTC().Format(layout), time.UnixMicro(ceil).UTC().Format(layout), true
	}
	return imn, imx, true
}

func mod(a, b int64) int64 { return ((a % b) + b) % b }

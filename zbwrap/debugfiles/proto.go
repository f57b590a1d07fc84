package debugfiles

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"regexp"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
)

// protoOutput writes the encoded records of one table, each prefixed with its
// length as a varint. A file holds records of one descriptor: a new
// descriptor rotates the file, and the rotated file gets a copy of its
// descriptor set under the same stem in the descriptors directory.
type protoOutput struct {
	mu sync.Mutex
	sink
	// fileDesc is the DescriptorProto of the records in the active file,
	// fileSet the same wrapped in a FileDescriptorSet; fileSet starts as the
	// descriptor file an earlier Writer left, which describes its active file.
	fileDesc []byte
	fileSet  []byte
	haveDesc bool
	descRe   *regexp.Regexp
}

func newProtoOutput(w *Writer, staleSet []byte) *protoOutput {
	p := &protoOutput{fileSet: staleSet, descRe: rotatedPattern(w.base, extDesc)}
	p.sink = newSink(w, p, "proto", extProto)
	return p
}

// write appends the records, contiguous and in order; records that would
// not fit in a non-empty file start the next one.
func (p *protoOutput) write(desc []byte, records [][]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.recoverInto()
	if !p.usable() {
		return
	}
	n := 0
	for _, r := range records {
		n += protowire.SizeVarint(uint64(len(r))) + len(r)
	}
	changed := !p.haveDesc || !bytes.Equal(desc, p.fileDesc)
	if p.batches > 0 && (changed || p.size+int64(n) > p.w.maxSize) {
		if p.rotate(); p.broken {
			p.drop()
			return
		}
	}
	if len(records) == 0 { // every row failed to convert: nothing to write
		p.inFlight = false
		p.w.desc.update(desc, nil)
		return
	}
	if !p.open() { // before taking the new descriptor: a file left by an earlier Writer is rotated with its own
		p.drop()
		return
	}
	if changed {
		p.fileDesc = bytes.Clone(desc)
		p.fileSet = fileDescriptorSet(p.w.base, desc)
		p.haveDesc = true
	}
	p.w.desc.update(p.fileDesc, p.fileSet)
	p.pending.Grow(n)
	buf := p.pending.AvailableBuffer()
	for _, r := range records {
		buf = binary.AppendUvarint(buf, uint64(len(r)))
		buf = append(buf, r...)
	}
	p.pending.Write(buf)
	p.accept(n, 0)
}

func (p *protoOutput) end()            {}
func (p *protoOutput) trailer() []byte { return nil }

// rotated stores the descriptor set of the rotated file beside the others.
func (p *protoOutput) rotated(stem string) {
	if p.fileSet == nil {
		return
	}
	dir := p.w.desc.dir
	name := filepath.Join(dir, stem+"."+extDesc)
	if err := p.w.fs.MkdirAll(dir); err != nil {
		p.w.report("descriptor", dir, err)
		return
	}
	if err := writeFileAtomic(p.w.fs, name, p.w.base, p.fileSet); err != nil {
		p.w.report("descriptor", name, err)
		return
	}
	pruneDir(p.w, dir, p.descRe)
}

// descFile is the table's descriptor file, rewritten when the descriptor
// changes.
type descFile struct {
	mu      sync.Mutex
	w       *Writer
	dir     string
	path    string
	onDisk  []byte
	written bool
	broken  bool // a write failed: try again after the next tick
}

func newDescFile(w *Writer) *descFile {
	dir := filepath.Join(w.root, "descriptors")
	return &descFile{w: w, dir: dir, path: filepath.Join(dir, w.base+"."+extDesc)}
}

// update rewrites the file if desc is not what it holds; set is desc as a
// FileDescriptorSet, or nil to have it made here.
func (d *descFile) update(desc, set []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.broken || d.written && bytes.Equal(desc, d.onDisk) {
		return
	}
	if set == nil {
		set = fileDescriptorSet(d.w.base, desc)
	}
	if err := d.w.fs.MkdirAll(d.dir); err != nil {
		d.w.report("descriptor", d.dir, err)
		d.broken = true
		return
	}
	if err := writeFileAtomic(d.w.fs, d.path, d.w.base, set); err != nil {
		d.w.report("descriptor", d.path, err)
		d.broken = true
		return
	}
	d.onDisk, d.written = bytes.Clone(desc), true
	d.w.files.Add(1)
}

func (d *descFile) tick() {
	d.mu.Lock()
	d.broken = false
	d.mu.Unlock()
}

// fileDescriptorSet wraps a serialized DescriptorProto in a proto2
// FileDescriptorProto named "<base>.proto", without a package, inside a
// FileDescriptorSet: the form protoc's --descriptor_set_out writes and
// protobuf libraries load. The descriptor's bytes are copied as they are.
func fileDescriptorSet(base string, desc []byte) []byte {
	const (
		setFile      = 1  // FileDescriptorSet.file
		fileName     = 1  // FileDescriptorProto.name
		fileMessages = 4  // FileDescriptorProto.message_type
		fileSyntax   = 12 // FileDescriptorProto.syntax
	)
	var f []byte
	f = protowire.AppendTag(f, fileName, protowire.BytesType)
	f = protowire.AppendString(f, base+".proto")
	f = protowire.AppendTag(f, fileMessages, protowire.BytesType)
	f = protowire.AppendBytes(f, desc)
	f = protowire.AppendTag(f, fileSyntax, protowire.BytesType)
	f = protowire.AppendString(f, "proto2")
	set := protowire.AppendTag(nil, setFile, protowire.BytesType)
	return protowire.AppendBytes(set, f)
}

package arrowproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
)

// Fuzz targets. Run one at a time, for example:
//
//	go test -run x -fuzz FuzzIPC -fuzztime 2m -parallel 1 ./zbwrap/arrowproto/
//	go test -run x -fuzz FuzzRandomSchema -fuzztime 2m -parallel 1 ./zbwrap/arrowproto/
//
// Without -fuzz they run their seed corpus as ordinary tests.

// maxFuzzRows skips batches whose row count is absurd for their size (a
// null-typed column can claim any length without any buffer).
const maxFuzzRows = 1 << 16

// readIPC reads the record batches of an Arrow IPC stream. Malformed input
// that arrow-go itself cannot read (including panics inside arrow-go) yields
// no batches: that is arrow-go's input handling, not this package's.
func readIPC(data []byte) (recs []arrow.RecordBatch) {
	defer func() {
		if recover() != nil {
			recs = nil
		}
	}()
	rd, err := ipc.NewReader(bytes.NewReader(data), ipc.WithAllocator(mem))
	if err != nil {
		return nil
	}
	defer rd.Release()
	for rd.Next() && len(recs) < 4 {
		rec := rd.RecordBatch()
		rec.Retain()
		recs = append(recs, rec)
	}
	return recs
}

func ipcBytes(t testing.TB, rec arrow.RecordBatch) []byte {
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(rec.Schema()))
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// encodeChecked compiles and encodes rec, and checks the result with the
// oracle. Errors must be the documented ones.
func encodeChecked(t *testing.T, rec arrow.RecordBatch) {
	if rec.NumRows() > maxFuzzRows {
		return
	}
	sc, err := NewSchema(rec.Schema())
	if err != nil {
		var se *SchemaError
		if !errors.As(err, &se) {
			t.Fatalf("NewSchema: error %v is not a *SchemaError", err)
		}
		return
	}
	b, err := sc.Encode(rec)
	if err != nil {
		if !errors.Is(err, ErrInvalidData) {
			t.Fatalf("Encode: unexpected error %v", err)
		}
		return
	}
	checkBatch(t, sc, rec, b)
}

// bodyRegions returns the [start, end) of every message body of an IPC stream.
func bodyRegions(stream []byte) [][2]int {
	var regions [][2]int
	mr := ipc.NewMessageReader(bytes.NewReader(stream))
	defer mr.Release()
	pos := 0
	for {
		msg, err := mr.Message()
		if err != nil {
			return regions
		}
		metaLen := int(int32(binary.LittleEndian.Uint32(stream[pos+4:])))
		start := pos + 8 + metaLen
		end := start + int(msg.BodyLen())
		regions = append(regions, [2]int{start, end})
		pos = end
	}
}

// FuzzIPC feeds arrow-go's IPC reader a valid stream (schema and message
// metadata of a random schema) whose message bodies (validity bitmaps,
// offsets, values, views, dictionary indices, run ends) are overwritten with
// fuzzed bytes, then encodes whatever arrow-go reads. Encode must return a
// result or ErrInvalidData, never panic, and the oracle must hold on every
// encoded row. (Fuzzing raw IPC bytes mostly exercises arrow-go's flatbuffer
// parsing, which exhausts memory on counts it reads from the input.)
func FuzzIPC(f *testing.F) {
	for seed := uint64(0); seed < 24; seed++ {
		f.Add(seed, []byte{})
		f.Add(seed, []byte{0xff, 0, 0x80, 1})
	}
	f.Fuzz(func(t *testing.T, seed uint64, noise []byte) {
		g := newRandGen(seed)
		s := g.schema(1+g.r.IntN(3), 3)
		for hasListView(s) { // arrow-go's IPC cannot always round-trip them
			s = g.schema(1+g.r.IntN(3), 3)
		}
		stream := ipcBytes(t, g.record(s, g.r.IntN(9)))
		if len(noise) > 0 {
			k := 0
			for _, r := range bodyRegions(stream) {
				for i := r[0]; i < r[1]; i++ {
					stream[i] ^= noise[k%len(noise)]
					k++
				}
			}
		}
		for _, rec := range readIPC(stream) {
			encodeChecked(t, rec)
			rec.Release()
		}
	})
}

func FuzzRandomSchema(f *testing.F) {
	for seed := uint64(0); seed < 20; seed++ {
		f.Add(seed, uint8(seed%6+1), uint8(seed%5), uint8(seed*7%50))
	}
	f.Fuzz(func(t *testing.T, seed uint64, cols, depth, rows uint8) {
		g := newRandGen(seed)
		s := g.schema(int(cols%8)+1, int(depth%5))
		rec := g.record(s, int(rows))
		encodeChecked(t, rec)
		if n := rec.NumRows(); n > 2 {
			encodeChecked(t, rec.NewSlice(1, n-1))
		}
		// The generated descriptor, given back as a user descriptor, encodes
		// the same bytes.
		sc, err := NewSchema(s)
		if err != nil {
			t.Fatalf("NewSchema(%s): %v", s, err)
		}
		uc, err := NewSchemaWithDescriptor(s, sc.Descriptor())
		if err != nil {
			t.Fatalf("own descriptor rejected: %v", err)
		}
		x, err1 := sc.Encode(rec)
		y, err2 := uc.Encode(rec)
		if err1 != nil || err2 != nil {
			t.Fatalf("%v %v", err1, err2)
		}
		if fmt.Sprint(x.Records, x.Errors) != fmt.Sprint(y.Records, y.Errors) {
			t.Fatal("user descriptor path differs from the generated one")
		}
	})
}

package debugfiles_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/pyzerobus/pyzerobus/zbwrap/arrowproto"
	"github.com/pyzerobus/pyzerobus/zbwrap/debugfiles"
)

func Example() {
	dir, err := os.MkdirTemp("", "zerobus-debug")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	w, err := debugfiles.New(debugfiles.Config{Dir: dir, Table: "main.app.events", Arrow: true, Protobuf: true})
	if err != nil {
		panic(err)
	}

	// The engine calls OnBatchEncoded with each batch it converted.
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "kind", Type: arrow.BinaryTypes.String},
	}, nil)
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, schema,
		strings.NewReader(`[{"id": 1, "kind": "click"}, {"id": 2, "kind": "view"}]`))
	if err != nil {
		panic(err)
	}
	defer rec.Release()
	sc, err := arrowproto.NewSchema(schema)
	if err != nil {
		panic(err)
	}
	enc, err := sc.Encode(rec)
	if err != nil {
		panic(err)
	}
	w.OnBatchEncoded(rec, sc.DescriptorBytes(), enc.Records)

	if err := w.Close(); err != nil {
		panic(err)
	}
	st := w.Stats()
	fmt.Println("files:", st.FilesWritten, "errors:", st.WriteErrors)

	// The Arrow file is an IPC stream.
	f, err := os.Open(filepath.Join(dir, "zerobus", "arrow", "main.app.events.arrows"))
	if err != nil {
		panic(err)
	}
	defer f.Close()
	r, err := ipc.NewReader(f)
	if err != nil {
		panic(err)
	}
	defer r.Release()
	for r.Next() {
		fmt.Println("batch of", r.RecordBatch().NumRows(), "rows")
	}

	// The protobuf file is length-prefixed records.
	data, err := os.ReadFile(filepath.Join(dir, "zerobus", "proto", "main.app.events.pb"))
	if err != nil {
		panic(err)
	}
	for len(data) > 0 {
		n, k := protowire.ConsumeVarint(data)
		fmt.Printf("record %x\n", data[k:k+int(n)])
		data = data[k+int(n):]
	}
	_, err = os.Stat(filepath.Join(dir, "zerobus", "descriptors", "main.app.events.desc"))
	fmt.Println("descriptor file:", err == nil)
	// Output:
	// files: 3 errors: 0
	// batch of 2 rows
	// record 08011205636c69636b
	// record 0802120476696577
	// descriptor file: true
}

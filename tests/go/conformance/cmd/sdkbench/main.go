// Command sdkbench sends Arrow data with Databricks' pure-Go SDK
// (github.com/databricks/zerobus-sdk/purego), for tools/bench/bench.py: it is
// the pure-Go SDK's row of that comparison, beside tools/bench/goengine.
//
// It loads an Arrow IPC file of int64 and string columns into memory and
// cuts it into chunks of -batch-rows rows. Each chunk becomes one
// IngestRecordsOffset call, the way the SDK's users send; the stream flushes
// at the end. -mode preencoded encodes every record with the engine's
// encoder before the clock starts (the SDK's best case: its users have
// records at hand); -mode dynamicpb converts each chunk inside the timed
// loop the way a user starting from Arrow must, one dynamicpb message per
// row and proto.Marshal. The first chunk opens the stream and is not timed.
// It prints one JSON line: {"rows": N, "seconds": S, "cpu_seconds": C,
// "peak_rss_bytes": R}, C being the user and system CPU time of the timed
// part and R the process's peak resident set.
//
//	ZEROBUS_CLIENT_SECRET=S sdkbench -endpoint URL -workspace-url URL -ca-file ca.pem \
//	    -client-id ID -table main.bench.t -ipc data.arrow [-batch-rows 1000] [-mode preencoded|dynamicpb]
//
// The SDK refuses plaintext endpoints: the server must serve TLS.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/databricks/zerobus-sdk/purego/zerobus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/pyzerobus/pyzerobus/internal/benchproc"
	"github.com/pyzerobus/pyzerobus/zbwrap/arrowproto"
)

func main() {
	if err := run(os.Args[1:], os.Getenv("ZEROBUS_CLIENT_SECRET"), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sdkbench:", err)
		os.Exit(1)
	}
}

func run(args []string, secret string, stdout io.Writer) error {
	fs := flag.NewFlagSet("sdkbench", flag.ContinueOnError)
	var (
		endpoint  = fs.String("endpoint", "", "Zerobus gRPC endpoint (https://)")
		workspace = fs.String("workspace-url", "", "workspace URL")
		caFile    = fs.String("ca-file", "", "CA certificate (PEM) to trust")
		clientID  = fs.String("client-id", "", "OAuth client id")
		table     = fs.String("table", "", "catalog.schema.table")
		path      = fs.String("ipc", "", "Arrow IPC file to send")
		batchRows = fs.Int("batch-rows", 1000, "records per IngestRecordsOffset call")
		mode      = fs.String("mode", "preencoded", "preencoded: records encoded before the clock starts; dynamicpb: converted in the loop")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *mode != "preencoded" && *mode != "dynamicpb" {
		return fmt.Errorf("unknown -mode %q", *mode)
	}
	if *batchRows < 1 {
		return fmt.Errorf("-batch-rows must be at least 1, got %d", *batchRows)
	}
	pem, err := os.ReadFile(*caFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return errors.New("no certificate in " + *caFile)
	}
	chunks, sch, err := load(*path, *batchRows)
	if err != nil {
		return err
	}
	defer func() {
		for _, c := range chunks {
			c.Release()
		}
	}()
	md, err := messageDescriptor(sch.Descriptor())
	if err != nil {
		return err
	}
	var pre [][][]byte
	if *mode == "preencoded" {
		for _, c := range chunks {
			enc, err := sch.Encode(c)
			if err != nil {
				return err
			}
			recs := make([][]byte, len(enc.Records))
			for i, r := range enc.Records {
				recs[i] = slices.Clone(r)
			}
			pre = append(pre, recs)
		}
	}

	tlsCfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	sdk, err := zerobus.New(*endpoint, *workspace, zerobus.WithTLSConfig(tlsCfg),
		zerobus.WithHTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}, Timeout: 30 * time.Second}))
	if err != nil {
		return err
	}
	defer sdk.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stream, err := sdk.CreateStream(ctx, *table, *clientID, secret, zerobus.WithProto(sch.DescriptorBytes()),
		zerobus.WithWaitForReady())
	if err != nil {
		return fmt.Errorf("create stream: %w", err)
	}
	defer func() { _ = stream.Close() }()

	records := func(i int) ([][]byte, error) {
		if pre != nil {
			return pre[i], nil
		}
		return dynamicpbRows(md, chunks[i])
	}
	first, err := records(0) // open the stream
	if err != nil {
		return err
	}
	if _, err := stream.IngestRecordsOffset(first); err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	if err := stream.Flush(); err != nil {
		return fmt.Errorf("flush: %w", err)
	}

	var rows int64
	cpu0 := benchproc.CPUSeconds()
	start := time.Now()
	for i := 1; i < len(chunks); i++ {
		recs, err := records(i)
		if err != nil {
			return err
		}
		if _, err := stream.IngestRecordsOffset(recs); err != nil {
			return fmt.Errorf("ingest: %w", err)
		}
		rows += int64(len(recs))
	}
	if err := stream.Flush(); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	secs := time.Since(start).Seconds()
	cpu := benchproc.CPUSeconds() - cpu0
	return json.NewEncoder(stdout).Encode(map[string]any{
		"rows": rows, "seconds": secs, "cpu_seconds": cpu, "peak_rss_bytes": benchproc.PeakRSS(),
	})
}

// load reads an Arrow IPC file, cuts its batches into chunks and compiles
// the encoder of its schema.
func load(path string, batchRows int) ([]arrow.RecordBatch, *arrowproto.Schema, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	r, err := ipc.NewFileReader(f)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	for i, fd := range r.Schema().Fields() {
		if fd.Type.ID() != arrow.INT64 && fd.Type.ID() != arrow.STRING {
			return nil, nil, fmt.Errorf("%s: column %d (%s) is %s; only int64 and string columns are supported",
				path, i, fd.Name, fd.Type)
		}
	}
	sch, err := arrowproto.NewSchema(r.Schema())
	if err != nil {
		return nil, nil, err
	}
	var out []arrow.RecordBatch
	for i := range r.NumRecords() {
		rec, err := r.RecordBatchAt(i)
		if err != nil {
			return nil, nil, err
		}
		for off := int64(0); off < rec.NumRows(); off += int64(batchRows) {
			out = append(out, rec.NewSlice(off, min(off+int64(batchRows), rec.NumRows())))
		}
		rec.Release()
	}
	if len(out) < 2 {
		for _, c := range out {
			c.Release()
		}
		return nil, nil, fmt.Errorf("%s: need at least two chunks", path)
	}
	return out, sch, nil
}

func messageDescriptor(d *descriptorpb.DescriptorProto) (protoreflect.MessageDescriptor, error) {
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:        proto.String("bench.proto"),
		Syntax:      proto.String("proto2"),
		MessageType: []*descriptorpb.DescriptorProto{d},
	}, nil)
	if err != nil {
		return nil, err
	}
	return fd.Messages().Get(0), nil
}

// dynamicpbRows converts a chunk row by row the way a user of the SDK must:
// one dynamicpb message per row, marshalled. Columns map to fields in order.
func dynamicpbRows(md protoreflect.MessageDescriptor, rec arrow.RecordBatch) ([][]byte, error) {
	out := make([][]byte, rec.NumRows())
	fields := md.Fields()
	for i := range out {
		m := dynamicpb.NewMessage(md)
		for c, col := range rec.Columns() {
			if col.IsNull(i) {
				continue
			}
			switch a := col.(type) {
			case *array.Int64:
				m.Set(fields.Get(c), protoreflect.ValueOfInt64(a.Value(i)))
			case *array.String:
				m.Set(fields.Get(c), protoreflect.ValueOfString(a.Value(i)))
			}
		}
		raw, err := proto.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("row %d: %w", i, err)
		}
		out[i] = raw
	}
	return out, nil
}

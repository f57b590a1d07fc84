package conformance

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/databricks/zerobus-sdk/purego/zerobus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

const (
	clientID     = "conformance-client"
	clientSecret = "conformance-secret"
	table        = "main.conformance.events_go"
	rows         = 10_000
)

// startTLSServer starts a durable local server over TLS with a declared table
// whose Delta types need the service's conversions (DATE, TIMESTAMP,
// TIMESTAMP_NTZ, DECIMAL), and opts.
func startTLSServer(t testing.TB, opts ...zerobustest.Option) *zerobustest.Server {
	t.Helper()
	srv, err := zerobustest.NewServer(append([]zerobustest.Option{
		zerobustest.WithTLS(),
		zerobustest.WithClient(clientID, clientSecret),
		zerobustest.WithTable(table,
			zerobustest.Column{Name: "id", Type: "bigint"},
			zerobustest.Column{Name: "name", Type: "string", Nullable: true},
			zerobustest.Column{Name: "amount", Type: "decimal(12,3)", Nullable: true},
			zerobustest.Column{Name: "day", Type: "date", Nullable: true},
			zerobustest.Column{Name: "at", Type: "timestamp", Nullable: true},
			zerobustest.Column{Name: "local_at", Type: "timestamp_ntz", Nullable: true},
			zerobustest.Column{Name: "small", Type: "smallint", Nullable: true},
		),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

func newSDK(t testing.TB, srv *zerobustest.Server) *zerobus.SDK {
	t.Helper()
	tlsCfg := &tls.Config{RootCAs: srv.CertPool(), MinVersion: tls.VersionTLS12}
	sdk, err := zerobus.New(srv.Endpoint(), srv.WorkspaceURL(),
		zerobus.WithTLSConfig(tlsCfg),
		zerobus.WithHTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}}),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sdk.Close() })
	return sdk
}

// row is what the test sends for row i; nil fields are left out (NULL).
type row struct {
	id      int64
	name    *string
	amount  *string // decimal text with 3 digits after the point
	day     *int32  // days since epoch
	at      *int64  // microseconds since epoch
	localAt *int64
	small   *int32
}

func makeRow(i int) row {
	r := row{id: int64(i)}
	if i%7 != 0 {
		s := fmt.Sprintf("event-%d", i)
		r.name = &s
	}
	if i%5 != 0 {
		s := fmt.Sprintf("%d.%03d", i-rows/2, i%1000)
		if i-rows/2 < 0 {
			s = fmt.Sprintf("-%d.%03d", rows/2-i, i%1000)
		}
		r.amount = &s
	}
	d := int32(19000 + i%400)
	r.day = &d
	at := int64(1_700_000_000_000_000) + int64(i)*1_000_003
	r.at = &at
	if i%3 != 0 {
		l := at - 3_600_000_000
		r.localAt = &l
	}
	sm := int32(i%60000 - 30000)
	r.small = &sm
	return r
}

func encode(t testing.TB, md protoreflect.MessageDescriptor, r row) []byte {
	t.Helper()
	m := dynamicpb.NewMessage(md)
	set := func(name string, v protoreflect.Value) {
		fd := md.Fields().ByName(protoreflect.Name(name))
		if fd == nil {
			t.Fatalf("descriptor from Unity Catalog has no field %q", name)
		}
		m.Set(fd, v)
	}
	set("id", protoreflect.ValueOfInt64(r.id))
	if r.name != nil {
		set("name", protoreflect.ValueOfString(*r.name))
	}
	if r.amount != nil {
		set("amount", protoreflect.ValueOfString(*r.amount))
	}
	if r.day != nil {
		set("day", protoreflect.ValueOfInt32(*r.day))
	}
	if r.at != nil {
		set("at", protoreflect.ValueOfInt64(*r.at))
	}
	if r.localAt != nil {
		set("local_at", protoreflect.ValueOfInt64(*r.localAt))
	}
	if r.small != nil {
		set("small", protoreflect.ValueOfInt32(*r.small))
	}
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPureGoSDKIngests: Databricks' pure-Go SDK fetches the table's descriptor
// from the local Unity Catalog endpoint, takes a token through the OAuth
// flow, ingests 10,000 records over TLS, and every row lands in the Delta
// table with its Delta type and value.
func TestPureGoSDKIngests(t *testing.T) {
	srv := startTLSServer(t)
	ingestWithSDK(t, srv)
}

// TestPureGoSDKIngestsDatabricksProfile: the same against a server with the
// databricks profile (ack latency median 150 ms, p95 500 ms) and a stream
// quota of 5,000 records/s: the SDK is paced, and every row lands.
func TestPureGoSDKIngestsDatabricksProfile(t *testing.T) {
	srv := startTLSServer(t, zerobustest.WithProfile(zerobustest.ProfileDatabricks),
		zerobustest.WithStreamQuota(zerobustest.Quota{RecordsPerSec: 5000}))
	start := time.Now()
	ingestWithSDK(t, srv)
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Errorf("%d records at 5,000 records/s took %v", rows, d)
	}
	st := srv.Stats()
	if len(st.Streams) != 1 || st.Streams[0].ThrottledSeconds <= 0 || st.Streams[0].RecordsAcked != rows {
		t.Fatalf("streams %+v", st.Streams)
	}
}

// ingestWithSDK sends the rows through the pure-Go SDK and checks the table.
func ingestWithSDK(t *testing.T, srv *zerobustest.Server) {
	t.Helper()
	sdk := newSDK(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	desc, err := sdk.FetchProtoDescriptorFromUC(ctx, table, clientID, clientSecret)
	if err != nil {
		t.Fatalf("FetchProtoDescriptorFromUC: %v", err)
	}
	stream, err := sdk.CreateStream(ctx, table, clientID, clientSecret,
		zerobus.WithProto(desc), zerobus.WithWaitForReady())
	if err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	md := stream.MessageDescriptor()

	batch := make([][]byte, 0, 1000)
	var last int64
	for i := 0; i < rows; i++ {
		batch = append(batch, encode(t, md, makeRow(i)))
		if len(batch) == cap(batch) {
			if last, err = stream.IngestRecordsOffsetContext(ctx, batch); err != nil {
				t.Fatalf("IngestRecordsOffset: %v", err)
			}
			batch = make([][]byte, 0, 1000)
		}
	}
	if err := stream.WaitForOffsetContext(ctx, last); err != nil {
		t.Fatalf("WaitForOffset(%d): %v", last, err)
	}
	if err := stream.FlushContext(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if err := stream.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	st := srv.Stats()
	if got := st.Tables[table].RecordsAcked; got != rows {
		t.Fatalf("server acked %d records, want %d", got, rows)
	}
	if err := srv.Materialize(); err != nil {
		t.Fatal(err)
	}
	checkTable(t, srv.DataDir())
}

func checkTable(t *testing.T, dataDir string) {
	t.Helper()
	tbl, err := zerobustest.ReadTable(dataDir, table)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	if tbl.NumRows() != rows {
		t.Fatalf("Delta table has %d rows, want %d", tbl.NumRows(), rows)
	}
	wantTypes := map[string]arrow.DataType{
		"id":       arrow.PrimitiveTypes.Int64,
		"name":     arrow.BinaryTypes.String,
		"amount":   &arrow.Decimal128Type{Precision: 12, Scale: 3},
		"day":      arrow.FixedWidthTypes.Date32,
		"at":       &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"},
		"local_at": &arrow.TimestampType{Unit: arrow.Microsecond},
		"small":    arrow.PrimitiveTypes.Int16,
	}
	cols := map[string]arrow.Array{}
	for i, f := range tbl.Schema().Fields() {
		if want, ok := wantTypes[f.Name]; !ok || !arrow.TypeEqual(f.Type, want) {
			t.Errorf("column %s has type %s, want %v", f.Name, f.Type, want)
		}
		chunked := tbl.Column(i).Data()
		cat, err := array.Concatenate(chunked.Chunks(), memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		defer cat.Release()
		cols[f.Name] = cat
	}
	if t.Failed() {
		return
	}
	ids := cols["id"].(*array.Int64)
	seen := make([]bool, rows)
	for k := 0; k < rows; k++ {
		i := int(ids.Value(k))
		if i < 0 || i >= rows || seen[i] {
			t.Fatalf("row %d: id %d is out of range or duplicated", k, i)
		}
		seen[i] = true
		want := makeRow(i)
		checkString(t, i, "name", cols["name"].(*array.String), k, want.name)
		amt := cols["amount"].(*array.Decimal128)
		if want.amount == nil {
			if amt.IsValid(k) {
				t.Fatalf("id %d: amount = %v, want NULL", i, amt.Value(k))
			}
		} else if got := decimalText(amt.Value(k), 3); got != *want.amount {
			t.Fatalf("id %d: amount = %s, want %s", i, got, *want.amount)
		}
		if got := int32(cols["day"].(*array.Date32).Value(k)); got != *want.day {
			t.Fatalf("id %d: day = %d, want %d", i, got, *want.day)
		}
		if got := int64(cols["at"].(*array.Timestamp).Value(k)); got != *want.at {
			t.Fatalf("id %d: at = %d, want %d", i, got, *want.at)
		}
		la := cols["local_at"].(*array.Timestamp)
		if want.localAt == nil {
			if la.IsValid(k) {
				t.Fatalf("id %d: local_at set, want NULL", i)
			}
		} else if got := int64(la.Value(k)); got != *want.localAt {
			t.Fatalf("id %d: local_at = %d, want %d", i, got, *want.localAt)
		}
		if got := int32(cols["small"].(*array.Int16).Value(k)); got != *want.small {
			t.Fatalf("id %d: small = %d, want %d", i, got, *want.small)
		}
	}
}

func checkString(t *testing.T, id int, col string, a *array.String, k int, want *string) {
	t.Helper()
	switch {
	case want == nil && a.IsValid(k):
		t.Fatalf("id %d: %s = %q, want NULL", id, col, a.Value(k))
	case want != nil && (!a.IsValid(k) || a.Value(k) != *want):
		t.Fatalf("id %d: %s = %q (valid %v), want %q", id, col, a.Value(k), a.IsValid(k), *want)
	}
}

// decimalText renders an unscaled decimal128 with scale digits after the point.
func decimalText(v decimal128.Num, scale int) string {
	b := v.BigInt()
	neg := b.Sign() < 0
	s := new(big.Int).Abs(b).String()
	for len(s) <= scale {
		s = "0" + s
	}
	s = s[:len(s)-scale] + "." + s[len(s)-scale:]
	if neg {
		s = "-" + s
	}
	return s
}

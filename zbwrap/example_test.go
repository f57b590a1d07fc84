package zbwrap_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/pyzerobus/pyzerobus/zbwrap"
	"github.com/pyzerobus/pyzerobus/zbwrap/telemetry"
	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

// events builds a small batch: id int64, name string.
func events(ids ...int64) arrow.RecordBatch {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for _, id := range ids {
		b.Field(0).(*array.Int64Builder).Append(id)
		b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("event-%d", id))
	}
	return b.NewRecordBatch()
}

// localServer starts a local Zerobus server that knows one OAuth client.
func localServer() *zerobustest.Server {
	srv, err := zerobustest.NewServer(zerobustest.WithClient("my-sp", "my0secret"))
	if err != nil {
		log.Fatal(err)
	}
	return srv
}

// Send a batch and wait until its rows are durable.
func Example() {
	srv := localServer()
	defer srv.Close()
	ctx := context.Background()

	w, err := zbwrap.New(ctx, zbwrap.Config{
		ZerobusEndpoint: srv.Endpoint(),     // https://<workspace-id>.zerobus.<region>.cloud.databricks.com
		UnityCatalogURL: srv.WorkspaceURL(), // https://<workspace>.cloud.databricks.com
		ClientID:        "my-sp",
		ClientSecret:    "my0secret",
		TableName:       "main.default.events",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close(ctx)

	rec := events(1, 2, 3)
	defer rec.Release()
	res, err := w.SendBatch(ctx, rec)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("acknowledged %d of %d rows\n", res.SuccessfulCount, res.TotalRows)
	// Output: acknowledged 3 of 3 rows
}

// Queue batches without waiting, then wait for all of them.
func ExampleWrapper_SendBatchAsync() {
	srv := localServer()
	defer srv.Close()
	ctx := context.Background()
	w, err := zbwrap.New(ctx, zbwrap.Config{}, zbwrap.WithEndpoint(srv.Endpoint()),
		zbwrap.WithUnityCatalogURL(srv.WorkspaceURL()), zbwrap.WithClientID("my-sp"),
		zbwrap.WithClientSecret("my0secret"), zbwrap.WithTableName("main.default.events"))
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close(ctx)

	for i := range int64(3) {
		rec := events(i*10, i*10+1)
		off, err := w.SendBatchAsync(ctx, rec) // returns once queued
		rec.Release()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("queued batch", off)
	}
	if err := w.Flush(ctx); err != nil { // reports failed batches, if any
		log.Fatal(err)
	}
	fmt.Println("rows acknowledged:", w.Stats().RowsAcked)
	// Output:
	// queued batch 0
	// queued batch 1
	// queued batch 2
	// rows acknowledged: 6
}

// Keep a sequence of batches in order on the stream while several are in
// flight, with a result per batch.
func ExampleWrapper_Enqueue() {
	srv := localServer()
	defer srv.Close()
	ctx := context.Background()
	w, err := zbwrap.New(ctx, zbwrap.Config{}, zbwrap.WithEndpoint(srv.Endpoint()),
		zbwrap.WithUnityCatalogURL(srv.WorkspaceURL()), zbwrap.WithClientID("my-sp"),
		zbwrap.WithClientSecret("my0secret"), zbwrap.WithTableName("main.default.events"))
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close(ctx)

	var pending []*zbwrap.PendingBatch
	for i := range int64(3) {
		rec := events(i*10, i*10+1, i*10+2)
		p, err := w.Enqueue(ctx, rec) // returns once queued, in this order
		rec.Release()
		if err != nil {
			log.Fatal(err)
		}
		pending = append(pending, p)
	}
	for i, p := range pending {
		res, err := p.Wait(ctx) // the result SendBatch would have given
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("batch %d: %d rows acknowledged\n", i, res.SuccessfulCount)
	}
	// Output:
	// batch 0: 3 rows acknowledged
	// batch 1: 3 rows acknowledged
	// batch 2: 3 rows acknowledged
}

// Rows the encoder rejects fail alone; the others are sent.
func ExampleTransmissionResult_ExtractFailedBatch() {
	srv := localServer()
	defer srv.Close()
	ctx := context.Background()
	w, err := zbwrap.New(ctx, zbwrap.Config{}, zbwrap.WithEndpoint(srv.Endpoint()),
		zbwrap.WithUnityCatalogURL(srv.WorkspaceURL()), zbwrap.WithClientID("my-sp"),
		zbwrap.WithClientSecret("my0secret"), zbwrap.WithTableName("main.default.counters"))
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close(ctx)

	// uint64 values above 2^63-1 do not fit the table's BIGINT.
	sc := arrow.NewSchema([]arrow.Field{{Name: "n", Type: arrow.PrimitiveTypes.Uint64}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	b.Field(0).(*array.Uint64Builder).AppendValues([]uint64{1, 1 << 63, 3}, nil)
	rec := b.NewRecordBatch()
	b.Release()
	defer rec.Release()

	res, err := w.SendBatch(ctx, rec)
	fmt.Println("conversion error:", errors.Is(err, zbwrap.ErrConversion))
	fmt.Println("partial success:", res.IsPartialSuccess(), "failed rows:", res.FailedIndices())
	fmt.Println("may have landed:", res.FailedRows[0].MayHaveLanded)
	failed, err := res.ExtractFailedBatch(rec)
	if err != nil {
		log.Fatal(err)
	}
	defer failed.Release()
	fmt.Println("failed batch rows:", failed.NumRows())
	// Output:
	// conversion error: true
	// partial success: true failed rows: [1]
	// may have landed: false
	// failed batch rows: 1
}

// Load the settings from YAML; the environment (ZEROBUS_*, DATABRICKS_*)
// overrides them. The secret never prints.
func ExampleLoadConfig() {
	dir, _ := os.MkdirTemp("", "zbwrap-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "zerobus.yaml")
	os.WriteFile(path, []byte(`
zerobus_endpoint: https://1234.zerobus.us-west-2.cloud.databricks.com
unity_catalog_url: https://dbc-1234.cloud.databricks.com
client_id: my-sp
client_secret: my0secret
table_name: main.default.events
retry_max_attempts: 8
retry_base_delay_ms: 250
`), 0o600)

	cfg, err := zbwrap.LoadConfig(path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cfg.TableName, cfg.RetryMaxAttempts, cfg.RetryBaseDelay)
	fmt.Println("secret:", cfg.ClientSecret)
	fmt.Println(cfg.Validate())
	// Output:
	// main.default.events 8 250ms
	// secret: [REDACTED]
	// <nil>
}

// Validate reports every bad setting at once, each by name.
func ExampleConfig_Validate() {
	cfg := zbwrap.Config{
		ZerobusEndpoint:       "http://zerobus.example.com", // plaintext off loopback
		TableName:             "events",
		ZerobusWriterDisabled: true,
	}
	fmt.Println(cfg.Validate())
	// Output:
	// zbwrap: configuration error: config: table_name: must be catalog.schema.table, got "events"
	// zbwrap: configuration error: config: zerobus_endpoint: plaintext http:// is allowed only for a loopback host, not "zerobus.example.com": use https://
}

// Convert only: no connection, no credentials.
func ExampleWithWriterDisabled() {
	ctx := context.Background()
	w, err := zbwrap.New(ctx, zbwrap.Config{TableName: "main.default.events"}, zbwrap.WithWriterDisabled(true))
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close(ctx)
	rec := events(1, 2)
	defer rec.Release()
	res, err := w.SendBatch(ctx, rec)
	fmt.Println(res.SuccessfulCount, "rows converted,", res.BatchSizeBytes, "bytes, error:", err)
	// Output: 2 rows converted, 22 bytes, error: <nil>
}

// Record the engine's metrics and spans with your own OpenTelemetry
// providers: here an in-memory metric reader. (To export over OTLP instead,
// set ObservabilityEnabled and ObservabilityOTLPEndpoint, and pass
// WithExporters(otelsetup.New).)
func ExampleWithMeterProvider() {
	srv := localServer()
	defer srv.Close()
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(ctx) // yours: the Wrapper never shuts it down

	w, err := zbwrap.New(ctx, zbwrap.Config{TableName: "main.default.events"},
		zbwrap.WithEndpoint(srv.Endpoint()), zbwrap.WithUnityCatalogURL(srv.WorkspaceURL()),
		zbwrap.WithClientID("my-sp"), zbwrap.WithClientSecret("my0secret"),
		zbwrap.WithMeterProvider(mp))
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close(ctx)
	rec := events(1, 2, 3)
	defer rec.Release()
	if _, err := w.SendBatch(ctx, rec); err != nil {
		log.Fatal(err)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		log.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == telemetry.MetricRowsAcknowledged {
				fmt.Println(m.Name, m.Data.(metricdata.Sum[int64]).DataPoints[0].Value)
			}
		}
	}
	// Output: zerobus.rows.acknowledged 3
}

// Send a stream of record batches (any array.RecordReader: an IPC stream,
// a C data stream, Parquet through pqarrow) in chunks: they convert in
// parallel and reach the table in the reader's order, with one result for
// the whole stream.
func ExampleWrapper_SendReader() {
	srv := localServer()
	defer srv.Close()
	ctx := context.Background()
	w, err := zbwrap.New(ctx, zbwrap.Config{TableName: "main.default.events"},
		zbwrap.WithEndpoint(srv.Endpoint()), zbwrap.WithUnityCatalogURL(srv.WorkspaceURL()),
		zbwrap.WithClientID("my-sp"), zbwrap.WithClientSecret("my0secret"))
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close(ctx)

	a, b := events(1, 2, 3), events(4, 5)
	defer a.Release()
	defer b.Release()
	rdr, err := array.NewRecordReader(a.Schema(), []arrow.RecordBatch{a, b})
	if err != nil {
		log.Fatal(err)
	}
	defer rdr.Release() // the send neither retains nor releases it

	res, err := w.SendReader(ctx, rdr, zbwrap.WithChunkRows(2), zbwrap.WithConcurrency(2))
	if err != nil {
		for _, run := range res.Failed { // rows numbered across the whole reader
			fmt.Println("rows", run.Start, "to", run.Start+run.Count-1, "failed:", run.Error)
		}
		log.Fatal(err)
	}
	fmt.Println(res.SuccessfulCount, "rows acknowledged in", res.Batches, "batches")
	// Output: 5 rows acknowledged in 3 batches
}

// Send batches as Arrow over Arrow Flight, compressed with LZ4: the same
// API, results and guarantees as the default protobuf transport.
func ExampleWithTransport() {
	srv := localServer()
	defer srv.Close()
	ctx := context.Background()
	w, err := zbwrap.New(ctx, zbwrap.Config{}, zbwrap.WithEndpoint(srv.Endpoint()),
		zbwrap.WithUnityCatalogURL(srv.WorkspaceURL()), zbwrap.WithClientID("my-sp"),
		zbwrap.WithClientSecret("my0secret"), zbwrap.WithTableName("main.default.events"),
		zbwrap.WithTransport(zbwrap.TransportArrow), zbwrap.WithArrowCompression("lz4"))
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close(ctx)

	rec := events(1, 2, 3)
	defer rec.Release()
	res, err := w.SendBatch(ctx, rec)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("acknowledged %d of %d rows over %s\n", res.SuccessfulCount, res.TotalRows, srv.Stats().Streams[0].Transport)
	// Output: acknowledged 3 of 3 rows over arrow
}

// Command quickstart sends a generated table of events through the zbwrap
// engine into a Zerobus endpoint (the local server in `make demo`).
//
//	go run ./examples/go/quickstart -endpoint URL -workspace-url URL \
//	    -client-id ID -client-secret SECRET -table catalog.schema.table
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pyzerobus/pyzerobus/zbwrap"
)

// eventSchema is a realistic event table with nested fields.
var eventSchema = arrow.NewSchema([]arrow.Field{
	{Name: "event_id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "event_time", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	{Name: "user_id", Type: arrow.BinaryTypes.String},
	{Name: "kind", Type: arrow.BinaryTypes.String},
	{Name: "amount", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "device", Type: arrow.StructOf(
		arrow.Field{Name: "os", Type: arrow.BinaryTypes.String},
		arrow.Field{Name: "version", Type: arrow.PrimitiveTypes.Int32},
	), Nullable: true},
	{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String)},
	{Name: "attributes", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String)},
}, nil)

var kinds = []string{"view", "click", "purchase", "signup"}

// buildBatch makes rows [start, start+n) of the sample.
func buildBatch(start, n int) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, eventSchema)
	defer b.Release()
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	for i := start; i < start+n; i++ {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(base + int64(i)*1_000_000))
		b.Field(2).(*array.StringBuilder).Append(fmt.Sprintf("user-%05d", i%20000))
		kind := kinds[i%len(kinds)]
		b.Field(3).(*array.StringBuilder).Append(kind)
		if kind == "purchase" {
			b.Field(4).(*array.Float64Builder).Append(float64(i%5000) / 100)
		} else {
			b.Field(4).(*array.Float64Builder).AppendNull()
		}
		dev := b.Field(5).(*array.StructBuilder)
		if i%10 == 0 {
			dev.AppendNull()
		} else {
			dev.Append(true)
			dev.FieldBuilder(0).(*array.StringBuilder).Append([]string{"ios", "android", "web"}[i%3])
			dev.FieldBuilder(1).(*array.Int32Builder).Append(int32(10 + i%7))
		}
		tags := b.Field(6).(*array.ListBuilder)
		tags.Append(true)
		for t := 0; t < i%3; t++ {
			tags.ValueBuilder().(*array.StringBuilder).Append(fmt.Sprintf("tag%d", t))
		}
		attrs := b.Field(7).(*array.MapBuilder)
		attrs.Append(true)
		attrs.KeyBuilder().(*array.StringBuilder).Append("campaign")
		attrs.ItemBuilder().(*array.StringBuilder).Append(fmt.Sprintf("c%d", i%12))
	}
	return b.NewRecordBatch()
}

func main() {
	endpoint := flag.String("endpoint", os.Getenv("ZEROBUS_ENDPOINT"), "Zerobus endpoint URL")
	workspace := flag.String("workspace-url", os.Getenv("DATABRICKS_HOST"), "workspace URL (OAuth tokens)")
	clientID := flag.String("client-id", os.Getenv("DATABRICKS_CLIENT_ID"), "OAuth client id")
	secret := flag.String("client-secret", os.Getenv("DATABRICKS_CLIENT_SECRET"), "OAuth client secret")
	table := flag.String("table", "main.demo.events", "target table catalog.schema.table")
	rows := flag.Int("rows", 100_000, "rows to send")
	batch := flag.Int("batch", 10_000, "rows per Arrow batch")
	flag.Parse()

	ctx := context.Background()
	w, err := zbwrap.New(ctx, zbwrap.Config{
		ZerobusEndpoint: *endpoint,
		UnityCatalogURL: *workspace,
		ClientID:        *clientID,
		ClientSecret:    zbwrap.Secret(*secret),
		TableName:       *table,
	})
	if err != nil {
		log.Fatal(err)
	}

	start := time.Now()
	var acked, failed, bytes int64
	for first := 0; first < *rows; first += *batch {
		rec := buildBatch(first, min(*batch, *rows-first))
		res, err := w.SendBatch(ctx, rec)
		rec.Release()
		if err != nil {
			log.Fatalf("batch at row %d: %v", first, err)
		}
		acked += int64(res.SuccessfulCount)
		failed += int64(res.FailedCount)
		bytes += int64(res.BatchSizeBytes)
	}
	if err := w.Close(ctx); err != nil {
		log.Fatal(err)
	}
	elapsed := time.Since(start)
	fmt.Printf("sent %d rows to %s: %d acknowledged, %d failed, %.1f MB in %s (%.0f rows/s)\n",
		*rows, *table, acked, failed, float64(bytes)/1e6, elapsed.Round(time.Millisecond),
		float64(acked)/elapsed.Seconds())
	if failed > 0 {
		os.Exit(1)
	}
}

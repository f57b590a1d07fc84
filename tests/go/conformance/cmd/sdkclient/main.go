// Command sdkclient ingests into a Zerobus endpoint with Databricks' own
// pure-Go SDK (github.com/databricks/zerobus-sdk/purego): it fetches the
// table's descriptor from Unity Catalog, opens an OAuth stream, ingests
// records built from that descriptor (an "id" column gets the record's
// number, a "name" column "sdk-N"; other columns stay unset) and flushes.
// The tests of zerobus-local run it to prove that the server speaks the wire
// the official SDK speaks. It lives in its own program because the SDK and
// this repository register the same protobuf names.
//
//	sdkclient -endpoint URL -workspace-url URL -ca-file ca.pem -client-id ID -table c.s.t -records N
//
// The client secret comes from $ZEROBUS_CLIENT_SECRET. It prints
// "ok records=N" when every record is acknowledged.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/databricks/zerobus-sdk/purego/zerobus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sdkclient:", err)
		os.Exit(1)
	}
}

func run() error {
	endpoint := flag.String("endpoint", "", "Zerobus gRPC endpoint (https://)")
	workspace := flag.String("workspace-url", "", "workspace URL")
	caFile := flag.String("ca-file", "", "CA certificate (PEM) to trust")
	clientID := flag.String("client-id", "", "OAuth client id")
	table := flag.String("table", "", "catalog.schema.table")
	n := flag.Int("records", 100, "records to ingest")
	batch := flag.Int("batch", 10, "records per IngestRecordsOffset call (1: IngestRecordOffset)")
	flag.Parse()
	secret := os.Getenv("ZEROBUS_CLIENT_SECRET")

	pem, err := os.ReadFile(*caFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return errors.New("no certificate in " + *caFile)
	}
	tlsCfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	sdk, err := zerobus.New(*endpoint, *workspace,
		zerobus.WithTLSConfig(tlsCfg),
		zerobus.WithHTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}, Timeout: 10 * time.Second}))
	if err != nil {
		return err
	}
	defer sdk.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	descBytes, err := sdk.FetchProtoDescriptorFromUC(ctx, *table, *clientID, secret)
	if err != nil {
		return fmt.Errorf("fetch descriptor: %w", err)
	}
	md, err := messageDescriptor(descBytes)
	if err != nil {
		return err
	}
	stream, err := sdk.CreateStream(ctx, *table, *clientID, secret, zerobus.WithProto(descBytes), zerobus.WithWaitForReady())
	if err != nil {
		return fmt.Errorf("create stream: %w", err)
	}
	var pending [][]byte
	for i := range *n {
		rec, err := record(md, i)
		if err != nil {
			return err
		}
		if *batch <= 1 {
			if _, err := stream.IngestRecordOffset(rec); err != nil {
				return fmt.Errorf("ingest: %w", err)
			}
			continue
		}
		if pending = append(pending, rec); len(pending) == *batch || i == *n-1 {
			if _, err := stream.IngestRecordsOffset(pending); err != nil {
				return fmt.Errorf("ingest: %w", err)
			}
			pending = nil
		}
	}
	if err := stream.Flush(); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	if err := stream.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	fmt.Printf("ok records=%d\n", *n)
	return nil
}

// messageDescriptor builds the message of a serialized DescriptorProto.
func messageDescriptor(b []byte) (protoreflect.MessageDescriptor, error) {
	dp := new(descriptorpb.DescriptorProto)
	if err := proto.Unmarshal(b, dp); err != nil {
		return nil, err
	}
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name: proto.String("uc.proto"), Syntax: proto.String("proto2"), MessageType: []*descriptorpb.DescriptorProto{dp},
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("descriptor: %w", err)
	}
	return fd.Messages().Get(0), nil
}

// record builds record i: id = i, name = "sdk-i".
func record(md protoreflect.MessageDescriptor, i int) ([]byte, error) {
	m := dynamicpb.NewMessage(md)
	if f := md.Fields().ByName("id"); f != nil && f.Kind() == protoreflect.Int64Kind {
		m.Set(f, protoreflect.ValueOfInt64(int64(i)))
	}
	if f := md.Fields().ByName("name"); f != nil && f.Kind() == protoreflect.StringKind {
		m.Set(f, protoreflect.ValueOfString(fmt.Sprint("sdk-", i)))
	}
	return proto.MarshalOptions{AllowPartial: true}.Marshal(m)
}

package zerobustest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/pyzerobus/pyzerobus/zbwrap/internal/wire"
	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

// A test starts a server, streams two records into a table the server
// creates from the stream's descriptor, and reads the Delta table back.
func Example() {
	const table = "main.default.events"
	dir, err := os.MkdirTemp("", "zerobus-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	srv, err := zerobustest.NewServer(zerobustest.WithDataDir(dir))
	if err != nil {
		log.Fatal(err)
	}

	// Any gRPC client speaks to srv.Endpoint(); the headers carry a token
	// for the table (Token skips the OAuth round trip of /oidc/v1/token).
	cc, err := grpc.NewClient(strings.TrimPrefix(srv.Endpoint(), "http://"),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(),
		"authorization", "Bearer "+srv.Token(table),
		"x-databricks-zerobus-table-name", table)
	stream, err := wire.NewZerobusClient(cc).EphemeralStream(ctx)
	if err != nil {
		log.Fatal(err)
	}

	// message Event { optional int64 id = 1; optional string name = 2; }
	desc, _ := proto.Marshal(&descriptorpb.DescriptorProto{
		Name: proto.String("Event"),
		Field: []*descriptorpb.FieldDescriptorProto{
			{Name: proto.String("id"), Number: proto.Int32(1), Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Type: descriptorpb.FieldDescriptorProto_TYPE_INT64.Enum()},
			{Name: proto.String("name"), Number: proto.Int32(2), Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Type: descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()},
		},
	})
	_ = stream.Send(&wire.EphemeralStreamRequest{Payload: &wire.EphemeralStreamRequest_CreateStream{CreateStream: &wire.CreateIngestStreamRequest{
		TableName: proto.String(table), DescriptorProto: desc, RecordType: wire.RecordType_PROTO.Enum(),
	}}})
	if _, err := stream.Recv(); err != nil { // create_stream_response
		log.Fatal(err)
	}
	event := func(id int64, name string) []byte {
		b := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), uint64(id))
		return protowire.AppendString(protowire.AppendTag(b, 2, protowire.BytesType), name)
	}
	_ = stream.Send(&wire.EphemeralStreamRequest{Payload: &wire.EphemeralStreamRequest_IngestRecordBatch{IngestRecordBatch: &wire.IngestRecordBatchRequest{
		OffsetId: proto.Int64(0),
		Batch: &wire.IngestRecordBatchRequest_ProtoEncodedBatch{ProtoEncodedBatch: &wire.ProtoEncodedRecordBatch{
			Records: [][]byte{event(1, "signup"), event(2, "login")},
		}},
	}}})
	ack, err := stream.Recv()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("durable up to offset", ack.GetIngestRecordResponse().GetDurabilityAckUpToOffset())
	_ = stream.CloseSend()
	_, err = stream.Recv()
	fmt.Println("call ended:", err) // io.EOF: status OK

	// Close materializes the durable records into the Delta table.
	if err := srv.Close(); err != nil {
		log.Fatal(err)
	}
	tbl, err := zerobustest.ReadTable(dir, table)
	if err != nil {
		log.Fatal(err)
	}
	defer tbl.Release()
	fmt.Println("rows in the Delta table:", tbl.NumRows())
	// Output:
	// durable up to offset 0
	// call ended: EOF
	// rows in the Delta table: 2
}

// Faults make the server misbehave on purpose, here to end the second
// call's stream as the service does before maintenance.
func ExampleServer_InjectFault() {
	srv, err := zerobustest.NewServer(zerobustest.WithDiscard())
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	err = srv.InjectFault(zerobustest.Fault{
		Kind:           zerobustest.FaultEndCall,
		Table:          "main.default.events",
		AfterRecords:   1000, // fires on the request carrying record 1,001
		Signal:         true, // CloseStreamSignal first, then end the call
		SignalDuration: 2e9,
	})
	if err != nil {
		log.Fatal(err)
	}
	// The same fault in the forms of the command line (--fault) and of the
	// admin endpoint (POST /admin/faults):
	f, _ := zerobustest.ParseFault("kind=end_call,table=main.default.events,after=1000,signal=true,signal_duration=2s")
	b, _ := json.Marshal(f)
	fmt.Println(string(b))
	fmt.Println(len(srv.Faults()), "fault armed")
	// Output:
	// {"kind":"end_call","table":"main.default.events","after_records":1000,"signal":true,"signal_duration":"2s"}
	// 1 fault armed
}

// The admin endpoints want the admin token and a JSON body;
// NewAdminRequest sets both headers.
func ExampleServer_NewAdminRequest() {
	srv, err := zerobustest.NewServer(zerobustest.WithDiscard())
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	req, err := srv.NewAdminRequest(http.MethodPost, "/admin/faults",
		strings.NewReader(`{"kind":"drop_connection","after_records":5000}`))
	if err != nil {
		log.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status, len(srv.Faults()), "fault armed")
	// Output:
	// 200 OK 1 fault armed
}

package zerobustest

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/pyzerobus/pyzerobus/zbwrap/internal/wire"
)

const testTable = "main.default.events"

// newServer starts a server closed at the end of the test.
func newServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := NewServer(opts...)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// dial connects a gRPC client to the server.
func dial(t testing.TB, s *Server) wire.ZerobusClient {
	t.Helper()
	return wire.NewZerobusClient(dialConn(t, s))
}

// dialConn connects to the server's gRPC endpoint.
func dialConn(t testing.TB, s *Server) *grpc.ClientConn {
	t.Helper()
	creds := insecure.NewCredentials()
	if s.CertPool() != nil {
		creds = credentials.NewTLS(&tls.Config{RootCAs: s.CertPool()})
	}
	target := strings.TrimPrefix(strings.TrimPrefix(s.Endpoint(), "http://"), "https://")
	cc, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(creds),
		grpc.WithInitialWindowSize(16<<20),
		grpc.WithInitialConnWindowSize(64<<20),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)),
	)
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// rowDescriptor is message Row { optional int64 id = 1; optional string name = 2; }.
func rowDescriptor() *descriptorpb.DescriptorProto {
	return &descriptorpb.DescriptorProto{
		Name: proto.String("Row"),
		Field: []*descriptorpb.FieldDescriptorProto{
			{Name: proto.String("id"), Number: proto.Int32(1), Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Type: descriptorpb.FieldDescriptorProto_TYPE_INT64.Enum()},
			{Name: proto.String("name"), Number: proto.Int32(2), Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Type: descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()},
		},
	}
}

// rowColumns are the table columns matching rowDescriptor.
func rowColumns() []Column {
	return []Column{{Name: "id", Type: "bigint", Nullable: true}, {Name: "name", Type: "string", Nullable: true}}
}

func rowDescBytes() []byte {
	b, err := proto.Marshal(rowDescriptor())
	if err != nil {
		panic(err)
	}
	return b
}

// row encodes a Row record.
func row(id int64, name string) []byte {
	b := protowire.AppendTag(nil, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(id))
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	return protowire.AppendString(b, name)
}

// rows encodes n Rows with ids from first.
func rows(first, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = row(int64(first+i), "row")
	}
	return out
}

func createReq(table string) *wire.EphemeralStreamRequest {
	return &wire.EphemeralStreamRequest{Payload: &wire.EphemeralStreamRequest_CreateStream{CreateStream: &wire.CreateIngestStreamRequest{
		TableName:       proto.String(table),
		DescriptorProto: rowDescBytes(),
		RecordType:      wire.RecordType_PROTO.Enum(),
	}}}
}

func batchReq(off int64, recs [][]byte) *wire.EphemeralStreamRequest {
	return &wire.EphemeralStreamRequest{Payload: &wire.EphemeralStreamRequest_IngestRecordBatch{IngestRecordBatch: &wire.IngestRecordBatchRequest{
		OffsetId: proto.Int64(off),
		Batch:    &wire.IngestRecordBatchRequest_ProtoEncodedBatch{ProtoEncodedBatch: &wire.ProtoEncodedRecordBatch{Records: recs}},
	}}}
}

func recordReq(off int64, rec []byte) *wire.EphemeralStreamRequest {
	return &wire.EphemeralStreamRequest{Payload: &wire.EphemeralStreamRequest_IngestRecord{IngestRecord: &wire.IngestRecordRequest{
		OffsetId: proto.Int64(off),
		Record:   &wire.IngestRecordRequest_ProtoEncodedRecord{ProtoEncodedRecord: rec},
	}}}
}

// call is a client stream with its call context.
type clientCall struct {
	t      testing.TB
	st     wire.Zerobus_EphemeralStreamClient
	cancel context.CancelFunc
}

// rawCall opens an EphemeralStream call with the given headers (no
// handshake).
func rawCall(t testing.TB, c wire.ZerobusClient, md metadata.MD) *clientCall {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	ctx = metadata.NewOutgoingContext(ctx, md)
	st, err := c.EphemeralStream(ctx)
	if err != nil {
		t.Fatalf("EphemeralStream: %v", err)
	}
	return &clientCall{t: t, st: st, cancel: cancel}
}

func authMD(token, table string) metadata.MD {
	return metadata.Pairs("authorization", "Bearer "+token, HeaderTableName, table)
}

// open opens a call to table with a fresh token and runs the handshake.
func open(t testing.TB, s *Server, c wire.ZerobusClient, table string) *clientCall {
	t.Helper()
	cc := rawCall(t, c, authMD(s.Token(table), table))
	cc.send(createReq(table))
	resp := cc.recv()
	if resp.GetCreateStreamResponse().GetStreamId() == "" {
		t.Fatalf("first response %v, want create_stream_response with a stream id", resp)
	}
	return cc
}

func (c *clientCall) send(req *wire.EphemeralStreamRequest) {
	c.t.Helper()
	if err := c.st.Send(req); err != nil && err != io.EOF {
		c.t.Fatalf("Send: %v", err)
	}
}

func (c *clientCall) recv() *wire.EphemeralStreamResponse {
	c.t.Helper()
	resp, err := c.st.Recv()
	if err != nil {
		c.t.Fatalf("Recv: %v", err)
	}
	return resp
}

// waitAck receives until an acknowledgement covers off.
func (c *clientCall) waitAck(off int64) {
	c.t.Helper()
	for {
		resp := c.recv()
		if a := resp.GetIngestRecordResponse(); a != nil && a.GetDurabilityAckUpToOffset() >= off {
			if a.GetDurabilityAckUpToOffset() > off {
				c.t.Fatalf("ack up to %d, beyond the last offset sent %d", a.GetDurabilityAckUpToOffset(), off)
			}
			return
		}
	}
}

// end receives until the call ends and returns its status (nil for OK).
// Acknowledgements on the way are returned too.
func (c *clientCall) end() (lastAck int64, err error) {
	c.t.Helper()
	lastAck = -1
	for {
		resp, err := c.st.Recv()
		if err == io.EOF {
			return lastAck, nil
		}
		if err != nil {
			return lastAck, err
		}
		if a := resp.GetIngestRecordResponse(); a != nil {
			lastAck = a.GetDurabilityAckUpToOffset()
		}
	}
}

// wantCode checks the status code and that the message contains each of
// want.
func wantCode(t testing.TB, err error, code codes.Code, want ...string) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("status %v, want %v", err, code)
	}
	for _, w := range want {
		if !strings.Contains(status.Convert(err).Message(), w) {
			t.Errorf("message %q does not contain %q", status.Convert(err).Message(), w)
		}
	}
}

// httpClient trusts the server's CA.
func httpClient(s *Server) *http.Client {
	tr := &http.Transport{}
	if s.CertPool() != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: s.CertPool()}
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// doJSON sends a request and decodes a JSON answer into out (if not nil).
func doJSON(t testing.TB, s *Server, method, path string, body io.Reader, hdr http.Header, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, s.WorkspaceURL()+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	return sendJSON(t, s, req, out)
}

// adminJSON sends an admin request (NewAdminRequest: the admin token and
// Content-Type: application/json) and decodes a JSON answer into out (if
// not nil).
func adminJSON(t testing.TB, s *Server, method, path string, body io.Reader, out any) int {
	t.Helper()
	req, err := s.NewAdminRequest(method, path, body)
	if err != nil {
		t.Fatal(err)
	}
	return sendJSON(t, s, req, out)
}

// sendJSON sends req and decodes a JSON answer into out (if not nil).
func sendJSON(t testing.TB, s *Server, req *http.Request, out any) int {
	t.Helper()
	method, path := req.Method, req.URL.Path
	resp, err := httpClient(s).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, b, err)
		}
	}
	return resp.StatusCode
}

// tokenForm is the token request a Zerobus SDK sends for table.
func tokenForm(table string) url.Values {
	p := strings.Split(table, ".")
	ad := []map[string]any{
		{"type": "unity_catalog_privileges", "privileges": []string{"USE CATALOG"}, "object_type": "CATALOG", "object_full_path": p[0]},
		{"type": "unity_catalog_privileges", "privileges": []string{"USE SCHEMA"}, "object_type": "SCHEMA", "object_full_path": p[0] + "." + p[1]},
		{"type": "unity_catalog_privileges", "privileges": []string{"SELECT", "MODIFY"}, "object_type": "TABLE", "object_full_path": table},
	}
	b, _ := json.Marshal(ad)
	return url.Values{
		"grant_type":            {"client_credentials"},
		"scope":                 {"all-apis"},
		"resource":              {"api://databricks/workspaces/127/zerobusDirectWriteApi"},
		"authorization_details": {string(b)},
	}
}

// fetchToken gets a token from the token endpoint; it returns the HTTP
// status and the decoded body.
func fetchToken(t testing.TB, s *Server, id, secret string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.WorkspaceURL()+"/oidc/v1/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(id, secret)
	}
	resp, err := httpClient(s).Do(req)
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("token: decode: %v", err)
	}
	return resp.StatusCode, out
}

package telemetrytest

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

func strAny(s string) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}}
}

// post sends body to url and returns the status and the response body.
func post(t *testing.T, url, contentType, contentEncoding string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if contentEncoding != "" {
		req.Header.Set("Content-Encoding", contentEncoding)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// An OTLP/JSON body as the specification shows it: hex ids, numeric enums,
// 64-bit integers as strings.
const specTraceJSON = `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"my.service"}}]},
"scopeSpans":[{"scope":{"name":"my.library","version":"1.0.0"},"spans":[{"traceId":"5B8EFFF798038103D269B633813FC60C",
"spanId":"EEE19B7EC3C1B174","parentSpanId":"EEE19B7EC3C1B173","name":"I'm a server span","kind":2,
"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000","unknownField":1,
"attributes":[{"key":"my.span.attr","value":{"intValue":"42"}}]}]}]}]}`

func TestHTTPAcceptsOTLPJSON(t *testing.T) {
	c := start(t)
	for _, enc := range []string{"", "gzip"} {
		body := []byte(specTraceJSON)
		if enc == "gzip" {
			body = gzipped(body)
		}
		code, resp := post(t, c.HTTPURL()+"/v1/traces", "application/json; charset=utf-8", enc, body)
		if code != 200 || strings.TrimSpace(string(resp)) != "{}" {
			t.Fatalf("POST OTLP/JSON (encoding %q): %d %s", enc, code, resp)
		}
	}
	spans := c.Spans("I'm a server span")
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	s := spans[0]
	if hex.EncodeToString(s.Proto.GetTraceId()) != "5b8efff798038103d269b633813fc60c" ||
		hex.EncodeToString(s.Proto.GetSpanId()) != "eee19b7ec3c1b174" ||
		hex.EncodeToString(s.Proto.GetParentSpanId()) != "eee19b7ec3c1b173" {
		t.Errorf("ids %x %x %x not decoded from hex", s.Proto.GetTraceId(), s.Proto.GetSpanId(), s.Proto.GetParentSpanId())
	}
	if s.Proto.GetKind() != tracepb.Span_SPAN_KIND_SERVER || s.Attrs["my.span.attr"] != "42" ||
		s.Resource["service.name"] != "my.service" || s.Scope != "my.library" ||
		s.Proto.GetStartTimeUnixNano() != 1544712660000000000 {
		t.Errorf("span decoded as %v (resource %v)", s.Proto, s.Resource)
	}
}

func TestHTTPRejectsBadRequests(t *testing.T) {
	c := start(t)
	good, _ := proto.Marshal(&colmetricspb.ExportMetricsServiceRequest{})
	cases := []struct {
		name, path, contentType, encoding string
		body                              []byte
		code                              int
		msg                               string
	}{
		{"content type", "/v1/metrics", "text/plain", "", good, 415, "neither application/x-protobuf nor application/json"},
		{"no content type", "/v1/metrics", "", "", good, 415, "neither"},
		{"bad protobuf", "/v1/metrics", "application/x-protobuf", "", []byte{0xff, 0xff}, 400, "decode application/x-protobuf body"},
		{"bad json", "/v1/traces", "application/json", "", []byte(`{"resourceSpans":`), 400, "decode application/json body"},
		{"json of the wrong shape", "/v1/traces", "application/json", "", []byte(`{"resourceSpans":7}`), 400, "decode application/json body"},
		{"bad gzip", "/v1/metrics", "application/x-protobuf", "gzip", good, 400, "gzip body"},
		{"truncated gzip", "/v1/metrics", "application/x-protobuf", "gzip", gzipped(bytes.Repeat([]byte("x"), 100))[:30], 400, "read body"},
		{"brotli", "/v1/metrics", "application/x-protobuf", "br", good, 400, `Content-Encoding "br"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(t, c.HTTPURL()+tc.path, tc.contentType, tc.encoding, tc.body)
			if code != tc.code {
				t.Fatalf("status %d, want %d (%s)", code, tc.code, body)
			}
			var st spb.Status
			unmarshal := proto.Unmarshal
			if strings.HasPrefix(tc.contentType, "application/json") {
				unmarshal = UnmarshalJSON
			}
			if err := unmarshal(body, &st); err != nil {
				t.Fatalf("body is not a google.rpc.Status: %v", err)
			}
			if codes.Code(st.GetCode()) != codes.InvalidArgument || !strings.Contains(st.GetMessage(), tc.msg) {
				t.Errorf("status %v %q, want InvalidArgument mentioning %q", codes.Code(st.GetCode()), st.GetMessage(), tc.msg)
			}
		})
	}
	for _, tc := range []struct {
		method, path string
		code         int
	}{{http.MethodGet, "/v1/metrics", 405}, {http.MethodPost, "/v1/other", 404}} {
		req, _ := http.NewRequestWithContext(t.Context(), tc.method, c.HTTPURL()+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.code)
		}
	}
	if n := c.Requests(SignalMetrics) + c.Requests(SignalTraces); n != 0 {
		t.Errorf("%d rejected requests were counted as exports", n)
	}
}

func TestHTTPFailureAnswersWithStatus(t *testing.T) {
	c := start(t, WithFailure(codes.ResourceExhausted))
	body, _ := MarshalJSON(spansRequest("s"))
	code, resp := post(t, c.HTTPURL()+"/v1/traces", "application/json", "", body)
	var st spb.Status
	if err := UnmarshalJSON(resp, &st); err != nil {
		t.Fatal(err)
	}
	if code != http.StatusTooManyRequests || codes.Code(st.GetCode()) != codes.ResourceExhausted || !strings.Contains(st.GetMessage(), "injected failure") {
		t.Errorf("status %d, body %v; want 429 and ResourceExhausted", code, &st)
	}
}

func TestHTTPStatus(t *testing.T) {
	want := map[codes.Code]int{
		codes.OK: 200, codes.Canceled: 499, codes.Unknown: 500, codes.InvalidArgument: 400,
		codes.DeadlineExceeded: 504, codes.NotFound: 404, codes.AlreadyExists: 409,
		codes.PermissionDenied: 403, codes.ResourceExhausted: 429, codes.FailedPrecondition: 400,
		codes.Aborted: 409, codes.OutOfRange: 400, codes.Unimplemented: 501, codes.Internal: 500,
		codes.Unavailable: 503, codes.DataLoss: 500, codes.Unauthenticated: 401,
	}
	for code, status := range want {
		if got := HTTPStatus(code); got != status {
			t.Errorf("HTTPStatus(%v) = %d, want %d", code, got, status)
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	req := spansRequest("a", "b")
	req.ResourceSpans[0].ScopeSpans[0].Spans[1].ParentSpanId = req.ResourceSpans[0].ScopeSpans[0].Spans[0].SpanId
	req.ResourceSpans[0].ScopeSpans[0].Spans[1].Kind = tracepb.Span_SPAN_KIND_PRODUCER
	req.ResourceSpans[0].ScopeSpans[0].Spans[1].Attributes = []*commonpb.KeyValue{{Key: "html", Value: strAny("<a & b>")}}
	b, err := MarshalJSON(req)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{`"traceId":"abababababababababababababababab"`, `"spanId":"0102030405060700"`,
		`"parentSpanId":"0102030405060700"`, `"kind":4`, `"stringValue":"<a & b>"`} {
		if !strings.Contains(s, want) {
			t.Errorf("MarshalJSON output lacks %s:\n%s", want, s)
		}
	}
	if strings.Contains(s, "\n") {
		t.Errorf("MarshalJSON output spans lines: %q", s)
	}
	var back coltracepb.ExportTraceServiceRequest
	if err := UnmarshalJSON(b, &back); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(req, &back) {
		t.Errorf("round trip changed the request:\n%v\n%v", req, &back)
	}

	// Plain protojson (base64 ids) decodes too.
	var b64 coltracepb.ExportTraceServiceRequest
	if err := UnmarshalJSON([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"q6urq6urq6urq6urq6urqw==","spanId":"AQIDBAUGBwA=","name":"a"}]}]}]}`), &b64); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(b64.ResourceSpans[0].ScopeSpans[0].Spans[0], req.ResourceSpans[0].ScopeSpans[0].Spans[0]) {
		t.Errorf("base64 ids decoded as %v", b64.ResourceSpans[0].ScopeSpans[0].Spans[0])
	}

	bad := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{SchemaUrl: "\xff"}}}
	if _, err := MarshalJSON(bad); err == nil || !strings.Contains(err.Error(), "ExportTraceServiceRequest") {
		t.Errorf("MarshalJSON of invalid UTF-8 = %v, want an error naming the message", err)
	}
	if err := UnmarshalJSON([]byte("{"), &back); err == nil || !strings.Contains(err.Error(), "unmarshal") {
		t.Errorf("UnmarshalJSON of broken JSON = %v", err)
	}
}

func TestValueAndMatch(t *testing.T) {
	kv := func(k string, v *commonpb.AnyValue) *commonpb.KeyValue { return &commonpb.KeyValue{Key: k, Value: v} }
	cases := []struct {
		v    *commonpb.AnyValue
		want string
	}{
		{strAny("x y"), "x y"},
		{&commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: -42}}, "-42"},
		{&commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 0.1}}, "0.1"},
		{&commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}, "true"},
		{&commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte{0, 1, 2}}}, "AAEC"},
		{&commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{strAny("a"), strAny("b")}}}}, "[a,b]"},
		{&commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{kv("k", strAny("v")), kv("n", nil)}}}}, "{k=v,n=}"},
		{&commonpb.AnyValue{}, ""},
		{nil, ""},
	}
	for _, tc := range cases {
		if got := Value(tc.v); got != tc.want {
			t.Errorf("Value(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}

	kvs := []*commonpb.KeyValue{kv("a", strAny("1")), kv("b", &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 1}})}
	for _, tc := range []struct {
		attrs map[string]string
		want  bool
	}{
		{map[string]string{"a": "1", "b": "1"}, true},
		{map[string]string{"a": "1"}, false},
		{map[string]string{"a": "1", "b": "2"}, false},
		{map[string]string{"a": "1", "c": "1"}, false},
		{nil, false},
	} {
		if got := Match(kvs, tc.attrs); got != tc.want {
			t.Errorf("Match(%v) = %v, want %v", tc.attrs, got, tc.want)
		}
	}
	if !Match(nil, nil) || !Match(nil, map[string]string{}) {
		t.Error("no attributes do not match an empty set")
	}
}

package telemetrytest

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// maxBody bounds one export, decompressed, on either protocol.
const maxBody = 64 << 20

type metricsService struct {
	colmetricspb.UnimplementedMetricsServiceServer
	c *Collector
}

func (s metricsService) Export(ctx context.Context, req *colmetricspb.ExportMetricsServiceRequest) (*colmetricspb.ExportMetricsServiceResponse, error) {
	if err := s.c.receive(ctx, SignalMetrics, req); err != nil {
		return nil, err
	}
	return &colmetricspb.ExportMetricsServiceResponse{}, nil
}

type traceService struct {
	coltracepb.UnimplementedTraceServiceServer
	c *Collector
}

func (s traceService) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	if err := s.c.receive(ctx, SignalTraces, req); err != nil {
		return nil, err
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

type logsService struct {
	collogspb.UnimplementedLogsServiceServer
	c *Collector
}

func (s logsService) Export(ctx context.Context, req *collogspb.ExportLogsServiceRequest) (*collogspb.ExportLogsServiceResponse, error) {
	if err := s.c.receive(ctx, SignalLogs, req); err != nil {
		return nil, err
	}
	return &collogspb.ExportLogsServiceResponse{}, nil
}

func (c *Collector) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /v1/metrics", c.httpExport(SignalMetrics,
		func() proto.Message { return &colmetricspb.ExportMetricsServiceRequest{} },
		&colmetricspb.ExportMetricsServiceResponse{}))
	mux.Handle("POST /v1/traces", c.httpExport(SignalTraces,
		func() proto.Message { return &coltracepb.ExportTraceServiceRequest{} },
		&coltracepb.ExportTraceServiceResponse{}))
	mux.Handle("POST /v1/logs", c.httpExport(SignalLogs,
		func() proto.Message { return &collogspb.ExportLogsServiceRequest{} },
		&collogspb.ExportLogsServiceResponse{}))
	return mux
}

// An httpCodec is one of the two OTLP/HTTP encodings.
type httpCodec struct {
	contentType string
	marshal     func(proto.Message) ([]byte, error)
	unmarshal   func([]byte, proto.Message) error
}

var (
	protobufCodec = httpCodec{"application/x-protobuf", proto.Marshal, proto.Unmarshal}
	jsonCodec     = httpCodec{"application/json", MarshalJSON, UnmarshalJSON}
)

// httpExport serves POST of one signal: the body is protobuf or OTLP/JSON,
// optionally gzip-compressed, and the response uses the request's encoding.
func (c *Collector) httpExport(signal Signal, newReq func() proto.Message, resp proto.Message) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		codec := protobufCodec
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		switch {
		case err == nil && mt == protobufCodec.contentType:
		case err == nil && mt == jsonCodec.contentType:
			codec = jsonCodec
		default:
			writeStatus(w, codec, http.StatusUnsupportedMediaType, status.New(codes.InvalidArgument,
				fmt.Sprintf("telemetrytest: Content-Type %q is neither application/x-protobuf nor application/json", r.Header.Get("Content-Type"))))
			return
		}
		req := newReq()
		if err := readBody(w, r, req, codec); err != nil {
			writeStatus(w, codec, http.StatusBadRequest, status.New(codes.InvalidArgument, err.Error()))
			return
		}
		if err := c.receive(r.Context(), signal, req); err != nil {
			st := status.Convert(err)
			writeStatus(w, codec, HTTPStatus(st.Code()), st)
			return
		}
		b, _ := codec.marshal(resp) // an empty message always marshals
		w.Header().Set("Content-Type", codec.contentType)
		w.Write(b)
	})
}

func readBody(w http.ResponseWriter, r *http.Request, req proto.Message, codec httpCodec) error {
	var body io.Reader = http.MaxBytesReader(w, r.Body, maxBody)
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return fmt.Errorf("telemetrytest: gzip body: %w", err)
		}
		defer zr.Close()
		body = io.LimitReader(zr, maxBody+1)
	default:
		return fmt.Errorf("telemetrytest: Content-Encoding %q is not supported (use gzip)", enc)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return fmt.Errorf("telemetrytest: read body: %w", err)
	}
	if len(b) > maxBody {
		return fmt.Errorf("telemetrytest: body exceeds %d bytes", maxBody)
	}
	if err := codec.unmarshal(b, req); err != nil {
		return fmt.Errorf("telemetrytest: decode %s body: %w", codec.contentType, err)
	}
	return nil
}

// writeStatus answers with code and st as a google.rpc.Status body, as
// OTLP/HTTP asks of failed requests.
func writeStatus(w http.ResponseWriter, codec httpCodec, code int, st *status.Status) {
	b, _ := codec.marshal(st.Proto()) // a Status always marshals
	w.Header().Set("Content-Type", codec.contentType)
	w.WriteHeader(code)
	w.Write(b)
}

// HTTPStatus is the HTTP status an OTLP/HTTP export gets for a gRPC code
// (the mapping of google.rpc.Code to HTTP used by gRPC gateways). The
// OTLP/HTTP exporters retry 429, 502, 503 and 504, as the gRPC exporters
// retry ResourceExhausted, Unavailable and DeadlineExceeded.
func HTTPStatus(code codes.Code) int {
	switch code {
	case codes.OK:
		return http.StatusOK
	case codes.Canceled:
		return 499 // client closed request
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	default: // Unknown, Internal, DataLoss
		return http.StatusInternalServerError
	}
}

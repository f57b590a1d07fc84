package zbwrap

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pyzerobus/pyzerobus/zbwrap/internal/auth"
	"github.com/pyzerobus/pyzerobus/zbwrap/internal/stream"
)

func TestErrorKindsAndSentinels(t *testing.T) {
	sentinels := map[Kind]error{
		KindConfiguration: ErrConfiguration, KindAuthentication: ErrAuthentication, KindConnection: ErrConnection,
		KindConversion: ErrConversion, KindTransmission: ErrTransmission, KindRetryExhausted: ErrRetryExhausted,
		KindTokenRefresh: ErrTokenRefresh,
	}
	for k, s := range sentinels {
		err := fmt.Errorf("wrapped: %w", &Error{Kind: k, Msg: "m"})
		for k2, s2 := range sentinels {
			if errors.Is(err, s2) != (k == k2) {
				t.Errorf("errors.Is(%v error, sentinel of %v) = %v", k, k2, !(k == k2))
			}
		}
		if errors.Is(s, &Error{Kind: k}) {
			t.Errorf("a plain *Error acts as a sentinel")
		}
		if k.String() == "unknown" {
			t.Errorf("kind %d has no name", k)
		}
	}
	if Kind(0).String() != "unknown" || Kind(42).String() != "unknown" {
		t.Fatal("unknown kinds")
	}
}

func TestErrorText(t *testing.T) {
	e := &Error{Kind: KindConfiguration, Op: "config", Setting: "table_name", Msg: "required"}
	if e.Error() != "zbwrap: configuration error: config: table_name: required" {
		t.Fatalf("%q", e.Error())
	}
	cause := errors.New("boom")
	e = &Error{Kind: KindConnection, Err: cause, retryable: true}
	if e.Error() != "zbwrap: connection error: boom" || e.Unwrap() != cause || !e.Retryable() || !IsRetryable(fmt.Errorf("x: %w", e)) {
		t.Fatalf("%q", e.Error())
	}
	if IsRetryable(cause) || IsRetryable(nil) {
		t.Fatal("plain errors are not retryable")
	}
	if e.GRPCStatus() != nil {
		t.Fatal("status without a gRPC cause")
	}
	if st, ok := status.FromError(e); ok || st.Code() != codes.Unknown {
		t.Fatalf("FromError on a status-less error: %v %v", st, ok)
	}
}

func TestFromStream(t *testing.T) {
	grpcErr := status.Error(codes.Unavailable, "down")
	tests := []struct {
		name      string
		err       error
		kind      Kind
		retryable bool
		code      codes.Code
	}{
		{"connection", &stream.Error{Kind: stream.KindConnection, Retryable: true, Err: grpcErr}, KindConnection, true, codes.Unavailable},
		{"authentication", &stream.Error{Kind: stream.KindAuthentication, Err: status.Error(codes.PermissionDenied, "no")}, KindAuthentication, false, codes.PermissionDenied},
		{"token first", &stream.Error{Kind: stream.KindAuthentication, Err: &auth.Error{Status: 401}}, KindAuthentication, false, codes.Unknown},
		{"token refresh", &stream.Error{Kind: stream.KindAuthentication, Retryable: true, Err: &auth.Error{Status: 503, Refresh: true}}, KindTokenRefresh, true, codes.Unknown},
		{"configuration", &stream.Error{Kind: stream.KindConfiguration, Err: status.Error(codes.NotFound, "no table")}, KindConfiguration, false, codes.NotFound},
		{"transmission", &stream.Error{Kind: stream.KindTransmission, Err: stream.ErrClosed}, KindTransmission, false, codes.Unknown},
		{"retry exhausted", &stream.Error{Kind: stream.KindRetryExhausted, Err: grpcErr}, KindRetryExhausted, false, codes.Unavailable},
		{"already converted", &Error{Kind: KindConversion}, KindConversion, false, codes.Unknown},
		{"foreign", errors.New("x"), KindTransmission, false, codes.Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := fromStream("send", tt.err)
			if e.Kind != tt.kind || e.Retryable() != tt.retryable || status.Code(e) != tt.code {
				t.Fatalf("kind %v retryable %v code %v", e.Kind, e.Retryable(), status.Code(e))
			}
			if tt.code != codes.Unknown && !strings.Contains(status.Convert(e).Message(), "down") && tt.code == codes.Unavailable {
				t.Fatalf("status message %q", status.Convert(e).Message())
			}
		})
	}
	if fromStream("x", nil) != nil {
		t.Fatal("nil error converted")
	}
}

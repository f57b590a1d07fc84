package zbwrap

import (
	"errors"
	"strings"

	"google.golang.org/grpc/status"

	"github.com/pyzerobus/pyzerobus/zbwrap/internal/auth"
	"github.com/pyzerobus/pyzerobus/zbwrap/internal/stream"
)

// Kind classifies an *Error.
type Kind int

// The error kinds. Each has a sentinel (ErrConfiguration, ...) for errors.Is.
const (
	// KindConfiguration: a setting is missing or invalid, or the table does
	// not exist (NotFound).
	KindConfiguration Kind = iota + 1
	// KindAuthentication: credentials were refused (token endpoint 4xx,
	// Unauthenticated after a forced token refresh, PermissionDenied).
	KindAuthentication
	// KindConnection: the stream could not be opened or broke. Retryable.
	KindConnection
	// KindConversion: a row (or the whole batch) could not be encoded.
	KindConversion
	// KindTransmission: the server rejected the data (InvalidArgument,
	// OutOfRange, Unimplemented), a record exceeds the request limit, the
	// wrapper was closed, or the caller gave up waiting.
	KindTransmission
	// KindRetryExhausted: recovery gave up after retry_max_attempts; the
	// last failure is wrapped.
	KindRetryExhausted
	// KindTokenRefresh: a token could not be renewed after one was
	// obtained.
	KindTokenRefresh
)

var kindNames = [...]string{
	KindConfiguration:  "configuration",
	KindAuthentication: "authentication",
	KindConnection:     "connection",
	KindConversion:     "conversion",
	KindTransmission:   "transmission",
	KindRetryExhausted: "retry exhausted",
	KindTokenRefresh:   "token refresh",
}

func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Sentinels, one per kind: errors.Is(err, ErrConnection) is true for any
// *Error of KindConnection in err's chain.
var (
	ErrConfiguration  = &Error{Kind: KindConfiguration, sentinel: true}
	ErrAuthentication = &Error{Kind: KindAuthentication, sentinel: true}
	ErrConnection     = &Error{Kind: KindConnection, sentinel: true}
	ErrConversion     = &Error{Kind: KindConversion, sentinel: true}
	ErrTransmission   = &Error{Kind: KindTransmission, sentinel: true}
	ErrRetryExhausted = &Error{Kind: KindRetryExhausted, sentinel: true}
	ErrTokenRefresh   = &Error{Kind: KindTokenRefresh, sentinel: true}
)

// ErrClosed is wrapped by the errors of sends after Close, and of rows
// still unacknowledged when Close gave up waiting.
var ErrClosed = stream.ErrClosed

// ErrUntrustedCertificate is wrapped by the KindConnection error (not
// retryable) of a stream whose server, or token endpoint, presented a TLS
// certificate that failed verification: an unknown authority, a wrong host
// name, an expired certificate. The engine does not retry it; trust the
// server's CA with WithRootCAs or WithTLSConfig (tls_ca_file in Python).
// The *tls.CertificateVerificationError is in the chain as well.
var ErrUntrustedCertificate = stream.ErrUntrustedCertificate

// Error is every error zbwrap returns, directly or (Validate, Flush)
// joined with errors.Join.
//
// Retry classification (how the service fails is summarized in
// internal/wire/doc.go); the engine itself retries the connection cases,
// so what reaches you is final for that attempt:
//
//	cause                                             Kind            Retryable
//	gRPC InvalidArgument, OutOfRange, Unimplemented   Transmission    no
//	gRPC NotFound (no such table)                     Configuration   no
//	gRPC PermissionDenied; Unauthenticated twice      Authentication  no
//	token endpoint 4xx (first token / renewal)        Authentication / TokenRefresh  no
//	token endpoint 5xx, timeout, network failure      Authentication / TokenRefresh  yes
//	other gRPC codes, dropped call, no ack in time    Connection      yes (reported only with recovery off)
//	TLS certificate not trusted (stream or token)     Connection      no (ErrUntrustedCertificate)
//	recovery gave up after retry_max_attempts         RetryExhausted  no (the wrapped cause is)
//	row not encodable                                 Conversion      no
//	closed wrapper, record over the request limit     Transmission    no
//	caller gave up waiting, window full (TrySend)     Transmission    yes
//	invalid setting                                   Configuration   no
type Error struct {
	Kind Kind
	// Op is what was being done ("config", "send", "open stream", ...).
	Op string
	// Setting is the snake_case name of the setting at fault
	// (configuration errors only).
	Setting string
	// Msg describes the failure.
	Msg string
	// Err is the cause, if any.
	Err error
	// Result is the batch's result when the error reports failed rows of a
	// batch (SendBatch, WaitForOffset, Flush).
	Result *TransmissionResult

	retryable bool
	sentinel  bool
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("zbwrap: ")
	b.WriteString(e.Kind.String())
	b.WriteString(" error")
	for _, part := range []string{e.Op, e.Setting, e.Msg} {
		if part != "" {
			b.WriteString(": ")
			b.WriteString(part)
		}
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is matches the kind sentinels: errors.Is(err, ErrConnection).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.sentinel && t.Kind == e.Kind
}

// Retryable reports whether trying the same operation again may succeed.
func (e *Error) Retryable() bool { return e.retryable }

// GRPCStatus returns the gRPC status the failure carried, or nil; with it
// status.FromError and status.Code work on an *Error.
func (e *Error) GRPCStatus() *status.Status {
	var gs interface{ GRPCStatus() *status.Status }
	if e.Err != nil && errors.As(e.Err, &gs) {
		return gs.GRPCStatus()
	}
	return nil
}

// IsRetryable reports whether err is an *Error (or wraps one) that is
// Retryable.
func IsRetryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Retryable()
}

// fromStream converts a failure of the stream layer to an *Error.
func fromStream(op string, err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var se *stream.Error
	if !errors.As(err, &se) {
		return &Error{Kind: KindTransmission, Op: op, Err: err}
	}
	out := &Error{Op: op, Err: err, retryable: se.Retryable}
	switch se.Kind {
	case stream.KindConnection:
		out.Kind = KindConnection
	case stream.KindAuthentication:
		out.Kind = KindAuthentication
		var ae *auth.Error
		if errors.As(err, &ae) && ae.Refresh {
			out.Kind = KindTokenRefresh
		}
	case stream.KindConfiguration:
		out.Kind = KindConfiguration
	case stream.KindRetryExhausted:
		out.Kind = KindRetryExhausted
	default:
		out.Kind = KindTransmission
	}
	return out
}

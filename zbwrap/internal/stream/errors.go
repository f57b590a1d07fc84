package stream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Kind says which part of the path failed. zbwrap maps each to its public
// error kind.
type Kind uint8

// The failure kinds of a stream.
const (
	// KindConnection: the call could not be opened or broke (retryable codes,
	// dropped connections, no acks, a server that ended the call early).
	KindConnection Kind = iota + 1
	// KindAuthentication: headers could not be obtained, or the server
	// rejected them (Unauthenticated after one forced refresh,
	// PermissionDenied).
	KindAuthentication
	// KindConfiguration: the table does not exist (NotFound) or the stream
	// settings are unusable.
	KindConfiguration
	// KindTransmission: the server rejected the data or the protocol
	// (InvalidArgument, OutOfRange, Unimplemented), the stream was closed, or a
	// record can never fit in a request.
	KindTransmission
	// KindRetryExhausted: recovery gave up after the configured attempts; the
	// last failure is the cause.
	KindRetryExhausted
)

func (k Kind) String() string {
	switch k {
	case KindConnection:
		return "connection"
	case KindAuthentication:
		return "authentication"
	case KindConfiguration:
		return "configuration"
	case KindTransmission:
		return "transmission"
	case KindRetryExhausted:
		return "retry exhausted"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Error is a stream failure. It keeps the gRPC status of the call when there
// was one.
type Error struct {
	Kind      Kind
	Retryable bool
	// Code is the gRPC code of the failure, codes.OK when it had none.
	Code codes.Code
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return "zerobus stream: " + e.Msg
	}
	return "zerobus stream: " + e.Msg + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// GRPCStatus returns the status the call failed with, or nil.
func (e *Error) GRPCStatus() *status.Status {
	var gs interface{ GRPCStatus() *status.Status }
	if e.Err != nil && errors.As(e.Err, &gs) {
		return gs.GRPCStatus()
	}
	return nil
}

// Sentinel causes, testable with errors.Is.
var (
	// ErrClosed: the stream was closed before the request was acknowledged,
	// or a send came after Close.
	ErrClosed = errors.New("closed")
	// ErrWindowFull: TrySend found no room in the in-flight window.
	ErrWindowFull = errors.New("in-flight window full")
	// ErrNoAck: nothing was acknowledged for AckTimeout while requests were in
	// flight.
	ErrNoAck = errors.New("no acknowledgement within the ack timeout")
	// ErrCallEnded: the server ended the call while requests were in flight.
	ErrCallEnded = errors.New("server ended the call with requests in flight")
	// ErrProtocol: the server answered something the protocol does not allow.
	ErrProtocol = errors.New("protocol violation")
	// ErrTooLarge: one record is larger than the request size limit.
	ErrTooLarge = errors.New("record larger than the request size limit")
	// ErrAbandoned: the caller gave up before the request was ever written.
	ErrAbandoned = errors.New("abandoned before it was sent")
	// ErrNoTransport: SendParts on a stream without Config.Dial.
	ErrNoTransport = errors.New("parts need a stream of another transport (Config.Dial)")
	// ErrBadFrames: SendFramed was given frames that do not hold its records.
	ErrBadFrames = errors.New("frames do not match the records")
	// ErrUntrustedCertificate: the server's TLS certificate failed
	// verification (unknown authority, wrong host name, expired). Retrying
	// cannot help: the client must be told which CA to trust.
	ErrUntrustedCertificate = errors.New("server certificate not trusted")
	// ErrPending: the caller gave up while the request, already written,
	// still awaited its acknowledgement. It may land; it is not written
	// again once its call ends.
	ErrPending = errors.New("written and awaiting acknowledgement")
)

// Retry classification (see internal/wire's doc.go), applied to how a call ended:
//
//	gRPC code                                  kind            retried
//	InvalidArgument, OutOfRange, Unimplemented transmission    no; on an open call only the oldest
//	                                                             request in flight fails, the rest
//	                                                             is written on a new call
//	NotFound                                   configuration   no
//	PermissionDenied                           authentication  no
//	Unauthenticated                            authentication  once, after a forced token refresh
//	any other code; dropped connection;        connection      yes, with backoff
//	  OK with requests in flight; no ack
//	  within AckTimeout; bad ack
//	CloseStreamSignal                          -               reconnect without counting an attempt
//	TLS certificate verification failed       connection      no (ErrUntrustedCertificate)
//
// fatalCode reports the codes that stop a stream at once.
func fatalCode(c codes.Code) (Kind, bool) {
	switch c {
	case codes.InvalidArgument, codes.OutOfRange, codes.Unimplemented:
		return KindTransmission, true
	case codes.NotFound:
		return KindConfiguration, true
	case codes.PermissionDenied, codes.Unauthenticated:
		return KindAuthentication, true
	}
	return 0, false
}

// classify turns the error a call ended with into an *Error.
func classify(op string, err error) *Error {
	var se *Error
	if errors.As(err, &se) {
		return se
	}
	if errors.Is(err, io.EOF) {
		return &Error{Kind: KindConnection, Retryable: true, Msg: op, Err: ErrCallEnded}
	}
	st, ok := status.FromError(err)
	if !ok {
		if errors.Is(err, context.DeadlineExceeded) {
			return &Error{Kind: KindConnection, Retryable: true, Code: codes.DeadlineExceeded, Msg: op, Err: err}
		}
		return &Error{Kind: KindConnection, Retryable: true, Code: codes.Unknown, Msg: op, Err: err}
	}
	if kind, fatal := fatalCode(st.Code()); fatal {
		return &Error{Kind: kind, Code: st.Code(), Msg: op, Err: err}
	}
	return &Error{Kind: KindConnection, Retryable: true, Code: st.Code(), Msg: op, Err: err}
}

// untrusted returns the stream failure for err if err (or one it wraps) is a
// failed TLS certificate verification, else nil. crypto/tls reports every
// verification failure (unknown authority, host name, validity) as a
// *tls.CertificateVerificationError.
func untrusted(err error) *Error {
	var cve *tls.CertificateVerificationError
	if err == nil || !errors.As(err, &cve) {
		return nil
	}
	return &Error{Kind: KindConnection,
		Msg: "the server's TLS certificate is not trusted; if it is signed by a private CA, trust that CA " +
			"(tls_ca_file in Python, WithRootCAs or WithTLSConfig in Go)",
		Err: fmt.Errorf("%w: %w", ErrUntrustedCertificate, err)}
}

// retryableHeaderError reports whether a header source failure may succeed
// later: the error (or one it wraps) says so with a Retryable method.
func retryableHeaderError(err error) bool {
	var r interface{ Retryable() bool }
	return errors.As(err, &r) && r.Retryable()
}

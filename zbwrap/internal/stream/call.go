package stream

import (
	"context"
	"time"
)

// Other transports
//
// A Stream speaks the Zerobus protobuf service unless Config.Dial gives it
// another transport: then each call is opened by Dial and is a Call, and
// requests are opaque payloads queued with SendParts. Everything else is
// the same for every transport: logical offsets, the in-flight window,
// cumulative acks by wire offset, recovery with backoff, replay of what was
// not acknowledged (renumbered from 0 on the new call), abandonment, close
// signals and the retry classification of gRPC codes.

// Call is one call of another transport. The stream's sender alone calls
// Send and CloseSend, its receiver alone calls Recv; the call ends when the
// context given to Dial is cancelled.
type Call interface {
	// Send writes one request: the payload of a Part, numbered offset on
	// this call (from 0, one per request). The payload is written again,
	// with a new offset, if its call fails before acknowledging it.
	Send(payload any, offset int64) error
	// Recv returns the next acknowledgement or signal. io.EOF means the
	// server ended the call with OK; any other error is classified like a
	// protobuf call's (gRPC status codes).
	Recv() (Event, error)
	// CloseSend half-closes the call: nothing more will be sent.
	CloseSend() error
}

// Event is what a Call received.
type Event struct {
	// AckUpTo is the highest wire offset durably stored, cumulative; it
	// must not go down or beyond the last offset written.
	AckUpTo int64
	// Close is a close signal: the server ends the call after CloseAfter,
	// and the stream writes nothing new on it (AckUpTo is then ignored).
	Close      bool
	CloseAfter time.Duration
}

// DialFunc opens a call of another transport. ctx carries the call headers
// as outgoing gRPC metadata and lives as long as the call; it is also
// bounded by the creation timeout until DialFunc returns. It returns once
// the server is ready for requests, with the server's id of the stream
// ("" if it gives none).
type DialFunc func(ctx context.Context) (Call, string, error)

// Part is one request of another transport: an opaque payload that holds
// Records records (rows) and Bytes bytes, counted by the in-flight window.
type Part struct {
	Records int
	Bytes   int
	Payload any
}

// SendParts queues parts as the requests of one batch, in order, waiting for
// room in the in-flight window until ctx ends, as Send does; the records of
// the batch are numbered across the parts (part i holds the records after
// those of parts 0..i-1), and Outcomes report them so. The stream must have
// been given Config.Dial. onRelease, if not nil, runs once the batch is
// resolved: the payloads are not read after that.
func (s *Stream) SendParts(ctx context.Context, parts []Part, onDone func(*Batch), onRelease func()) (*Batch, error) {
	return s.sendParts(ctx, parts, onDone, onRelease, true)
}

// TrySendParts is SendParts without waiting, as TrySend.
func (s *Stream) TrySendParts(parts []Part, onDone func(*Batch), onRelease func()) (*Batch, error) {
	return s.sendParts(context.Background(), parts, onDone, onRelease, false)
}

func (s *Stream) sendParts(ctx context.Context, parts []Part, onDone func(*Batch), onRelease func(), block bool) (*Batch, error) {
	b := &Batch{s: s, done: make(chan struct{}), onDone: onDone, onRelease: onRelease}
	b.remaining.Store(1) // held by this call until every request exists
	b.holds.Store(1)     // released when the batch is resolved
	var queueErr error
	total := 0
	for _, p := range parts {
		total += p.Records
	}
	if s.cfg.Dial == nil {
		queueErr = &Error{Kind: KindTransmission, Msg: "send", Err: ErrNoTransport}
		b.failRange(0, total, queueErr)
		parts = nil
	}
	start := 0
	for _, p := range parts {
		r := &request{batch: b, start: start, end: start + p.Records, offset: -1, bytes: p.Bytes, payload: p.Payload}
		if err := s.admit(ctx, r, block); err != nil {
			queueErr = err
			b.failRange(start, total, err)
			break
		}
		start = r.end
	}
	if b.remaining.Add(-1) == 0 {
		b.complete()
	}
	return b, queueErr
}

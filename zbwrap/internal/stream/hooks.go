package stream

import "time"

// Hooks are optional observers of a stream, in the manner of franz-go's
// hooks: a value passed in Config.Hooks implements any subset of the
// interfaces below, is type-asserted once when the stream is built, and costs
// nothing for the events it does not observe. Hooks run on the stream's own
// goroutines and must return quickly.

// HookCallOpened observes each call that completes its handshake.
type HookCallOpened interface {
	OnCallOpened(streamID string, took time.Duration)
}

// HookCallEnded observes the end of each opened call; err is nil for a
// graceful end (close signal obeyed, or Close).
type HookCallEnded interface {
	OnCallEnded(err error)
}

// HookRequestWritten observes each request written to a call; replay is true
// when it had been written on an earlier call.
type HookRequestWritten interface {
	OnRequestWritten(records, bytes int, replay bool)
}

// HookAcked observes acknowledgements: how many requests and records one ack
// made durable.
type HookAcked interface {
	OnAcked(requests, records int)
}

// HookRequestAcked observes each acknowledged request: its records, its
// record bytes, and the time from its last write to its acknowledgement.
type HookRequestAcked interface {
	OnRequestAcked(records, bytes int, latency time.Duration)
}

// HookRetry observes each recovery attempt before its backoff wait.
type HookRetry interface {
	OnRetry(attempt int, wait time.Duration, err error)
}

type hooks struct {
	opened   []HookCallOpened
	ended    []HookCallEnded
	written  []HookRequestWritten
	acked    []HookAcked
	reqAcked []HookRequestAcked
	retry    []HookRetry
}

func newHooks(hs []any) hooks {
	var h hooks
	for _, x := range hs {
		if v, ok := x.(HookCallOpened); ok {
			h.opened = append(h.opened, v)
		}
		if v, ok := x.(HookCallEnded); ok {
			h.ended = append(h.ended, v)
		}
		if v, ok := x.(HookRequestWritten); ok {
			h.written = append(h.written, v)
		}
		if v, ok := x.(HookAcked); ok {
			h.acked = append(h.acked, v)
		}
		if v, ok := x.(HookRequestAcked); ok {
			h.reqAcked = append(h.reqAcked, v)
		}
		if v, ok := x.(HookRetry); ok {
			h.retry = append(h.retry, v)
		}
	}
	return h
}

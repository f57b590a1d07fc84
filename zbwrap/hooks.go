package zbwrap

import "github.com/apache/arrow-go/v18/arrow"

// Internal hooks of the send path, for debug files and telemetry. Like the
// stream's hooks (franz-go style), a value in settings.hooks implements any
// subset of these interfaces and of the internal/stream Hook* interfaces; it
// is type-asserted once, and an event nobody observes costs one empty loop.

// batchEncodedHook observes each converted batch before it is sent: the
// Arrow batch, the descriptor, and the encoded records in row order. The
// records' memory is reused once the batch is done: a hook must not keep
// them after it returns.
type batchEncodedHook interface {
	OnBatchEncoded(rec arrow.RecordBatch, descriptor []byte, records [][]byte)
}

// batchDoneHook observes the result of each resolved batch.
type batchDoneHook interface {
	OnBatchDone(res *TransmissionResult)
}

type wrapperHooks struct {
	encoded []batchEncodedHook
	done    []batchDoneHook
}

func newWrapperHooks(hs []any) wrapperHooks {
	var h wrapperHooks
	for _, x := range hs {
		if v, ok := x.(batchEncodedHook); ok {
			h.encoded = append(h.encoded, v)
		}
		if v, ok := x.(batchDoneHook); ok {
			h.done = append(h.done, v)
		}
	}
	return h
}

// withHooks adds hooks (debug files, telemetry, tests).
func withHooks(hs ...any) Option {
	return func(s *settings) { s.hooks = append(s.hooks, hs...) }
}

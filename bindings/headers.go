package bindings

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// headerBox is the engine's HeadersProvider for a Python callable: Python
// cannot be called from the engine's goroutines, so a stream opening a call
// asks (want) and waits, and a Python thread that polls HeadersWanted calls
// the provider and answers with SetHeaders. One answer serves every call
// that asked before it.
type headerBox struct {
	want chan struct{} // a request; one pending is enough

	mu      sync.Mutex
	version uint64 // answers so far
	headers map[string]string
	err     error
	changed chan struct{} // closed and replaced at each answer
}

func newHeaderBox() *headerBox {
	return &headerBox{want: make(chan struct{}, 1), changed: make(chan struct{})}
}

// Headers asks Python's provider for fresh headers and waits for its answer
// (bounded by ctx: the stream's create timeout).
func (b *headerBox) Headers(ctx context.Context) (map[string]string, error) {
	b.mu.Lock()
	seen, changed := b.version, b.changed
	b.mu.Unlock()
	select {
	case b.want <- struct{}{}:
	default: // a request is pending already
	}
	for {
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("the headers provider did not answer: %w", ctx.Err())
		}
		b.mu.Lock()
		if b.version > seen {
			h, err := b.headers, b.err
			b.mu.Unlock()
			return h, err
		}
		changed = b.changed
		b.mu.Unlock()
	}
}

// answer publishes the provider's headers, or its failure.
func (b *headerBox) answer(h map[string]string, err error) {
	b.mu.Lock()
	b.version++
	b.headers, b.err = h, err
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()
}

// HeadersWanted waits at most timeoutMs milliseconds for a stream to ask
// for headers, and reports whether one did: the caller then calls the
// provider and answers with SetHeaders. It needs a Wrapper made by
// NewWrapperWithHeaders.
func (w *Wrapper) HeadersWanted(timeoutMs int64) (wanted bool, err error) {
	defer recoverError(&err)
	if w.headers == nil {
		return false, newError(kindConfig, "headers", "the wrapper has no headers provider")
	}
	t := time.NewTimer(time.Duration(max(timeoutMs, 0)) * time.Millisecond)
	defer t.Stop()
	select {
	case <-w.headers.want:
		return true, nil
	case <-t.C:
		return false, nil
	}
}

// SetHeaders answers the streams waiting for headers: headersJSON is a JSON
// object of strings, or, when failure is not empty, the provider failed
// with that message (the streams fail with an authentication error).
func (w *Wrapper) SetHeaders(headersJSON, failure string) (err error) {
	defer recoverError(&err)
	if w.headers == nil {
		return newError(kindConfig, "headers", "the wrapper has no headers provider")
	}
	if failure != "" {
		w.headers.answer(nil, errors.New("headers provider: "+failure))
		return nil
	}
	var h map[string]string
	if err := json.Unmarshal([]byte(headersJSON), &h); err != nil || h == nil {
		w.headers.answer(nil, errors.New("headers provider: the headers are not a mapping of strings"))
		return newError(kindConfig, "headers", "the headers must be a mapping of strings to strings")
	}
	w.headers.answer(h, nil)
	return nil
}

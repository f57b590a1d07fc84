package telemetry

import (
	"log"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
)

// Exporter failures (a collector that is down, refuses or times out) do not
// come back to the caller: the SDK hands them to OpenTelemetry's global
// error handler, whose default prints them to the process's stderr, outside
// the engine's logger. That handler is global, so one errorRoute is
// installed, once, by the first Telemetry that exports and has a logger,
// and only if the handler in place is still OpenTelemetry's default (an
// embedding application's own handler wins, before or after). It sends each
// error to the logger of the most recently created Telemetry still open, or,
// when none is, where the default would have printed it. Identical messages
// are logged at most once per errorLogInterval, with the number left out
// since.
//
// This is the package's only mutable package-level state; it mirrors the
// global it stands in for.

// errorLogInterval is the least time between two logs of the same message.
const errorLogInterval = time.Minute

// maxErrorMessages bounds the messages remembered for rate limiting.
const maxErrorMessages = 64

var (
	defaultErrorHandler = otel.GetErrorHandler() // OpenTelemetry's own, when this package loads
	installRoute        sync.Once
	route               = &errorRoute{seen: map[string]*errorSeen{}}
)

type errorRoute struct {
	mu   sync.Mutex
	live []*routeEntry // of open Telemetry values, oldest first
	seen map[string]*errorSeen
}

type routeEntry struct{ l *slog.Logger }

type errorSeen struct {
	at      time.Time // last logged
	dropped int       // left out since
}

// routeErrors sends OpenTelemetry's errors to l until the returned function
// is called.
func routeErrors(l *slog.Logger) (remove func()) {
	installRoute.Do(func() {
		if otel.GetErrorHandler() == defaultErrorHandler {
			otel.SetErrorHandler(route)
		}
	})
	e := &routeEntry{l}
	route.mu.Lock()
	route.live = append(route.live, e)
	route.mu.Unlock()
	return func() {
		route.mu.Lock()
		defer route.mu.Unlock()
		for i, x := range route.live {
			if x == e {
				route.live = append(route.live[:i], route.live[i+1:]...)
				return
			}
		}
	}
}

// Handle logs err unless the same message was logged less than
// errorLogInterval ago.
func (r *errorRoute) Handle(err error) {
	if err == nil {
		return
	}
	msg := err.Error()
	now := time.Now()
	r.mu.Lock()
	s := r.seen[msg]
	if s != nil && now.Sub(s.at) < errorLogInterval {
		s.dropped++
		r.mu.Unlock()
		return
	}
	dropped := 0
	if s != nil {
		dropped = s.dropped
	}
	if len(r.seen) >= maxErrorMessages {
		clear(r.seen)
	}
	r.seen[msg] = &errorSeen{at: now}
	var l *slog.Logger
	if n := len(r.live); n > 0 {
		l = r.live[n-1].l
	}
	r.mu.Unlock()
	if l == nil {
		log.Print(err) // what OpenTelemetry's default handler does
		return
	}
	args := []any{"err", err}
	if dropped > 0 {
		args = append(args, "repeated", dropped)
	}
	l.Warn("zerobus telemetry export failed", args...)
}

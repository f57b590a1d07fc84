package telemetry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
)

func TestErrorRoute(t *testing.T) {
	r := &errorRoute{seen: map[string]*errorSeen{}}
	var std bytes.Buffer
	saved := log.Writer()
	log.SetOutput(&std)
	defer log.SetOutput(saved)
	r.Handle(nil)
	r.Handle(errors.New("no logger"))
	if !strings.Contains(std.String(), "no logger") {
		t.Fatalf("without a live logger the error goes where the default puts it: %q", std.String())
	}

	var a, b bytes.Buffer
	la, lb := slog.New(slog.NewTextHandler(&a, nil)), slog.New(slog.NewTextHandler(&b, nil))
	r.live = []*routeEntry{{la}, {lb}}
	boom := errors.New("collector unreachable")
	for range 5 {
		r.Handle(boom)
	}
	if a.Len() != 0 || strings.Count(b.String(), "collector unreachable") != 1 {
		t.Fatalf("the most recent logger logs each message once: %q / %q", a.String(), b.String())
	}
	r.seen[boom.Error()].at = time.Now().Add(-errorLogInterval)
	r.Handle(boom)
	if strings.Count(b.String(), "collector unreachable") != 2 || !strings.Contains(b.String(), "repeated=4") {
		t.Fatalf("after the interval: %q", b.String())
	}
	for i := range maxErrorMessages + 1 {
		r.Handle(fmt.Errorf("error %d", i))
	}
	if len(r.seen) > maxErrorMessages {
		t.Fatalf("%d messages remembered", len(r.seen))
	}
}

func TestRouteErrorsInstallsOnceAndRemoves(t *testing.T) {
	remove := routeErrors(slog.New(slog.DiscardHandler))
	remove2 := routeErrors(slog.New(slog.DiscardHandler))
	if otel.GetErrorHandler() != route && defaultErrorHandler == otel.GetErrorHandler() {
		t.Fatal("the route is not installed")
	}
	route.mu.Lock()
	n := len(route.live)
	route.mu.Unlock()
	remove()
	remove()
	remove2()
	route.mu.Lock()
	defer route.mu.Unlock()
	if len(route.live) != n-2 {
		t.Fatalf("%d live loggers after removing both, %d before", len(route.live), n)
	}
}

// A Telemetry with a logger routes errors to it until Shutdown.
func TestTelemetryLoggerRoutedUntilShutdown(t *testing.T) {
	route.mu.Lock()
	before := len(route.live)
	route.mu.Unlock()
	// Providers made for this Telemetry (a Shutdown of theirs) get routed.
	tel, err := New(context.Background(), Config{Table: "main.default.t",
		Shutdown: func(context.Context) error { return nil }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	route.mu.Lock()
	during := len(route.live)
	route.mu.Unlock()
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	route.mu.Lock()
	after := len(route.live)
	route.mu.Unlock()
	if during != before+1 || after != before {
		t.Fatalf("live loggers %d, %d while open, %d after Shutdown", before, during, after)
	}
}

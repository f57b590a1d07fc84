package zbwrap

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/pyzerobus/pyzerobus/internal/testutil"
	"github.com/pyzerobus/pyzerobus/zbwrap/telemetry/otelsetup"
	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

// captureStderr sends what the process writes to file descriptor 2 (the
// os.Stderr of any package, whenever it took it) to a buffer until the
// returned function is called, which gives what was written.
func captureStderr(t *testing.T) func() string {
	t.Helper()
	saved, err := syscall.Dup(2)
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Dup3(int(w.Fd()), 2, 0); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(&buf, r)
	}()
	return func() string {
		_ = syscall.Dup3(saved, 2, 0)
		_ = syscall.Close(saved)
		_ = w.Close()
		<-done
		_ = r.Close()
		return buf.String()
	}
}

// Export failures go to the engine's logger, not to stderr.
func TestTelemetryExportErrorsGoToTheLogger(t *testing.T) {
	checkLeaks(t)
	// A collector address that refuses connections.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + ln.Addr().String()
	ln.Close()
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "50")
	t.Setenv("OTEL_METRIC_EXPORT_TIMEOUT", "200")
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "300") // the exporters give up before the leak check
	srv := newServer(t, zerobustest.WithDiscard())
	var mu sync.Mutex
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	stderr := captureStderr(t)
	w := newWrapper(t, srv, WithObservability(true), WithExporters(otelsetup.New), WithOTLPEndpoint(endpoint), WithLogger(logger))
	rec := makeBatch(0, 10, 10)
	defer rec.Release()
	if _, err := w.SendBatch(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "an export failure in the log", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(logs.String(), "zerobus telemetry export failed")
	})
	_ = w.Close(context.Background())
	if out := stderr(); out != "" {
		t.Fatalf("written to stderr:\n%s", out)
	}
}

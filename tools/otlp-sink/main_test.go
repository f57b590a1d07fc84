package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/pyzerobus/pyzerobus/internal/testutil"
	"github.com/pyzerobus/pyzerobus/zbwrap/telemetry/telemetrytest"
)

// The test binary runs as the command itself when this is set.
const runMainEnv = "OTLP_SINK_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// checkLeaks fails the test if a goroutine that was not running when it
// began is still running 5 s after it ended. (goleak.Find alone looks for
// about half a second, short for goroutines winding down under -race.)
func checkLeaks(t testing.TB) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		err := goleak.Find(ignore)
		for deadline := time.Now().Add(5 * time.Second); err != nil && time.Now().Before(deadline); {
			err = goleak.Find(ignore)
		}
		if err != nil {
			t.Error(err)
		}
	})
}

type endpoints struct {
	GRPC    string `json:"grpc"`
	GRPCURL string `json:"grpc_url"`
	HTTPURL string `json:"http_url"`
}

// sink runs run in-process until the test ends (or stop is called) and
// returns where it listens; done receives run's error.
type sink struct {
	endpoints
	stop func()
	done chan error
}

func startSink(t *testing.T, args ...string) *sink {
	t.Helper()
	checkLeaks(t)
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	s := &sink{stop: cancel, done: make(chan error, 1)}
	go func() {
		err := run(ctx, args, io.Discard, pw)
		pw.CloseWithError(errors.New("run ended"))
		s.done <- err
	}()
	t.Cleanup(func() {
		cancel()
		pr.Close()
	})
	line, err := bufio.NewReader(pr).ReadBytes('\n')
	if err != nil {
		t.Fatalf("no ready line: %v (run: %v)", err, <-s.done)
	}
	if err := json.Unmarshal(line, &s.endpoints); err != nil || s.GRPC == "" || s.HTTPURL == "" {
		t.Fatalf("ready line %q: %v", line, err)
	}
	go io.Copy(io.Discard, pr) // anything else run writes to stderr
	return s
}

// wait stops the sink and returns run's error.
func (s *sink) wait(t *testing.T) error {
	t.Helper()
	s.stop()
	select {
	case err := <-s.done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after its context ended")
		return nil
	}
}

func grpcConn(t *testing.T, target string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// readLines parses each line of file into its signal and raw JSON.
func readLines(t *testing.T, file string) (signals []string, lines [][]byte) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for line := range bytes.Lines(b) {
		var v struct{ Signal string }
		if err := json.Unmarshal(line, &v); err != nil {
			t.Fatalf("line %q is not JSON: %v", line, err)
		}
		signals = append(signals, v.Signal)
		lines = append(lines, bytes.TrimSuffix(line, []byte("\n")))
	}
	return signals, lines
}

func TestSinkWritesOneJSONLinePerExport(t *testing.T) {
	out := filepath.Join(t.TempDir(), "exports.jsonl")
	s := startSink(t, "-out", out)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	// Metrics over OTLP/HTTP.
	mexp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(s.HTTPURL+"/v1/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp, sdkmetric.WithInterval(time.Hour))))
	sent, _ := mp.Meter("sink.test").Int64Counter("records.sent")
	sent.Add(ctx, 3, metric.WithAttributes(attribute.String("table", "t<1>")))
	sent.Add(ctx, 4, metric.WithAttributes(attribute.String("table", "t<1>")))
	if err := mp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	// A parent and a child span over OTLP/gRPC.
	texp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(s.GRPCURL))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(texp))
	sctx, parent := tp.Tracer("sink.test").Start(ctx, "ingest")
	_, child := tp.Tracer("sink.test").Start(sctx, "flush")
	child.End()
	parent.End()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	// Logs over raw gRPC.
	logs := &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{ScopeLogs: []*logspb.ScopeLogs{{
		LogRecords: []*logspb.LogRecord{{SeverityText: "INFO", TraceId: bytes.Repeat([]byte{0x0f}, 16)}}}}}}}
	if _, err := collogspb.NewLogsServiceClient(grpcConn(t, s.GRPC)).Export(ctx, logs); err != nil {
		t.Fatal(err)
	}
	if err := s.wait(t); err != nil {
		t.Fatalf("run: %v", err)
	}

	signals, lines := readLines(t, out)
	if strings.Join(signals, ",") != "metrics,traces,logs" {
		t.Fatalf("signals %v, want metrics,traces,logs", signals)
	}

	var mreq colmetricspb.ExportMetricsServiceRequest
	if err := telemetrytest.UnmarshalJSON(lines[0], &mreq); err != nil {
		t.Fatal(err)
	}
	m := mreq.GetResourceMetrics()[0].GetScopeMetrics()[0].GetMetrics()[0]
	p := m.GetSum().GetDataPoints()[0]
	if m.GetName() != "records.sent" || p.GetAsInt() != 7 || telemetrytest.Attributes(p.GetAttributes())["table"] != "t<1>" {
		t.Errorf("metrics line decoded as %v", m)
	}
	if !bytes.Contains(lines[0], []byte(`"asInt":"7"`)) || !bytes.Contains(lines[0], []byte(`"t<1>"`)) {
		t.Errorf("metrics line is not plain OTLP/JSON: %s", lines[0])
	}

	var treq coltracepb.ExportTraceServiceRequest
	if err := telemetrytest.UnmarshalJSON(lines[1], &treq); err != nil {
		t.Fatal(err)
	}
	spans := map[string]*tracepb.Span{}
	for _, sp := range treq.GetResourceSpans()[0].GetScopeSpans()[0].GetSpans() {
		spans[sp.GetName()] = sp
	}
	pid, cid := parent.SpanContext().SpanID(), child.SpanContext().SpanID()
	if f, i := spans["flush"], spans["ingest"]; f == nil || i == nil ||
		!bytes.Equal(f.GetParentSpanId(), pid[:]) || !bytes.Equal(f.GetSpanId(), cid[:]) || !bytes.Equal(i.GetSpanId(), pid[:]) {
		t.Errorf("spans decoded as %v", spans)
	}
	tid := parent.SpanContext().TraceID()
	if !bytes.Contains(lines[1], []byte(`"traceId":"`+tid.String()+`"`)) || !bytes.Contains(lines[1], []byte(`"parentSpanId":"`+hex.EncodeToString(pid[:])+`"`)) {
		t.Errorf("traces line lacks hex ids %s/%s: %s", tid, pid, lines[1])
	}

	if !bytes.Contains(lines[2], []byte(`"traceId":"0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f"`)) || !bytes.Contains(lines[2], []byte(`"severityText":"INFO"`)) {
		t.Errorf("logs line %s", lines[2])
	}
}

func TestSinkReadyFileAndFailure(t *testing.T) {
	dir := t.TempDir()
	ready, out := filepath.Join(dir, "ready.json"), filepath.Join(dir, "out.jsonl")
	ctx, cancel := context.WithCancel(t.Context())
	checkLeaks(t)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-ready", ready, "-out", out, "-fail", "unavailable", "-delay", "1ms"}, io.Discard, io.Discard)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		if _, lines := readLines(t, out); len(lines) != 0 {
			t.Errorf("failed exports wrote %d lines", len(lines))
		}
	}()

	var b []byte
	testutil.Eventually(t, "the ready file", func() bool {
		var err error
		b, err = os.ReadFile(ready)
		return err == nil
	})
	var ep endpoints
	if err := json.Unmarshal(b, &ep); err != nil || !strings.HasPrefix(ep.GRPCURL, "http://127.0.0.1:") {
		t.Fatalf("ready file %q: %v", b, err)
	}
	_, err := coltracepb.NewTraceServiceClient(grpcConn(t, ep.GRPC)).Export(ctx, &coltracepb.ExportTraceServiceRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("export to -fail unavailable: %v", err)
	}
}

func TestSinkStopsOnWriteError(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	s := startSink(t, "-out", "/dev/full")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	collogspb.NewLogsServiceClient(grpcConn(t, s.GRPC)).Export(ctx, &collogspb.ExportLogsServiceRequest{})
	select {
	case err := <-s.done:
		if err == nil || !strings.Contains(err.Error(), "write logs export") {
			t.Errorf("run = %v, want the write error", err)
		}
	case <-ctx.Done():
		t.Fatal("run kept going after a failed write")
	}
}

func TestBadCommandLines(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		args  []string
		usage bool
		want  string
	}{
		{[]string{"-nope"}, true, "not defined: -nope"},
		{[]string{"extra"}, true, `unexpected argument "extra"`},
		{[]string{"-fail", "sometimes"}, true, "-fail: invalid code"},
		{[]string{"-fail", "99"}, true, "-fail: invalid code: 99"},
		{[]string{"-out", filepath.Join(dir, "no", "such", "dir")}, false, "-out:"},
		{[]string{"-ready", filepath.Join(dir, "no", "such", "dir")}, false, "-ready:"},
		{[]string{"-ready", dir}, false, "-ready:"}, // a directory cannot be replaced by the file
		{[]string{"-grpc-addr", "127.0.0.1:notaport"}, false, "OTLP/gRPC"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			checkLeaks(t)
			err := run(t.Context(), tc.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, errUsage) != tc.usage {
				t.Errorf("run(%q) = %v; want an error mentioning %q (usage %v)", tc.args, err, tc.want, tc.usage)
			}
		})
	}
}

func TestParseCodeAndExitCode(t *testing.T) {
	for in, want := range map[string]codes.Code{"": codes.OK, "UNAVAILABLE": codes.Unavailable, "permission_denied": codes.PermissionDenied, "8": codes.ResourceExhausted} {
		if got, err := parseCode(in); got != want || err != nil {
			t.Errorf("parseCode(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	var stderr bytes.Buffer
	for _, tc := range []struct {
		err  error
		code int
	}{{nil, 0}, {flag.ErrHelp, 0}, {errUsage, 2}, {errors.New("boom"), 1}} {
		if got := exitCode(tc.err, &stderr); got != tc.code {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.code)
		}
	}
	if !strings.Contains(stderr.String(), "otlp-sink: boom") {
		t.Errorf("stderr %q does not report the error", stderr.String())
	}
	if err := run(t.Context(), []string{"-h"}, io.Discard, &stderr); exitCode(err, io.Discard) != 0 || !strings.Contains(stderr.String(), "-grpc-addr") {
		t.Errorf("-h: %v, usage %q", err, stderr.String())
	}
}

func TestEncodeLineReportsBadMessages(t *testing.T) {
	bad := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{SchemaUrl: "\xff"}}}
	if err := encodeLine(io.Discard, telemetrytest.SignalTraces, bad); err == nil {
		t.Error("encodeLine of invalid UTF-8 succeeded")
	}
}

// The built command, started the way a Python test starts it: ready line
// on stderr, JSON lines on stdout, exit 0 on SIGTERM or SIGINT.
func TestProcessExitsCleanlyOnSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), runMainEnv+"=1")
			var stdout bytes.Buffer
			cmd.Stdout = &stdout
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			errs := bufio.NewReader(stderr)
			line, err := errs.ReadBytes('\n')
			var ep endpoints
			if err != nil || json.Unmarshal(line, &ep) != nil {
				t.Fatalf("ready line %q: %v", line, err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			if _, err := colmetricspb.NewMetricsServiceClient(grpcConn(t, ep.GRPC)).Export(ctx, &colmetricspb.ExportMetricsServiceRequest{}); err != nil {
				t.Fatal(err)
			}
			cmd.Process.Signal(sig)
			rest, _ := io.ReadAll(errs)
			if err := cmd.Wait(); err != nil {
				t.Fatalf("exit after %v: %v (stderr %q)", sig, err, rest)
			}
			if got := stdout.String(); got != `{"signal":"metrics"}`+"\n" {
				t.Errorf("stdout %q", got)
			}
		})
	}
}

func TestProcessExitsWithUsageError(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-bogus")
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "otlp-sink: usage") {
		t.Errorf("exit %v, output %q; want status 2 and a usage message", err, out)
	}
}

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/pyzerobus/pyzerobus/zbwrap/telemetry/telemetrytest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// errUsage marks errors in the command line.
var errUsage = errors.New("usage")

// exitCode reports err on stderr and maps it to the exit status.
func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "otlp-sink:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "otlp-sink:", err)
		return 1
	}
}

// run serves until ctx ends or writing a line fails.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("otlp-sink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "-", "file to write one JSON line per export to (- for stdout)")
	ready := fs.String("ready", "", "file to write the endpoints to as one JSON line (default: stderr)")
	grpcAddr := fs.String("grpc-addr", "127.0.0.1:0", "OTLP/gRPC listen address")
	httpAddr := fs.String("http-addr", "127.0.0.1:0", "OTLP/HTTP listen address")
	fail := fs.String("fail", "", "fail every export with this gRPC code (name or number)")
	delay := fs.Duration("delay", 0, "hold every export this long before answering it")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	failure, err := parseCode(*fail)
	if err != nil {
		return fmt.Errorf("%w: -fail: %w", errUsage, err)
	}

	w := stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			return fmt.Errorf("-out: %w", err)
		}
		defer f.Close()
		w = f
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lines := &lineWriter{w: bufio.NewWriter(w), failed: cancel}

	col, err := telemetrytest.NewCollector(ctx,
		telemetrytest.WithGRPCAddr(*grpcAddr),
		telemetrytest.WithHTTPAddr(*httpAddr),
		telemetrytest.WithFailure(failure),
		telemetrytest.WithDelay(*delay),
		telemetrytest.WithOnExport(lines.write))
	if err != nil {
		return err
	}
	if err := announce(col, *ready, stderr); err != nil {
		col.Close()
		return err
	}
	<-ctx.Done()
	return errors.Join(col.Close(), lines.error())
}

// announce writes the endpoints as one JSON line.
func announce(col *telemetrytest.Collector, ready string, stderr io.Writer) error {
	line, _ := json.Marshal(map[string]string{ // strings always marshal
		"grpc":     col.GRPCEndpoint(),
		"grpc_url": col.GRPCURL(),
		"http_url": col.HTTPURL(),
	})
	line = append(line, '\n')
	if ready == "" {
		_, err := stderr.Write(line)
		return err
	}
	tmp := ready + ".tmp"
	if err := os.WriteFile(tmp, line, 0o644); err != nil {
		return fmt.Errorf("-ready: %w", err)
	}
	if err := os.Rename(tmp, ready); err != nil {
		return fmt.Errorf("-ready: %w", err)
	}
	return nil
}

// parseCode reads a gRPC code by name (any case) or number; "" is OK.
func parseCode(s string) (codes.Code, error) {
	var c codes.Code
	if s == "" {
		return codes.OK, nil
	}
	if _, err := strconv.ParseUint(s, 10, 32); err == nil {
		return c, c.UnmarshalJSON([]byte(s))
	}
	return c, c.UnmarshalJSON([]byte(strconv.Quote(strings.ToUpper(s))))
}

// lineWriter writes exports as JSON lines. The Collector never calls write
// concurrently; mu guards err, which run reads after the Collector closed.
type lineWriter struct {
	w      *bufio.Writer
	failed func()

	mu  sync.Mutex
	err error
}

func (l *lineWriter) write(signal telemetrytest.Signal, req proto.Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return
	}
	if l.err = encodeLine(l.w, signal, req); l.err == nil {
		l.err = l.w.Flush()
	}
	if l.err != nil {
		l.err = fmt.Errorf("write %s export: %w", signal, l.err)
		l.failed()
	}
}

func (l *lineWriter) error() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// encodeLine writes req as OTLP/JSON with a "signal" field, and a newline.
func encodeLine(w io.Writer, signal telemetrytest.Signal, req proto.Message) error {
	b, err := telemetrytest.MarshalJSON(req)
	if err != nil {
		return err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return err
	}
	obj["signal"], _ = json.Marshal(string(signal))
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(obj)
}

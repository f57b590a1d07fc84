package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pyzerobus/pyzerobus/zbwrap"
	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

// writeIPC writes n rows {id, payload} as an Arrow IPC file.
func writeIPC(t *testing.T, n int) string {
	t.Helper()
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "payload", Type: arrow.BinaryTypes.String},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for i := range n {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		b.Field(1).(*array.StringBuilder).Append(strings.Repeat("x", 50))
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	path := filepath.Join(t.TempDir(), "rows.arrow")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := ipc.NewFileWriter(f, ipc.WithSchema(sc))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRunSendsEveryChunk(t *testing.T) {
	srv, err := zerobustest.NewServer(zerobustest.WithClient("id", "secret"), zerobustest.WithDiscard())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	path := writeIPC(t, 5000)
	base := []string{"-endpoint", srv.Endpoint(), "-workspace-url", srv.WorkspaceURL(), "-client-id", "id",
		"-table", "main.bench.t", "-ipc", path, "-batch-rows", "1000"}
	for _, mode := range []string{"sync", "async"} {
		t.Run(mode, func(t *testing.T) {
			var out bytes.Buffer
			if err := run(append(base, "-mode", mode), "secret", &out); err != nil {
				t.Fatal(err)
			}
			got := decode(t, &out)
			// The first chunk opens the stream and is not counted.
			if got.Rows != 4000 || got.Seconds <= 0 || (mode == "sync" && got.Bytes <= 0) || got.CPUSeconds < 0 {
				t.Fatalf("%+v", got)
			}
			if runtime.GOOS == "linux" && got.PeakRSS < 1<<20 {
				t.Fatalf("peak RSS %d bytes", got.PeakRSS)
			}
			if st := srv.Stats().Tables["main.bench.t"]; st.RecordsAcked < 5000 {
				t.Fatalf("server acknowledged %d records", st.RecordsAcked)
			}
		})
	}
}

type result struct {
	Rows       int64   `json:"rows"`
	Bytes      int64   `json:"bytes"`
	Seconds    float64 `json:"seconds"`
	CPUSeconds float64 `json:"cpu_seconds"`
	PeakRSS    int64   `json:"peak_rss_bytes"`
}

func decode(t *testing.T, out *bytes.Buffer) result {
	t.Helper()
	var got result
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%s: %v", out.String(), err)
	}
	return got
}

// Over TLS, the server's CA trusted through -ca-file, with several streams.
func TestRunTLSWithCAFile(t *testing.T) {
	srv, err := zerobustest.NewServer(zerobustest.WithClient("id", "secret"), zerobustest.WithDiscard(),
		zerobustest.WithTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var out bytes.Buffer
	err = run([]string{"-endpoint", srv.Endpoint(), "-workspace-url", srv.WorkspaceURL(), "-client-id", "id",
		"-table", "main.bench.tls", "-ipc", writeIPC(t, 3000), "-batch-rows", "500",
		"-streams", "2", "-ca-file", srv.CAFile()}, "secret", &out)
	if err != nil {
		t.Fatal(err)
	}
	if got := decode(t, &out); got.Rows != 2500 {
		t.Fatalf("%+v", got)
	}
}

// A transport the engine does not know is a configuration error, found
// before any data is read: the benchmark shows such a row as skipped.
func TestRunRefusesUnknownTransport(t *testing.T) {
	err := run([]string{"-endpoint", "http://127.0.0.1:1", "-workspace-url", "http://127.0.0.1:1",
		"-client-id", "id", "-table", "main.bench.t", "-ipc", "/no/such/file",
		"-transport", "carrier-pigeon"}, "s", &bytes.Buffer{})
	if !errors.Is(err, zbwrap.ErrConfiguration) || !strings.Contains(err.Error(), "transport") {
		t.Fatalf("err = %v", err)
	}
}

func TestRunRefusesBadArguments(t *testing.T) {
	path := writeIPC(t, 10)
	text := filepath.Join(t.TempDir(), "rows.txt")
	if err := os.WriteFile(text, []byte("not arrow"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := zerobustest.NewServer(zerobustest.WithClient("id", "secret"), zerobustest.WithDiscard())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	// conn passes the engine's configuration check, so that the later steps fail.
	conn := []string{"-endpoint", srv.Endpoint(), "-workspace-url", srv.WorkspaceURL(), "-client-id", "id",
		"-table", "main.bench.t"}
	type tc struct {
		args   []string
		secret string
	}
	for name, tc := range map[string]tc{
		"not arrow":           {append(conn, "-ipc", text), "secret"},
		"refused credentials": {append(conn, "-ipc", path, "-batch-rows", "5"), "wrong"},
		"no secret":           {append(conn, "-ipc", path, "-batch-rows", "5"), ""},
		"unknown flag":        {[]string{"-nope"}, "secret"},
		"bad mode":            {[]string{"-mode", "fast"}, "secret"},
		"missing file":        {append(conn, "-ipc", "/no/such/file"), "secret"},
		"one chunk":           {append(conn, "-ipc", path), "secret"},
		"bad config":          {[]string{"-ipc", path, "-batch-rows", "5"}, "secret"},
		"missing CA file":     {append(conn, "-ipc", path, "-ca-file", "/no/such/ca.pem"), "secret"},
		"CA file not PEM":     {append(conn, "-ipc", path, "-ca-file", text), "secret"},
	} {
		t.Run(name, func(t *testing.T) {
			if err := run(tc.args, tc.secret, &bytes.Buffer{}); err == nil {
				t.Fatal("expected an error")
			}
		})
	}
}

// The command as a process: a failure exits 1 with its reason on stderr, a
// configuration the engine refuses exits 2.
func TestMainExitStatus(t *testing.T) {
	if os.Getenv("GOENGINE_AS_MAIN") == "1" {
		os.Args = append([]string{"goengine"}, strings.Fields(os.Getenv("GOENGINE_ARGS"))...)
		main()
		return
	}
	for _, tc := range []struct {
		args   string
		status int
		stderr string
	}{
		{"-mode fast", 1, `goengine: unknown -mode "fast"`},
		{"-table main.bench.t -transport carrier-pigeon", 2, "transport"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestMainExitStatus$")
		cmd.Env = append(os.Environ(), "GOENGINE_AS_MAIN=1", "GOENGINE_ARGS="+tc.args)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != tc.status {
			t.Fatalf("%s: exit: %v", tc.args, err)
		}
		if !strings.Contains(stderr.String(), tc.stderr) {
			t.Fatalf("%s: stderr %q", tc.args, stderr.String())
		}
	}
}

// The command takes the client secret from ZEROBUS_CLIENT_SECRET, never
// from its arguments, where other users of the machine could read it.
func TestMainReadsTheSecretFromTheEnvironment(t *testing.T) {
	srv, err := zerobustest.NewServer(zerobustest.WithClient("id", "env-secret"), zerobustest.WithDiscard())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	args := strings.Join([]string{"-endpoint", srv.Endpoint(), "-workspace-url", srv.WorkspaceURL(),
		"-client-id", "id", "-table", "main.bench.env", "-ipc", writeIPC(t, 2000), "-batch-rows", "1000"}, " ")
	for _, tc := range []struct {
		secret string
		status int
	}{{"env-secret", 0}, {"wrong", 1}} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestMainExitStatus$")
		cmd.Env = append(os.Environ(), "GOENGINE_AS_MAIN=1", "GOENGINE_ARGS="+args, "ZEROBUS_CLIENT_SECRET="+tc.secret)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		status := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			status = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if status != tc.status {
			t.Fatalf("secret %q: exit %d, want %d; stderr %q", tc.secret, status, tc.status, stderr.String())
		}
		if tc.status == 0 && !strings.Contains(stdout.String(), `"rows":1000`) {
			t.Fatalf("secret %q: stdout %q", tc.secret, stdout.String())
		}
		if tc.status != 0 && !strings.Contains(stderr.String(), "goengine:") {
			t.Fatalf("secret %q: stderr %q", tc.secret, stderr.String())
		}
		if strings.Contains(stderr.String(), tc.secret) {
			t.Fatalf("the secret in stderr: %q", stderr.String())
		}
	}
}

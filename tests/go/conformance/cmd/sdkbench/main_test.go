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

	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

// writeIPC writes n rows of sc, each column filled by fill, as an Arrow IPC file.
func writeIPC(t *testing.T, sc *arrow.Schema, n int) string {
	t.Helper()
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for i := range n {
		for c, f := range sc.Fields() {
			switch f.Type.ID() {
			case arrow.INT64:
				if i%7 == 3 {
					b.Field(c).AppendNull() // a null leaves the field unset
				} else {
					b.Field(c).(*array.Int64Builder).Append(int64(i))
				}
			case arrow.STRING:
				b.Field(c).(*array.StringBuilder).Append(strings.Repeat("x", i%50))
			default:
				b.Field(c).AppendNull()
			}
		}
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

var rowsSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "payload", Type: arrow.BinaryTypes.String},
}, nil)

func tlsServer(t *testing.T) *zerobustest.Server {
	t.Helper()
	srv, err := zerobustest.NewServer(zerobustest.WithTLS(), zerobustest.WithClient("id", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// Both modes send every row through Databricks' SDK; the server
// acknowledges each of them and stores the same values the engine's
// encoder would have produced.
func TestRunSendsEveryChunk(t *testing.T) {
	srv := tlsServer(t)
	path := writeIPC(t, rowsSchema, 2500)
	for _, mode := range []string{"preencoded", "dynamicpb"} {
		t.Run(mode, func(t *testing.T) {
			table := "main.bench." + mode
			var out bytes.Buffer
			err := run([]string{"-endpoint", srv.Endpoint(), "-workspace-url", srv.WorkspaceURL(),
				"-ca-file", srv.CAFile(), "-client-id", "id", "-table", table, "-ipc", path,
				"-batch-rows", "1000", "-mode", mode}, "secret", &out)
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				Rows       int64   `json:"rows"`
				Seconds    float64 `json:"seconds"`
				CPUSeconds float64 `json:"cpu_seconds"`
				PeakRSS    int64   `json:"peak_rss_bytes"`
			}
			if err := json.Unmarshal(out.Bytes(), &got); err != nil {
				t.Fatalf("%s: %v", out.String(), err)
			}
			// The first chunk opens the stream and is not counted.
			if got.Rows != 1500 || got.Seconds <= 0 || got.CPUSeconds < 0 {
				t.Fatalf("%+v", got)
			}
			if runtime.GOOS == "linux" && got.PeakRSS < 1<<20 {
				t.Fatalf("peak RSS %d bytes", got.PeakRSS)
			}
			if st := srv.Stats().Tables[table]; st.RecordsAcked != 2500 {
				t.Fatalf("server acknowledged %d records, want 2500", st.RecordsAcked)
			}
		})
	}
}

func TestRunRefusesBadArguments(t *testing.T) {
	srv := tlsServer(t)
	path := writeIPC(t, rowsSchema, 10)
	text := filepath.Join(t.TempDir(), "rows.txt")
	if err := os.WriteFile(text, []byte("not arrow"), 0o600); err != nil {
		t.Fatal(err)
	}
	floats := writeIPC(t, arrow.NewSchema([]arrow.Field{{Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true}}, nil), 10)
	conn := []string{"-endpoint", srv.Endpoint(), "-workspace-url", srv.WorkspaceURL(), "-ca-file", srv.CAFile(),
		"-client-id", "id", "-table", "main.bench.bad", "-batch-rows", "5"}
	for name, tc := range map[string]struct {
		args   []string
		secret string
		want   string
	}{
		"unknown flag":        {[]string{"-nope"}, "secret", "not defined"},
		"bad mode":            {[]string{"-mode", "fast"}, "secret", `unknown -mode "fast"`},
		"bad batch rows":      {[]string{"-batch-rows", "0"}, "secret", "-batch-rows must be at least 1"},
		"missing CA file":     {[]string{"-ca-file", "/no/such/ca.pem"}, "secret", "no such file"},
		"CA file not PEM":     {[]string{"-ca-file", text}, "secret", "no certificate"},
		"not arrow":           {append(conn, "-ipc", text), "secret", ""},
		"missing file":        {append(conn, "-ipc", "/no/such/file"), "secret", "no such file"},
		"one chunk":           {append(conn, "-ipc", path, "-batch-rows", "10"), "secret", "need at least two chunks"},
		"unsupported column":  {append(conn, "-ipc", floats), "secret", "column 0 (score) is float64"},
		"refused credentials": {append(conn, "-ipc", path), "wrong", "create stream"},
		"plaintext endpoint":  {[]string{"-endpoint", "http://127.0.0.1:1", "-workspace-url", "http://127.0.0.1:1", "-ca-file", srv.CAFile(), "-client-id", "id", "-table", "main.bench.bad", "-ipc", path, "-batch-rows", "5"}, "secret", ""},
	} {
		t.Run(name, func(t *testing.T) {
			err := run(tc.args, tc.secret, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// The command as a process: a failure exits 1 with its reason on stderr.
func TestMainExitStatus(t *testing.T) {
	if os.Getenv("SDKBENCH_AS_MAIN") == "1" {
		os.Args = []string{"sdkbench", "-mode", "fast"}
		main()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestMainExitStatus$")
	cmd.Env = append(os.Environ(), "SDKBENCH_AS_MAIN=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("exit: %v", err)
	}
	if !strings.Contains(stderr.String(), `sdkbench: unknown -mode "fast"`) {
		t.Fatalf("stderr %q", stderr.String())
	}
}

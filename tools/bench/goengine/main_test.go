package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

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
		"-client-secret", "secret", "-table", "main.bench.t", "-ipc", path, "-batch-rows", "1000"}
	for _, mode := range []string{"sync", "async"} {
		t.Run(mode, func(t *testing.T) {
			var out bytes.Buffer
			if err := run(append(base, "-mode", mode), &out); err != nil {
				t.Fatal(err)
			}
			var got struct {
				Rows    int64   `json:"rows"`
				Bytes   int64   `json:"bytes"`
				Seconds float64 `json:"seconds"`
			}
			if err := json.Unmarshal(out.Bytes(), &got); err != nil {
				t.Fatalf("%s: %v", out.String(), err)
			}
			// The first chunk opens the stream and is not counted.
			if got.Rows != 4000 || got.Seconds <= 0 || (mode == "sync" && got.Bytes <= 0) {
				t.Fatalf("%+v", got)
			}
		})
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
	for name, args := range map[string][]string{
		"not arrow": {"-ipc", text},
		"refused credentials": {"-endpoint", srv.Endpoint(), "-workspace-url", srv.WorkspaceURL(), "-client-id", "id",
			"-client-secret", "wrong", "-table", "main.bench.t", "-ipc", path, "-batch-rows", "5"},
		"unknown flag": {"-nope"},
		"bad mode":     {"-mode", "fast"},
		"missing file": {"-ipc", "/no/such/file"},
		"one chunk":    {"-ipc", path},
		"bad config":   {"-ipc", path, "-batch-rows", "5"},
	} {
		t.Run(name, func(t *testing.T) {
			if err := run(args, &bytes.Buffer{}); err == nil {
				t.Fatal("expected an error")
			}
		})
	}
}

// The command as a process: a failure exits 1 with its reason on stderr.
func TestMainExitStatus(t *testing.T) {
	if os.Getenv("GOENGINE_AS_MAIN") == "1" {
		os.Args = append([]string{"goengine"}, strings.Fields(os.Getenv("GOENGINE_ARGS"))...)
		main()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestMainExitStatus$")
	cmd.Env = append(os.Environ(), "GOENGINE_AS_MAIN=1", "GOENGINE_ARGS=-mode fast")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("exit: %v", err)
	}
	if !strings.Contains(stderr.String(), `goengine: unknown -mode "fast"`) {
		t.Fatalf("stderr %q", stderr.String())
	}
}

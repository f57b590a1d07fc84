package main

import (
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

// The quickstart, built and run as the program a user runs, against a local
// server: every row lands in the Delta table, nested values included.
func TestQuickstartLandsEveryRow(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the command")
	}
	srv, err := zerobustest.NewServer(zerobustest.WithClient("demo", "demo-secret"), zerobustest.WithDataDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	bin := filepath.Join(t.TempDir(), "quickstart")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	const table = "main.demo.quickstart"
	cmd := exec.Command(bin, "-endpoint", srv.Endpoint(), "-workspace-url", srv.WorkspaceURL(),
		"-client-id", "demo", "-table", table, "-rows", "25000", "-batch", "10000")
	// The secret from the environment, as the README suggests.
	cmd.Env = append(os.Environ(), "DATABRICKS_CLIENT_SECRET=demo-secret")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("quickstart: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "sent 25000 rows to "+table+": 25000 acknowledged, 0 failed") {
		t.Fatalf("quickstart printed %q", out)
	}
	if err := srv.Materialize(); err != nil {
		t.Fatal(err)
	}
	tbl, err := zerobustest.ReadTable(srv.DataDir(), table)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	if tbl.NumRows() != 25000 {
		t.Fatalf("%d rows in the table, want 25000", tbl.NumRows())
	}
	if got := tbl.Schema().Field(5).Name; got != "device" {
		t.Fatalf("column 5 is %q, want the nested device struct", got)
	}
}

// The same program run in the test's process (main with the arguments a user
// passes), so that coverage sees it: flags and the secret from the
// environment, every batch sent, the summary printed, the rows in the table.
func TestQuickstartInProcess(t *testing.T) {
	srv, err := zerobustest.NewServer(zerobustest.WithClient("demo", "demo-secret"), zerobustest.WithDataDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	const table = "main.demo.inprocess"
	t.Setenv("DATABRICKS_CLIENT_SECRET", "demo-secret")
	args, flags := os.Args, flag.CommandLine
	defer func() { os.Args, flag.CommandLine = args, flags }()
	os.Args = []string{"quickstart", "-endpoint", srv.Endpoint(), "-workspace-url", srv.WorkspaceURL(),
		"-client-id", "demo", "-table", table, "-rows", "2500", "-batch", "1000"}
	flag.CommandLine = flag.NewFlagSet("quickstart", flag.ContinueOnError)

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	printed := make(chan []byte)
	go func() { b, _ := io.ReadAll(r); printed <- b }()
	main()
	os.Stdout = stdout
	_ = w.Close()
	out := string(<-printed)
	_ = r.Close()

	if !strings.Contains(out, "sent 2500 rows to "+table+": 2500 acknowledged, 0 failed") {
		t.Fatalf("quickstart printed %q", out)
	}
	if err := srv.Materialize(); err != nil {
		t.Fatal(err)
	}
	tbl, err := zerobustest.ReadTable(srv.DataDir(), table)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	if tbl.NumRows() != 2500 {
		t.Fatalf("%d rows in the table, want 2500", tbl.NumRows())
	}
}

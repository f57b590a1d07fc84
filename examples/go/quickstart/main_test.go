package main

import (
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

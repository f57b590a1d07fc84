package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// bins holds the programs built once for the tests that run processes.
var bins struct {
	once      sync.Once
	dir       string
	server    string
	sdkclient string
	err       error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bins.dir != "" {
		os.RemoveAll(bins.dir)
	}
	os.Exit(code)
}

// build compiles zerobus-local and the pure-Go SDK client of the
// conformance module.
func build(t *testing.T) {
	t.Helper()
	bins.once.Do(func() {
		bins.dir, bins.err = os.MkdirTemp("", "zerobus-local-test-")
		if bins.err != nil {
			return
		}
		bins.server = filepath.Join(bins.dir, "zerobus-local")
		bins.sdkclient = filepath.Join(bins.dir, "sdkclient")
		if b, err := exec.Command("go", "build", "-o", bins.server, ".").CombinedOutput(); err != nil {
			bins.err = fmt.Errorf("go build zerobus-local: %v\n%s", err, b)
			return
		}
		// The SDK client lives in the conformance module, which keeps
		// Databricks' SDK out of this module's go.mod.
		cmd := exec.Command("go", "build", "-o", bins.sdkclient, "./cmd/sdkclient")
		cmd.Dir = filepath.Join("..", "..", "tests", "go", "conformance")
		cmd.Env = append(os.Environ(), "GONOSUMDB=github.com/databricks", "GOFLAGS=-mod=mod")
		if b, err := cmd.CombinedOutput(); err != nil {
			bins.err = fmt.Errorf("go build sdkclient: %v\n%s", err, b)
			return
		}
	})
	if bins.err != nil {
		t.Fatal(bins.err)
	}
}

// syncBuffer is a goroutine-safe bytes.Buffer.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ready is the parsed ready line.
type ready struct{ endpoint, workspaceURL, caFile, adminToken string }

func parseReady(t *testing.T, line string) ready {
	t.Helper()
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "zerobus-local ready ")
	if !ok {
		t.Fatalf("not a ready line: %q", line)
	}
	var r ready
	for _, kv := range strings.Fields(rest) {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "endpoint":
			r.endpoint = v
		case "workspace_url":
			r.workspaceURL = v
		case "ca_file":
			r.caFile = v
		case "admin_token":
			r.adminToken = v
		default:
			t.Fatalf("unknown key %q in %q", k, line)
		}
	}
	if r.endpoint == "" || r.workspaceURL == "" || r.adminToken == "" {
		t.Fatalf("incomplete ready line %q", line)
	}
	return r
}

// readLine reads the first line of r, failing after 30s.
func readLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		line, _ := r.ReadString('\n')
		got <- line
	}()
	select {
	case line := <-got:
		return line
	case <-time.After(30 * time.Second):
		t.Fatal("no ready line within 30s")
		return ""
	}
}

// server is a running zerobus-local process.
type server struct {
	ready
	cmd    *exec.Cmd
	stdout *bufio.Reader
	stderr *syncBuffer
}

func startServer(t *testing.T, args ...string) *server {
	t.Helper()
	build(t)
	cmd := exec.Command(bins.server, append([]string{"serve"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, stdout: bufio.NewReader(stdout), stderr: &syncBuffer{}}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	line := readLine(t, s.stdout)
	if line == "" {
		_ = cmd.Wait()
		t.Fatalf("server exited before it was ready: %s", s.stderr)
	}
	s.ready = parseReady(t, line)
	return s
}

// stop sends sig and returns the exit code; it checks that nothing but the
// ready line went to stdout.
func (s *server) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(s.stdout)
	_ = s.cmd.Wait()
	if len(rest) > 0 && sig != syscall.SIGKILL {
		t.Errorf("stdout after the ready line: %q", rest)
	}
	return s.cmd.ProcessState.ExitCode()
}

// httpClient trusts the server's CA when it has one.
func (r ready) httpClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	if r.caFile != "" {
		pem, err := os.ReadFile(r.caFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// getJSON fetches a JSON document from the workspace URL.
func (r ready) getJSON(t *testing.T, method, path string, body io.Reader, out any) int {
	t.Helper()
	return r.doJSON(t, method, path, body, nil, out)
}

// admin sends an admin request with the server's admin token, as JSON.
func (r ready) admin(t *testing.T, method, path string, body io.Reader, out any) int {
	t.Helper()
	hdr := http.Header{"Authorization": {"Bearer " + r.adminToken}, "Content-Type": {"application/json"}}
	return r.doJSON(t, method, path, body, hdr, out)
}

// doJSON sends a request with the headers hdr and decodes a JSON answer
// into out (if not nil).
func (r ready) doJSON(t *testing.T, method, path string, body io.Reader, hdr http.Header, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, r.workspaceURL+path, body)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := r.httpClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// ingest runs the pure-Go SDK client; it returns its output.
func (r ready) ingest(t *testing.T, table string, records, batch int) string {
	t.Helper()
	cmd := exec.Command(bins.sdkclient, "-endpoint", r.endpoint, "-workspace-url", r.workspaceURL, "-ca-file", r.caFile,
		"-client-id", "sp", "-table", table, "-records", fmt.Sprint(records), "-batch", fmt.Sprint(batch))
	cmd.Env = append(os.Environ(), "ZEROBUS_CLIENT_SECRET=s3cret")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sdkclient: %v\n%s", err, out)
	}
	return string(out)
}

// showIDs runs show and returns the ids of the rows, checking each is a
// JSON object.
func showIDs(t *testing.T, dir, table string) map[int64]int {
	t.Helper()
	out, err := exec.Command(bins.server, "show", "--data-dir", dir, table).Output()
	if err != nil {
		t.Fatalf("show: %v", err)
	}
	ids := map[int64]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		var row struct {
			ID   int64  `json:"id"`
			Name string `json:"name"`
		}
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			t.Fatalf("show line %q: %v", line, err)
		}
		if row.Name != fmt.Sprint("sdk-", row.ID) {
			t.Fatalf("row %q: name does not match id", line)
		}
		ids[row.ID]++
	}
	return ids
}

func wantAll(t *testing.T, ids map[int64]int, n int, exact bool) {
	t.Helper()
	for i := range int64(n) {
		if ids[i] == 0 {
			t.Fatalf("record %d missing (%d distinct rows)", i, len(ids))
		}
		if exact && ids[i] != 1 {
			t.Fatalf("record %d landed %d times", i, ids[i])
		}
	}
}

func writeTables(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tables.yaml")
	yaml := "main.default.events:\n  - {name: id, type: bigint, nullable: false}\n  - {name: name, type: string}\n"
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// The pure-Go SDK ingests over TLS; SIGTERM exits 0 and show prints the
// rows.
func TestServeTLSWithPureGoSDK(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, "--tls", "--data-dir", dir, "--client", "sp:s3cret", "--tables", writeTables(t), "--no-auto-create")
	if s.caFile != filepath.Join(dir, "ca.pem") || !strings.HasPrefix(s.endpoint, "https://127.0.0.1:") {
		t.Fatalf("ready %+v", s.ready)
	}
	if out := s.ingest(t, "main.default.events", 500, 50); !strings.Contains(out, "ok records=500") {
		t.Fatalf("sdkclient: %s", out)
	}
	var st struct {
		RecordsAcked int64 `json:"records_acked"`
	}
	if code := s.getJSON(t, http.MethodGet, "/stats", nil, &st); code != 200 || st.RecordsAcked != 500 {
		t.Fatalf("stats: HTTP %d %+v", code, st)
	}
	if code := s.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d after SIGTERM\n%s", code, s.stderr)
	}
	if strings.Contains(s.stderr.String(), "s3cret") {
		t.Fatal("the client secret leaked into the logs")
	}
	if !strings.Contains(s.stderr.String(), "shutting down") {
		t.Fatalf("no shutdown log on stderr:\n%s", s.stderr)
	}
	wantAll(t, showIDs(t, dir, "main.default.events"), 500, true)
}

// SIGKILL loses no acknowledged record: the next server replays the log.
func TestKillLosesNoAckedRecord(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, "--tls", "--data-dir", dir, "--client", "sp:s3cret", "--materialize-interval", "1h", "--tables", writeTables(t))
	s.ingest(t, "main.default.events", 300, 30) // returns once everything is acknowledged
	if code := s.stop(t, syscall.SIGKILL); code == 0 {
		t.Fatal("a killed server exited 0")
	}
	s2 := startServer(t, "--data-dir", dir, "--client", "sp:s3cret", "--materialize-interval", "1h")
	if code := s2.stop(t, syscall.SIGINT); code != 0 {
		t.Fatalf("exit code %d after SIGINT\n%s", code, s2.stderr)
	}
	wantAll(t, showIDs(t, dir, "main.default.events"), 300, true)
}

// Faults from the command line and the admin endpoint; the SDK recovers
// and no record is lost.
func TestFaultsRecoveredBySDK(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, "--tls", "--data-dir", dir, "--client", "sp:s3cret", "--tables", writeTables(t),
		"--fault", "kind=end_call,after=100,signal=true,signal_duration=100ms")
	body := strings.NewReader(`{"kind":"drop_connection","after_records":250}`)
	var armed map[string]int
	if code := s.admin(t, http.MethodPost, "/admin/faults", body, &armed); code != 200 || armed["armed"] != 1 {
		t.Fatalf("admin: HTTP %d %v", code, armed)
	}
	s.ingest(t, "main.default.events", 400, 20)
	var st struct {
		FaultsFired  int64 `json:"faults_fired"`
		StreamsOpen  int64 `json:"streams_opened"`
		RecordsAcked int64 `json:"records_acked"`
	}
	s.getJSON(t, http.MethodGet, "/stats", nil, &st)
	if st.FaultsFired != 2 || st.StreamsOpen < 2 {
		t.Fatalf("stats %+v: want 2 faults fired and a reconnect", st)
	}
	if code := s.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d\n%s", code, s.stderr)
	}
	wantAll(t, showIDs(t, dir, "main.default.events"), 400, false) // at least once
}

// The Rust-core Python SDK ingests over plaintext h2c.
func TestPythonSDK(t *testing.T) {
	python, err := filepath.Abs("../../.venv/bin/python")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(python); err != nil {
		t.Skip("no project virtualenv")
	}
	if err := exec.Command(python, "-c", "import zerobus.sdk.sync, google.protobuf").Run(); err != nil {
		t.Skip("databricks-zerobus-ingest-sdk is not installed in the virtualenv")
	}
	dir := t.TempDir()
	s := startServer(t, "--data-dir", dir, "--client", "sp:s3cret")
	script := `
import sys
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from zerobus.sdk.sync import ZerobusSdk
from zerobus.sdk.shared import TableProperties
fdp = descriptor_pb2.FileDescriptorProto(name="ev.proto", package="demo", syntax="proto2")
m = fdp.message_type.add(name="Event")
m.field.add(name="id", number=1, label=1, type=3)
m.field.add(name="name", number=2, label=1, type=9)
pool = descriptor_pool.DescriptorPool(); pool.Add(fdp)
desc = pool.FindMessageTypeByName("demo.Event")
Event = message_factory.GetMessageClass(desc)
sdk = ZerobusSdk(sys.argv[1], sys.argv[2])
stream = sdk.create_stream("sp", "s3cret", TableProperties("main.default.events", desc))
for i in range(5):
    stream.ingest_record_offset(Event(id=i, name="sdk-%d" % i).SerializeToString())
stream.ingest_records_offset([Event(id=i, name="sdk-%d" % i).SerializeToString() for i in range(5, 205)])
stream.flush()
stream.close()
print("ok")
`
	cmd := exec.Command(python, "-c", script, s.endpoint, s.workspaceURL)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("python: %v\n%s", err, out)
	}
	if code := s.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d\n%s", code, s.stderr)
	}
	wantAll(t, showIDs(t, dir, "main.default.events"), 205, true)
}

// --- in-process tests of run ---

func runCmd(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e, nil)
	return code, o.String(), e.String()
}

func TestUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		out  string // in stdout (exit 0) or stderr
	}{
		{nil, exitUsage, "Usage:"},
		{[]string{"help"}, exitOK, "zerobus-local serve"},
		{[]string{"--help"}, exitOK, "zerobus-local show"},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"serve", "--help"}, exitOK, "--tables file maps"},
		{[]string{"serve", "--help"}, exitOK, "-admin-token token"},
		{[]string{"serve", "--help"}, exitOK, "$ZEROBUS_LOCAL_ADMIN_TOKEN"},
		{[]string{"help"}, exitOK, "admin_token=TOKEN"},
		{[]string{"serve", "--discard", "--client", "a:b", "--admin-token", "two words"}, exitError, "admin token"},
		{[]string{"serve", "--bogus"}, exitUsage, "flag provided but not defined"},
		{[]string{"serve", "--client", "sp:pw"}, exitUsage, "--data-dir is required"},
		{[]string{"serve", "--data-dir", "x"}, exitUsage, "at least one --client"},
		{[]string{"serve", "--data-dir", "x", "--client", "nosecret"}, exitUsage, "want ID:SECRET"},
		{[]string{"serve", "--data-dir", "x", "--client", "a:b", "extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"serve", "--data-dir", "x", "--client", "a:b", "--log-level", "loud"}, exitUsage, "--log-level"},
		{[]string{"serve", "--data-dir", "x", "--client", "a:b", "--fault", "kind=nope"}, exitUsage, "not one of"},
		{[]string{"serve", "--data-dir", "x", "--client", "a:b", "--tables", "/does/not/exist.yaml"}, exitUsage, "--tables"},
		{[]string{"serve", "--discard", "--client", "a:b", "--listen", "256.0.0.1:1"}, exitError, "listen"},
		{[]string{"show"}, exitUsage, "want --data-dir DIR and one catalog.schema.table"},
		{[]string{"show", "--help"}, exitOK, ""},
		{[]string{"show", "--nope"}, exitUsage, "flag provided but not defined"},
		{[]string{"show", "--data-dir", t.TempDir(), "main.default.none"}, exitError, "zerobus-local show"},
		{[]string{"show", "--data-dir", t.TempDir(), "bad"}, exitError, "catalog.schema.table"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := runCmd(tc.args...)
			if code != tc.code || !strings.Contains(stdout+stderr, tc.out) {
				t.Fatalf("exit %d, want %d; output does not contain %q:\n%s%s", code, tc.code, tc.out, stdout, stderr)
			}
		})
	}
}

func TestTablesFile(t *testing.T) {
	write := func(s string) string {
		p := filepath.Join(t.TempDir(), "t.yaml")
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bad := map[string]string{
		"main.default.t:\n  - {name: id, type: int, color: red}\n": "color",
		"main.default.t:\n  - {name: id}\n":                        "needs a name and a type",
		"main.default.t: [\n":                                      "yaml",
	}
	for content, want := range bad {
		if _, err := loadTables(write(content)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error about %q", content, err, want)
		}
	}
	opts, err := loadTables(write(""))
	if err != nil || len(opts) != 0 {
		t.Fatalf("empty file: %v %v", opts, err)
	}
	opts, err = loadTables(write("b.c.d:\n  - {name: x, type: int}\na.b.c:\n  - {name: y, type: string, nullable: false}\n"))
	if err != nil || len(opts) != 2 {
		t.Fatalf("two tables: %d options, %v", len(opts), err)
	}
}

// serveInProcess runs serve in this process until stop gets a signal.
func serveInProcess(t *testing.T, args ...string) (ready, chan<- os.Signal, <-chan int, *syncBuffer) {
	t.Helper()
	pr, pw := io.Pipe()
	stop := make(chan os.Signal, 1)
	done := make(chan int, 1)
	stderr := &syncBuffer{}
	go func() {
		code := run(append([]string{"serve"}, args...), pw, stderr, stop)
		pw.Close()
		done <- code
	}()
	line := readLine(t, bufio.NewReader(pr))
	if line == "" {
		t.Fatalf("serve ended early (exit %d): %s", <-done, stderr)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	return parseReady(t, line), stop, done, stderr
}

func TestServeInProcess(t *testing.T) {
	dir := t.TempDir()
	r, stop, done, stderr := serveInProcess(t, "--tls", "--data-dir", dir, "--client", "sp:s3cret", "--client", "other:pw",
		"--tables", writeTables(t), "--token-ttl", "10m", "--log-level", "debug",
		"--fault", "kind=fail_create_stream,times=2", "--shutdown-timeout", "5s")
	// Token endpoint with the SDK's form, over TLS.
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"all-apis"}}
	req, _ := http.NewRequest(http.MethodPost, r.workspaceURL+"/oidc/v1/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("other", "pw")
	resp, err := r.httpClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if resp.StatusCode != 200 || tok["expires_in"] != float64(600) {
		t.Fatalf("token: HTTP %d %v", resp.StatusCode, tok)
	}
	// The declared table answers on the Unity Catalog endpoint.
	req, _ = http.NewRequest(http.MethodGet, r.workspaceURL+"/api/2.1/unity-catalog/tables/main.default.events", nil)
	req.Header.Set("Authorization", "Bearer "+tok["access_token"].(string))
	resp, err = r.httpClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		Columns []struct {
			Name     string `json:"name"`
			TypeName string `json:"type_name"`
			Nullable bool   `json:"nullable"`
		} `json:"columns"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&table)
	resp.Body.Close()
	if len(table.Columns) != 2 || table.Columns[0].Nullable || !table.Columns[1].Nullable || table.Columns[0].TypeName != "LONG" {
		t.Fatalf("table %+v", table)
	}
	var faults struct{ Faults []map[string]any }
	if code := r.admin(t, http.MethodGet, "/admin/faults", nil, &faults); code != 200 || len(faults.Faults) != 1 {
		t.Fatalf("faults: HTTP %d %v", code, faults)
	}
	stop <- syscall.SIGTERM
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr.String(), `msg="token issued" client_id=other`) || strings.Contains(stderr.String(), "s3cret") {
		t.Fatalf("logs:\n%s", stderr)
	}
}

func TestServeDiscardInProcess(t *testing.T) {
	r, stop, done, _ := serveInProcess(t, "--discard", "--client", "sp:pw")
	if r.caFile != "" || !strings.HasPrefix(r.endpoint, "http://") {
		t.Fatalf("ready %+v", r)
	}
	stop <- os.Interrupt
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d", code)
	}
}

func TestShowPrintsJSONLines(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("signals")
	}
	build(t)
	dir := t.TempDir()
	s := startServer(t, "--tls", "--data-dir", dir, "--client", "sp:s3cret", "--tables", writeTables(t))
	s.ingest(t, "main.default.events", 20, 1)
	s.stop(t, syscall.SIGTERM)
	var out, errb bytes.Buffer
	if code := run([]string{"show", "--data-dir", dir, "main.default.events"}, &out, &errb, nil); code != exitOK {
		t.Fatalf("show: exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 20 || lines[0] != `{"id":0,"name":"sdk-0"}` {
		t.Fatalf("show printed %d lines, first %q", len(lines), lines[0])
	}
}

func TestFlagValues(t *testing.T) {
	var c clientsFlag
	_ = c.Set("a:secret-a")
	_ = c.Set("b:secret-b")
	if c.String() != "a,b" {
		t.Fatalf("clients flag prints %q", c.String())
	}
	var f faultsFlag
	_ = f.Set("kind=stop_acks")
	if f.String() != "1 faults" {
		t.Fatal(f.String())
	}
}

// A web page's cross-origin text/plain POST (sent by a browser without a
// CORS preflight) arms no fault on the real process: the SDK then ingests
// without meeting one. A JSON POST with a wrong token is refused too; the
// right token arms the fault.
func TestAdminRefusesWithoutToken(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, "--tls", "--data-dir", dir, "--client", "sp:s3cret", "--tables", writeTables(t))
	fault := `{"kind":"fail_create_stream","code":"PERMISSION_DENIED","times":-1}`
	for _, tc := range []struct {
		name string
		hdr  http.Header
	}{
		{"cross-origin text/plain", http.Header{"Content-Type": {"text/plain"}, "Origin": {"http://attacker.example"}}},
		{"JSON, wrong token", http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer not-the-token"}}},
		{"token, text/plain", http.Header{"Content-Type": {"text/plain"}, "Authorization": {"Bearer " + s.adminToken}}},
	} {
		var e map[string]string
		code := s.doJSON(t, http.MethodPost, "/admin/faults", strings.NewReader(fault), tc.hdr, &e)
		if code != http.StatusUnauthorized && code != http.StatusUnsupportedMediaType {
			t.Fatalf("%s: HTTP %d %v, want 401 or 415", tc.name, code, e)
		}
		if e["message"] == "" || strings.Contains(e["message"], s.adminToken) {
			t.Fatalf("%s: message %q", tc.name, e["message"])
		}
	}
	var faults struct{ Faults []map[string]any }
	if code := s.admin(t, http.MethodGet, "/admin/faults", nil, &faults); code != 200 || len(faults.Faults) != 0 {
		t.Fatalf("faults after refused requests: HTTP %d %v", code, faults)
	}
	if out := s.ingest(t, "main.default.events", 50, 10); !strings.Contains(out, "ok records=50") {
		t.Fatalf("sdkclient: %s", out)
	}
	var st struct {
		FaultsFired int64 `json:"faults_fired"`
	}
	if s.getJSON(t, http.MethodGet, "/stats", nil, &st); st.FaultsFired != 0 {
		t.Fatalf("%d faults fired", st.FaultsFired)
	}
	if code := s.admin(t, http.MethodPost, "/admin/faults", strings.NewReader(fault), nil); code != 200 {
		t.Fatalf("with the admin token: HTTP %d", code)
	}
	if code := s.admin(t, http.MethodGet, "/admin/faults", nil, &faults); code != 200 || len(faults.Faults) != 1 {
		t.Fatalf("faults: HTTP %d %v", code, faults)
	}
	if code := s.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d\n%s", code, s.stderr)
	}
	if strings.Contains(s.stderr.String(), s.adminToken) {
		t.Fatal("the admin token leaked into the logs")
	}
}

// The ready line carries the admin token: random at each start, else from
// ZEROBUS_LOCAL_ADMIN_TOKEN, else from --admin-token, which wins.
func TestReadyLineAdminToken(t *testing.T) {
	serveToken := func(args ...string) string {
		r, stop, done, stderr := serveInProcess(t, append([]string{"--discard", "--client", "sp:pw"}, args...)...)
		if code := r.admin(t, http.MethodGet, "/admin/faults", nil, nil); code != 200 {
			t.Errorf("admin with the ready line's token: HTTP %d", code)
		}
		stop <- os.Interrupt
		if code := <-done; code != exitOK {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		return r.adminToken
	}
	a, b := serveToken(), serveToken()
	if len(a) < 26 || a == b {
		t.Fatalf("default admin tokens %q and %q: want random", a, b)
	}
	t.Setenv(adminTokenEnv, "from-the-environment")
	if got := serveToken(); got != "from-the-environment" {
		t.Fatalf("admin token %q, want the environment's", got)
	}
	if got := serveToken("--admin-token", "from-the-flag"); got != "from-the-flag" {
		t.Fatalf("admin token %q, want the flag's", got)
	}
}

// serve warns on stderr when the workspace URL listens beyond loopback.
// The test binds 0.0.0.0 and sends to 127.0.0.1 only.
func TestWarnsNonLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		warn bool
	}{{"0.0.0.0:0", true}, {"127.0.0.1:0", false}} {
		r, stop, done, stderr := serveInProcess(t, "--discard", "--client", "sp:pw", "--http-listen", tc.addr)
		if !strings.HasPrefix(r.workspaceURL, "http://127.0.0.1:") {
			t.Errorf("%s: workspace URL %s", tc.addr, r.workspaceURL)
		}
		if code := r.admin(t, http.MethodGet, "/admin/faults", nil, nil); code != 200 {
			t.Errorf("%s: admin over 127.0.0.1: HTTP %d", tc.addr, code)
		}
		stop <- os.Interrupt
		if code := <-done; code != exitOK {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		if got := strings.Contains(stderr.String(), "level=WARN") && strings.Contains(stderr.String(), "non-loopback"); got != tc.warn {
			t.Errorf("--http-listen %s: warned %v, want %v:\n%s", tc.addr, got, tc.warn, stderr)
		}
	}
}

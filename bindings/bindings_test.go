package bindings

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/pyzerobus/pyzerobus/internal/testutil"
	"github.com/pyzerobus/pyzerobus/zbwrap"
	"github.com/pyzerobus/pyzerobus/zbwrap/arrowproto"
	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name     string
		yaml     string
		env      string
		want     map[string]any
		problems []string // settings named by the error, if any
	}{
		{
			name: "yaml with facade keys",
			yaml: "zerobus_endpoint: http://127.0.0.1:1\ntable_name: a.b.c\nbatch_rows: 500\nmax_concurrent_batches: 2\ntls_ca_file: /x.pem\n",
			want: map[string]any{"zerobus_endpoint": "http://127.0.0.1:1", "table_name": "a.b.c",
				"batch_rows": 500.0, "max_concurrent_batches": 2.0, "tls_ca_file": "/x.pem", "retry_max_attempts": 5.0},
		},
		{
			name: "environment overrides and fills",
			yaml: "table_name: a.b.c\nclient_secret: from-yaml\n",
			env:  `{"ZEROBUS_TABLE_NAME":"x.y.z","DATABRICKS_CLIENT_ID":"cid","DATABRICKS_CLIENT_SECRET":"ignored","ZEROBUS_BATCH_ROWS":"42","ZEROBUS_TLS_CA_FILE":"/ca.pem"}`,
			want: map[string]any{"table_name": "x.y.z", "client_id": "cid", "client_secret": "from-yaml",
				"batch_rows": 42.0, "tls_ca_file": "/ca.pem", "max_concurrent_batches": 0.0},
		},
		{name: "empty is defaults", want: map[string]any{"batch_rows": 10000.0, "transport": "proto", "flush_timeout_ms": 300000.0}},
		{name: "bad facade values", yaml: "batch_rows: [1]\nmax_concurrent_batches: many\ntls_ca_file: {a: 1}\n",
			problems: []string{"batch_rows", "max_concurrent_batches", "tls_ca_file"}},
		{name: "bad env value", env: `{"ZEROBUS_RETRY_MAX_ATTEMPTS":"lots","ZEROBUS_BATCH_ROWS":"x"}`,
			problems: []string{"retry_max_attempts", "batch_rows"}},
		{name: "unknown key", yaml: "no_such_setting: 1\n", problems: []string{"no_such_setting"}},
		{name: "invalid yaml", yaml: "a: [", problems: []string{}},
		{name: "invalid env json", env: "{", problems: []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := ParseConfig(tc.yaml, tc.env)
			if tc.problems != nil {
				info := errorOf(t, err)
				if info.Kind != "configuration" {
					t.Fatalf("kind %q, want configuration (%s)", info.Kind, info.Message)
				}
				var got []string
				for _, p := range info.Problems {
					got = append(got, p.Setting)
				}
				if strings.Join(got, ",") != strings.Join(tc.problems, ",") {
					t.Fatalf("problems %v, want %v (%s)", got, tc.problems, info.Message)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseConfig: %v", err)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
		})
	}
}

func TestDefaultConfigMatchesEngine(t *testing.T) {
	out, err := DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	d := zbwrap.DefaultConfig()
	for k, v := range map[string]any{
		"retry_max_attempts": float64(d.RetryMaxAttempts), "max_inflight_bytes": float64(d.MaxInflightBytes),
		"max_request_bytes": float64(d.MaxRequestBytes), "observability_otlp_protocol": d.ObservabilityOTLPProtocol,
		"batch_rows": float64(DefaultBatchRows), "max_concurrent_batches": 0.0, "streams": "auto", "max_streams": 16.0,
		"batch_bytes": float64(DefaultBatchBytes), "client_secret": "",
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if want := reflect.TypeOf(settings{}).NumField() - 1 + reflect.TypeOf(d).NumField(); len(got) != want {
		t.Errorf("%d settings, want %d: every field of zbwrap.Config and the facade's", len(got), want)
	}
}

func TestValidateConfig(t *testing.T) {
	dir := t.TempDir()
	badPEM := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(badPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		cfg      string
		problems []string
	}{
		{name: "valid", cfg: `{"zerobus_endpoint":"http://127.0.0.1:9","unity_catalog_url":"http://127.0.0.1:8","client_id":"i","client_secret":"s","table_name":"a.b.c"}`},
		{name: "writer disabled needs only a table", cfg: `{"zerobus_writer_disabled":true,"table_name":"a.b.c"}`},
		{name: "everything missing", cfg: `{}`,
			problems: []string{"table_name", "zerobus_endpoint", "unity_catalog_url", "client_id", "client_secret"}},
		{name: "numbers and ca file", cfg: `{"zerobus_writer_disabled":true,"table_name":"a.b.c","retry_max_attempts":-1,"tls_ca_file":"` + badPEM + `"}`,
			problems: []string{"tls_ca_file", "retry_max_attempts"}},
		{name: "missing ca file", cfg: `{"zerobus_writer_disabled":true,"table_name":"a.b.c","tls_ca_file":"/no/such.pem"}`,
			problems: []string{"tls_ca_file"}},
		{name: "facade numbers", cfg: `{"zerobus_writer_disabled":true,"table_name":"a.b.c","batch_rows":-1,"max_concurrent_batches":-2}`,
			problems: []string{"batch_rows", "max_concurrent_batches"}},
		{name: "keep every debug file", cfg: `{"zerobus_writer_disabled":true,"table_name":"a.b.c","debug_max_files_retained":0}`},
		{name: "unknown key", cfg: `{"table_name":"a.b.c","no_such_setting":1}`, problems: []string{"no_such_setting"}},
		{name: "secret of the wrong type", cfg: `{"table_name":"a.b.c","client_secret":12345678901234}`, problems: []string{"client_secret"}},
		{name: "secret in a list", cfg: `{"table_name":"a.b.c","client_secret":["facade-secret"]}`, problems: []string{"client_secret"}},
		{name: "not json", cfg: `{`, problems: []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateConfig(tc.cfg, false)
			if tc.problems == nil {
				if err != nil {
					t.Fatalf("ValidateConfig: %v", err)
				}
				return
			}
			info := errorOf(t, err)
			var got []string
			for _, p := range info.Problems {
				got = append(got, p.Setting)
			}
			if info.Kind != "configuration" || strings.Join(got, ",") != strings.Join(tc.problems, ",") {
				t.Fatalf("kind %s problems %v, want configuration %v (%s)", info.Kind, got, tc.problems, info.Message)
			}
			if strings.Contains(info.Message, "facade-secret") || strings.Contains(info.Message, "12345678901234") {
				t.Fatal("the secret leaked into the error")
			}
		})
	}
}

func TestNewWrapperRefusesBadConfig(t *testing.T) {
	_, err := NewWrapper(`{"table_name":"bad","client_secret":"facade-secret-0123456789"}`, 20, false)
	info := errorOf(t, err)
	if info.Kind != "configuration" || len(info.Problems) < 4 {
		t.Fatalf("got %+v", info)
	}
	if strings.Contains(err.Error(), "facade-secret") {
		t.Fatal("the secret leaked into the error")
	}
	_, err = NewWrapper(`{"zerobus_writer_disabled":true,"table_name":"a.b.c","tls_ca_file":"/no/such.pem"}`, 20, false)
	if info := errorOf(t, err); info.Problems[0].Setting != "tls_ca_file" {
		t.Fatalf("got %+v", info)
	}
	_, err = NewWrapper(`[`, 20, false)
	if info := errorOf(t, err); info.Kind != "configuration" {
		t.Fatalf("got %+v", info)
	}
	if Version() != zbwrap.Version {
		t.Fatalf("Version() = %q", Version())
	}
}

// Rows of a stream keep their numbers across batches and chunks, land in
// the table, and the progress counts them.
func TestSendStreamChunksAndNumbersRows(t *testing.T) {
	checkNoLeaks(t)
	srv := newServer(t)
	w := newWrapper(t, configFor(srv, map[string]any{"batch_rows": 300, "max_concurrent_batches": 3}), false)
	recs := batches(4, 1000)
	_, addr := exportStream(t, testSchema, recs...)
	for _, r := range recs {
		r.Release()
	}
	id, err := w.SendStream(addr, "")
	if err != nil {
		t.Fatal(err)
	}
	r := waitResult(t, w, id)
	if !r.Success || r.TotalRows != 4000 || r.SuccessfulCount != 4000 || r.FailedCount != 0 || r.Batches != 16 ||
		r.Attempts != 1 || r.BatchSizeBytes == 0 || r.Error != nil || r.InputError != nil || r.Cancelled {
		t.Fatalf("result %+v", r)
	}
	if _, err := w.Progress(id); err == nil {
		t.Fatal("Progress of a taken result should fail")
	}
	if _, err := w.Result(id); errorOf(t, err).Kind != "transmission" {
		t.Fatal("a result can be taken once")
	}
	if done, err := w.Flush(10_000); !done || err != nil {
		t.Fatal(done, err)
	}
	var stats statsJSON
	out, err := w.Stats()
	if err != nil || json.Unmarshal([]byte(out), &stats) != nil {
		t.Fatalf("Stats: %s %v", out, err)
	}
	testutil.Require(t, "stats", testutil.Want("rows_acked", stats.RowsAcked, 4000), testutil.Want("batches", stats.Batches, 16), testutil.Want("streams", stats.Streams, 1))
	if done, err := w.Close(20_000, -1); !done || err != nil {
		t.Fatal(done, err)
	}
	if err := srv.Materialize(); err != nil {
		t.Fatal(err)
	}
	tbl, err := zerobustest.ReadTable(srv.DataDir(), testTable)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	if tbl.NumRows() != 4000 {
		t.Fatalf("table has %d rows", tbl.NumRows())
	}
	// One send's chunks go on the stream in input order, though several
	// are in flight at once.
	want := int64(0)
	for _, c := range tbl.Column(0).Data().Chunks() {
		for _, id := range c.(*array.Int64).Int64Values() {
			if id != want {
				t.Fatalf("row %d of the table has id %d", want, id)
			}
			want++
		}
	}
}

func TestSendStreamRefusesBadAddresses(t *testing.T) {
	w := newWrapper(t, `{"zerobus_writer_disabled":true,"table_name":"a.b.c"}`, false)
	if info := errorOf(t, func() error { _, err := w.SendStream(0, ""); return err }()); info.Kind != "conversion" ||
		!strings.Contains(info.Message, "address is 0") {
		t.Fatalf("addr 0: %+v", info)
	}
	rec := makeBatch(0, 10)
	defer rec.Release()
	cs, addr := exportStream(t, testSchema, rec)
	id, err := w.SendStream(addr, "")
	if err != nil {
		t.Fatal(err)
	}
	if r := waitResult(t, w, id); !r.Success || r.TotalRows != 10 {
		t.Fatalf("result %+v", r)
	}
	// The stream was moved out: the same struct is now released.
	_, err = w.SendStream(addr, "")
	if info := errorOf(t, err); info.Kind != "conversion" || !strings.Contains(info.Message, "already released") {
		t.Fatalf("released stream: %+v", info)
	}
	_ = cs
}

// Rows the encoder rejects fail with their number in the whole stream, the
// others go; past zbwrap.MaxDistinctErrors, errors are grouped by kind.
func TestRowErrorsAreNumberedAcrossChunks(t *testing.T) {
	w := newWrapper(t, `{"zerobus_writer_disabled":true,"table_name":"a.b.c","batch_rows":1000}`, false)
	vals := make([]uint64, 3000)
	for i := range vals {
		vals[i] = uint64(i)
		if i >= 1500 && i < 2700 { // 1200 rows, beyond the distinct-error cap
			vals[i] = 1 << 63
		}
	}
	vals[10] = 1<<63 + 1
	rec := u64Batch(vals...)
	_, addr := exportStream(t, rec.Schema(), rec)
	rec.Release()
	id, err := w.SendStream(addr, "")
	if err != nil {
		t.Fatal(err)
	}
	r := waitResult(t, w, id)
	testutil.Require(t, "counts", testutil.Want("success", r.Success, false), testutil.Want("total_rows", r.TotalRows, 3000),
		testutil.Want("failed_count", r.FailedCount, 1201), testutil.Want("successful_count", r.SuccessfulCount, 1799))
	if r.Error == nil || r.Error.Kind != "conversion" || !strings.HasPrefix(r.Error.Message, "1201 of 3000 rows failed; row 10:") {
		t.Fatalf("summary %+v", r.Error)
	}
	if len(r.Errors) != zbwrap.MaxDistinctErrors+1 || !strings.Contains(r.Errors[zbwrap.MaxDistinctErrors].Message, "further conversion errors") {
		t.Fatalf("%d distinct errors, last %+v", len(r.Errors), r.Errors[len(r.Errors)-1])
	}
	failed := 0
	for _, run := range r.Failed {
		for i := run[0]; i < run[0]+run[1]; i++ {
			if i != 10 && (i < 1500 || i >= 2700) {
				t.Fatalf("row %d reported failed", i)
			}
			failed++
		}
		if msg := r.Errors[run[2]].Message; run[2] < zbwrap.MaxDistinctErrors && !strings.Contains(msg, fmt.Sprintf("row %d,", run[0])) {
			t.Fatalf("run %v has error %q, not naming its row", run, msg)
		}
	}
	if failed != 1201 {
		t.Fatalf("%d failed rows in runs", failed)
	}
}

func TestSendIPC(t *testing.T) {
	w := newWrapper(t, `{"zerobus_writer_disabled":true,"table_name":"a.b.c","batch_rows":250}`, false)
	recs := batches(3, 500)
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	stream := ipcBytes(t, false, testSchema, recs...)
	file := ipcBytes(t, true, testSchema, recs...)
	for name, data := range map[string][]byte{"stream": stream, "file": file} {
		t.Run(name, func(t *testing.T) {
			id, err := w.SendIPC(data, "")
			if err != nil {
				t.Fatal(err)
			}
			r := waitResult(t, w, id)
			testutil.Require(t, "result", testutil.Want("success", r.Success, true), testutil.Want("total_rows", r.TotalRows, 1500), testutil.Want("batches", r.Batches, 6))
		})
	}
	bad := map[string][]byte{
		"empty":          nil,
		"garbage":        []byte("this is not arrow at all, not even close"),
		"file magic":     append([]byte("ARROW1\x00\x00"), make([]byte, 64)...),
		"truncated head": stream[:20],
	}
	for name, data := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := w.SendIPC(data, "")
			if info := errorOf(t, err); info.Kind != "conversion" {
				t.Fatalf("kind %s: %s", info.Kind, info.Message)
			}
		})
	}
	t.Run("corrupted after the first batch", func(t *testing.T) {
		one := ipcBytes(t, false, testSchema, recs[0])
		data := append([]byte(nil), stream...)
		// Overwrite the body of the second message with junk.
		for i := len(one) + 8; i < len(data)-8; i++ {
			data[i] = 0xff
		}
		id, err := w.SendIPC(data, "")
		if err != nil {
			t.Fatal(err)
		}
		r := waitResult(t, w, id)
		if r.InputError == nil {
			t.Fatalf("result %+v: no input error", r)
		}
		testutil.Require(t, "result", testutil.Want("success", r.Success, false), testutil.Want("input_error.kind", r.InputError.Kind, "conversion"),
			testutil.Want("total_rows", r.TotalRows, 500), testutil.Want("successful_count", r.SuccessfulCount, 500))
	})
}

// Cancel stops a send whose input blocks; the wrapper stays usable.
func TestCancelLeavesWrapperUsable(t *testing.T) {
	checkNoLeaks(t)
	srv := newServer(t)
	w := newWrapper(t, configFor(srv, nil), true)
	br := newBlockingReader()
	_, addr := exportReader(br)
	id, err := w.SendStream(addr, "")
	if err != nil {
		t.Fatal(err)
	}
	<-br.started // the first batch was read; the second read blocks
	if done, err := w.Wait(id, 0); done || err != nil {
		t.Fatalf("Wait(0) = %v, %v while the input blocks", done, err)
	}
	if done, err := w.Wait(id, 20); done || err != nil {
		t.Fatalf("Wait(20) = %v, %v while the input blocks", done, err)
	}
	if _, err := w.Result(id); errorOf(t, err).Kind != "transmission" {
		t.Fatal("Result of a running operation should fail")
	}
	running, err := w.Cancel(id)
	if err != nil || !running {
		t.Fatalf("Cancel = %v, %v", running, err)
	}
	close(br.release)
	r := waitResult(t, w, id)
	if !r.Cancelled || r.TotalRows != 100 {
		t.Fatalf("result %+v", r)
	}
	rec := makeBatch(1000, 50)
	_, addr = exportStream(t, testSchema, rec)
	rec.Release()
	id2, err := w.SendStream(addr, "")
	if err != nil {
		t.Fatal(err)
	}
	if r := waitResult(t, w, id2); !r.Success || r.TotalRows != 50 {
		t.Fatalf("after cancel: %+v", r)
	}
	if _, err := w.Cancel(id2); err == nil {
		t.Fatal("Cancel of a forgotten operation should fail")
	}
}

// Close with a running operation waits, then cancels it at the timeout;
// later sends are refused.
func TestCloseCancelsRunningOperations(t *testing.T) {
	checkNoLeaks(t)
	srv := newServer(t)
	w := newWrapper(t, configFor(srv, nil), false)
	br := newBlockingReader()
	_, addr := exportReader(br)
	id, err := w.SendStream(addr, "")
	if err != nil {
		t.Fatal(err)
	}
	<-br.started
	closed := make(chan error)
	go func() { _, err := w.Close(100, -1); closed <- err }()
	time.Sleep(300 * time.Millisecond) // Close has cancelled the operation; let the input end
	close(br.release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if r := waitResult(t, w, id); !r.Cancelled {
		t.Fatalf("result %+v", r)
	}
	if done, err := w.Close(100, 0); !done || err != nil {
		t.Fatal("a second Close should report the first one's end", done, err)
	}
	rec := makeBatch(0, 1)
	defer rec.Release()
	_, addr = exportStream(t, testSchema, rec)
	if _, err := w.SendStream(addr, ""); errorOf(t, err).Kind != "transmission" {
		t.Fatal("send after Close should fail")
	}
	if _, err := w.SendIPC([]byte("x"), ""); errorOf(t, err).Kind != "transmission" {
		t.Fatal("send after Close should fail")
	}
}

func TestCompletions(t *testing.T) {
	checkNoLeaks(t)
	w := newWrapper(t, `{"zerobus_writer_disabled":true,"table_name":"a.b.c"}`, true)
	out, err := w.Completions(0, 0)
	if err != nil || out != `{"seq":0,"ops":[]}` {
		t.Fatalf("empty log: %s %v", out, err)
	}
	ids := map[int64]bool{}
	for i := range 3 {
		rec := makeBatch(i*10, 10)
		_, addr := exportStream(t, testSchema, rec)
		rec.Release()
		id, err := w.SendStream(addr, "")
		if err != nil {
			t.Fatal(err)
		}
		ids[id] = true
	}
	seen := map[int64]bool{}
	var seq int64
	for len(seen) < 3 {
		out, err := w.Completions(seq, 5000)
		if err != nil {
			t.Fatal(err)
		}
		var c completions
		if err := json.Unmarshal([]byte(out), &c); err != nil {
			t.Fatal(err)
		}
		if c.Seq <= seq {
			t.Fatalf("no progress: %s", out)
		}
		for _, id := range c.Ops {
			if !ids[id] || seen[id] {
				t.Fatalf("unexpected completion %d in %s", id, out)
			}
			seen[id] = true
		}
		seq = c.Seq
	}
	// Nothing new: the wait ends at its timeout with no operation.
	start := time.Now()
	out, err = w.Completions(seq, 50)
	if err != nil || !strings.HasSuffix(out, `"ops":[]}`) || time.Since(start) < 40*time.Millisecond {
		t.Fatalf("idle: %s %v after %v", out, err, time.Since(start))
	}
	plain := newWrapper(t, `{"zerobus_writer_disabled":true,"table_name":"a.b.c"}`, false)
	if _, err := plain.Completions(0, 0); err == nil {
		t.Fatal("Completions without notify should fail")
	}
}

// Server failures reach the result as the engine's kinds with their gRPC
// codes; engine logs are kept for the Python side.
func TestServerFailuresKeepKindAndCode(t *testing.T) {
	srv := newServer(t, zerobustest.WithFault(zerobustest.Fault{
		Kind: zerobustest.FaultFailCreate, Code: codes.PermissionDenied, Times: -1, Message: "no access"}))
	w := newWrapper(t, configFor(srv, nil), false)
	rec := makeBatch(0, 20)
	_, addr := exportStream(t, testSchema, rec)
	rec.Release()
	id, err := w.SendStream(addr, "")
	if err != nil {
		t.Fatal(err)
	}
	r := waitResult(t, w, id)
	if r.Success || r.FailedCount != 20 || r.Error == nil || r.Error.Kind != "authentication" ||
		r.Error.GRPCCode != codes.PermissionDenied.String() || r.Error.GRPCMessage != "no access" {
		t.Fatalf("result %+v error %+v", r, r.Error)
	}
	if len(r.Failed) != 1 || r.Failed[0] != [4]int{0, 20, 0, 0} {
		t.Fatalf("runs %v", r.Failed)
	}
	logs, err := w.Logs()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec logRecord
		if line == "" {
			continue
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Message == "" || rec.Time == 0 {
			t.Fatalf("log line %q: %v", line, err)
		}
	}
	if again, _ := w.Logs(); again != "" {
		t.Fatalf("logs are drained once: %q", again)
	}
}

func TestWrapError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want errorInfo
	}{
		{"plain", errors.New("boom"), errorInfo{Kind: "internal", Message: "boom"}},
		{"engine", &zbwrap.Error{Kind: zbwrap.KindRetryExhausted, Op: "send", Msg: "gave up"},
			errorInfo{Kind: "retry_exhausted", Op: "send", Message: "zbwrap: retry exhausted error: send: gave up"}},
		{"wrapped", fmt.Errorf("outer: %w", &zbwrap.Error{Kind: zbwrap.KindTokenRefresh}),
			errorInfo{Kind: "token_refresh", Message: "outer: zbwrap: token refresh error"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info := errorOf(t, wrapError(tc.err))
			if info.Kind != tc.want.Kind || info.Op != tc.want.Op || info.Message != tc.want.Message {
				t.Fatalf("got %+v, want %+v", info, tc.want)
			}
		})
	}
	if wrapError(nil) != nil {
		t.Fatal("wrapError(nil) should be nil")
	}
	fe := newError(kindConversion, "x", "y")
	if wrapError(fmt.Errorf("w: %w", fe)) != fe {
		t.Fatal("a facade error stays itself")
	}
}

func TestPanicsBecomeErrors(t *testing.T) {
	f := func() (err error) {
		defer recoverError(&err)
		var m map[string]int
		//lint:ignore SA5000 the panic is what the test recovers
		m["x"] = 1 // panics
		return nil
	}
	info := errorOf(t, f())
	if info.Kind != "internal" || info.Op != "panic" || !strings.Contains(info.Message, "nil map") {
		t.Fatalf("got %+v", info)
	}
	// A nil Wrapper's methods fail cleanly instead of crashing.
	var w *Wrapper
	if _, err := w.SendStream(1, ""); errorOf(t, err).Kind != "internal" {
		t.Fatal("nil wrapper")
	}
	if _, err := w.Stats(); errorOf(t, err).Kind != "internal" {
		t.Fatal("nil wrapper")
	}
}

// The JSON of a result is what pyzerobus.result reads: failed rows as
// [start, count, error index, may have landed], a summary naming the first
// failed row, the input error apart.
func TestResultJSON(t *testing.T) {
	conv := &zbwrap.Error{Kind: zbwrap.KindConversion, Op: "convert", Msg: "row 3, column \"u\": too big"}
	conn := &zbwrap.Error{Kind: zbwrap.KindConnection, Op: "send", Msg: "broken"}
	input := &zbwrap.Error{Kind: zbwrap.KindConversion, Op: "read input", Err: errors.New("truncated")}
	res := &zbwrap.ReaderResult{
		TotalRows: 10, SuccessfulCount: 6, FailedCount: 4, Attempts: 2, Latency: 1500 * time.Millisecond,
		BatchSizeBytes: 99, Batches: 3, Cancelled: true, Errors: []*zbwrap.Error{conv, conn}, InputError: input,
		Failed: []zbwrap.FailedRun{{Start: 3, Count: 1, Error: conv}, {Start: 7, Count: 3, Error: conn, MayHaveLanded: true}},
	}
	b, err := json.Marshal(resultOf(7, res))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"op":7,"success":false,"total_rows":10,"successful_count":6,"failed_count":4,"attempts":2,` +
		`"latency_s":1.5,"batch_size_bytes":99,"batches":3,"failed":[[3,1,0,0],[7,3,1,1]],` +
		`"errors":[{"kind":"conversion","message":"zbwrap: conversion error: convert: row 3, column \"u\": too big","op":"convert","retryable":false},` +
		`{"kind":"connection","message":"zbwrap: connection error: send: broken","op":"send","retryable":false}],` +
		`"error":{"kind":"conversion","message":"4 of 10 rows failed; row 3: zbwrap: conversion error: convert: row 3, column \"u\": too big","op":"convert","retryable":false},` +
		`"cancelled":true,"input_error":{"kind":"conversion","message":"zbwrap: conversion error: read input: truncated","op":"read input","retryable":false}}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	b, _ = json.Marshal(resultOf(8, &zbwrap.ReaderResult{TotalRows: 2, SuccessfulCount: 2}))
	if want := `{"op":8,"success":true,"total_rows":2,"successful_count":2,"failed_count":0,"attempts":0,` +
		`"latency_s":0,"batch_size_bytes":0,"batches":0,"failed":[],"errors":[],"error":null,"cancelled":false,"input_error":null}`; string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

func TestLogBuffer(t *testing.T) {
	h := newLogHandler(parseLevel(20))
	l := slog.New(h).With("table", "a.b.c").WithGroup("g")
	l.Debug("hidden")
	for i := range logCapacity + 5 {
		l.Info("hello", "i", i, "d", time.Second, "ok", true)
	}
	out := h.buf.drain()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != logCapacity+1 {
		t.Fatalf("%d lines", len(lines))
	}
	var first, last logRecord
	_ = json.Unmarshal([]byte(lines[0]), &first)
	_ = json.Unmarshal([]byte(lines[len(lines)-1]), &last)
	if first.Level != "warn" || first.Attrs["dropped"] != 5.0 {
		t.Fatalf("first %+v", first)
	}
	if last.Message != "hello" || last.Level != "info" || last.Attrs["table"] != "a.b.c" ||
		last.Attrs["g.i"] != float64(logCapacity+4) || last.Attrs["g.d"] != "1s" || last.Attrs["g.ok"] != true {
		t.Fatalf("last %+v", last)
	}
	for py, want := range map[int]slog.Level{0: slog.LevelDebug, 10: slog.LevelDebug, 20: slog.LevelInfo, 30: slog.LevelWarn, 40: slog.LevelError, 50: slog.LevelError} {
		if got := parseLevel(py); got != want {
			t.Errorf("parseLevel(%d) = %v, want %v", py, got, want)
		}
	}
}

// A TLS server is trusted through tls_ca_file.
func TestTLSWithCAFile(t *testing.T) {
	srv := newServer(t, zerobustest.WithTLS())
	w := newWrapper(t, configFor(srv, map[string]any{"tls_ca_file": srv.CAFile()}), false)
	rec := makeBatch(0, 5)
	_, addr := exportStream(t, testSchema, rec)
	rec.Release()
	id, err := w.SendStream(addr, "")
	if err != nil {
		t.Fatal(err)
	}
	if r := waitResult(t, w, id); !r.Success {
		t.Fatalf("result %+v error %+v", r, r.Error)
	}
}

// Cancelling while chunks wait for a slot fails the rows not yet sent as
// certainly not stored, and the chunk in flight as possibly stored.
func TestCancelWhileWaitingForSlot(t *testing.T) {
	checkNoLeaks(t)
	srv := newServer(t, zerobustest.WithFault(zerobustest.Fault{
		Kind: zerobustest.FaultDelayAcks, Delay: 2 * time.Second}))
	w := newWrapper(t, configFor(srv, map[string]any{"batch_rows": 100, "max_concurrent_batches": 1}), false)
	rec := makeBatch(0, 1000)
	_, addr := exportStream(t, testSchema, rec)
	rec.Release()
	id, err := w.SendStream(addr, "")
	if err != nil {
		t.Fatal(err)
	}
	waitWritten(t, w) // the first chunk is on the wire
	if _, err := w.Cancel(id); err != nil {
		t.Fatal(err)
	}
	r := waitResult(t, w, id)
	testutil.Require(t, "result", testutil.Want("cancelled", r.Cancelled, true), testutil.Want("total_rows", r.TotalRows, 1000),
		testutil.Want("failed_count", r.FailedCount, 1000), testutil.Want("failed runs", len(r.Failed), 2))
	inFlight, unsent := r.Failed[0], r.Failed[1]
	if inFlight != [4]int{0, 100, inFlight[2], 1} || unsent != [4]int{100, 900, unsent[2], 0} {
		t.Fatalf("runs %v", r.Failed)
	}
	if msg := r.Errors[unsent[2]].Message; !strings.Contains(msg, "cancelled before rows 100..999") {
		t.Fatalf("unsent error %q", msg)
	}
}

// Chunks are cut at batch_bytes of Arrow data as well as at batch_rows:
// wide rows go in smaller chunks.
func TestChunksBoundedByBytes(t *testing.T) {
	sc := arrow.NewSchema([]arrow.Field{{Name: "s", Type: arrow.BinaryTypes.String}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	wide := strings.Repeat("w", 996) // 1,000 bytes a row with its offset
	for range 5000 {
		b.Field(0).(*array.StringBuilder).Append(wide)
	}
	rec := b.NewRecordBatch()
	b.Release()
	defer rec.Release()

	// End to end: 5,000 rows of 1,000 bytes with 100 KB chunks make 50
	// batches (writer disabled: conversion only).
	w := newWrapper(t, `{"zerobus_writer_disabled":true,"table_name":"a.b.c","batch_bytes":100000}`, false)
	_, addr := exportStream(t, rec.Schema(), rec)
	id, err := w.SendStream(addr, "")
	if err != nil {
		t.Fatal(err)
	}
	if r := waitResult(t, w, id); !r.Success || r.SuccessfulCount != 5000 {
		t.Fatalf("result %+v", r)
	}
	if got := w.zw.Stats().Batches; got != 50 {
		t.Fatalf("%d batches, want 50", got)
	}
}

// Close runs under one deadline whatever the number of steps, reports
// whether it has ended after each wait slice, and a later call can bring
// the deadline closer: a caller interrupted while closing a wrapper whose
// server stopped acknowledging is not held for the full timeout.
func TestCloseIsSlicedUnderOneDeadline(t *testing.T) {
	checkNoLeaks(t)
	srv := newServer(t, zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultStopAcks, Times: -1}))
	w := newWrapper(t, configFor(srv, map[string]any{"flush_timeout_ms": 300_000, "ack_timeout_ms": 300_000}), false)
	rec := makeBatch(0, 100)
	_, addr := exportStream(t, testSchema, rec)
	rec.Release()
	id, err := w.SendStream(addr, "")
	if err != nil {
		t.Fatal(err)
	}
	waitWritten(t, w)
	if done, err := w.Flush(50); done || err != nil {
		t.Fatalf("Flush on a stream without acks: done %v, err %v", done, err)
	}
	start := time.Now()
	if done, err := w.Close(60_000, 100); done || err != nil {
		t.Fatalf("first slice of Close: done %v, err %v", done, err)
	}
	// The running send and the engine's streams share what is left of one
	// deadline, brought from 60 s to 1 s.
	done, err := w.Close(1_000, -1)
	elapsed := time.Since(start)
	if !done {
		t.Fatal("Close with no wait bound should end")
	}
	if elapsed > 30*time.Second {
		t.Fatalf("Close took %v: the 60 s deadline was not brought closer", elapsed)
	}
	if err != nil && errorOf(t, err).Kind != "transmission" {
		t.Fatalf("Close: %v", err)
	}
	r := waitResult(t, w, id)
	testutil.Require(t, "result", testutil.Want("success", r.Success, false), testutil.Want("successful_count", r.SuccessfulCount, 0), testutil.Want("failed_count", r.FailedCount, 100))
	for _, run := range r.Failed {
		if run[3] != 1 {
			t.Fatalf("rows written but never acknowledged may have landed: runs %v", r.Failed)
		}
	}
}

// The whole close takes one timeout, not one per step (waiting for running
// operations, then closing the streams).
func TestCloseStepsShareTheTimeout(t *testing.T) {
	srv := newServer(t, zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultStopAcks, Times: -1}))
	w := newWrapper(t, configFor(srv, map[string]any{"flush_timeout_ms": 300_000, "ack_timeout_ms": 300_000}), false)
	rec := makeBatch(0, 10)
	_, addr := exportStream(t, testSchema, rec)
	rec.Release()
	if _, err := w.SendStream(addr, ""); err != nil {
		t.Fatal(err)
	}
	waitWritten(t, w)
	const timeout = 2 * time.Second
	start := time.Now()
	if done, _ := w.Close(timeout.Milliseconds(), -1); !done {
		t.Fatal("Close should end")
	}
	// Two steps each given the whole timeout took 2x; one deadline takes 1x
	// plus the cancellation.
	if elapsed := time.Since(start); elapsed >= 2*timeout-200*time.Millisecond {
		t.Fatalf("Close(%v) took %v", timeout, elapsed)
	}
}

// waitWritten waits until the wrapper's stream has written a request.
func waitWritten(t testing.TB, w *Wrapper) {
	t.Helper()
	testutil.Eventually(t, "a request to be written", func() bool {
		var stats statsJSON
		out, err := w.Stats()
		if err != nil || json.Unmarshal([]byte(out), &stats) != nil {
			t.Fatalf("Stats: %s %v", out, err)
		}
		return stats.RequestsWritten > 0
	})
}

// The IPC file format is read in order as an array.RecordReader; a batch
// that cannot be read ends it with the reader's error.
func TestFileSource(t *testing.T) {
	recs := batches(2, 10)
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	data := ipcBytes(t, true, testSchema, recs...)
	src, err := openIPC(data)
	if err != nil {
		t.Fatal(err)
	}
	src.Retain()
	src.Release()
	if !src.Schema().Equal(testSchema) || !src.Next() || src.RecordBatch().NumRows() != 10 || !src.Next() || src.Next() || src.Err() != nil {
		t.Fatal("reading the file")
	}
	src.Release()

	fs := &fileSource{err: errors.New("broken")}
	if fs.Next() || fs.RecordBatch() != nil {
		t.Fatal("a failed reader reads no more")
	}
	// The second batch's body overwritten with junk: the footer still
	// lists it, its message cannot be read.
	bad := append([]byte(nil), data...)
	one := ipcBytes(t, true, testSchema, recs[0])
	for i := len(one) - 200; i < len(one)+100 && i < len(bad)-200; i++ {
		bad[i] = 0xff
	}
	w := newWrapper(t, `{"zerobus_writer_disabled":true,"table_name":"a.b.c"}`, false)
	id, err := w.SendIPC(bad, "")
	if err != nil {
		t.Skipf("refused at once: %v", err)
	}
	if r := waitResult(t, w, id); r.InputError == nil || r.InputError.Kind != "conversion" {
		t.Fatalf("result %+v", r)
	}
}

// A send may carry an explicit descriptor (base64 of a serialized
// DescriptorProto): one that cannot carry the rows fails them all as a
// conversion error; a malformed one is refused at once.
func TestSendWithDescriptor(t *testing.T) {
	srv := newServer(t)
	w := newWrapper(t, configFor(srv, nil), false)
	compiled, err := arrowproto.NewSchema(testSchema, arrowproto.WithMessageName("Event"))
	if err != nil {
		t.Fatal(err)
	}
	good, _ := proto.Marshal(compiled.Descriptor())
	bad := proto.Clone(compiled.Descriptor()).(*descriptorpb.DescriptorProto)
	bad.Field[0].Type = descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()
	badRaw, _ := proto.Marshal(bad)
	for _, tc := range []struct {
		desc   []byte
		failed int
	}{{good, 0}, {badRaw, 10}} {
		rec := makeBatch(0, 10)
		_, addr := exportStream(t, testSchema, rec)
		rec.Release()
		id, err := w.SendStream(addr, base64.StdEncoding.EncodeToString(tc.desc))
		if err != nil {
			t.Fatal(err)
		}
		if r := waitResult(t, w, id); r.FailedCount != tc.failed {
			t.Fatalf("with descriptor %d bytes: %d rows failed, want %d", len(tc.desc), r.FailedCount, tc.failed)
		}
		id, err = w.SendIPC(ipcBytes(t, false, testSchema, makeBatch(100, 10)), base64.StdEncoding.EncodeToString(tc.desc))
		if err != nil {
			t.Fatal(err)
		}
		if r := waitResult(t, w, id); r.FailedCount != tc.failed {
			t.Fatalf("IPC with descriptor %d bytes: %d rows failed, want %d", len(tc.desc), r.FailedCount, tc.failed)
		}
	}
	for _, b64 := range []string{"not base64!", base64.StdEncoding.EncodeToString([]byte{0xff, 0xff})} {
		if _, err := w.SendStream(1, b64); errorOf(t, err).Kind != "configuration" {
			t.Fatalf("descriptor %q: %v", b64, err)
		}
		if _, err := w.SendIPC([]byte("x"), b64); errorOf(t, err).Kind != "configuration" {
			t.Fatalf("IPC descriptor %q: %v", b64, err)
		}
	}
}

// A wrapper with a headers provider gets its call headers from the Python
// side: a stream opening a call asks (HeadersWanted), the answer
// (SetHeaders) opens it; a failure of the provider fails the send; OAuth
// settings are not required.
func TestHeadersFromAProvider(t *testing.T) {
	srv := newServer(t)
	cfg := configFor(srv, map[string]any{"client_id": "", "client_secret": "", "unity_catalog_url": ""})
	if err := ValidateConfig(cfg, false); errorOf(t, err).Kind != "configuration" {
		t.Fatal("without a provider the OAuth settings are required")
	}
	if err := ValidateConfig(cfg, true); err != nil {
		t.Fatalf("with a provider: %v", err)
	}
	w, err := NewWrapperWithHeaders(cfg, 10, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = w.Close(20000, -1) })
	token := srv.Token(testTable)
	stop, served := make(chan struct{}), make(chan int)
	go func() { // the Python thread: answers every request until stopped
		n := 0
		defer func() { served <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			wanted, err := w.HeadersWanted(50)
			if err != nil {
				t.Error(err)
				return
			}
			if !wanted {
				continue
			}
			n++
			h, _ := json.Marshal(map[string]string{"authorization": "Bearer " + token})
			if err := w.SetHeaders(string(h), ""); err != nil {
				t.Error(err)
			}
		}
	}()
	rec := makeBatch(0, 10)
	_, addr := exportStream(t, testSchema, rec)
	rec.Release()
	id, err := w.SendStream(addr, "")
	if err != nil {
		t.Fatal(err)
	}
	if r := waitResult(t, w, id); !r.Success || r.SuccessfulCount != 10 {
		t.Fatalf("result %+v", r)
	}
	close(stop)
	if n := <-served; n != 1 {
		t.Fatalf("the provider was asked %d times for one stream, want 1", n)
	}
	if err := w.SetHeaders("[1]", ""); errorOf(t, err).Kind != "configuration" {
		t.Fatal("headers that are not a mapping of strings are refused")
	}
	w.headers.answer(nil, nil) // forget the answer above
	if _, err := (&Wrapper{}).HeadersWanted(0); err == nil {
		t.Fatal("HeadersWanted without a provider")
	}
	if err := (&Wrapper{}).SetHeaders("{}", ""); err == nil {
		t.Fatal("SetHeaders without a provider")
	}
	// A provider that fails: the stream cannot open and the rows fail.
	failing, err := NewWrapperWithHeaders(cfg, 10, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = failing.Close(20000, -1) })
	go func() {
		for {
			wanted, err := failing.HeadersWanted(100)
			if err != nil || wanted {
				_ = failing.SetHeaders("", "vault unreachable")
				return
			}
		}
	}()
	rec = makeBatch(0, 5)
	_, addr = exportStream(t, testSchema, rec)
	rec.Release()
	id, err = failing.SendStream(addr, "")
	if err != nil {
		t.Fatal(err)
	}
	if r := waitResult(t, failing, id); r.Success || r.FailedCount != 5 || r.Error == nil || !strings.Contains(r.Error.Message, "vault unreachable") {
		t.Fatalf("result %+v error %+v", r, r.Error)
	}
}

// max_concurrent_batches 0 is 16 chunks, or 8 per stream the Wrapper may
// use when that is more.
func TestDefaultConcurrency(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		want int
	}{
		{"", 128}, // streams: auto, max_streams 16
		{"streams: 1\n", DefaultMaxConcurrentBatches},
		{"streams: 2\n", DefaultMaxConcurrentBatches},
		{"streams: 8\n", 64},
		{"streams: auto\n", 128},
		{"streams: auto\nmax_streams: 6\n", 48},
		{"streams: auto\nmax_streams: 3\n", 24},
		{"streams: auto\nmax_streams: 2\n", DefaultMaxConcurrentBatches},
		{"streams: auto\nmax_concurrent_batches: 5\n", 5},
	} {
		s, err := parseSettings(tc.doc, zbwrap.ConfigYAML, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.concurrency(); got != tc.want {
			t.Errorf("%q: %d chunks at once, want %d", tc.doc, got, tc.want)
		}
	}
}

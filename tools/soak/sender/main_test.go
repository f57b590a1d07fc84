package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"

	"github.com/pyzerobus/pyzerobus/zbwrap"
	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const secret = "soak0secret"

func env(k string) string {
	if k == "DATABRICKS_CLIENT_SECRET" {
		return secret
	}
	return ""
}

// ledgerLines reads a ledger: the send lines and the final line.
func ledgerLines(t *testing.T, path string) ([]map[string]any, map[string]any) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var sends []map[string]any
	var final map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("ledger line %q: %v", sc.Text(), err)
		}
		if m["final"] == true {
			final = m
		} else {
			sends = append(sends, m)
		}
	}
	return sends, final
}

// landedSeqs counts the rows of the table per seq, for one sender.
func landedSeqs(t *testing.T, dir, sender string) map[int64]int {
	t.Helper()
	tbl, err := zerobustest.ReadTable(dir, "main.soak.events")
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	out := map[int64]int{}
	tr := array.NewTableReader(tbl, 0)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		snd := rec.Column(int(rec.Schema().FieldIndices("sender")[0])).(*array.String)
		seq := rec.Column(int(rec.Schema().FieldIndices("seq")[0])).(*array.Int64)
		for i := range int(rec.NumRows()) {
			if snd.Value(i) == sender {
				out[seq.Value(i)]++
			}
		}
	}
	return out
}

// The sender's ledger agrees with the table: every row it reports
// acknowledged landed, no row it reports certainly failed landed, and it
// accounts for every seq it handed out, through a retryable and a fatal
// fault.
func TestSenderLedgerMatchesTable(t *testing.T) {
	for _, tc := range []struct {
		name, mode, streams, workers string
		extra                        []string
	}{
		{"sync", "sync", "2", "2", nil},
		{"async", "async", "1", "1", nil},
		{"sync-small", "sync", "2", "4", []string{"--small-rows", "20", "--send-rate", "400"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			srv, err := zerobustest.NewServer(zerobustest.WithClient("soak", secret), zerobustest.WithDataDir(dir))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []zerobustest.Fault{
				{Kind: zerobustest.FaultDropConnection, AfterRecords: 500},
				{Kind: zerobustest.FaultFailCall, Code: codes.InvalidArgument, AfterRecords: 1500,
					Message: "soak fatal fault 7"},
			} {
				if err := srv.InjectFault(f); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(t.TempDir(), "l.jsonl")
			ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
			defer cancel()
			err = run(ctx, append([]string{"--id", "s1", "--mode", tc.mode, "--ledger", path,
				"--endpoint", srv.Endpoint(), "--workspace-url", srv.WorkspaceURL(), "--client-id", "soak",
				"--streams", tc.streams, "--workers", tc.workers, "--row-bytes", "100",
				"--max-batch-bytes", "20000", "--rate", "2000000", "--pause", "1ms"}, tc.extra...), env, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if err := srv.Close(); err != nil {
				t.Fatal(err)
			}
			sends, final := ledgerLines(t, path)
			if final == nil || final["close_error"] != "" {
				t.Fatalf("final line %v", final)
			}
			landed := landedSeqs(t, dir, "s1")
			seen := map[int64]bool{}
			failedKinds := map[string]int{}
			fatal, maxRows := 0, 0
			for _, s := range sends {
				first, rows := int64(s["first"].(float64)), int(s["rows"].(float64))
				maxRows = max(maxRows, rows)
				if msg, _ := s["error"].(string); strings.Contains(msg, "soak fatal fault 7") {
					fatal++
				} else if s["success"] == false {
					t.Errorf("send %v failed without the fatal fault", s)
				}
				covered := 0
				for _, a := range s["acked"].([]any) {
					r := a.([]any)
					start, n := int64(r[0].(float64)), int(r[1].(float64))
					for k := range int64(n) {
						if landed[first+start+k] == 0 {
							t.Errorf("seq %d acknowledged, not in the table", first+start+k)
						}
						seen[first+start+k] = true
					}
					covered += n
				}
				for _, f := range s["failed"].([]any) {
					r := f.([]any)
					start, n := int64(r[0].(float64)), int(r[1].(float64))
					failedKinds[r[2].(string)] += n
					for k := range int64(n) {
						if r[3] == false && landed[first+start+k] > 0 {
							t.Errorf("seq %d reported never sent, in the table", first+start+k)
						}
						seen[first+start+k] = true
					}
					covered += n
				}
				if covered != rows {
					t.Errorf("send %v accounts for %d of %d rows", s, covered, rows)
				}
			}
			if next := int64(final["next_seq"].(float64)); int64(len(seen)) != next {
				t.Errorf("ledger covers %d seqs, handed out %d", len(seen), next)
			}
			if failedKinds["transmission"] == 0 || fatal != 1 {
				t.Errorf("the fatal fault failed %d sends (want 1), rows by kind %v", fatal, failedKinds)
			}
			if tc.extra != nil && (maxRows > 20 || len(sends) < 50) {
				t.Errorf("--small-rows 20: %d sends, largest %d rows", len(sends), maxRows)
			}
			if st := final["stats"].(map[string]any); st["calls_opened"].(float64) < 2 {
				t.Errorf("stats %v: the dropped connection did not reconnect", st)
			}
		})
	}
}

func TestSenderFlags(t *testing.T) {
	ok := []string{"--id", "s", "--ledger", "l", "--endpoint", "e", "--workspace-url", "u", "--client-id", "c"}
	for _, tc := range []struct {
		args []string
		env  func(string) string
		want string
	}{
		{[]string{"--id", "a b"}, env, "--id"},
		{append([]string{"--mode", "x"}, ok...), env, `--mode "x"`},
		{[]string{"--id", "s"}, env, "required"},
		{ok, func(string) string { return "" }, "DATABRICKS_CLIENT_SECRET"},
		{append([]string{"--streams", "0"}, ok...), env, "at least 1"},
		{append([]string{"--send-rate", "-1"}, ok...), env, "--send-rate"},
		{append([]string{"--row-bytes", "10", "--max-batch-bytes", "5"}, ok...), env, "--row-bytes 10"},
		{[]string{"--nope"}, env, "not defined"},
		{append([]string{"--id", "s", "--ledger", filepath.Join(t.TempDir(), "no", "dir")}, ok[4:]...), env, "no such file"},
		{[]string{"--id", "s", "--ledger", filepath.Join(t.TempDir(), "l"), "--endpoint", "e",
			"--workspace-url", "u", "--client-id", "c"}, env, "configuration error"},
	} {
		err := run(context.Background(), tc.args, tc.env, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q) = %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}

// failWriter fails every write.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// Sends the engine never took are recorded failed, certainly not sent, with
// the error's kind; the first write error is kept.
func TestLedgerWithoutResult(t *testing.T) {
	var buf strings.Builder
	l := &ledger{enc: json.NewEncoder(&buf), sender: "s"}
	l.result(10, 3, time.Millisecond, nil, &zbwrap.Error{Kind: zbwrap.KindRetryExhausted})
	l.result(13, 2, time.Millisecond, nil, errors.New("plain"))
	l.final(zbwrap.Stats{}, 15, errors.New("close failed"))
	want := `{"sender":"s","first":10,"rows":3,"latency_ms":1,"success":false,"attempts":0,"acked":[],"failed":[[0,3,"retry_exhausted",false]],"error":"zbwrap: retry exhausted error"}
{"sender":"s","first":13,"rows":2,"latency_ms":1,"success":false,"attempts":0,"acked":[],"failed":[[0,2,"unknown",false]],"error":"plain"}
`
	if got := buf.String(); !strings.HasPrefix(got, want) || !strings.Contains(got, `"close_error":"close failed"`) {
		t.Errorf("ledger:\n%s\nwant it to start with:\n%s", got, want)
	}
	bad := &ledger{enc: json.NewEncoder(failWriter{}), sender: "s"}
	bad.final(zbwrap.Stats{}, 0, nil)
	bad.final(zbwrap.Stats{}, 0, nil)
	if bad.err == nil || bad.err.Error() != "disk full" {
		t.Errorf("err %v", bad.err)
	}
	if joined(nil) != nil || len(joined(errors.New("x"))) != 1 || len(joined(errors.Join(errors.New("a"), errors.New("b")))) != 2 {
		t.Error("joined")
	}
}

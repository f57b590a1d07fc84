package main

import (
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestProfileUsage(t *testing.T) {
	serve := []string{"serve", "--discard", "--client", "a:b"}
	tests := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"serve", "--help"}, exitOK, "-profile profile"},
		{[]string{"serve", "--help"}, exitOK, "--profile databricks behaves like the real service"},
		{[]string{"serve", "--help"}, exitOK, "-stream-quota bytes=SIZE,records=N"},
		{append(serve, "--profile", "fast"), exitUsage, "--profile: profile \"fast\""},
		{append(serve, "--ack-latency", "soon"), exitUsage, "--ack-latency"},
		{append(serve, "--stream-quota", "rows=5"), exitUsage, "--stream-quota"},
		{append(serve, "--table-quota", "bytes=5parsecs"), exitUsage, "--table-quota"},
		{append(serve, "--quota-mode", "drop"), exitUsage, "--quota-mode"},
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

// limits is the limits object of /stats.
type limits struct {
	Profile             string `json:"profile"`
	AckLatency          string `json:"ack_latency"`
	StreamBytesPerSec   int64  `json:"stream_bytes_per_sec"`
	StreamRecordsPerSec int64  `json:"stream_records_per_sec"`
	TableBytesPerSec    int64  `json:"table_bytes_per_sec"`
	TableRecordsPerSec  int64  `json:"table_records_per_sec"`
	QuotaMode           string `json:"quota_mode"`
}

func serveLimits(t *testing.T, args ...string) (limits, string) {
	t.Helper()
	r, stop, done, stderr := serveInProcess(t, args...)
	var st struct {
		Limits  limits `json:"limits"`
		Streams []any  `json:"streams"`
	}
	if code := r.getJSON(t, http.MethodGet, "/stats", nil, &st); code != 200 || st.Streams == nil {
		t.Fatalf("/stats: HTTP %d %+v", code, st)
	}
	stop <- os.Interrupt
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	return st.Limits, stderr.String()
}

// --profile databricks sets the service's limits; the other flags change
// single ones, with --discard too.
func TestServeProfileInProcess(t *testing.T) {
	got, logs := serveLimits(t, "--discard", "--client", "sp:pw", "--profile", "databricks")
	want := limits{Profile: "databricks", AckLatency: "median=150ms,p95=500ms", StreamBytesPerSec: 100_000_000,
		StreamRecordsPerSec: 100_000, TableBytesPerSec: 10_000_000_000, QuotaMode: "pace"}
	if got != want {
		t.Fatalf("limits %+v, want %+v", got, want)
	}
	if !strings.Contains(logs, "profile=databricks") {
		t.Fatalf("logs:\n%s", logs)
	}
	got, _ = serveLimits(t, "--data-dir", t.TempDir(), "--client", "sp:pw", "--profile", "databricks",
		"--ack-latency", "20ms", "--stream-quota", "records=2000", "--table-quota", "bytes=1GiB,records=5k", "--quota-mode", "reject")
	want = limits{Profile: "databricks", AckLatency: "20ms", StreamRecordsPerSec: 2000,
		TableBytesPerSec: 1 << 30, TableRecordsPerSec: 5000, QuotaMode: "reject"}
	if got != want {
		t.Fatalf("limits %+v, want %+v", got, want)
	}
	got, _ = serveLimits(t, "--discard", "--client", "sp:pw", "--stream-quota", "off", "--ack-latency", "median=5ms,p95=9ms")
	want = limits{Profile: "default", AckLatency: "median=5ms,p95=9ms", QuotaMode: "pace"}
	if got != want {
		t.Fatalf("limits %+v, want %+v", got, want)
	}
}

// The pure-Go SDK ingests into a process with the databricks profile and a
// small stream quota: paced, every row lands.
func TestServeProfileWithPureGoSDK(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, "--tls", "--data-dir", dir, "--client", "sp:s3cret", "--tables", writeTables(t),
		"--profile", "databricks", "--stream-quota", "records=1000")
	start := time.Now()
	if out := s.ingest(t, "main.default.events", 2000, 50); !strings.Contains(out, "ok records=2000") {
		t.Fatalf("sdkclient: %s", out)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("2000 records at 1000 records/s took %v", d)
	}
	var st struct {
		Streams []struct {
			ThrottledSeconds float64 `json:"throttled_seconds"`
			RecordsAcked     int64   `json:"records_acked"`
		} `json:"streams"`
	}
	if code := s.getJSON(t, http.MethodGet, "/stats", nil, &st); code != 200 || len(st.Streams) != 1 ||
		st.Streams[0].RecordsAcked != 2000 || st.Streams[0].ThrottledSeconds <= 0 {
		t.Fatalf("stats: HTTP %d %+v", code, st)
	}
	if code := s.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d\n%s", code, s.stderr)
	}
	wantAll(t, showIDs(t, dir, "main.default.events"), 2000, true)
}

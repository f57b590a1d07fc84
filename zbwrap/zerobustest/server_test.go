package zerobustest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/pyzerobus/pyzerobus/internal/testutil"
	"github.com/pyzerobus/pyzerobus/zbwrap/internal/wire"
)

func TestTLS(t *testing.T) {
	s := newServer(t, WithTLS(), WithClient("sp", "pw"))
	if !strings.HasPrefix(s.Endpoint(), "https://127.0.0.1:") || !strings.HasPrefix(s.WorkspaceURL(), "https://127.0.0.1:") {
		t.Fatalf("endpoints %s %s", s.Endpoint(), s.WorkspaceURL())
	}
	pemBytes, err := os.ReadFile(s.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !ca.IsCA {
		t.Fatalf("ca.pem: %v", err)
	}
	// The certificate is good for every loopback name.
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		conn, err := tls.Dial("tcp", strings.TrimPrefix(s.WorkspaceURL(), "https://"), &tls.Config{RootCAs: s.CertPool(), ServerName: name})
		if err != nil {
			t.Fatalf("TLS as %s: %v", name, err)
		}
		conn.Close()
	}
	// gRPC and the token endpoint work over TLS.
	code, body := fetchToken(t, s, "sp", "pw", tokenForm(testTable))
	if code != 200 {
		t.Fatalf("token over TLS: %d %v", code, body)
	}
	cc := rawCall(t, dial(t, s), authMD(body["access_token"].(string), testTable))
	cc.send(createReq(testTable))
	cc.recv()
	cc.send(batchReq(0, rows(0, 2)))
	cc.waitAck(0)

	// A plaintext client gets nowhere.
	plain, err := grpc.NewClient(strings.TrimPrefix(s.Endpoint(), "https://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(context.Background(), authMD(s.Token(testTable), testTable)), 5*time.Second)
	defer cancel()
	st, err := wire.NewZerobusClient(plain).EphemeralStream(ctx)
	if err == nil {
		_ = st.Send(createReq(testTable))
		_, err = st.Recv()
	}
	wantCode(t, err, codes.Unavailable)
}

func TestPlaintextHasNoCA(t *testing.T) {
	s := newServer(t, WithDiscard())
	if s.CertPool() != nil || s.CAFile() != "" || !strings.HasPrefix(s.Endpoint(), "http://") {
		t.Fatal("plaintext server with TLS material")
	}
}

func TestTempDataDirRemoved(t *testing.T) {
	s, err := NewServer()
	if err != nil {
		t.Fatal(err)
	}
	dir := s.DataDir()
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("temporary data dir left behind: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestShutdownAcksDurable(t *testing.T) {
	dir := t.TempDir()
	s, err := NewServer(WithDataDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	cc := open(t, s, dial(t, s), testTable)
	cc.send(batchReq(0, rows(0, 100)))
	cc.waitAck(0)
	for i := 1; i < 50; i++ {
		cc.send(batchReq(int64(i), rows(i*100, 100)))
	}
	testutil.Eventually(t, "requests received", func() bool { return s.Stats().RecordsReceived > 1000 })
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	last, err := cc.end()
	wantCode(t, err, codes.Unavailable, "shutting down")
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	got := readRows(t, dir, testTable)
	if acked := int(last+1) * 100; len(got) < acked {
		t.Fatalf("%d rows landed, fewer than the %d acknowledged", len(got), acked)
	}
	for i, r := range got {
		if r.id != int64(i) {
			t.Fatalf("row %d has id %d: rows lost or duplicated", i, r.id)
		}
	}
	// Nothing listens any more.
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(s.Endpoint(), "http://"), time.Second); err == nil {
		t.Fatal("gRPC listener still open")
	}
}

func TestShutdownDeadlineCutsCalls(t *testing.T) {
	s, err := NewServer(WithDiscard())
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var once sync.Once
	hook := func(where string) {
		if where == "run" {
			once.Do(func() { <-release }) // a handler that will not notice the shutdown
		}
	}
	s.hook.Store(&hook)
	cc := rawCall(t, dial(t, s), authMD(s.Token(testTable), testTable))
	cc.send(createReq(testTable))
	cc.recv()
	testutil.Eventually(t, "active stream", func() bool { return s.Stats().StreamsActive == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	time.AfterFunc(300*time.Millisecond, func() { close(release) })
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := cc.end(); err == nil {
		t.Fatal("call survived a forced shutdown")
	}
}

func TestCallDuringShutdown(t *testing.T) {
	s, err := NewServer(WithDiscard())
	if err != nil {
		t.Fatal(err)
	}
	arrived := make(chan struct{})
	hook := func(where string) {
		if where == "serve" {
			close(arrived)
			<-s.closing // the call arrived; it goes on once the shutdown began
		}
	}
	s.hook.Store(&hook)
	cc := rawCall(t, dial(t, s), authMD(s.Token(testTable), testTable))
	cc.send(createReq(testTable))
	<-arrived
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	_, err = cc.end()
	wantCode(t, err, codes.Unavailable, "shutting down")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestPanicsAreContained(t *testing.T) {
	s := newServer(t, WithDiscard())
	c := dial(t, s)
	for _, where := range []string{"open", "request"} {
		t.Run(where, func(t *testing.T) {
			var once sync.Once
			hook := func(w string) {
				if w == where {
					once.Do(func() { panic("boom at " + w) })
				}
			}
			s.hook.Store(&hook)
			defer s.hook.Store(nil)
			cc := rawCall(t, c, authMD(s.Token(testTable), testTable))
			cc.send(createReq(testTable))
			if where == "request" {
				cc.recv()
				cc.send(batchReq(0, rows(0, 1)))
			}
			_, err := cc.end()
			wantCode(t, err, codes.Internal, "boom at "+where)
			// The server still serves.
			ok := open(t, s, c, testTable)
			ok.send(batchReq(0, rows(0, 1)))
			ok.waitAck(0)
		})
	}
	t.Run("http", func(t *testing.T) {
		hook := func(w string) {
			if w == "http" {
				panic("boom over http")
			}
		}
		s.hook.Store(&hook)
		var body map[string]string
		code := doJSON(t, s, http.MethodGet, "/stats", nil, nil, &body)
		s.hook.Store(nil)
		if code != 500 || !strings.Contains(body["message"], "boom over http") {
			t.Fatalf("HTTP %d %v", code, body)
		}
		if code := doJSON(t, s, http.MethodGet, "/stats", nil, nil, nil); code != 200 {
			t.Fatalf("after the panic: HTTP %d", code)
		}
	})
}

func TestStatsEndpoint(t *testing.T) {
	s := newServer(t, WithDiscard())
	cc := open(t, s, dial(t, s), testTable)
	cc.send(batchReq(0, rows(0, 7)))
	cc.waitAck(0)
	var st Stats
	if code := doJSON(t, s, http.MethodGet, "/stats", nil, nil, &st); code != 200 {
		t.Fatalf("HTTP %d", code)
	}
	want := TableStats{StreamsOpened: 1, RecordsReceived: 7, RecordsAcked: 7}
	got := st.Tables[testTable]
	if got.BytesReceived < 7 || got.RecordsPerSec <= 0 || got.BytesPerSec <= 0 || st.BytesReceived != got.BytesReceived {
		t.Fatalf("stats %+v: no bytes or rates", st)
	}
	got.BytesReceived, got.RecordsPerSec, got.BytesPerSec = 0, 0, 0
	if got != want || st.StreamsOpened != 1 || st.StreamsActive != 1 || st.RecordsAcked != 7 {
		t.Fatalf("stats %+v, want table %+v", st, want)
	}
	if len(st.Streams) != 1 || st.Streams[0].RecordsAcked != 7 || st.Streams[0].Closed != nil ||
		st.Limits.Profile != ProfileDefault {
		t.Fatalf("streams %+v, limits %+v", st.Streams, st.Limits)
	}
}

func TestOptionErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	file := t.TempDir() + "/file"
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opt  Option
		want string
	}{
		{"empty client", WithClient("", "x"), "client id"},
		{"zero ttl", WithTokenTTL(0), "WithTokenTTL"},
		{"empty dir", WithDataDir(""), "WithDataDir"},
		{"bad table name", WithTable("t", rowColumns()...), "catalog.schema.table"},
		{"bad column type", WithTable(testTable, Column{Name: "id", Type: "nope"}), "column id"},
		{"no columns", WithTable(testTable), "column"},
		{"zero interval", WithMaterializeInterval(0), "WithMaterializeInterval"},
		{"bad fault", WithFault(Fault{Kind: "x"}), "WithFault"},
		{"grpc port busy", WithListen(busy.Addr().String(), ""), "listen"},
		{"http port busy", WithListen("", busy.Addr().String()), "listen"},
		{"data dir is a file", WithDataDir(file), "data dir"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewServer(tc.opt)
			if err == nil {
				s.Close()
				t.Fatal("NewServer succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestListenAnyAddressReportsLoopback(t *testing.T) {
	s := newServer(t, WithDiscard(), WithListen("0.0.0.0:0", "127.0.0.1:0"), WithLogger(nil), WithMaterializeInterval(time.Second))
	if !strings.HasPrefix(s.Endpoint(), "http://127.0.0.1:") {
		t.Fatalf("endpoint %s", s.Endpoint())
	}
	open(t, s, dial(t, s), testTable)
	if got := loopbackAddr(&net.UnixAddr{Name: "/tmp/sock", Net: "unix"}); got != "/tmp/sock" {
		t.Fatalf("loopbackAddr(unix) = %q", got)
	}
}

func TestDropUnknownConn(t *testing.T) {
	s := newServer(t, WithDiscard())
	if s.grpcLn.drop("10.0.0.1:1") {
		t.Fatal("dropped a connection that does not exist")
	}
}

func TestMaterializeInDiscardMode(t *testing.T) {
	s := newServer(t, WithDiscard())
	if err := s.Materialize(); err != nil {
		t.Fatal(err)
	}
}

// withCreateTimeout sets how long a call may wait before create_stream.
func withCreateTimeout(d time.Duration) Option {
	return func(c *config) error { c.createTimeout = d; return nil }
}

func TestSilentCalls(t *testing.T) {
	t.Run("no create_stream in time", func(t *testing.T) {
		s := newServer(t, WithDiscard(), withCreateTimeout(50*time.Millisecond))
		cc := rawCall(t, dial(t, s), authMD(s.Token(testTable), testTable))
		_, err := cc.end()
		wantCode(t, err, codes.DeadlineExceeded, "no create_stream within 50ms")
	})
	t.Run("shutdown", func(t *testing.T) {
		s, err := NewServer(WithDiscard())
		if err != nil {
			t.Fatal(err)
		}
		cc := rawCall(t, dial(t, s), authMD(s.Token(testTable), testTable))
		if _, err := cc.st.Header(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- s.Close() }()
		_, err = cc.end()
		wantCode(t, err, codes.Unavailable, "shutting down")
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("panic in the first receive", func(t *testing.T) {
		s := newServer(t, WithDiscard())
		hook := func(w string) {
			if w == "first" {
				panic("boom at first")
			}
		}
		s.hook.Store(&hook)
		cc := rawCall(t, dial(t, s), authMD(s.Token(testTable), testTable))
		cc.send(createReq(testTable))
		_, err := cc.end()
		wantCode(t, err, codes.Internal, "boom at first")
	})
}

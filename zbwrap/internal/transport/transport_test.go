package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

func TestTLSConfig(t *testing.T) {
	base := &tls.Config{ServerName: "example.com"}
	roots := x509.NewCertPool()
	c := TLSConfig(base, roots)
	if c == base || c.MinVersion != tls.VersionTLS12 || c.RootCAs != roots || c.ServerName != "example.com" {
		t.Fatalf("TLSConfig(base, roots) = %+v", c)
	}
	if base.MinVersion != 0 || base.RootCAs != nil {
		t.Fatal("the base configuration was changed")
	}
	if c := TLSConfig(&tls.Config{MinVersion: tls.VersionTLS13}, nil); c.MinVersion != tls.VersionTLS13 || c.RootCAs != nil {
		t.Fatalf("a caller's minimum version and roots are kept: %+v", c)
	}
	if c := TLSConfig(nil, nil); c.MinVersion != tls.VersionTLS12 {
		t.Fatalf("TLSConfig(nil, nil) = %+v", c)
	}
}

func target(t *testing.T, endpoint string) string {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// One connection for every Get, until Close; then Gets fail.
func TestConnLifecycle(t *testing.T) {
	srv, err := zerobustest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := New(Config{Target: target(t, srv.Endpoint()), Plaintext: true, UserAgent: "test/1",
		Dialer: func(ctx context.Context, addr string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}})
	if err := (&Conn{}).Close(); err != nil {
		t.Fatalf("Close of a Conn never dialed: %v", err)
	}
	cc1, err := c.Get()
	if err != nil {
		t.Fatal(err)
	}
	cc2, err := c.Get()
	if err != nil || cc1 != cc2 {
		t.Fatalf("a second Get: %p, %v; want the same connection %p", cc2, err, cc1)
	}
	if c.HandshakeError() != nil {
		t.Fatal("a plaintext connection has no handshake error")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
}

// A server whose certificate is not trusted leaves the verification
// failure for the stream to find.
func TestConnKeepsTheCertificateFailure(t *testing.T) {
	srv, err := zerobustest.NewServer(zerobustest.WithTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := New(Config{Target: target(t, srv.Endpoint()), RootCAs: x509.NewCertPool()}) // trusts nobody
	defer c.Close()
	cc, err := c.Get()
	if err != nil {
		t.Fatal(err)
	}
	cc.Connect()
	deadline := time.Now().Add(10 * time.Second)
	for c.HandshakeError() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	var cve *tls.CertificateVerificationError
	if !errors.As(c.HandshakeError(), &cve) {
		t.Fatalf("HandshakeError = %v, want a certificate verification error", c.HandshakeError())
	}
	// Trusted, the handshake succeeds and the failure is cleared.
	ok := New(Config{Target: target(t, srv.Endpoint()), RootCAs: srv.CertPool()})
	defer ok.Close()
	cc, err = ok.Get()
	if err != nil {
		t.Fatal(err)
	}
	cc.Connect()
	for cc.GetState().String() != "READY" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if ok.HandshakeError() != nil {
		t.Fatalf("a trusted server: %v", ok.HandshakeError())
	}
}

package zerobustest

import (
	"crypto/tls"
	"net"
	"testing"
)

func TestLocalTLS(t *testing.T) {
	srvCfg, roots, err := LocalTLS()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"localhost", "127.0.0.1"} {
		c, s := net.Pipe()
		done := make(chan error, 1)
		go func() { done <- tls.Server(s, srvCfg).Handshake() }()
		client := tls.Client(c, &tls.Config{RootCAs: roots, ServerName: name})
		if err := client.Handshake(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := <-done; err != nil {
			t.Fatalf("%s: server: %v", name, err)
		}
		c.Close()
		s.Close()
	}
	// Each call makes a new CA: another's roots do not verify this server.
	_, other, err := LocalTLS()
	if err != nil {
		t.Fatal(err)
	}
	c, s := net.Pipe()
	defer c.Close()
	defer s.Close()
	go func() { _ = tls.Server(s, srvCfg).Handshake() }()
	if err := tls.Client(c, &tls.Config{RootCAs: other, ServerName: "localhost"}).Handshake(); err == nil {
		t.Fatal("a foreign CA verified the server")
	}
}

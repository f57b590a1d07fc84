package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/credentials"

	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

// countingConn counts the writes that reach the socket.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// selfSigned returns a server TLS config with a self-signed certificate for
// 127.0.0.1, and a pool that trusts it.
func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	cfg, roots, err := zerobustest.LocalTLS()
	if err != nil {
		t.Fatal(err)
	}
	cfg.NextProtos = []string{"h2"}
	return cfg, roots
}

// tlsPair returns a coalescing client connection over loopback TLS, the
// socket under it, and the server side.
func tlsPair(t *testing.T) (net.Conn, *countingConn, net.Conn) {
	t.Helper()
	serverCfg, roots := selfSigned(t)
	lis, err := tls.Listen("tcp", "127.0.0.1:0", serverCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lis.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := lis.Accept()
		if err != nil {
			close(accepted)
			return
		}
		if err := c.(*tls.Conn).Handshake(); err != nil {
			t.Errorf("server handshake: %v", err)
		}
		accepted <- c
	}()
	raw, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	counting := &countingConn{Conn: raw}
	creds := coalescing{TransportCredentials: credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})}
	conn, _, err := creds.ClientHandshake(context.Background(), "127.0.0.1", counting)
	if err != nil {
		t.Fatal(err)
	}
	server := <-accepted
	if server == nil {
		t.Fatal("no server connection")
	}
	t.Cleanup(func() { _ = conn.Close(); _ = server.Close() })
	return conn, counting, server
}

// One write of many TLS records reaches the socket as one write, and the
// other side reads it intact.
func TestCoalescingWritesOncePerWrite(t *testing.T) {
	conn, counting, server := tlsPair(t)
	msg := make([]byte, 1<<20)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, 2*len(msg))
		_, err := io.ReadFull(server, b)
		if err != nil {
			t.Errorf("read: %v", err)
		}
		got <- b
	}()
	before := counting.writes.Load()
	for range 2 {
		if n, err := conn.Write(msg); err != nil || n != len(msg) {
			t.Fatalf("Write: %d, %v", n, err)
		}
	}
	if w := counting.writes.Load() - before; w != 2 {
		t.Fatalf("two writes of 64 TLS records each made %d socket writes, want 2", w)
	}
	b := <-got
	if !bytes.Equal(b[:len(msg)], msg) || !bytes.Equal(b[len(msg):], msg) {
		t.Fatal("the other side read something else")
	}
}

// Close does not wait behind a write blocked on a peer that stopped
// reading; the write fails.
func TestCoalescingCloseBreaksABlockedWrite(t *testing.T) {
	conn, counting, _ := tlsPair(t)
	big := make([]byte, 32<<20) // more than the socket buffers hold
	before := counting.writes.Load()
	done := make(chan error, 1)
	go func() {
		_, err := conn.Write(big)
		done <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for counting.writes.Load() == before {
		if time.Now().After(deadline) {
			t.Fatal("the gathered records never reached the socket")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let it block on the full socket
	if !conn.(*flushConn).g.busy.Load() {
		t.Fatal("the write finished: the peer read it")
	}
	closed := make(chan error, 1)
	go func() { closed <- conn.Close() }()
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
		t.Fatal("Close waited behind a blocked write")
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a write cut by Close succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the blocked write never returned")
	}
	if _, err := conn.Write([]byte("after")); err == nil {
		t.Fatal("a write after Close succeeded")
	}
}

// A socket that fails makes every later write fail, gathered or not.
func TestGatherConnKeepsTheFirstError(t *testing.T) {
	a, b := net.Pipe()
	_ = b.Close()
	g := &gatherConn{Conn: a}
	if _, err := g.Write([]byte("x")); err == nil {
		t.Fatal("write to a closed pipe succeeded")
	}
	first := g.failed
	g.begin()
	if _, err := g.Write([]byte("y")); !errors.Is(err, first) {
		t.Fatalf("gathered write after a failure: %v", err)
	}
	if err := g.end(); !errors.Is(err, first) {
		t.Fatalf("end after a failure: %v", err)
	}
	// Nested writes write once, at the outer end.
	c, d := net.Pipe()
	defer c.Close()
	defer d.Close()
	g = &gatherConn{Conn: &countingConn{Conn: c}}
	var wg sync.WaitGroup
	var read []byte
	wg.Go(func() {
		buf := make([]byte, 16)
		n, _ := io.ReadFull(d, buf[:4])
		read = buf[:n]
	})
	g.begin()
	g.begin()
	_, _ = g.Write([]byte("ab"))
	if err := g.end(); err != nil {
		t.Fatal(err)
	}
	_, _ = g.Write([]byte("cd"))
	if err := g.end(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if string(read) != "abcd" || g.Conn.(*countingConn).writes.Load() != 1 {
		t.Fatalf("read %q in %d writes", read, g.Conn.(*countingConn).writes.Load())
	}
	g.buf = make([]byte, 0, maxGather+1)
	g.begin()
	_ = g.end()
	if g.buf != nil {
		t.Fatal("an oversized buffer was kept")
	}
}

func TestCoalescingCredentials(t *testing.T) {
	creds := coalescing{TransportCredentials: credentials.NewTLS(&tls.Config{})}
	if _, ok := creds.Clone().(coalescing); !ok {
		t.Fatal("Clone lost the wrapper")
	}
	// A handshake that fails (nobody speaks TLS) is an error.
	a, b := net.Pipe()
	_ = b.Close()
	if _, _, err := creds.ClientHandshake(context.Background(), "127.0.0.1", a); err == nil {
		t.Fatal("handshake with a closed peer succeeded")
	}
}

package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/credentials"
)

// coalescing wraps TLS transport credentials so that each write gRPC makes
// (up to its write buffer, 1 MiB) reaches the socket as one system call.
// crypto/tls cuts a write into records of at most 16 KiB and hands each
// record to the socket on its own: a 1 MiB flush would be 64 system calls,
// and as many wake-ups of the reader on the other side.
//
// It also keeps the certificate verification failure of the latest
// handshake, if any (verified, nil without one): gRPC hands only the text of
// a handshake error on to the call that needed the connection, and the
// stream must tell an untrusted certificate, which no retry can fix, from a
// server that is down.
type coalescing struct {
	credentials.TransportCredentials
	verified *handshakeResult
}

// handshakeResult is the certificate verification failure of the latest
// TLS handshake of a connection, nil after a successful one.
type handshakeResult struct{ err atomic.Pointer[error] }

// Err returns the latest handshake's verification failure, or nil.
func (h *handshakeResult) Err() error {
	if p := h.err.Load(); p != nil {
		return *p
	}
	return nil
}

func (c coalescing) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	g := &gatherConn{Conn: raw}
	conn, info, err := c.TransportCredentials.ClientHandshake(ctx, authority, g)
	if c.verified != nil {
		var cve *tls.CertificateVerificationError
		switch {
		case err == nil:
			c.verified.err.Store(nil)
		case errors.As(err, &cve):
			c.verified.err.Store(&err)
		}
	}
	if err != nil {
		return nil, nil, err
	}
	return &flushConn{Conn: conn, g: g}, info, nil
}

func (c coalescing) Clone() credentials.TransportCredentials {
	return coalescing{c.TransportCredentials.Clone(), c.verified}
}

// gatherConn is the socket under TLS. While a write of the TLS connection
// is under way it gathers the records; end writes them at once. TLS writes
// its records in order under its own lock; mu keeps a record written
// outside a gathered write (an alert, a key update) in order with them.
type gatherConn struct {
	net.Conn
	busy   atomic.Bool // a gathered write is under way
	mu     sync.Mutex
	depth  int // gathered writes under way
	buf    []byte
	failed error
}

// maxGather bounds the buffer kept between writes.
const maxGather = 4 << 20

func (g *gatherConn) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failed != nil {
		return 0, g.failed
	}
	if g.depth > 0 {
		g.buf = append(g.buf, p...)
		return len(p), nil
	}
	n, err := g.Conn.Write(p)
	if err != nil {
		g.failed = err
	}
	return n, err
}

func (g *gatherConn) begin() {
	g.mu.Lock()
	g.depth++
	g.busy.Store(true)
	g.mu.Unlock()
}

// end writes what the last gathered write left, and the first error the
// socket gave.
func (g *gatherConn) end() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.depth--
	if g.depth > 0 {
		return g.failed
	}
	defer g.busy.Store(false)
	if len(g.buf) > 0 && g.failed == nil {
		if _, err := g.Conn.Write(g.buf); err != nil {
			g.failed = err
		}
	}
	if cap(g.buf) > maxGather {
		g.buf = nil
	} else {
		g.buf = g.buf[:0]
	}
	return g.failed
}

// flushConn is the TLS connection handed to gRPC.
type flushConn struct {
	net.Conn // *tls.Conn
	g        *gatherConn
}

func (f *flushConn) Write(p []byte) (int, error) {
	f.g.begin()
	n, err := f.Conn.Write(p)
	if gerr := f.g.end(); err == nil && gerr != nil {
		return 0, gerr
	}
	return n, err
}

// Close closes the connection. Like tls.Conn.Close during a Write, it first
// closes the socket if a gathered write may be blocked on it; otherwise the
// close_notify alert would wait behind that write.
func (f *flushConn) Close() error {
	if f.g.busy.Load() {
		_ = f.g.Conn.Close()
	}
	return f.Conn.Close()
}

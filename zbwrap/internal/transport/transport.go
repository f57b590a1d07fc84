// Package transport owns what the engine's streams share below them: the TLS
// configuration, the gRPC client connection (dialed on first use, closed
// once) and the socket-level write coalescing under TLS (tlsconn.go). It
// knows nothing of Arrow or of the Zerobus protocol.
package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Config describes the connection of one Wrapper.
type Config struct {
	// Target is host:port.
	Target string
	// Plaintext dials without TLS (the configuration allows it only for
	// http:// endpoints on loopback).
	Plaintext bool
	// TLS is the base client configuration (cloned, never changed); nil
	// means the defaults. RootCAs, if set, replaces its roots.
	TLS     *tls.Config
	RootCAs *x509.CertPool
	// UserAgent is sent with every call.
	UserAgent string
	// Dialer, if set, opens the TCP connections.
	Dialer func(context.Context, string) (net.Conn, error)
	// DialOptions are added after the engine's own.
	DialOptions []grpc.DialOption
}

// TLSConfig is the client TLS configuration for base and roots: TLS 1.2 at
// least, verification always on.
func TLSConfig(base *tls.Config, roots *x509.CertPool) *tls.Config {
	var c *tls.Config
	if base != nil {
		c = base.Clone()
	} else {
		c = &tls.Config{}
	}
	if c.MinVersion == 0 {
		c.MinVersion = tls.VersionTLS12
	}
	if roots != nil {
		c.RootCAs = roots
	}
	return c
}

// ErrClosed is returned by Get after Close.
var ErrClosed = errors.New("transport: connection closed")

// Conn is the gRPC client connection shared by a Wrapper's streams. It is
// safe for concurrent use.
type Conn struct {
	cfg       Config
	handshake handshakeResult // of the connection's TLS handshakes

	mu     sync.Mutex
	cc     *grpc.ClientConn
	closed bool
}

// New returns a Conn that dials on first Get.
func New(cfg Config) *Conn { return &Conn{cfg: cfg} }

// Get returns the client connection, creating it on first use. gRPC
// connects lazily: errors of the network come with the first call.
func (c *Conn) Get() (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if c.cc != nil {
		return c.cc, nil
	}
	var creds credentials.TransportCredentials
	if c.cfg.Plaintext {
		creds = insecure.NewCredentials()
	} else {
		creds = coalescing{credentials.NewTLS(TLSConfig(c.cfg.TLS, c.cfg.RootCAs)), &c.handshake}
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithUserAgent(c.cfg.UserAgent),
		// Large static windows: a 1 MB request should not wait for window
		// updates on a fast link.
		grpc.WithInitialWindowSize(16 << 20),
		grpc.WithInitialConnWindowSize(64 << 20),
		// One socket write per MiB (see coalescing): 512 KiB measured
		// slower, 2 MiB no faster.
		grpc.WithWriteBufferSize(1 << 20),
		// The client only reads acknowledgements: 32 KiB is plenty.
		grpc.WithReadBufferSize(32 << 10),
	}
	if c.cfg.Dialer != nil {
		opts = append(opts, grpc.WithContextDialer(c.cfg.Dialer))
	}
	opts = append(opts, c.cfg.DialOptions...)
	cc, err := grpc.NewClient(c.cfg.Target, opts...)
	if err != nil {
		return nil, err
	}
	c.cc = cc
	return cc, nil
}

// HandshakeError is the certificate verification failure of the latest TLS
// handshake, or nil: gRPC passes only the text of a handshake failure on to
// the call, and an untrusted certificate, which no retry can fix, must be
// told from a server that is down.
func (c *Conn) HandshakeError() error { return c.handshake.Err() }

// Close closes the connection if it was dialed; later Gets fail.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.cc == nil {
		return nil
	}
	err := c.cc.Close()
	c.cc = nil
	return err
}

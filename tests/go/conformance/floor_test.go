package conformance

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

// floorWrite is what the engine hands crypto/tls at once: its gRPC write
// buffer.
const floorWrite = 1 << 20

// benchTLSFloor measures what TLS over loopback carries on this machine
// with no gRPC, no protocol and no encoding. Each of conns connections has
// a writer that gives crypto/tls 1 MiB at a time, its records reaching the
// socket in one system call as zbwrap's transport does, and a reader with
// the local server's 4 MiB receive buffer that decrypts 16 KiB at a time
// and discards. Every client of the benchmark pays this transport per
// byte: with one connection it is what one stream's transport carries
// without any client work; with two, both cores are kept busy and it is
// about what the machine can encrypt, send, receive and decrypt at all.
func benchTLSFloor(conns int) func(*testing.B) {
	return func(b *testing.B) {
		cfg, pool, err := zerobustest.LocalTLS()
		if err != nil {
			b.Fatal(err)
		}
		pipes := make([]*floorPipe, conns)
		for i := range pipes {
			pipes[i] = newFloorPipe(b, cfg, pool)
		}
		b.SetBytes(floorWrite)
		b.ResetTimer()
		var wg sync.WaitGroup
		errs := make([]error, conns)
		for i, p := range pipes {
			n := b.N / conns
			if i < b.N%conns {
				n++
			}
			wg.Go(func() { errs[i] = p.send(n) })
		}
		wg.Wait()
		b.StopTimer()
		for i, p := range pipes {
			if err := cmp.Or(errs[i], p.close()); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// floorPipe is one TLS connection over loopback and its discarding reader.
type floorPipe struct {
	raw  net.Conn
	g    *floorGather
	conn *tls.Conn
	read chan error
	msg  []byte
}

func newFloorPipe(b *testing.B, cfg *tls.Config, pool *x509.CertPool) *floorPipe {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	p := &floorPipe{read: make(chan error, 1), msg: make([]byte, floorWrite)}
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			p.read <- err
			return
		}
		_ = raw.(*net.TCPConn).SetReadBuffer(4 << 20)
		conn := tls.Server(raw, cfg)
		defer conn.Close()
		buf := make([]byte, 16<<10)
		for {
			if _, err := conn.Read(buf); err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				p.read <- err
				return
			}
		}
	}()
	if p.raw, err = net.Dial("tcp", ln.Addr().String()); err != nil {
		b.Fatal(err)
	}
	p.g = &floorGather{Conn: p.raw}
	p.conn = tls.Client(p.g, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err := p.conn.Handshake(); err != nil {
		b.Fatal(err)
	}
	return p
}

// send writes n MiB.
func (p *floorPipe) send(n int) error {
	for range n {
		p.g.gather = true
		_, err := p.conn.Write(p.msg)
		p.g.gather = false
		if err == nil {
			_, err = p.raw.Write(p.g.buf)
		}
		p.g.buf = p.g.buf[:0]
		if err != nil {
			return err
		}
	}
	return nil
}

// close ends the connection and returns the reader's error.
func (p *floorPipe) close() error {
	return cmp.Or(p.conn.Close(), <-p.read)
}

// floorGather collects the records of one TLS write for a single socket
// write.
type floorGather struct {
	net.Conn
	gather bool
	buf    []byte
}

func (g *floorGather) Write(p []byte) (int, error) {
	if g.gather {
		g.buf = append(g.buf, p...)
		return len(p), nil
	}
	return g.Conn.Write(p)
}

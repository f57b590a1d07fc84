package zerobustest

import (
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// connListener remembers its open connections by remote address so that a
// fault can cut the TCP connection under a gRPC call.
type connListener struct {
	net.Listener

	readBuffer int // SO_RCVBUF of accepted connections; 0: the system's

	mu    sync.Mutex
	conns map[string]*trackedConn
}

// socketReadBuffer is the receive buffer (SO_RCVBUF) of accepted
// connections. Left to autotuning, the receive buffer of a loopback
// connection carrying GB/s falls behind the window it advertises: the
// kernel drops segments, the sender retransmits and paces, and throughput
// halves at random. A fixed 4 MiB (which the kernel doubles for its
// bookkeeping) keeps up. It is kernel memory, filled only while the server
// reads slower than a client sends.
const socketReadBuffer = 4 << 20

// readBufferFor returns the SO_RCVBUF to set on accepted connections: want,
// if the system allows that much (net.core.rmem_max, given as the contents
// of /proc/sys/net/core/rmem_max), else 0, to leave autotuning alone rather
// than lock the buffer at a smaller size.
func readBufferFor(want int, rmemMax []byte, err error) int {
	if err != nil {
		return 0
	}
	limit, err := strconv.Atoi(strings.TrimSpace(string(rmemMax)))
	if err != nil || limit < want {
		return 0
	}
	return want
}

func newConnListener(l net.Listener) *connListener {
	rmemMax, err := os.ReadFile(rmemMaxFile)
	return &connListener{Listener: l, conns: map[string]*trackedConn{},
		readBuffer: readBufferFor(socketReadBuffer, rmemMax, err)}
}

const rmemMaxFile = "/proc/sys/net/core/rmem_max"

func (l *connListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
		if l.readBuffer > 0 {
			_ = tc.SetReadBuffer(l.readBuffer)
		}
	}
	t := &trackedConn{Conn: c, l: l, key: c.RemoteAddr().String()}
	l.mu.Lock()
	l.conns[t.key] = t
	l.mu.Unlock()
	return t, nil
}

// drop resets the connection whose remote address is addr. It reports
// whether it found one.
func (l *connListener) drop(addr string) bool {
	l.mu.Lock()
	t := l.conns[addr]
	l.mu.Unlock()
	if t == nil {
		return false
	}
	if tc, ok := t.Conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // close with RST, as a crash or a cut cable would
	}
	_ = t.Close()
	return true
}

// trackedConn forgets itself when closed.
type trackedConn struct {
	net.Conn
	l    *connListener
	key  string
	once sync.Once
}

func (t *trackedConn) Close() error {
	t.once.Do(func() {
		t.l.mu.Lock()
		if t.l.conns[t.key] == t {
			delete(t.l.conns, t.key)
		}
		t.l.mu.Unlock()
	})
	return t.Conn.Close()
}

package zerobustest

import (
	"net"
	"sync"
)

// connListener remembers its open connections by remote address so that a
// fault can cut the TCP connection under a gRPC call.
type connListener struct {
	net.Listener

	mu    sync.Mutex
	conns map[string]*trackedConn
}

func newConnListener(l net.Listener) *connListener {
	return &connListener{Listener: l, conns: map[string]*trackedConn{}}
}

func (l *connListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
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

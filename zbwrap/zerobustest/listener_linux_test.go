package zerobustest

import (
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestAcceptedReadBuffer checks the receive buffer of a connection the
// listener accepts.
func TestAcceptedReadBuffer(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newConnListener(raw)
	defer l.Close()
	l.readBuffer = 1 << 20 // within any rmem_max the kernel accepts for a test
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := c.(*trackedConn).Conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var gerr error
	if err := sc.Control(func(fd uintptr) {
		got, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	}); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	// Linux reports twice the size set, capped at twice net.core.rmem_max.
	limit, rerr := readRmemMax()
	want := 1 << 20
	if rerr == nil && limit < want {
		want = limit
	}
	if got < want {
		t.Fatalf("SO_RCVBUF %d, want at least %d", got, want)
	}
}

func readRmemMax() (int, error) {
	b, err := os.ReadFile(rmemMaxFile)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

package zerobustest

import (
	"math/bits"
	"sync"
)

// bufferPool is the gRPC server's buffer pool (for received frames and
// batched writes). It is gRPC's default design, buffers by power-of-two
// size class, without zeroing a buffer when it is reused: gRPC reads a frame
// in full into the buffer it gets before anything looks at it, so clearing
// it first is pure cost (a memclr of every byte received).
type bufferPool struct {
	classes [maxPoolClass - minPoolClass + 1]sync.Pool
}

const (
	minPoolClass = 8  // 256 B
	maxPoolClass = 20 // 1 MiB; larger buffers are not pooled
)

// class returns the size class of a buffer of n bytes and whether it is
// pooled.
func poolClass(n int) (int, bool) {
	c := max(bits.Len(uint(n-1)), minPoolClass)
	return c, n > 0 && c <= maxPoolClass
}

func (p *bufferPool) Get(n int) *[]byte {
	c, ok := poolClass(n)
	if !ok {
		b := make([]byte, n)
		return &b
	}
	if v, _ := p.classes[c-minPoolClass].Get().(*[]byte); v != nil {
		*v = (*v)[:n]
		return v
	}
	b := make([]byte, n, 1<<c)
	return &b
}

func (p *bufferPool) Put(b *[]byte) {
	n := cap(*b)
	c, ok := poolClass(n)
	if !ok || n != 1<<c {
		return // not one of ours: let the GC have it
	}
	p.classes[c-minPoolClass].Put(b)
}

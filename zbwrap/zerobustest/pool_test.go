package zerobustest

import (
	"testing"
)

func TestBufferPool(t *testing.T) {
	var p bufferPool
	for _, tc := range []struct {
		n, cap int
	}{
		{1, 256},
		{256, 256},
		{257, 512},
		{16 << 10, 16 << 10},
		{16<<10 + 9, 32 << 10},
		{1 << 20, 1 << 20},
		{1<<20 + 1, 1<<20 + 1}, // not pooled: exact size
	} {
		b := p.Get(tc.n)
		if len(*b) != tc.n || cap(*b) != tc.cap {
			t.Fatalf("Get(%d): len %d cap %d, want cap %d", tc.n, len(*b), cap(*b), tc.cap)
		}
		p.Put(b)
	}

	// A buffer put back is handed out again for any size of its class,
	// as it was left (not zeroed). sync.Pool may drop an item (it does at
	// random under the race detector): try a few times.
	reused := false
	for range 100 {
		b := p.Get(1000)
		(*b)[0] = 42
		p.Put(b)
		again := p.Get(700)
		if again == b {
			if len(*again) != 700 || (*again)[0] != 42 {
				t.Fatalf("reused buffer: len %d, first byte %d", len(*again), (*again)[0])
			}
			reused = true
			break
		}
	}
	if !reused {
		t.Fatal("a buffer put back was never handed out again")
	}

	// Buffers of other sizes (not one of the pool's) are left to the GC.
	odd := make([]byte, 300)
	p.Put(&odd)
	for range 10 {
		if got := p.Get(300); cap(*got) != 512 {
			t.Fatalf("a foreign buffer of cap %d came back", cap(*got))
		}
	}
	zero := []byte{}
	p.Put(&zero)
}

package zerobustest

import (
	"strings"
	"sync"
	"testing"
)

// BenchmarkServer streams 220-byte records in batches of 1,000 over one
// call, keeping several batches in flight, and reports the server's
// throughput (client and server share the machine).
func BenchmarkServer(b *testing.B) {
	b.Run("discard", func(b *testing.B) { benchStream(b, WithDiscard()) })
	b.Run("durable", func(b *testing.B) { benchStream(b) })
}

const (
	benchRecordSize = 220
	benchBatch      = 1000
	benchInFlight   = 8
)

func benchStream(b *testing.B, opts ...Option) {
	s := newServer(b, opts...)
	cc := open(b, s, dial(b, s), testTable)
	rec := row(1, strings.Repeat("x", benchRecordSize-len(row(1, ""))-1))
	if len(rec) != benchRecordSize {
		b.Fatalf("record of %d bytes", len(rec))
	}
	batch := make([][]byte, benchBatch)
	for i := range batch {
		batch[i] = rec
	}

	// The receiver tracks the acknowledged offset; the sender waits while
	// benchInFlight batches are unacknowledged.
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	acked := int64(-1)
	var recvErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			resp, err := cc.st.Recv()
			mu.Lock()
			if err != nil {
				recvErr = err
				cond.Broadcast()
				mu.Unlock()
				return
			}
			acked = resp.GetIngestRecordResponse().GetDurabilityAckUpToOffset()
			cond.Broadcast()
			mu.Unlock()
		}
	}()
	wait := func(upTo int64) {
		mu.Lock()
		defer mu.Unlock()
		for acked < upTo && recvErr == nil {
			cond.Wait()
		}
		if recvErr != nil {
			b.Fatalf("recv: %v", recvErr)
		}
	}

	b.SetBytes(benchBatch * benchRecordSize)
	b.ReportAllocs()
	off := int64(0)
	for b.Loop() {
		wait(off - benchInFlight)
		if err := cc.st.Send(batchReq(off, batch)); err != nil {
			b.Fatalf("send: %v", err)
		}
		off++
	}
	wait(off - 1)
	b.ReportMetric(float64(off*benchBatch)/b.Elapsed().Seconds(), "records/s")
	_ = cc.st.CloseSend()
	<-done
}

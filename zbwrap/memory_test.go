package zbwrap

import (
	"context"
	"runtime"
	"slices"
	"testing"

	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

// The encoded memory of a batch is reused by the next ones: a result never
// shares it.
func TestResultsDoNotShareReusedMemory(t *testing.T) {
	checkLeaks(t)
	w, err := New(context.Background(), Config{}, WithTableName(testTable), WithWriterDisabled(true))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(context.Background())
	first := u64Batch(1, 1<<63, 3)
	defer first.Release()
	res, _ := w.SendBatch(context.Background(), first)
	if !slices.Equal(res.SuccessfulRows, []int{0, 2}) {
		t.Fatalf("successful rows %v", res.SuccessfulRows)
	}
	second := u64Batch(4, 5, 6, 7)
	defer second.Release()
	for range 3 {
		if _, err := w.SendBatch(context.Background(), second); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(res.SuccessfulRows, []int{0, 2}) {
		t.Fatalf("an earlier result changed: successful rows %v", res.SuccessfulRows)
	}
}

// Sending batch after batch allocates far less than the batches weigh: the
// records' memory is reused once the server acknowledged them and gRPC let
// go of them, and nothing is marshalled into new buffers.
func TestSendBatchReusesMemory(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	checkLeaks(t)
	srv := newServer(t, zerobustest.WithDiscard())
	w := newWrapper(t, srv)
	rec := makeBatch(0, 1000, 215)
	defer rec.Release()
	res, err := w.SendBatch(context.Background(), rec)
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		if _, err := w.SendBatch(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	perBatch := (after.TotalAlloc - before.TotalAlloc) / n
	if perBatch > uint64(res.BatchSizeBytes)/4 {
		t.Fatalf("%d bytes allocated per batch of %d bytes", perBatch, res.BatchSizeBytes)
	}
	t.Logf("%d bytes allocated per batch of %d bytes", perBatch, res.BatchSizeBytes)
}

package stream

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pyzerobus/pyzerobus/internal/testutil"
	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

// The server rejects the sixth request while every request is in flight:
// that one fails, not ingested; the ones behind it are written again on a
// new call and acknowledged, once.
func TestRejectionReplaysTheRequestsBehindIt(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t,
		zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultDelayAcks, Delay: 300 * time.Millisecond}),
		zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultFailCall, Code: codes.InvalidArgument, AfterRecords: 250}))
	cfg, _ := fastConfig(t, srv)
	cfg.DisableRecovery = true // a rejection is not a failure to recover from
	s := newStream(t, dial(t, srv), cfg)
	var bs []*Batch
	for i := range 10 {
		bs = append(bs, mustSend(t, s, records(i*50, 50, 10)))
	}
	for i, b := range bs {
		outs := waitBatch(t, b)
		if i != 5 {
			allAcked(t, outs)
			continue
		}
		o := outs[0]
		if kindOf(o.Err) != KindTransmission || o.Err.(*Error).Retryable || status.Code(o.Err) != codes.InvalidArgument || o.MayHaveLanded {
			t.Fatalf("rejected request: %+v", o)
		}
	}
	st := s.Stats()
	if err := s.Err(); err != nil {
		t.Fatalf("stream error %v", err)
	}
	testutil.Require(t, "stats", testutil.Want("Opens", st.Opens, 2), testutil.Want("RequestsFailed", st.RequestsFailed, 1), testutil.Want("RecordsAcked", st.RecordsAcked, 450),
		testutil.Want("AckedAfterReplay", st.AckedAfterReplay, 0), testutil.Want("RecordsMaybeDup", st.RecordsMaybeDup, 0))
	if got := srv.Stats().Tables[testTable].RecordsDurable; got != 450 {
		t.Fatalf("server holds %d durable records, want 450", got)
	}
}

// A request written on a call that broke, then rejected on the next one,
// may have landed on the first.
func TestRejectedAfterAReplayMayHaveLanded(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t, zerobustest.WithFault(zerobustest.Fault{Kind: zerobustest.FaultStopAcks}))
	cfg, _ := fastConfig(t, srv)
	cfg.AckTimeout = 200 * time.Millisecond
	s := newStream(t, dial(t, srv), cfg)
	b := mustSend(t, s, records(0, 10, 10))
	// Received by the server, so past its fault check: the failure armed
	// next can only meet the request written again on the next call.
	testutil.Eventually(t, "the request to reach the server", func() bool { return srv.Stats().RecordsReceived == 10 })
	if err := srv.InjectFault(zerobustest.Fault{Kind: zerobustest.FaultFailCall, Code: codes.InvalidArgument}); err != nil {
		t.Fatal(err)
	}
	o := waitBatch(t, b)[0]
	if status.Code(o.Err) != codes.InvalidArgument || !o.MayHaveLanded || o.Attempts != 2 {
		t.Fatalf("outcome %+v", o)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

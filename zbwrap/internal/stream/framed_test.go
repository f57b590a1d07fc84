package stream

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/pyzerobus/pyzerobus/zbwrap/internal/wire"
	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

// frame lays recs out the way arrowproto.EncodeFramed(rec, 1) does: one
// buffer of tag, length and record, back to back. It returns the buffer and
// the records as sub-slices of it.
func frame(recs [][]byte) ([]byte, [][]byte) {
	var frames []byte
	starts := make([]int, len(recs))
	for i, r := range recs {
		frames = protowire.AppendTag(frames, RecordField, protowire.BytesType)
		frames = protowire.AppendVarint(frames, uint64(len(r)))
		starts[i] = len(frames)
		frames = append(frames, r...)
	}
	views := make([][]byte, len(recs))
	for i, r := range recs {
		views[i] = frames[starts[i] : starts[i]+len(r) : starts[i]+len(r)]
	}
	return frames, views
}

// wireRequest is the IngestRecordBatchRequest the proto codec would write.
func wireRequest(offset int64, recs [][]byte) *wire.EphemeralStreamRequest {
	return &wire.EphemeralStreamRequest{Payload: &wire.EphemeralStreamRequest_IngestRecordBatch{
		IngestRecordBatch: &wire.IngestRecordBatchRequest{
			OffsetId: proto.Int64(offset),
			Batch: &wire.IngestRecordBatchRequest_ProtoEncodedBatch{
				ProtoEncodedBatch: &wire.ProtoEncodedRecordBatch{Records: recs},
			},
		},
	}}
}

// A framed write is byte for byte what the proto codec writes for the same
// request, whatever the offset and whether the frames are lent to gRPC or
// copied; lent frames are held until gRPC frees them.
func TestFramedWriteIsTheProtoEncoding(t *testing.T) {
	for _, tc := range []struct {
		name   string
		n      int // records
		size   int // payload per record
		offset int64
		lent   bool
	}{
		{"one small record, copied", 1, 5, 0, false},
		{"small request, copied", 20, 10, 1, false},
		{"large request, lent", 100, 50, 300, true},
		{"large records, lent", 3, 70_000, math.MaxInt64, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs := records(0, tc.n, tc.size)
			frames, _ := frame(recs)
			released := 0
			b := &Batch{onRelease: func() { released++ }}
			b.holds.Store(2) // the batch's and the write's
			w := &framedWrite{batch: b, offset: tc.offset, frames: frames}
			data, err := newCodec().Marshal(w)
			if err != nil {
				t.Fatal(err)
			}
			if !w.marshalled {
				t.Fatal("the write was not marked marshalled")
			}
			want, err := proto.MarshalOptions{Deterministic: true}.Marshal(wireRequest(tc.offset, recs))
			if err != nil {
				t.Fatal(err)
			}
			if got := data.Materialize(); string(got) != string(want) {
				t.Fatalf("framed write differs from the proto encoding:\n got  %x\n want %x", got[:min(64, len(got))], want[:min(64, len(want))])
			}
			if lent := b.holds.Load() == 2; lent != tc.lent {
				t.Fatalf("frames lent to gRPC: %v, want %v", lent, tc.lent)
			}
			data.Free()
			b.unhold() // the batch resolves
			if released != 1 || b.holds.Load() != 0 {
				t.Fatalf("released %d times, %d holds left", released, b.holds.Load())
			}
			if tc.lent {
				if p := w.Get(8); len(*p) != 8 {
					t.Fatalf("Get(8) returned %d bytes", len(*p))
				}
			}
		})
	}
}

func TestCodecDelegatesOtherMessages(t *testing.T) {
	c := newCodec()
	if c.Name() != "" {
		t.Fatalf("codec name %q: the content-type must stay application/grpc", c.Name())
	}
	msg := &wire.EphemeralStreamResponse{Payload: &wire.EphemeralStreamResponse_IngestRecordResponse{
		IngestRecordResponse: &wire.IngestRecordResponse{DurabilityAckUpToOffset: proto.Int64(42)},
	}}
	data, err := c.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	var back wire.EphemeralStreamResponse
	if err := c.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.GetIngestRecordResponse().GetDurabilityAckUpToOffset() != 42 {
		t.Fatalf("round trip gave %v", &back)
	}
	if _, err := c.Marshal("not a message"); err == nil {
		t.Fatal("a non-message marshalled")
	}
}

func TestCheckFrames(t *testing.T) {
	recs := records(0, 3, 10)
	good, views := frame(recs)
	long := append([]byte{RecordTag}, protowire.AppendVarint(nil, 1<<40)...)
	for _, tc := range []struct {
		name   string
		frames []byte
		recs   [][]byte
		ok     bool
	}{
		{"good", good, views, true},
		{"no records", []byte{}, nil, true},
		{"nil frames", nil, views, false},
		{"wrong tag", append([]byte{0x12}, good[1:]...), views, false},
		{"lengths differ", good, records(0, 3, 11), false},
		{"truncated", good[:len(good)-1], views, false},
		{"trailing bytes", append(good[:len(good):len(good)], 0), views, false},
		{"fewer records than frames", good, views[:2], false},
		{"bad varint", []byte{RecordTag, 0x80}, [][]byte{{}}, false},
		{"length past the end", long, [][]byte{make([]byte, 1<<10)}, false},
	} {
		err := checkFrames(tc.frames, tc.recs)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrBadFrames)) {
			t.Errorf("%s: %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

// Frames that do not hold the records fail the whole batch before anything
// is queued; both callbacks still run.
func TestSendFramedBadFrames(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t)
	cfg, _ := fastConfig(t, srv)
	s := newStream(t, dial(t, srv), cfg)
	frames, views := frame(records(0, 5, 10))
	var done, released atomic.Int32
	b, err := s.SendFramed(context.Background(), frames[1:], views, func(*Batch) { done.Add(1) }, func() { released.Add(1) })
	if !errors.Is(err, ErrBadFrames) {
		t.Fatalf("SendFramed with bad frames: %v", err)
	}
	outs := waitBatch(t, b)
	if len(outs) != 1 || outs[0].Start != 0 || outs[0].End != 5 || outs[0].MayHaveLanded || !errors.Is(outs[0].Err, ErrBadFrames) {
		t.Fatalf("outcomes %+v", outs)
	}
	if done.Load() != 1 || released.Load() != 1 {
		t.Fatalf("onDone ran %d times, onRelease %d times; want 1 and 1", done.Load(), released.Load())
	}
	if s.Stats().RequestsWritten != 0 {
		t.Fatal("a request of a bad batch was written")
	}
}

// sendFramed sends recs framed and returns the batch and a channel closed
// by onRelease. onRelease scribbles over the frames: if gRPC still read
// them, the race detector would say so and the server would store garbage.
func sendFramed(t testing.TB, s *Stream, recs [][]byte, block bool) (*Batch, <-chan struct{}, error) {
	t.Helper()
	frames, views := frame(recs)
	released := make(chan struct{})
	var once sync.Once
	var doneFirst atomic.Bool
	var b *Batch
	onDone := func(*Batch) { doneFirst.Store(true) }
	onRelease := func() {
		if !doneFirst.Load() {
			t.Error("frames released before the batch was resolved")
		}
		for i := range frames {
			frames[i] = 0xff
		}
		once.Do(func() { close(released) })
	}
	var err error
	if block {
		b, err = s.SendFramed(context.Background(), frames, views, onDone, onRelease)
	} else {
		b, err = s.TrySendFramed(frames, views, onDone, onRelease)
	}
	return b, released, err
}

// awaitRelease waits for a batch's frames to be released.
func awaitRelease(t testing.TB, released <-chan struct{}) {
	t.Helper()
	select {
	case <-released:
	case <-time.After(10 * time.Second):
		t.Fatal("frames never released")
	}
}

// The fault scenarios of TestFaultsRecovered, with framed batches: replays
// rebuild the header with the new offset and resend the same frames, and
// the frames are released only once resolved and let go by gRPC.
func TestFramedFaultsRecovered(t *testing.T) {
	faults := []zerobustest.Fault{
		{Kind: zerobustest.FaultFailCall, Code: codes.Unavailable, AfterRecords: 450},
		{Kind: zerobustest.FaultEndCall, Signal: true, SignalDuration: 100 * time.Millisecond, AfterRecords: 250},
		{Kind: zerobustest.FaultDropConnection, AfterRecords: 350},
		{Kind: zerobustest.FaultStopAcks, AfterRecords: 300},
	}
	for _, f := range faults {
		t.Run(string(f.Kind), func(t *testing.T) {
			checkLeaks(t)
			srv := newServer(t, zerobustest.WithFault(f))
			cfg, _ := fastConfig(t, srv)
			cfg.AckTimeout = 300 * time.Millisecond
			cfg.MaxRequestBytes = 2000 // several requests per batch
			s := newStream(t, dial(t, srv), cfg)
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Go(func() {
					for i := range 5 {
						b, released, err := sendFramed(t, s, records((g*5+i)*50, 50, 20), true)
						if err != nil {
							t.Errorf("SendFramed: %v", err)
							return
						}
						allAcked(t, waitBatch(t, b))
						awaitRelease(t, released)
					}
				})
			}
			wg.Wait()
			st := s.Stats()
			if st.RecordsAcked != 1000 {
				t.Fatalf("acked %d records, want 1000", st.RecordsAcked)
			}
			durable := srv.Stats().Tables[testTable].RecordsDurable
			if durable < 1000 || durable-1000 > st.ReplayedRecords {
				t.Fatalf("server holds %d records for 1000 acked with %d replayed", durable, st.ReplayedRecords)
			}
		})
	}
}

func TestFramedSplitsAndFailsOversizedRecords(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t)
	cfg, _ := fastConfig(t, srv)
	cfg.MaxRequestBytes = 1000
	s := newStream(t, dial(t, srv), cfg)
	recs := records(0, 30, 40)
	recs[7] = records(7, 1, 2000)[0] // alone over the limit
	b, released, err := sendFramed(t, s, recs, false)
	if err != nil {
		t.Fatal(err)
	}
	outs := waitBatch(t, b)
	awaitRelease(t, released)
	acked := 0
	for _, o := range outs {
		switch {
		case o.Start == 7:
			if o.End != 8 || !errors.Is(o.Err, ErrTooLarge) {
				t.Fatalf("oversized record: %+v", o)
			}
		case o.Err != nil:
			t.Fatalf("records [%d,%d): %v", o.Start, o.End, o.Err)
		default:
			acked += o.End - o.Start
		}
	}
	if acked != 29 || len(outs) < 4 {
		t.Fatalf("%d records acked in %d outcomes, want 29 in several requests", acked, len(outs))
	}
}

// captureServer is a Zerobus endpoint that records what one call carried:
// its metadata and its requests, decoded by the ordinary proto codec.
type captureServer struct {
	wire.UnimplementedZerobusServer
	mu   sync.Mutex
	md   metadata.MD
	reqs []*wire.EphemeralStreamRequest
}

func (c *captureServer) EphemeralStream(st grpc.BidiStreamingServer[wire.EphemeralStreamRequest, wire.EphemeralStreamResponse]) error {
	md, _ := metadata.FromIncomingContext(st.Context())
	c.mu.Lock()
	c.md = md
	c.mu.Unlock()
	for n := int64(-1); ; n++ {
		req, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.reqs = append(c.reqs, req)
		c.mu.Unlock()
		resp := &wire.EphemeralStreamResponse{Payload: &wire.EphemeralStreamResponse_IngestRecordResponse{
			IngestRecordResponse: &wire.IngestRecordResponse{DurabilityAckUpToOffset: proto.Int64(n)}}}
		if n < 0 {
			resp = &wire.EphemeralStreamResponse{Payload: &wire.EphemeralStreamResponse_CreateStreamResponse{
				CreateStreamResponse: &wire.CreateIngestStreamResponse{StreamId: proto.String("capture")}}}
		}
		if err := st.Send(resp); err != nil {
			return err
		}
	}
}

// What goes on the wire is an ordinary request with content-type
// application/grpc, whether the records came framed or not.
func TestFramedRequestsOnTheWire(t *testing.T) {
	checkLeaks(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	capture := &captureServer{}
	wire.RegisterZerobusServer(gs, capture)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	s := newStream(t, cc, Config{Table: testTable, Descriptor: []byte{1}})
	small, big := records(0, 3, 10), records(3, 40, 100)
	b1, r1, err := sendFramed(t, s, small, true)
	if err != nil {
		t.Fatal(err)
	}
	allAcked(t, waitBatch(t, b1))
	b2 := mustSend(t, s, records(100, 2, 5))
	allAcked(t, waitBatch(t, b2))
	b3, r3, err := sendFramed(t, s, big, true)
	if err != nil {
		t.Fatal(err)
	}
	allAcked(t, waitBatch(t, b3))
	awaitRelease(t, r1)
	awaitRelease(t, r3)

	capture.mu.Lock()
	defer capture.mu.Unlock()
	if ct := capture.md.Get("content-type"); len(ct) != 1 || ct[0] != "application/grpc" {
		t.Fatalf("content-type %v", ct)
	}
	want := [][][]byte{small, records(100, 2, 5), big}
	if len(capture.reqs) != 4 || capture.reqs[0].GetCreateStream() == nil {
		t.Fatalf("server got %d requests", len(capture.reqs))
	}
	for i, req := range capture.reqs[1:] {
		ib := req.GetIngestRecordBatch()
		got := ib.GetProtoEncodedBatch().GetRecords()
		if ib.GetOffsetId() != int64(i) || len(got) != len(want[i]) {
			t.Fatalf("request %d: offset %d, %d records", i, ib.GetOffsetId(), len(got))
		}
		for k := range got {
			if string(got[k]) != string(want[i][k]) {
				t.Fatalf("request %d record %d differs", i, k)
			}
		}
	}
}

// gatedTokens holds every call open until the gate opens.
type gatedTokens struct {
	*serverTokens
	gate chan struct{}
}

func (g gatedTokens) Headers(ctx context.Context, refresh bool) (map[string]string, error) {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.serverTokens.Headers(ctx, refresh)
}

// Send waits while the writer is MaxUnwrittenBytes behind (here: no call
// is open yet); TrySend does not.
func TestSendWaitsForTheWriter(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t)
	cfg, h := fastConfig(t, srv)
	gate := make(chan struct{})
	cfg.Headers = gatedTokens{h, gate}
	cfg.MaxUnwrittenBytes = 100
	s := newStream(t, dial(t, srv), cfg)

	first := mustSend(t, s, records(0, 10, 20)) // over the bound once queued
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	b, err := s.Send(ctx, records(10, 10, 20), nil)
	cancel()
	var se *Error
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &se) || !se.Retryable || se.Kind != KindTransmission {
		t.Fatalf("Send behind a stalled writer: %v", err)
	}
	if outs := waitBatch(t, b); len(outs) != 1 || outs[0].Offset != -1 || outs[0].MayHaveLanded {
		t.Fatalf("outcomes %+v", outs)
	}
	tried, err := s.TrySend(records(20, 10, 20), nil)
	if err != nil {
		t.Fatalf("TrySend does not wait for the writer: %v", err)
	}
	later := make(chan *Batch, 1)
	go func() {
		b, err := s.Send(context.Background(), records(30, 10, 20), nil)
		if err != nil {
			t.Errorf("Send: %v", err)
		}
		later <- b
	}()
	time.Sleep(20 * time.Millisecond)
	select {
	case <-later:
		t.Fatal("Send went ahead of a stalled writer")
	default:
	}
	close(gate) // the call opens and the writer catches up
	allAcked(t, waitBatch(t, first))
	allAcked(t, waitBatch(t, tried))
	allAcked(t, waitBatch(t, <-later))
	if st := s.Stats(); st.RecordsAcked != 30 {
		t.Fatalf("acked %d records, want 30", st.RecordsAcked)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queued != 0 || s.ahead != nil {
		t.Fatalf("%d bytes still counted as queued, waiters %v", s.queued, s.ahead)
	}
}

// A Send waiting for the writer fails when Close begins, or when a request
// it waits behind is withdrawn it goes ahead.
func TestWaitForTheWriterEnds(t *testing.T) {
	checkLeaks(t)
	srv := newServer(t)
	cfg, h := fastConfig(t, srv)
	cfg.Headers = gatedTokens{h, make(chan struct{})}
	cfg.MaxUnwrittenBytes = 100
	s := newStream(t, dial(t, srv), cfg)

	first := mustSend(t, s, records(0, 10, 20))
	next := make(chan error, 1)
	go func() {
		b, err := s.Send(context.Background(), records(10, 10, 20), nil)
		if err == nil {
			b.Abandon(errors.New("test over"))
		}
		next <- err
	}()
	time.Sleep(20 * time.Millisecond)
	first.Abandon(errors.New("gave up")) // never written: withdrawn
	if err := <-next; err != nil {
		t.Fatalf("Send behind a withdrawn request: %v", err)
	}

	mustSend(t, s, records(20, 10, 20))
	blocked := make(chan error, 1)
	go func() {
		_, err := s.Send(context.Background(), records(30, 10, 20), nil)
		blocked <- err
	}()
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_ = s.Close(ctx)
	if err := <-blocked; !errors.Is(err, ErrClosed) {
		t.Fatalf("Send waiting for the writer at Close: %v", err)
	}
}

package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/pyzerobus/pyzerobus/zbwrap/internal/wire"
)

// TableHeader names the target table on every call.
const TableHeader = "x-databricks-zerobus-table-name"

// conn is one EphemeralStream call. Ownership: the sender goroutine alone
// writes to rpc (Send, CloseSend); the receiver goroutine alone reads from it;
// every field below the line is guarded by Stream.mu; the supervisor starts
// both goroutines and waits for them before the next call.
type conn struct {
	s      *Stream
	rpc    grpc.BidiStreamingClient[wire.EphemeralStreamRequest, wire.EphemeralStreamResponse]
	call   Call // the call of another transport (Config.Dial); rpc is nil then
	cancel context.CancelFunc
	id     string
	wake   chan struct{} // wakes the sender
	done   chan struct{} // closed when the call ends

	scratch []*request // receiver's reusable slice of acknowledged requests

	ended        bool
	err          *Error // why the call ended; nil for a graceful end
	sentIdx      int    // Stream.pending[:sentIdx] are written on this call and unacknowledged
	written      int    // record bytes of pending[:sentIdx]
	acked        int64  // requests acknowledged on this call: the wire offset of pending[0]
	draining     bool   // a CloseStreamSignal arrived: write nothing new
	halfClosed   bool
	lastProgress time.Time // last ack, or when the in-flight set became non-empty
	timerArmed   bool
	ackTimer     *time.Timer
	drainTimer   *time.Timer
}

func (c *conn) wakeSender() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *conn) end(e *Error) {
	c.s.mu.Lock()
	c.endLocked(e)
	c.s.mu.Unlock()
}

// endLocked ends the call once; the first reason wins.
func (c *conn) endLocked(e *Error) {
	if c.ended {
		return
	}
	c.ended = true
	c.err = e
	close(c.done)
	c.cancel()
}

// open fetches headers and runs the create-stream handshake, all bounded by
// the creation timeout.
func (s *Stream) open(refresh bool) (*conn, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(s.life, s.cfg.CreateTimeout)
	defer cancel()
	md := metadata.MD{}
	if s.cfg.Headers != nil {
		h, err := s.cfg.Headers.Headers(ctx, refresh)
		if e := untrusted(err); e != nil {
			return nil, e
		}
		if err != nil {
			retry := retryableHeaderError(err) || (ctx.Err() != nil && s.life.Err() == nil)
			return nil, &Error{Kind: KindAuthentication, Retryable: retry, Msg: "obtain call headers", Err: err}
		}
		for k, v := range h {
			md.Set(k, v)
		}
	}
	md.Set(TableHeader, s.cfg.Table)
	callCtx, callCancel := context.WithCancel(metadata.NewOutgoingContext(s.life, md))
	stop := context.AfterFunc(ctx, callCancel)
	var rpc grpc.BidiStreamingClient[wire.EphemeralStreamRequest, wire.EphemeralStreamResponse]
	var call Call
	var id string
	var err error
	if s.cfg.Dial != nil {
		call, id, err = s.cfg.Dial(callCtx)
	} else {
		rpc, id, err = s.handshake(callCtx)
	}
	if !stop() && s.life.Err() == nil {
		callCancel()
		return nil, &Error{Kind: KindConnection, Retryable: true, Code: codes.DeadlineExceeded,
			Msg: fmt.Sprintf("stream creation timed out after %s", s.cfg.CreateTimeout), Err: context.DeadlineExceeded}
	}
	if err != nil {
		callCancel()
		if st, ok := status.FromError(err); ok && st.Code() == codes.Unavailable && s.cfg.HandshakeError != nil {
			if e := untrusted(s.cfg.HandshakeError()); e != nil {
				e.Code = codes.Unavailable
				return nil, e
			}
		}
		return nil, err
	}
	for _, h := range s.hooks.opened {
		h.OnCallOpened(id, time.Since(start))
	}
	return &conn{
		s: s, rpc: rpc, call: call, cancel: callCancel, id: id,
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}, nil
}

func (s *Stream) handshake(ctx context.Context) (grpc.BidiStreamingClient[wire.EphemeralStreamRequest, wire.EphemeralStreamResponse], string, error) {
	rpc, err := s.client.EphemeralStream(ctx, grpc.ForceCodecV2(newCodec()))
	if err != nil {
		return nil, "", err
	}
	create := &wire.EphemeralStreamRequest{Payload: &wire.EphemeralStreamRequest_CreateStream{
		CreateStream: &wire.CreateIngestStreamRequest{
			TableName:       &s.cfg.Table,
			DescriptorProto: s.cfg.Descriptor,
			RecordType:      wire.RecordType_PROTO.Enum(),
		},
	}}
	// On io.EOF the server already ended the call: Recv reports its status.
	if err := rpc.Send(create); err != nil && !errors.Is(err, io.EOF) {
		return nil, "", err
	}
	resp, err := rpc.Recv()
	if err != nil {
		return nil, "", err
	}
	cr := resp.GetCreateStreamResponse()
	if cr == nil || cr.GetStreamId() == "" {
		return nil, "", &Error{Kind: KindConnection, Retryable: true,
			Msg: fmt.Sprintf("first response is %T, not a create_stream_response with a stream id", resp.GetPayload()), Err: ErrProtocol}
	}
	return rpc, cr.GetStreamId(), nil
}

// serve runs one call until it ends. It reports why it ended and whether
// the server acknowledged anything on it.
func (s *Stream) serve(c *conn) (*Error, bool) {
	s.mu.Lock()
	s.conn = c
	s.serverID = c.id
	s.stats.Opens++
	c.lastProgress = time.Now()
	c.ackTimer = time.AfterFunc(s.cfg.AckTimeout, c.checkAck)
	c.timerArmed = true
	s.mu.Unlock()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		c.sendLoop()
	}()
	go func() {
		defer wg.Done()
		c.recvLoop()
	}()
	<-c.done
	c.cancel()
	wg.Wait()

	s.mu.Lock()
	c.ackTimer.Stop()
	if c.drainTimer != nil {
		c.drainTimer.Stop()
	}
	s.conn = nil
	err, acked := c.err, c.acked > 0
	if err != nil {
		s.stats.CallFailures++
	}
	var failed []*request
	rejected := isRejection(err) && c.sentIdx > 0
	if rejected {
		failed = append(failed, s.rejectLocked(c.sentIdx, err))
	}
	failed = s.dropAbandonedLocked(failed)
	if len(failed) > 0 {
		s.checkWaitersLocked()
		s.wakeWaitersLocked()
	}
	s.mu.Unlock()
	s.finish(failed, false)
	for _, h := range s.hooks.ended {
		if err == nil {
			h.OnCallEnded(nil)
		} else {
			h.OnCallEnded(err)
		}
	}
	if rejected {
		s.cfg.Logger.Warn("zerobus request rejected", "table", s.cfg.Table, "records", failed[0].count(), "err", err)
		// The stream goes on: the requests behind the rejected one are
		// written again on a new call.
		return nil, true
	}
	return err, acked
}

// isRejection reports whether a call ended because the server refused the
// data: a non-retryable transmission status (InvalidArgument, OutOfRange,
// Unimplemented).
func isRejection(e *Error) bool {
	return e != nil && e.Kind == KindTransmission && !e.Retryable && e.Code != codes.OK
}

// rejectLocked fails the request the server rejected, given that the call
// ended with a rejection while inFlight requests were written on it and
// unacknowledged. The server fails a call at its first bad request after
// acknowledging every request before it, and ingests nothing after it
// (see the stream semantics in internal/wire's doc.go): the bad one is the oldest unacknowledged request,
// and neither it nor those behind it were ingested by this call. They stay
// queued and are written again on the next call; it fails, landed on no call
// but earlier ones.
func (s *Stream) rejectLocked(inFlight int, e *Error) *request {
	for _, r := range s.pending[:inFlight] {
		r.voided++
	}
	r := s.pending[0]
	s.pending[0] = nil
	s.pending = s.pending[1:]
	s.queued -= r.bytes
	r.resolved = true
	r.err = &Error{Kind: e.Kind, Code: e.Code, Msg: "request rejected by the server", Err: e.Err}
	s.stats.RequestsFailed++
	s.stats.RecordsFailed += int64(r.count())
	return r
}

// sendLoop writes pending requests in order, numbering them from 0 on this
// call, and half-closes once the stream is closing with nothing left.
func (c *conn) sendLoop() {
	s := c.s
	for {
		s.mu.Lock()
		if c.ended {
			s.mu.Unlock()
			return
		}
		if !c.draining && !c.halfClosed && c.sentIdx < len(s.pending) {
			r := s.pending[c.sentIdx]
			r.wireOff = c.acked + int64(c.sentIdx)
			c.sentIdx++
			c.written += r.bytes
			s.wakeWaitersLocked()
			replay := r.attempts > 0
			r.attempts++
			if len(s.hooks.reqAcked) > 0 {
				r.writtenAt = time.Now()
			}
			if c.sentIdx == 1 {
				c.lastProgress = time.Now()
				if !c.timerArmed {
					c.ackTimer.Reset(s.cfg.AckTimeout)
					c.timerArmed = true
				}
			}
			s.stats.RequestsWritten++
			s.stats.RecordsWritten += int64(r.count())
			if replay {
				s.stats.ReplayedRequests++
				s.stats.ReplayedRecords += int64(r.count())
			}
			var err error
			switch {
			case c.call != nil:
				s.mu.Unlock()
				err = c.call.Send(r.payload, r.wireOff)
			case r.frames != nil:
				// The write holds the frames until gRPC lets go of them.
				r.batch.holds.Add(1)
				w := &framedWrite{batch: r.batch, offset: r.wireOff, frames: r.frames}
				s.mu.Unlock()
				if err = c.rpc.SendMsg(w); !w.marshalled {
					r.batch.unhold()
				}
			default:
				s.mu.Unlock()
				err = c.rpc.Send(r.msg)
			}
			if err != nil {
				// On io.EOF the call is over: the receiver reports its status.
				if !errors.Is(err, io.EOF) {
					c.end(classify("send", err))
				}
				return
			}
			for _, h := range s.hooks.written {
				h.OnRequestWritten(r.count(), r.bytes, replay)
			}
			continue
		}
		if s.closing && len(s.pending) == 0 && !c.halfClosed {
			c.halfClosed = true
			s.mu.Unlock()
			if c.call != nil {
				_ = c.call.CloseSend() // a failure shows on the receive side
			} else {
				_ = c.rpc.CloseSend()
			}
			return
		}
		s.mu.Unlock()
		select {
		case <-c.wake:
		case <-c.done:
			return
		}
	}
}

// recvLoop reads acks and signals until the call ends.
func (c *conn) recvLoop() {
	if c.call != nil {
		c.recvEvents()
		return
	}
	for {
		resp, err := c.rpc.Recv()
		if err != nil {
			c.recvEnded(err)
			return
		}
		switch p := resp.GetPayload().(type) {
		case *wire.EphemeralStreamResponse_IngestRecordResponse:
			if p.IngestRecordResponse.DurabilityAckUpToOffset == nil {
				c.end(&Error{Kind: KindConnection, Retryable: true, Msg: "ack without durability_ack_up_to_offset", Err: ErrProtocol})
				continue
			}
			c.ack(p.IngestRecordResponse.GetDurabilityAckUpToOffset())
		case *wire.EphemeralStreamResponse_CloseStreamSignal:
			c.closeSignal(p.CloseStreamSignal.GetDuration().AsDuration())
		default:
			c.end(&Error{Kind: KindConnection, Retryable: true, Msg: fmt.Sprintf("unexpected response %T", p), Err: ErrProtocol})
		}
	}
}

// recvEvents is recvLoop for the call of another transport.
func (c *conn) recvEvents() {
	for {
		ev, err := c.call.Recv()
		switch {
		case err != nil:
			c.recvEnded(err)
			return
		case ev.Close:
			c.closeSignal(ev.CloseAfter)
		default:
			c.ack(ev.AckUpTo)
		}
	}
}

// recvEnded ends the call after a failed receive: io.EOF is the server
// ending it with OK, a failure if requests were still in flight.
func (c *conn) recvEnded(err error) {
	if !errors.Is(err, io.EOF) {
		c.end(classify("receive", err))
		return
	}
	s := c.s
	s.mu.Lock()
	if c.sentIdx > 0 {
		c.endLocked(&Error{Kind: KindConnection, Retryable: true,
			Msg: fmt.Sprintf("call ended with %d requests unacknowledged", c.sentIdx), Err: ErrCallEnded})
	} else {
		c.endLocked(nil)
	}
	s.mu.Unlock()
}

// ack resolves every request up to wire offset w (cumulative).
func (c *conn) ack(w int64) {
	s := c.s
	s.mu.Lock()
	if c.ended {
		s.mu.Unlock()
		return
	}
	last := c.acked - 1
	switch {
	case w == last:
		s.mu.Unlock()
		return
	case w < last:
		c.endLocked(&Error{Kind: KindConnection, Retryable: true,
			Msg: fmt.Sprintf("ack for offset %d after ack for offset %d", w, last), Err: ErrProtocol})
		s.mu.Unlock()
		return
	case w >= c.acked+int64(c.sentIdx):
		c.endLocked(&Error{Kind: KindConnection, Retryable: true,
			Msg: fmt.Sprintf("ack for offset %d beyond the highest offset written, %d", w, c.acked+int64(c.sentIdx)-1), Err: ErrProtocol})
		s.mu.Unlock()
		return
	}
	n := int(w - last)
	done := append(c.scratch[:0], s.pending[:n]...)
	clear(s.pending[:n])
	s.pending = s.pending[n:]
	records, nbytes := 0, 0
	for _, r := range done {
		r.resolved = true
		records += r.count()
		nbytes += r.bytes
		if r.attempts-r.voided > 1 {
			s.stats.AckedAfterReplay++
			s.stats.RecordsMaybeDup += int64(r.count())
		}
	}
	s.stats.RequestsAcked += int64(n)
	s.stats.RecordsAcked += int64(records)
	c.sentIdx -= n
	c.written -= nbytes
	s.queued -= nbytes
	c.acked += int64(n)
	c.lastProgress = time.Now()
	if c.draining && c.sentIdx == 0 {
		c.endLocked(nil)
	}
	if s.closing && len(s.pending) == 0 {
		c.wakeSender()
	}
	s.checkWaitersLocked()
	s.mu.Unlock()
	s.finish(done, true)
	clear(done)
	c.scratch = done[:0]
}

// closeSignal obeys a CloseStreamSignal: write nothing new, keep reading
// acks, and end the call once nothing is in flight or d has passed.
func (c *conn) closeSignal(d time.Duration) {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.ended || c.draining {
		return
	}
	c.draining = true
	s.stats.CloseSignals++
	if c.sentIdx == 0 {
		c.endLocked(nil)
		return
	}
	c.drainTimer = time.AfterFunc(max(d, 0), func() { c.end(nil) })
}

// ackLimitLocked is how long the call may go without an ack: AckTimeout,
// or less while its oldest request in flight was abandoned.
func (c *conn) ackLimitLocked() time.Duration {
	s := c.s
	if c.sentIdx > 0 && s.pending[0].abandoned {
		return min(abandonedAckTimeout, s.cfg.AckTimeout)
	}
	return s.cfg.AckTimeout
}

// armAckTimerLocked makes the ack timer fire when the current limit is
// reached.
func (c *conn) armAckTimerLocked() {
	c.ackTimer.Reset(max(c.ackLimitLocked()-time.Since(c.lastProgress), 0))
	c.timerArmed = true
}

// checkAck ends the call if nothing was acknowledged for AckTimeout (less
// when the oldest request was abandoned) while requests were in flight.
func (c *conn) checkAck() {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.ended || c.sentIdx == 0 {
		c.timerArmed = false
		return
	}
	limit := c.ackLimitLocked()
	idle := time.Since(c.lastProgress)
	if idle >= limit {
		msg := fmt.Sprintf("nothing acknowledged for %s with %d requests in flight", limit, c.sentIdx)
		if limit < s.cfg.AckTimeout {
			msg += ", the oldest abandoned by its caller"
		}
		c.endLocked(&Error{Kind: KindConnection, Retryable: true, Msg: msg, Err: ErrNoAck})
		return
	}
	c.ackTimer.Reset(limit - idle)
}

package zerobustest

import (
	"context"
	"errors"
	"io"
	"runtime/debug"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/semaphore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/pyzerobus/pyzerobus/zbwrap/internal/wire"
	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest/internal/lake"
)

const (
	// HeaderTableName is the call header naming the stream's table.
	HeaderTableName = "x-databricks-zerobus-table-name"

	queueLen   = 1024     // requests between the reader and the acknowledger of a call
	callBudget = 64 << 20 // bytes of one call's requests waiting to be durable

	// latencyQueueLen is the queue of a call with an ack latency: requests
	// wait there for their delay, so at most this many are in flight per
	// stream before the server stops reading it (about 80,000 requests/s at
	// 200 ms).
	latencyQueueLen = 16384
)

// zerobusService serves databricks.zerobus.Zerobus.
type zerobusService struct {
	wire.UnimplementedZerobusServer
	s *Server
}

func (z zerobusService) EphemeralStream(st wire.Zerobus_EphemeralStreamServer) error {
	return z.s.serveStream(st)
}

// recoverStream turns a panic of a handler into Internal instead of a crash.
func (s *Server) recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in stream handler", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
			err = status.Errorf(codes.Internal, "internal error: %v", r)
		}
	}()
	return h(srv, ss)
}

// serveStream runs one EphemeralStream call.
func (s *Server) serveStream(st grpc.ServerStream) error {
	// Rust-core clients wait for the response headers before they send
	// create_stream: send them at once.
	if err := st.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	s.testHook("serve")
	if s.isClosing() {
		return errShuttingDown
	}
	c, err := s.openCall(st)
	if err != nil {
		s.log.Debug("stream refused", "code", status.Code(err), "reason", status.Convert(err).Message())
		return err
	}
	return c.run()
}

// bearer returns the token of an "authorization: Bearer TOKEN" header.
func bearer(md metadata.MD) (string, bool) {
	v := md.Get("authorization")
	if len(v) == 0 {
		return "", false
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(v[0]), " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "bearer") || tok == "" {
		return "", false
	}
	return tok, true
}

func kindName(k payloadKind) string {
	switch k {
	case payloadRecord:
		return "ingest_record"
	case payloadBatch:
		return "ingest_record_batch"
	}
	return "an empty request"
}

// openCall checks the call's credentials and runs the create_stream
// handshake.
func (s *Server) openCall(st grpc.ServerStream) (*call, error) {
	s.testHook("open")
	hdr, err := s.authorize(st.Context())
	if err != nil {
		return nil, err
	}

	// The reader goroutine receives the first request too, so that the
	// handler can give up on a call that never sends it.
	in := &inbound{keep: s.lake != nil}
	first := make(chan error, 1)
	start := make(chan *call, 1)
	s.readers.Add(1)
	go s.reader(st, in, first, start)
	c, err := s.handshake(st, in, hdr, first)
	if err != nil {
		close(start)
		return nil, err
	}
	start <- c
	return c, nil
}

// authorize checks the call's token and table header and returns the
// table it names.
func (s *Server) authorize(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	tok, ok := bearer(md)
	if !ok {
		return "", status.Error(codes.Unauthenticated, "missing authorization header with a Bearer token")
	}
	tokTable, problem := s.tokens.check(tok)
	if problem != "" {
		return "", status.Error(codes.Unauthenticated, problem)
	}
	var hdr string
	if v := md.Get(HeaderTableName); len(v) > 0 {
		hdr = canon(strings.TrimSpace(v[0]))
	}
	if hdr == "" {
		return "", status.Errorf(codes.InvalidArgument, "missing %s header", HeaderTableName)
	}
	if tokTable != hdr {
		if tokTable == "" {
			return "", status.Error(codes.PermissionDenied, "the token grants no table (it was issued without authorization_details)")
		}
		return "", status.Errorf(codes.PermissionDenied, "the token grants table %s, not %s", tokTable, hdr)
	}
	return hdr, nil
}

// reader receives the requests of a call: the first one for the handshake,
// then, once the handshake hands it the call, the rest.
func (s *Server) reader(st grpc.ServerStream, in *inbound, first chan<- error, start <-chan *call) {
	defer s.readers.Done()
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in stream reader", "panic", r, "stack", string(debug.Stack()))
			select {
			case first <- status.Errorf(codes.Internal, "internal error: %v", r):
			default:
			}
		}
	}()
	s.testHook("first")
	err := st.RecvMsg(in)
	first <- err
	if err != nil {
		return
	}
	if c, ok := <-start; ok {
		c.readLoop()
	}
}

// handshake waits for create_stream and opens the stream it asks for.
func (s *Server) handshake(st grpc.ServerStream, in *inbound, hdr string, first <-chan error) (*call, error) {
	ctx := st.Context()
	timer := time.NewTimer(s.cfg.createTimeout)
	defer timer.Stop()
	select {
	case err := <-first:
		if err == io.EOF {
			return nil, status.Error(codes.InvalidArgument, "the call ended before create_stream")
		}
		if err != nil {
			return nil, err
		}
	case <-timer.C:
		return nil, status.Errorf(codes.DeadlineExceeded, "no create_stream within %v", s.cfg.createTimeout)
	case <-s.closing:
		return nil, errShuttingDown
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	switch {
	case in.size > MaxRequestBytes:
		return nil, tooLarge(in.size)
	case in.err != nil:
		return nil, status.Errorf(codes.InvalidArgument, "first request: %v", in.err)
	case in.kind != payloadCreate:
		return nil, status.Errorf(codes.InvalidArgument, "the first request must be create_stream, got %s", kindName(in.kind))
	}
	cr := in.create
	name := cr.GetTableName()
	if err := validTableName(name); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "create_stream: %v", err)
	}
	name = canon(name)
	if name != hdr {
		return nil, status.Errorf(codes.InvalidArgument, "create_stream table %s does not match the %s header %s", name, HeaderTableName, hdr)
	}
	json, desc, err := parseCreate(cr, s.lake == nil)
	if err != nil {
		return nil, err
	}
	if f, ok := s.faults.onCreate(name); ok {
		s.counter(name).faultsFired.Add(1)
		s.log.Info("fault fired", "kind", f.Kind, "table", name)
		return nil, status.Error(f.code(), f.message())
	}
	var bind *lake.Binding
	switch {
	case s.lake != nil:
		bind, err = s.lake.Bind(name, desc, s.cfg.autoCreate)
		var se *lake.SchemaError
		switch {
		case errors.Is(err, lake.ErrTableNotFound):
			return nil, status.Errorf(codes.NotFound, "table %s does not exist", name)
		case errors.As(err, &se):
			return nil, status.Errorf(codes.InvalidArgument, "descriptor does not match table %s: %v", name, se)
		case errors.Is(err, lake.ErrInvalidTableName):
			return nil, status.Errorf(codes.InvalidArgument, "create_stream: %v", err)
		case err != nil:
			return nil, status.Errorf(codes.Internal, "bind table %s: %v", name, err)
		}
	case !s.cfg.autoCreate && !s.tableExists(name):
		return nil, status.Errorf(codes.NotFound, "table %s does not exist", name)
	}

	c := s.newCall(st, name, "proto")
	c.bind, c.json, c.in = bind, json, in
	c.ackVal = new(int64)
	c.ackResp = &wire.EphemeralStreamResponse{Payload: &wire.EphemeralStreamResponse_IngestRecordResponse{
		IngestRecordResponse: &wire.IngestRecordResponse{DurabilityAckUpToOffset: c.ackVal},
	}}
	resp := &wire.EphemeralStreamResponse{Payload: &wire.EphemeralStreamResponse_CreateStreamResponse{
		CreateStreamResponse: &wire.CreateIngestStreamResponse{StreamId: proto.String(c.id)},
	}}
	if err := st.SendMsg(resp); err != nil {
		return nil, err
	}
	c.tc.streamsOpened.Add(1)
	s.register(c)
	s.log.Info("stream opened", "stream_id", c.id, "table", name, "json", json)
	return c, nil
}

// newCall makes the call of a stream that passed its handshake.
func (s *Server) newCall(st grpc.ServerStream, name, transport string) *call {
	now := time.Now()
	qlen := queueLen
	if s.cfg.limits.ackLatency.Median > 0 {
		qlen = latencyQueueLen
	}
	ctx := st.Context()
	c := &call{
		s: s, st: st, ctx: ctx, table: name, id: uuid.NewString(), tc: s.counter(name),
		q:       make(chan item, qlen),
		done:    make(chan struct{}),
		budget:  semaphore.NewWeighted(callBudget),
		lastAck: -1,
		quota:   newQuota(s.cfg.limits.streamQuota, now),
	}
	c.sc = &streamCounters{id: c.id, table: name, transport: transport, opened: now}
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get("user-agent")) > 0 {
		c.sc.userAgent = md.Get("user-agent")[0]
	}
	if l := s.cfg.limits.ackLatency; l.Median > 0 {
		c.lat = &latencySlots{lat: l}
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		c.peer = p.Addr.String()
	}
	return c
}

func tooLarge(n int) error {
	return status.Errorf(codes.InvalidArgument, "request of %d bytes is over the limit of %d bytes (10 MiB)", n, MaxRequestBytes)
}

// parseCreate checks the record type and descriptor of create_stream.
// JSON streams are served in discard mode only (nothing is decoded there).
func parseCreate(cr *wire.CreateIngestStreamRequest, discard bool) (json bool, desc *descriptorpb.DescriptorProto, err error) {
	if cr.RecordType == nil {
		if v, ok := unknownVarint(cr.ProtoReflect().GetUnknown(), 4); ok {
			return false, nil, status.Errorf(codes.Unimplemented, "create_stream: record_type %d is not served; use PROTO", v)
		}
		return false, nil, status.Error(codes.InvalidArgument, "create_stream: record_type is required (PROTO)")
	}
	switch cr.GetRecordType() {
	case wire.RecordType_PROTO:
	case wire.RecordType_JSON:
		if !discard {
			return false, nil, status.Error(codes.Unimplemented, "create_stream: JSON records are not served by this server; use PROTO")
		}
		return true, nil, nil
	case wire.RecordType_RECORD_TYPE_UNSPECIFIED:
		return false, nil, status.Error(codes.InvalidArgument, "create_stream: record_type RECORD_TYPE_UNSPECIFIED; want PROTO")
	default:
		return false, nil, status.Errorf(codes.Unimplemented, "create_stream: record_type %d is not served; use PROTO", cr.GetRecordType())
	}
	if len(cr.GetDescriptorProto()) == 0 {
		return false, nil, status.Error(codes.InvalidArgument, "create_stream: descriptor_proto is required for PROTO records")
	}
	desc = new(descriptorpb.DescriptorProto)
	if err := proto.Unmarshal(cr.GetDescriptorProto(), desc); err != nil {
		return false, nil, status.Errorf(codes.InvalidArgument, "create_stream: descriptor_proto is not a serialized DescriptorProto: %v", err)
	}
	if n := len(desc.GetField()); n > MaxColumns {
		return false, nil, status.Errorf(codes.InvalidArgument, "create_stream: descriptor has %d fields, more than the limit of %d columns", n, MaxColumns)
	}
	return false, desc, nil
}

// unknownVarint finds varint field num among unknown fields.
func unknownVarint(b []byte, num protowire.Number) (uint64, bool) {
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return 0, false
		}
		b = b[l:]
		if n == num && typ == protowire.VarintType {
			v, _ := protowire.ConsumeVarint(b)
			return v, true
		}
		l = protowire.ConsumeFieldValue(n, typ, b)
		if l < 0 {
			return 0, false
		}
		b = b[l:]
	}
	return 0, false
}

// call is one open stream. Its reader goroutine receives, checks and
// stores requests and queues them; the handler goroutine (run) waits for
// them to be durable, in order, and sends cumulative acknowledgements, so
// requests keep arriving while earlier ones are being fsynced.
type call struct {
	s      *Server
	st     grpc.ServerStream
	ctx    context.Context
	table  string
	id     string
	tc     *tableCounters
	sc     *streamCounters
	quota  quota         // the stream quota
	lat    *latencySlots // nil: no added ack latency
	bind   *lake.Binding // nil in discard mode
	json   bool
	arrow  *lake.ArrowBinding // Arrow Flight streams (DoPut); nil in discard mode
	flight bool               // an Arrow Flight stream: acknowledged with PutResult
	peer   string
	in     *inbound
	next   int64 // the offset the reader expects
	q      chan item
	done   chan struct{} // closed when the handler returns
	budget *semaphore.Weighted

	// Handler state.
	ackResp  *wire.EphemeralStreamResponse
	ackVal   *int64
	lastAck  int64
	acked    int64 // records acknowledged (Arrow Flight: ack_up_to_records)
	delay    time.Duration
	stopped  bool
	endTimer *time.Timer
}

type ctlKind uint8

const (
	ctlData   ctlKind = iota
	ctlEnd            // the reader stopped: err is the call's status (nil: half-close)
	ctlSignal         // send a CloseStreamSignal of d and end the call after d
	ctlDelay          // delay later acknowledgements by d
	ctlStop           // send no more acknowledgements
)

// errEndCall ends a call with OK (fault end_call).
var errEndCall = errors.New("end call")

// item is a queued request (or a control message) of a call.
type item struct {
	ctl     ctlKind
	last    int64 // offset of the request
	n       int   // records in it
	weight  int64 // bytes held from the call budget
	at      time.Time
	durable <-chan error // nil: nothing to wait for
	derr    error        // the durable result, once received
	err     error
	d       time.Duration
}

func (c *call) push(it item) bool {
	select {
	case c.q <- it:
		return true
	case <-c.done:
		return false
	}
}

// run serves the call until it ends and returns its status.
func (c *call) run() error {
	s := c.s
	s.streamsActive.Add(1)
	defer s.streamsActive.Add(-1)
	defer s.unregister(c)
	defer func() {
		if c.endTimer != nil {
			c.endTimer.Stop()
		}
	}()
	defer close(c.done)
	s.testHook("run")
	err := c.ackLoop()
	if errors.Is(err, errEndCall) {
		err = nil
	}
	s.log.Info("stream closed", "stream_id", c.id, "table", c.table, "acked_up_to", c.lastAck,
		"code", status.Code(err), "reason", status.Convert(err).Message())
	return err
}

// readLoop receives the requests of the call until it ends.
func (c *call) readLoop() {
	defer func() {
		if r := recover(); r != nil {
			c.s.log.Error("panic in stream reader", "stream_id", c.id, "panic", r, "stack", string(debug.Stack()))
			c.push(item{ctl: ctlEnd, err: status.Errorf(codes.Internal, "internal error: %v", r)})
		}
	}()
	for {
		err := c.st.RecvMsg(c.in)
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			c.push(item{ctl: ctlEnd, err: err})
			return
		}
		c.s.testHook("request")
		if !c.handle() {
			return
		}
	}
}

// fail ends the call with a status. It returns false (stop reading).
func (c *call) fail(code codes.Code, format string, args ...any) bool {
	c.push(item{ctl: ctlEnd, err: status.Errorf(code, format, args...)})
	return false
}

// handle checks, stores and queues the request in c.in. It returns false
// when the reader must stop.
func (c *call) handle() bool {
	in := c.in
	switch {
	case in.size > MaxRequestBytes:
		c.push(item{ctl: ctlEnd, err: tooLarge(in.size)})
		return false
	case in.err != nil:
		return c.fail(codes.InvalidArgument, "request at offset %d: %v", c.next, in.err)
	case in.kind == payloadNone:
		return c.fail(codes.InvalidArgument, "request at offset %d carries no payload", c.next)
	case in.kind == payloadCreate:
		return c.fail(codes.InvalidArgument, "create_stream sent twice")
	case !in.hasOffset:
		return c.fail(codes.InvalidArgument, "%s without offset_id (expected %d)", kindName(in.kind), c.next)
	case in.offset != c.next:
		return c.fail(codes.InvalidArgument, "offset_id out of order: expected %d, got %d", c.next, in.offset)
	case !in.hasData && in.kind == payloadRecord:
		return c.fail(codes.InvalidArgument, "ingest_record at offset %d carries no record", in.offset)
	case !in.hasData:
		return c.fail(codes.InvalidArgument, "ingest_record_batch at offset %d carries no batch", in.offset)
	case in.json != c.json:
		return c.fail(codes.InvalidArgument, "offset %d: %s records on a %s stream", in.offset, encName(in.json), encName(c.json))
	case in.bigIndex >= 0:
		return c.fail(codes.InvalidArgument, "offset %d: record %d is %d bytes, over the limit of %d bytes",
			in.offset, in.bigIndex, in.bigSize, MaxRecordBytes)
	}
	if !c.throttle(in.size, in.n, in.offset) {
		return false
	}
	now := c.received(in.n, in.size)
	if fired := c.s.faults.onRecords(c.table, in.n); fired != nil && c.applyFaults(fired, in.offset) {
		return false
	}
	it := item{last: in.offset, n: in.n, at: now}
	if c.bind != nil && in.n > 0 {
		if err := c.bind.Check(in.records); err != nil {
			var re *lake.RecordError
			if errors.As(err, &re) {
				return c.fail(codes.InvalidArgument, "offset %d: record %d: column %s: %s", in.offset, re.Index, re.Column, re.Reason)
			}
			return c.fail(codes.InvalidArgument, "offset %d: %v", in.offset, err)
		}
		it.weight = min(int64(in.size), callBudget)
		if err := c.budget.Acquire(c.ctx, it.weight); err != nil {
			return false // the call is over
		}
		it.durable = c.bind.Append(in.records)
		in.records = nil // the log owns them now
	}
	c.next++
	if c.lat != nil {
		c.lat.add(it.at)
	}
	return c.push(it)
}

// received counts a request of n records and size bytes taken in, and
// returns the time.
func (c *call) received(n, size int) time.Time {
	now := time.Now()
	c.tc.recordsReceived.Add(int64(n))
	c.tc.bytesReceived.Add(int64(size))
	c.tc.rate.add(now, n, size)
	c.sc.recordsReceived.Add(int64(n))
	c.sc.bytesReceived.Add(int64(size))
	c.sc.rate.add(now, n, size)
	return now
}

// throttle applies the stream and table quotas to a request: it
// waits (not reading the call) until the quotas allow it, or, with
// QuotaReject, ends the call with ResourceExhausted when a quota is in
// debt. It returns false when the reader must stop.
func (c *call) throttle(size, n int, offset int64) bool {
	if c.quota.none() && c.tc.quota.none() {
		return true
	}
	now := time.Now()
	if c.s.cfg.limits.quotaMode == QuotaReject {
		which, limit := "stream", c.s.cfg.limits.streamQuota
		d := c.quota.debt(now)
		if d == 0 {
			which, limit = "table "+c.table, c.s.cfg.limits.tableQuota
			d = c.tc.quota.debt(now)
		}
		if d > 0 {
			c.sc.rejected.Add(1)
			c.s.log.Info("quota exceeded", "stream_id", c.id, "table", c.table, "quota", which, "offset", offset)
			return c.fail(codes.ResourceExhausted, "%s quota exceeded (per second: %s): request at offset %d refused; retry in %v",
				which, limit, offset, d.Round(time.Millisecond))
		}
		c.quota.take(now, size, n)
		c.tc.quota.take(now, size, n)
		return true
	}
	wait := max(c.quota.take(now, size, n), c.tc.quota.take(now, size, n))
	if wait <= 0 {
		return true
	}
	c.sc.waitingSince.Store(now.UnixNano())
	t := time.NewTimer(wait)
	defer t.Stop()
	ok := true
	select {
	case <-t.C:
	case <-c.ctx.Done():
		ok = false
	case <-c.s.closing:
		ok = false
	}
	held := int64(time.Since(now))
	c.sc.throttled.Add(held)
	c.sc.waitingSince.Store(0)
	c.tc.throttled.Add(held)
	return ok
}

func encName(json bool) string {
	if json {
		return "JSON"
	}
	return "PROTO"
}

// applyFaults applies the faults fired by a request and reports whether
// they end the call.
func (c *call) applyFaults(fired []Fault, offset int64) bool {
	var end error
	drop := false
	for _, f := range fired {
		c.tc.faultsFired.Add(1)
		c.s.log.Info("fault fired", "kind", f.Kind, "table", c.table, "stream_id", c.id, "offset", offset)
		switch f.Kind {
		case FaultEndCall:
			if f.Signal {
				c.push(item{ctl: ctlSignal, d: f.SignalDuration})
			} else if end == nil {
				end = errEndCall
			}
		case FaultFailCall:
			if end == nil {
				end = status.Error(f.code(), f.message())
			}
		case FaultDelayAcks:
			c.push(item{ctl: ctlDelay, d: f.Delay})
		case FaultStopAcks:
			c.push(item{ctl: ctlStop})
		case FaultExpireTokens:
			c.s.tokens.expireAll()
		case FaultRevokeTokens:
			c.s.tokens.revokeAll()
		case FaultDropConnection:
			drop = true
		}
	}
	if drop {
		c.s.grpcLn.drop(c.peer)
		end = status.Error(codes.Unavailable, "connection dropped by an injected fault")
	}
	if end != nil {
		c.push(item{ctl: ctlEnd, err: end})
		return true
	}
	return false
}

// ackLoop waits for queued requests to be durable, in order, and
// acknowledges them, coalescing what is already durable into one
// acknowledgement. It returns the status that ends the call.
func (c *call) ackLoop() error {
	var next item
	have := false
	for {
		// Ending the call comes first; finish still acknowledges what is
		// queued and durable.
		select {
		case <-c.endC():
			return c.finish(errEndCall, next, have)
		case <-c.s.closing:
			return c.finish(errShuttingDown, next, have)
		default:
		}
		if !have {
			select {
			case next = <-c.q:
			case <-c.endC():
				return c.finish(errEndCall, next, false)
			case <-c.s.closing:
				return c.finish(errShuttingDown, next, false)
			case <-c.ctx.Done():
				return status.FromContextError(c.ctx.Err()).Err()
			}
		}
		have = false
		it := next
		if it.ctl != ctlData {
			if end, err := c.control(it); end {
				return err
			}
			continue
		}
		if err := c.await(&it); err != nil {
			return err
		}
		upTo, n := it.last, it.n
		c.release(&it)
	coalesce:
		for {
			select {
			case next = <-c.q:
				if next.ctl != ctlData || !c.ready(&next) {
					have = true
					break coalesce
				}
				if next.derr != nil {
					return durableFailed(next.derr)
				}
				upTo, n = next.last, n+next.n
				c.release(&next)
			default:
				break coalesce
			}
		}
		if err := c.ack(upTo, n); err != nil {
			return err
		}
	}
}

func (c *call) endC() <-chan time.Time {
	if c.endTimer == nil {
		return nil
	}
	return c.endTimer.C
}

// control applies a control item; end reports that the call is over.
func (c *call) control(it item) (end bool, err error) {
	switch it.ctl {
	case ctlEnd:
		if it.err == nil && c.stopped {
			// Acknowledgements stopped: keep the call open after the
			// client's half-close, as a stuck server would.
			select {
			case <-c.ctx.Done():
				return true, status.FromContextError(c.ctx.Err()).Err()
			case <-c.s.closing:
				return true, errShuttingDown
			}
		}
		return true, it.err
	case ctlSignal:
		if c.flight {
			// Arrow Flight has no CloseStreamSignal: the call just ends
			// after the duration.
			if c.endTimer == nil {
				c.endTimer = time.NewTimer(it.d)
			}
			return false, nil
		}
		sig := &wire.EphemeralStreamResponse{Payload: &wire.EphemeralStreamResponse_CloseStreamSignal{
			CloseStreamSignal: &wire.CloseStreamSignal{Duration: durationpb.New(it.d)},
		}}
		if err := c.st.SendMsg(sig); err != nil {
			return true, err
		}
		if c.endTimer == nil {
			c.endTimer = time.NewTimer(it.d)
		}
	case ctlDelay:
		c.delay = it.d
	case ctlStop:
		c.stopped = true
	}
	return false, nil
}

// ready reports without blocking whether a queued request may be
// acknowledged now.
func (c *call) ready(it *item) bool {
	if it.durable != nil {
		select {
		case it.derr = <-it.durable:
			it.durable = nil
		default:
			return false
		}
	}
	return c.wait(it, time.Now()) <= 0
}

// wait returns how long a durable request must still wait for its
// acknowledgement: the added latency and delay_acks.
func (c *call) wait(it *item, now time.Time) time.Duration {
	w := c.lat.wait(it.last, now)
	if c.delay > 0 {
		w = max(w, c.delay-now.Sub(it.at))
	}
	return w
}

// await blocks until a queued request may be acknowledged.
func (c *call) await(it *item) error {
	if it.durable != nil {
		select {
		case it.derr = <-it.durable:
			it.durable = nil
		case <-c.ctx.Done():
			return status.FromContextError(c.ctx.Err()).Err()
		}
	}
	if it.derr != nil {
		return durableFailed(it.derr)
	}
	for {
		wait := c.wait(it, time.Now())
		if wait <= 0 {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
			return status.FromContextError(c.ctx.Err()).Err()
		case <-c.s.closing:
			t.Stop()
			return errShuttingDown
		}
	}
}

func durableFailed(err error) error {
	return status.Errorf(codes.Unavailable, "records could not be made durable: %v", err)
}

func (c *call) release(it *item) {
	if it.weight > 0 {
		c.budget.Release(it.weight)
		it.weight = 0
	}
}

// ack sends a cumulative acknowledgement covering n more records.
func (c *call) ack(upTo int64, n int) error {
	if c.stopped {
		return nil
	}
	if c.flight {
		if err := c.st.SendMsg(flightAck(upTo, c.acked+int64(n))); err != nil {
			return err
		}
	} else {
		*c.ackVal = upTo
		if err := c.st.SendMsg(c.ackResp); err != nil {
			return err
		}
	}
	c.lastAck = upTo
	c.acked += int64(n)
	c.tc.recordsAcked.Add(int64(n))
	c.sc.recordsAcked.Add(int64(n))
	return nil
}

// finish acknowledges the held item (if have) and what is queued and
// durable, then returns err.
func (c *call) finish(err error, held item, have bool) error {
	upTo, n, any := int64(0), 0, false
	for {
		it := held
		if have {
			have = false
		} else {
			select {
			case it = <-c.q:
			default:
				it.ctl = ctlEnd
			}
		}
		if it.ctl == ctlEnd {
			break
		}
		if it.ctl != ctlData {
			continue
		}
		if e := c.await(&it); e != nil {
			return e
		}
		upTo, n, any = it.last, n+it.n, true
		c.release(&it)
	}
	if any {
		if e := c.ack(upTo, n); e != nil {
			return e
		}
	}
	return err
}

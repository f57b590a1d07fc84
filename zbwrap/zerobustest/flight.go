package zerobustest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest/internal/lake"
)

// flightService serves arrow.flight.protocol.FlightService: DoPut only.
type flightService struct {
	flight.BaseFlightServer
	s *Server
}

func (f *flightService) DoPut(st flight.FlightService_DoPutServer) error {
	return f.s.serveFlight(st)
}

// readyMetadata is the first PutResult of a stream: its setup passed.
const readyMetadata = `{"ack_up_to_offset":-1,"ack_up_to_records":0}`

// flightAck is a cumulative acknowledgement of a DoPut stream.
func flightAck(upTo, records int64) *flight.PutResult {
	b := make([]byte, 0, 64)
	b = append(b, `{"ack_up_to_offset":`...)
	b = strconv.AppendInt(b, upTo, 10)
	b = append(b, `,"ack_up_to_records":`...)
	b = strconv.AppendInt(b, records, 10)
	b = append(b, '}')
	return &flight.PutResult{AppMetadata: b}
}

// flightIn receives a DoPut stream's FlightData, adding up the bytes of
// the messages since the last record batch.
type flightIn struct {
	st    flight.FlightService_DoPutServer
	bytes int
	s     *Server
}

func (r *flightIn) Recv() (*flight.FlightData, error) {
	r.s.testHook("flight recv")
	fd, err := r.st.Recv()
	if err == nil {
		r.bytes += proto.Size(fd)
	}
	return fd, err
}

// take returns the bytes received since the last call.
func (r *flightIn) take() int {
	n := r.bytes
	r.bytes = 0
	return n
}

// flightOpen is what the reader found at the start of a DoPut stream.
type flightOpen struct {
	rdr *flight.Reader
	err error
}

// serveFlight runs one DoPut call.
func (s *Server) serveFlight(st flight.FlightService_DoPutServer) error {
	if err := st.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	s.testHook("serve")
	if s.isClosing() {
		return errShuttingDown
	}
	name, err := s.authorize(st.Context())
	if err != nil {
		s.log.Debug("arrow stream refused", "code", status.Code(err), "reason", status.Convert(err).Message())
		return err
	}
	in := &flightIn{st: st, s: s}
	first := make(chan flightOpen, 1)
	start := make(chan *call, 1)
	s.readers.Add(1)
	go s.flightReader(in, first, start)
	c, err := s.flightHandshake(in, name, first)
	if err != nil {
		close(start)
		s.log.Debug("arrow stream refused", "code", status.Code(err), "reason", status.Convert(err).Message())
		return err
	}
	start <- c
	return c.run()
}

// flightReader reads the schema of a DoPut stream for the handshake, then,
// once the handshake hands it the call, its record batches.
func (s *Server) flightReader(in *flightIn, first chan<- flightOpen, start <-chan *call) {
	defer s.readers.Done()
	var c *call
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in arrow stream reader", "panic", r, "stack", string(debug.Stack()))
			err := status.Errorf(codes.Internal, "internal error: %v", r)
			if c != nil {
				c.push(item{ctl: ctlEnd, err: err})
				return
			}
			select {
			case first <- flightOpen{err: err}:
			default:
			}
		}
	}()
	// Compressed bodies (LZ4 frame, ZSTD) are decompressed by the reader.
	rdr, err := flight.NewRecordReader(in, ipc.WithAllocator(memory.DefaultAllocator))
	first <- flightOpen{rdr: rdr, err: err}
	if err != nil {
		return
	}
	defer rdr.Release()
	c, ok := <-start
	if ok {
		c.flightLoop(rdr, in)
	}
}

// flightHandshake waits for the stream's schema, checks it against the
// table and opens the stream: the ready PutResult.
func (s *Server) flightHandshake(in *flightIn, name string, first <-chan flightOpen) (*call, error) {
	ctx := in.st.Context()
	timer := time.NewTimer(s.cfg.createTimeout)
	defer timer.Stop()
	var open flightOpen
	select {
	case open = <-first:
	case <-timer.C:
		return nil, status.Errorf(codes.DeadlineExceeded, "no Arrow schema within %v", s.cfg.createTimeout)
	case <-s.closing:
		return nil, errShuttingDown
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	if err := open.err; err != nil {
		if errors.Is(err, io.EOF) {
			return nil, status.Error(codes.InvalidArgument, "the call ended before the Arrow schema")
		}
		if st, ok := status.FromError(err); ok {
			return nil, st.Err()
		}
		return nil, status.Errorf(codes.InvalidArgument, "the first FlightData must carry the Arrow schema: %v", err)
	}
	schema := open.rdr.Schema()
	if d := open.rdr.LatestFlightDescriptor(); d != nil && len(d.Path) > 0 {
		if p := canon(strings.Join(d.Path, ".")); p != name {
			return nil, status.Errorf(codes.InvalidArgument, "FlightDescriptor path %s does not match the %s header %s", p, HeaderTableName, name)
		}
	}
	if n := schema.NumFields(); n > MaxColumns {
		return nil, status.Errorf(codes.InvalidArgument, "the Arrow schema has %d fields, more than the limit of %d columns", n, MaxColumns)
	}
	if f, ok := s.faults.onCreate(name); ok {
		s.counter(name).faultsFired.Add(1)
		s.log.Info("fault fired", "kind", f.Kind, "table", name)
		return nil, status.Error(f.code(), f.message())
	}
	var ab *lake.ArrowBinding
	switch {
	case s.lake != nil:
		var err error
		ab, err = s.lake.BindArrow(name, schema, s.cfg.autoCreate)
		var se *lake.SchemaError
		switch {
		case errors.Is(err, lake.ErrTableNotFound):
			return nil, status.Errorf(codes.NotFound, "table %s does not exist", name)
		case errors.As(err, &se):
			return nil, status.Errorf(codes.InvalidArgument, "Arrow schema does not match table %s: %v", name, se)
		case err != nil:
			return nil, status.Errorf(codes.Internal, "bind table %s: %v", name, err)
		}
	case !s.cfg.autoCreate && !s.tableExists(name):
		return nil, status.Errorf(codes.NotFound, "table %s does not exist", name)
	}
	c := s.newCall(in.st, name, "arrow")
	c.arrow, c.flight = ab, true
	if err := in.st.Send(&flight.PutResult{AppMetadata: []byte(readyMetadata)}); err != nil {
		return nil, err
	}
	c.tc.streamsOpened.Add(1)
	s.register(c)
	s.log.Info("arrow stream opened", "stream_id", c.id, "table", name, "columns", schema.NumFields())
	return c, nil
}

// flightLoop reads the record batches of a DoPut stream until it ends.
func (c *call) flightLoop(rdr *flight.Reader, in *flightIn) {
	for rdr.Next() {
		c.s.testHook("request")
		if !c.handleBatch(rdr.RecordBatch(), rdr.LatestAppMetadata(), in.take()) {
			return
		}
	}
	err := rdr.Err()
	switch st, ok := status.FromError(err); {
	case err == nil || errors.Is(err, io.EOF):
		err = nil
	case ok && st.Code() != codes.Unknown:
	default:
		err = status.Errorf(codes.InvalidArgument, "FlightData at offset %d: %v", c.next, err)
	}
	c.push(item{ctl: ctlEnd, err: err})
}

// batchMetadata is the app_metadata of a FlightData carrying a batch.
type batchMetadata struct {
	OffsetID *int64 `json:"offset_id"`
}

func parseBatchMetadata(b []byte) (int64, error) {
	if len(b) == 0 {
		return 0, errors.New(`no app_metadata (want {"offset_id": N})`)
	}
	var m batchMetadata
	if err := json.Unmarshal(b, &m); err != nil {
		return 0, fmt.Errorf(`app_metadata %q is not {"offset_id": N}: %v`, b, err)
	}
	if m.OffsetID == nil {
		return 0, fmt.Errorf(`app_metadata %q has no offset_id`, b)
	}
	return *m.OffsetID, nil
}

// handleBatch checks, stores and queues one record batch of size bytes on
// the wire. It returns false when the reader must stop.
func (c *call) handleBatch(rec arrow.RecordBatch, meta []byte, size int) bool {
	if size > MaxRequestBytes {
		c.push(item{ctl: ctlEnd, err: tooLarge(size)})
		return false
	}
	offset, err := parseBatchMetadata(meta)
	if err != nil {
		return c.fail(codes.InvalidArgument, "FlightData at offset %d: %v", c.next, err)
	}
	if offset != c.next {
		return c.fail(codes.InvalidArgument, "offset_id out of order: expected %d, got %d", c.next, offset)
	}
	n := int(rec.NumRows())
	if !c.throttle(size, n, offset) {
		return false
	}
	now := c.received(n, size)
	if fired := c.s.faults.onRecords(c.table, n); fired != nil && c.applyFaults(fired, offset) {
		return false
	}
	it := item{last: offset, n: n, at: now}
	if c.arrow != nil && n > 0 {
		recs, err := c.arrow.Encode(rec)
		if err == nil {
			err = c.arrow.Check(recs)
		}
		var re *lake.RecordError
		if errors.As(err, &re) {
			return c.fail(codes.InvalidArgument, "offset %d: row %d: column %s: %s", offset, re.Index, re.Column, re.Reason)
		}
		if err != nil {
			return c.fail(codes.InvalidArgument, "offset %d: %v", offset, err)
		}
		it.weight = min(int64(size), callBudget)
		if err := c.budget.Acquire(c.ctx, it.weight); err != nil {
			return false // the call is over
		}
		it.durable = c.arrow.Append(recs)
	}
	c.next++
	if c.lat != nil {
		c.lat.add(it.at)
	}
	return c.push(it)
}

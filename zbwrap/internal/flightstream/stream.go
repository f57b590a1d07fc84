package flightstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"google.golang.org/grpc"

	"github.com/pyzerobus/pyzerobus/zbwrap/internal/stream"
)

// Stream is one Arrow Flight stream to one table with one schema: an
// internal/stream Stream whose calls are DoPut calls. All methods are safe
// for concurrent use.
type Stream struct {
	*stream.Stream
	enc *Encoder
}

// New returns a stream of enc's batches that opens its first call on the
// first send. cc is the client connection to the Zerobus endpoint; the
// stream never closes it. cfg is used as for a protobuf stream, but for
// Descriptor and Dial (set here).
func New(cc grpc.ClientConnInterface, enc *Encoder, cfg stream.Config) *Stream {
	client := flight.NewFlightServiceClient(cc)
	cfg.Descriptor = nil
	cfg.Dial = func(ctx context.Context) (stream.Call, string, error) {
		return dial(ctx, client, enc.SchemaHeader())
	}
	return &Stream{Stream: stream.New(cc, cfg), enc: enc}
}

// Encoder is the encoder of the stream's schema.
func (s *Stream) Encoder() *Encoder { return s.enc }

// Send queues the messages of b, waiting for window room until ctx ends
// (see stream.Stream.SendParts); TrySend fails at once instead.
func (s *Stream) Send(ctx context.Context, b *Batch, onDone func(*stream.Batch), onRelease func()) (*stream.Batch, error) {
	return s.SendParts(ctx, b.Parts(), onDone, onRelease)
}

// TrySend is Send without waiting for room in the window.
func (s *Stream) TrySend(b *Batch, onDone func(*stream.Batch), onRelease func()) (*stream.Batch, error) {
	return s.TrySendParts(b.Parts(), onDone, onRelease)
}

// ackMetadata is the app_metadata of a PutResult.
type ackMetadata struct {
	UpTo    *int64 `json:"ack_up_to_offset"`
	Records *int64 `json:"ack_up_to_records"`
}

func parseAck(b []byte) (ackMetadata, error) {
	var a ackMetadata
	if err := json.Unmarshal(b, &a); err != nil {
		return a, fmt.Errorf("%w: PutResult app_metadata %q is not an acknowledgement: %v", stream.ErrProtocol, b, err)
	}
	if a.UpTo == nil {
		return a, fmt.Errorf("%w: PutResult app_metadata %q has no ack_up_to_offset", stream.ErrProtocol, b)
	}
	return a, nil
}

// dial opens a DoPut call: the schema message, then the server's ready
// PutResult.
func dial(ctx context.Context, client flight.FlightServiceClient, schema []byte) (stream.Call, string, error) {
	st, err := client.DoPut(ctx, grpc.ForceCodecV2(newCodec()))
	if err != nil {
		return nil, "", err
	}
	// On io.EOF the server already ended the call: Recv reports its status.
	if err := st.Send(&flight.FlightData{DataHeader: schema}); err != nil && !errors.Is(err, io.EOF) {
		return nil, "", err
	}
	res, err := st.Recv()
	if err != nil {
		return nil, "", err
	}
	a, err := parseAck(res.GetAppMetadata())
	if err == nil && *a.UpTo != -1 {
		err = fmt.Errorf("%w: the first PutResult acknowledges offset %d, not the ready signal -1", stream.ErrProtocol, *a.UpTo)
	}
	if err != nil {
		return nil, "", &stream.Error{Kind: stream.KindConnection, Retryable: true, Msg: "open Arrow stream", Err: err}
	}
	return &call{st: st}, "", nil
}

// call is one DoPut call. Send is the stream's sender's, Recv its
// receiver's; rows is shared under mu.
type call struct {
	st flight.FlightService_DoPutClient

	mu   sync.Mutex
	base int64   // wire offset of rows[0]
	rows []int64 // rows written on the call up to and including each offset from base
}

func (c *call) Send(payload any, offset int64) error {
	m := payload.(*Message)
	meta := make([]byte, 0, 32) // gRPC may hold the write after SendMsg returns
	meta = append(meta, `{"offset_id":`...)
	meta = strconv.AppendInt(meta, offset, 10)
	meta = append(meta, '}')
	c.mu.Lock()
	total := int64(m.Rows)
	if n := len(c.rows); n > 0 {
		total += c.rows[n-1]
	}
	if offset == 0 {
		c.base = 0
	}
	c.rows = append(c.rows, total)
	c.mu.Unlock()
	return c.st.SendMsg(&dataWrite{m: m, meta: meta})
}

func (c *call) Recv() (stream.Event, error) {
	for {
		res, err := c.st.Recv()
		if err != nil {
			return stream.Event{}, err
		}
		a, err := parseAck(res.GetAppMetadata())
		if err != nil {
			return stream.Event{}, &stream.Error{Kind: stream.KindConnection, Retryable: true, Msg: "receive", Err: err}
		}
		upTo := *a.UpTo
		if upTo < 0 {
			continue // a repeated ready signal
		}
		if a.Records != nil {
			upTo = c.wholeUpTo(upTo, *a.Records)
			if upTo < 0 {
				continue // rows of the first message only: nothing whole yet
			}
		}
		return stream.Event{AckUpTo: upTo}, nil
	}
}

// wholeUpTo is the last offset, at most upTo, all of whose rows are among
// the first records rows of the call; it drops what is no longer needed.
func (c *call) wholeUpTo(upTo, records int64) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := upTo - c.base
	if i < 0 || i >= int64(len(c.rows)) {
		return upTo // the stream reports an ack out of range
	}
	for i >= 0 && c.rows[i] > records {
		i--
	}
	if i < 0 {
		return c.base - 1
	}
	// Keep the entry of the last whole offset: later acks count from it.
	c.rows = c.rows[i:]
	c.base += i
	return c.base
}

func (c *call) CloseSend() error { return c.st.CloseSend() }

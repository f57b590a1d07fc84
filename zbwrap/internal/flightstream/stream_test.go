package flightstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/pyzerobus/pyzerobus/zbwrap/internal/stream"
)

// scripted is a Flight server whose DoPut answers as its script says: the
// service's behaviour at its edges (acks that end inside a message, a bad
// first answer), which the local server does not produce.
type scripted struct {
	flight.BaseFlightServer
	// script gets the messages received so far (the schema first) and
	// returns the PutResults to send now.
	script func(call int, got []*flight.FlightData) [][]byte
	calls  int
	tables []string
}

func (s *scripted) DoPut(st flight.FlightService_DoPutServer) error {
	s.calls++
	call := s.calls
	md, _ := metadata.FromIncomingContext(st.Context())
	s.tables = append(s.tables, md.Get(stream.TableHeader)...)
	var got []*flight.FlightData
	for {
		fd, err := st.Recv()
		if err != nil {
			return nil
		}
		got = append(got, fd)
		for _, m := range s.script(call, got) {
			if err := st.Send(&flight.PutResult{AppMetadata: m}); err != nil {
				return err
			}
		}
	}
}

func serve(t *testing.T, s *scripted) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	flight.RegisterFlightServiceServer(gs, s)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func sendAll(t *testing.T, cc *grpc.ClientConn, cfg stream.Config, rows, limit int) (*Stream, *stream.Batch) {
	t.Helper()
	e, err := NewEncoder(testSchema, CompressionNone, limit)
	if err != nil {
		t.Fatal(err)
	}
	rec := makeBatch(rows, 100)
	defer rec.Release()
	b, err := e.Encode(rec)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Table = "main.default.events"
	s := New(cc, e, cfg)
	sb, err := s.Send(context.Background(), b, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sb.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	return s, sb
}

// An ack whose row count ends inside a message acknowledges the messages
// before it; the rest are acknowledged later on the same call.
func TestRowCountedAcks(t *testing.T) {
	e, err := NewEncoder(testSchema, CompressionNone, 1400)
	if err != nil {
		t.Fatal(err)
	}
	rec := makeBatch(30, 100)
	defer rec.Release()
	b, err := e.Encode(rec)
	if err != nil {
		t.Fatal(err)
	}
	n := len(b.Messages)
	if n < 3 {
		t.Fatalf("30 rows of 110 bytes in %d messages under 1.4 KB", n)
	}
	first, second := b.Messages[0].Rows, b.Messages[1].Rows
	srv := &scripted{script: func(_ int, got []*flight.FlightData) [][]byte {
		switch len(got) {
		case 1:
			return [][]byte{[]byte(`{"ack_up_to_offset":-1,"ack_up_to_records":0}`)}
		case 3: // two messages in: acknowledge one and a half
			return [][]byte{fmt.Appendf(nil, `{"ack_up_to_offset":1,"ack_up_to_records":%d}`, first+second/2)}
		case n + 1:
			return [][]byte{fmt.Appendf(nil, `{"ack_up_to_offset":%d,"ack_up_to_records":30}`, n-1)}
		}
		return nil
	}}
	cc := serve(t, srv)
	s := New(cc, e, stream.Config{Table: "main.default.events"})
	defer s.Close(context.Background())
	if s.Encoder() != e {
		t.Fatal("Encoder is not the stream's")
	}
	sb, err := s.Send(context.Background(), b, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sb.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	for _, o := range sb.Outcomes() {
		if o.Err != nil {
			t.Fatalf("rows %d-%d: %v", o.Start, o.End, o.Err)
		}
	}
	if st := s.Stats(); st.Opens != 1 || st.RequestsAcked != int64(n) || st.RecordsAcked != 30 {
		t.Fatalf("stats %+v: want one call, %d messages acknowledged", st, n)
	}
	if len(srv.tables) != 1 || srv.tables[0] != "main.default.events" {
		t.Fatalf("table headers %v", srv.tables)
	}
}

// A first answer that is not the ready signal, or an answer that is not an
// acknowledgement, is a protocol violation: the call is retried and, when
// it keeps happening, the stream gives up.
func TestProtocolViolations(t *testing.T) {
	for name, answer := range map[string]string{
		"first answer not ready": `{"ack_up_to_offset":0,"ack_up_to_records":10}`,
		"not JSON":               `ack`,
		"no offset":              `{"ack_up_to_records":10}`,
	} {
		t.Run(name, func(t *testing.T) {
			srv := &scripted{script: func(_ int, got []*flight.FlightData) [][]byte {
				if len(got) == 1 && name != "first answer not ready" {
					return [][]byte{[]byte(`{"ack_up_to_offset":-1}`)}
				}
				if len(got) == 1 || len(got) == 2 {
					return [][]byte{[]byte(answer)}
				}
				return nil
			}}
			cc := serve(t, srv)
			s, sb := sendAll(t, cc, stream.Config{MaxAttempts: 1, BaseDelay: time.Millisecond}, 10, 1<<20)
			defer s.Close(context.Background())
			o := sb.Outcomes()[0]
			if !errors.Is(o.Err, stream.ErrProtocol) {
				t.Fatalf("outcome %+v", o)
			}
			if srv.calls != 2 {
				t.Fatalf("%d calls, want the first and one retry", srv.calls)
			}
		})
	}
}

// TrySend fails at once when the window has no room.
func TestTrySendOnAFullWindow(t *testing.T) {
	srv := &scripted{script: func(_ int, got []*flight.FlightData) [][]byte {
		if len(got) == 1 {
			return [][]byte{[]byte(`{"ack_up_to_offset":-1}`)}
		}
		return nil // never acknowledges
	}}
	cc := serve(t, srv)
	e, err := NewEncoder(testSchema, CompressionNone, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	rec := makeBatch(10, 10)
	defer rec.Release()
	b, err := e.Encode(rec)
	if err != nil {
		t.Fatal(err)
	}
	s := New(cc, e, stream.Config{Table: "main.default.events", MaxInflightRecords: 10})
	if _, err := s.TrySend(b, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TrySend(b, nil, nil); !errors.Is(err, stream.ErrWindowFull) {
		t.Fatalf("second TrySend: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.Close(ctx); !errors.Is(err, stream.ErrClosed) {
		t.Fatalf("Close: %v", err)
	}
}

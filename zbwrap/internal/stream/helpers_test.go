package stream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest"
)

const testTable = "main.default.events"

// newServer starts a local Zerobus server closed at the end of the test.
func newServer(t testing.TB, opts ...zerobustest.Option) *zerobustest.Server {
	t.Helper()
	srv, err := zerobustest.NewServer(opts...)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// dial opens a client connection to srv.
func dial(t testing.TB, srv *zerobustest.Server) *grpc.ClientConn {
	t.Helper()
	target := strings.TrimPrefix(srv.Endpoint(), "http://")
	cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// serverTokens hands out a fresh server token per call open and counts
// calls and forced refreshes. bad makes the first n opens present a token
// the server does not know.
type serverTokens struct {
	srv       *zerobustest.Server
	calls     atomic.Int64
	refreshes atomic.Int64
	bad       atomic.Int64
	err       error
}

func (h *serverTokens) Headers(_ context.Context, refresh bool) (map[string]string, error) {
	h.calls.Add(1)
	if refresh {
		h.refreshes.Add(1)
	}
	if h.err != nil {
		return nil, h.err
	}
	if h.bad.Add(-1) >= 0 {
		return map[string]string{"authorization": "Bearer not-a-token"}, nil
	}
	return map[string]string{"authorization": "Bearer " + h.srv.Token(testTable)}, nil
}

// descriptor is message Row { optional int64 id = 1; optional string name = 2; }.
func descriptor(t testing.TB) []byte {
	t.Helper()
	d := &descriptorpb.DescriptorProto{
		Name: proto.String("Row"),
		Field: []*descriptorpb.FieldDescriptorProto{
			{Name: proto.String("id"), Number: proto.Int32(1), Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Type: descriptorpb.FieldDescriptorProto_TYPE_INT64.Enum()},
			{Name: proto.String("name"), Number: proto.Int32(2), Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Type: descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()},
		},
	}
	b, err := proto.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// records encodes rows id = first .. first+n-1, each name padded to size.
func records(first, n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		name := fmt.Sprintf("row-%d", first+i)
		if len(name) < size {
			name += strings.Repeat("x", size-len(name))
		}
		b := protowire.AppendTag(nil, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(first+i))
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		out[i] = protowire.AppendString(b, name)
	}
	return out
}

// fastConfig is a Config with short timeouts for tests.
func fastConfig(t testing.TB, srv *zerobustest.Server) (Config, *serverTokens) {
	h := &serverTokens{srv: srv}
	return Config{
		Table:         testTable,
		Descriptor:    descriptor(t),
		Headers:       h,
		BaseDelay:     5 * time.Millisecond,
		MaxDelay:      50 * time.Millisecond,
		AckTimeout:    2 * time.Second,
		FlushTimeout:  20 * time.Second,
		CreateTimeout: 5 * time.Second,
	}, h
}

// newStream builds a stream closed at the end of the test.
func newStream(t testing.TB, cc grpc.ClientConnInterface, cfg Config) *Stream {
	t.Helper()
	s := New(cc, cfg)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

// mustSend sends and fails the test if anything is not queued.
func mustSend(t testing.TB, s *Stream, recs [][]byte) *Batch {
	t.Helper()
	b, err := s.Send(context.Background(), recs, nil)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	return b
}

// waitBatch waits for b (bounded) and returns its outcomes.
func waitBatch(t testing.TB, b *Batch) []Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Wait(ctx); err != nil {
		t.Fatalf("batch not resolved: %v", err)
	}
	return b.Outcomes()
}

// allAcked fails the test unless every outcome is an ack.
func allAcked(t testing.TB, outs []Outcome) {
	t.Helper()
	for _, o := range outs {
		if o.Err != nil {
			t.Fatalf("records [%d,%d) failed: %v", o.Start, o.End, o.Err)
		}
	}
}

func kindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// sendMany sends batches of n records from g goroutines and waits for all.
func sendMany(t testing.TB, s *Stream, g, batches, n, size int) [][]Outcome {
	t.Helper()
	var mu sync.Mutex
	var all [][]Outcome
	var wg sync.WaitGroup
	for w := range g {
		wg.Go(func() {
			for i := range batches {
				b, err := s.Send(context.Background(), records((w*batches+i)*n, n, size), nil)
				if err != nil {
					t.Errorf("Send: %v", err)
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				err = b.Wait(ctx)
				cancel()
				if err != nil {
					t.Errorf("batch not resolved: %v", err)
					return
				}
				outs := b.Outcomes()
				mu.Lock()
				all = append(all, outs)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return all
}

// checkLeaks fails the test if a goroutine that was not running when it
// began is still running 5 s after it ended. (goleak.Find alone looks for
// about half a second, short for goroutines winding down under -race.)
func checkLeaks(t testing.TB) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		err := goleak.Find(ignore)
		for deadline := time.Now().Add(5 * time.Second); err != nil && time.Now().Before(deadline); {
			err = goleak.Find(ignore)
		}
		if err != nil {
			t.Error(err)
		}
	})
}

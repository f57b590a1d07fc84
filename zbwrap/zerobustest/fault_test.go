package zerobustest

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/pyzerobus/pyzerobus/internal/testutil"
)

func TestFaultFailCreate(t *testing.T) {
	other := "main.default.other"
	s := newServer(t, WithDiscard(), WithFault(Fault{Kind: FaultFailCreate, Table: testTable, Times: 2, Code: codes.ResourceExhausted, Message: "slow down"}))
	c := dial(t, s)
	for range 2 {
		cc := rawCall(t, c, authMD(s.Token(testTable), testTable))
		cc.send(createReq(testTable))
		_, err := cc.end()
		wantCode(t, err, codes.ResourceExhausted, "slow down")
	}
	open(t, s, c, other) // another table is not affected
	open(t, s, c, testTable)
	if n := s.Stats().Tables[testTable].FaultsFired; n != 2 {
		t.Errorf("FaultsFired = %d, want 2", n)
	}
	if len(s.Faults()) != 0 {
		t.Errorf("fault still armed: %+v", s.Faults())
	}
}

func TestFaultForeverAndClear(t *testing.T) {
	s := newServer(t, WithDiscard())
	if err := s.InjectFault(Fault{Kind: FaultFailCreate, Times: -1}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, s)
	for range 3 {
		cc := rawCall(t, c, authMD(s.Token(testTable), testTable))
		cc.send(createReq(testTable))
		_, err := cc.end()
		wantCode(t, err, codes.Unavailable, "injected fault fail_create_stream")
	}
	if f := s.Faults(); len(f) != 1 || f[0].Times != -1 {
		t.Fatalf("Faults() = %+v, want one unlimited fault", f)
	}
	s.ClearFaults()
	open(t, s, c, testTable)
	if err := s.InjectFault(Fault{Kind: "nope"}); err == nil {
		t.Fatal("bad fault accepted")
	}
}

// recvSignal receives until a CloseStreamSignal and returns its duration.
func recvSignal(t *testing.T, cc *clientCall) time.Duration {
	t.Helper()
	for {
		resp := cc.recv()
		if sig := resp.GetCloseStreamSignal(); sig != nil {
			return sig.GetDuration().AsDuration()
		}
	}
}

func TestRecordFaults(t *testing.T) {
	type check func(t *testing.T, s *Server, cc *clientCall)
	tests := []struct {
		name  string
		fault Fault
		run   check
	}{
		{"end call without signal", Fault{Kind: FaultEndCall, AfterRecords: 150}, func(t *testing.T, s *Server, cc *clientCall) {
			cc.send(batchReq(0, rows(0, 100)))
			cc.send(batchReq(1, rows(100, 100))) // takes the count past 150: dropped
			last, err := cc.end()
			if err != nil || last != 0 {
				t.Fatalf("end: ack %d, %v; want ack 0 and OK", last, err)
			}
		}},
		{"end call with signal", Fault{Kind: FaultEndCall, AfterRecords: 100, Signal: true, SignalDuration: 300 * time.Millisecond}, func(t *testing.T, s *Server, cc *clientCall) {
			cc.send(batchReq(0, rows(0, 100)))
			cc.waitAck(0)
			start := time.Now()
			cc.send(batchReq(1, rows(100, 10))) // fires: signal, still stored and acknowledged
			if d := recvSignal(t, cc); d != 300*time.Millisecond {
				t.Fatalf("signal duration %v", d)
			}
			cc.waitAck(1)
			cc.send(batchReq(2, rows(200, 10))) // in flight during the signal: acknowledged
			last, err := cc.end()
			if err != nil || last != 2 {
				t.Fatalf("end: ack %d, %v; want ack 2 and OK", last, err)
			}
			if time.Since(start) < 300*time.Millisecond {
				t.Fatal("call ended before the signalled duration")
			}
		}},
		{"fail call", Fault{Kind: FaultFailCall, Code: codes.Aborted, Message: "boom"}, func(t *testing.T, s *Server, cc *clientCall) {
			cc.send(batchReq(0, rows(0, 1)))
			last, err := cc.end()
			wantCode(t, err, codes.Aborted, "boom")
			if last != -1 {
				t.Fatalf("ack %d for a failed request", last)
			}
		}},
		{"delay acks", Fault{Kind: FaultDelayAcks, AfterRecords: 10, Delay: 200 * time.Millisecond}, func(t *testing.T, s *Server, cc *clientCall) {
			cc.send(batchReq(0, rows(0, 10)))
			cc.waitAck(0)
			start := time.Now()
			cc.send(batchReq(1, rows(10, 10)))
			cc.send(batchReq(2, rows(20, 10)))
			cc.waitAck(2)
			if time.Since(start) < 200*time.Millisecond {
				t.Fatal("acknowledged before the delay")
			}
		}},
		{"stop acks", Fault{Kind: FaultStopAcks, AfterRecords: 10}, func(t *testing.T, s *Server, cc *clientCall) {
			cc.send(batchReq(0, rows(0, 10)))
			cc.waitAck(0)
			cc.send(batchReq(1, rows(10, 10)))
			cc.send(batchReq(2, rows(20, 10)))
			_ = cc.st.CloseSend()
			testutil.Eventually(t, "requests received", func() bool { return s.Stats().RecordsReceived == 30 })
			if err := s.Materialize(); err != nil {
				t.Fatal(err)
			}
			if st := s.Stats(); st.RecordsAcked != 10 || st.RecordsDurable != 30 {
				t.Fatalf("stats %+v: want 10 acked, 30 durable", st)
			}
			// The call stays open after the half-close until the server stops.
			got := make(chan error, 1)
			go func() { _, err := cc.end(); got <- err }()
			select {
			case err := <-got:
				t.Fatalf("call ended: %v", err)
			case <-time.After(100 * time.Millisecond):
			}
			go func() { _ = s.Close() }()
			wantCode(t, <-got, codes.Unavailable, "shutting down")
		}},
		{"expire tokens", Fault{Kind: FaultExpireTokens}, func(t *testing.T, s *Server, cc *clientCall) {
			tok := s.Token(testTable)
			cc.send(batchReq(0, rows(0, 1)))
			cc.waitAck(0) // the call goes on
			c2 := rawCall(t, dial(t, s), authMD(tok, testTable))
			c2.send(createReq(testTable))
			_, err := c2.end()
			wantCode(t, err, codes.Unauthenticated, "token expired")
		}},
		{"revoke tokens", Fault{Kind: FaultRevokeTokens}, func(t *testing.T, s *Server, cc *clientCall) {
			tok := s.Token(testTable)
			cc.send(batchReq(0, rows(0, 1)))
			cc.waitAck(0)
			c2 := rawCall(t, dial(t, s), authMD(tok, testTable))
			c2.send(createReq(testTable))
			_, err := c2.end()
			wantCode(t, err, codes.Unauthenticated, "token revoked")
		}},
		{"drop connection", Fault{Kind: FaultDropConnection, AfterRecords: 5}, func(t *testing.T, s *Server, cc *clientCall) {
			cc.send(batchReq(0, rows(0, 5)))
			cc.waitAck(0)
			cc.send(batchReq(1, rows(5, 5)))
			last, err := cc.end()
			wantCode(t, err, codes.Unavailable)
			if last != -1 {
				t.Fatalf("ack %d after the drop", last)
			}
			// The server is fine: a new connection streams again.
			c2 := open(t, s, dial(t, s), testTable)
			c2.send(batchReq(0, rows(0, 1)))
			c2.waitAck(0)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewServer(WithFault(tc.fault))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			cc := open(t, s, dial(t, s), testTable)
			tc.run(t, s, cc)
			if n := s.Stats().FaultsFired; n != 1 {
				t.Errorf("FaultsFired = %d, want 1", n)
			}
		})
	}
}

func TestFaultScopedToTable(t *testing.T) {
	s := newServer(t, WithDiscard(), WithFault(Fault{Kind: FaultFailCall, Table: "main.default.other"}))
	cc := open(t, s, dial(t, s), testTable)
	cc.send(batchReq(0, rows(0, 10)))
	cc.waitAck(0)
	if s.Stats().FaultsFired != 0 || len(s.Faults()) != 1 {
		t.Fatal("a fault of another table fired")
	}
}

func TestFaultsAcrossCallsAndRepeats(t *testing.T) {
	// Three firings, every 10 records of the table, whichever call sends them.
	s := newServer(t, WithDiscard(), WithFault(Fault{Kind: FaultFailCall, AfterRecords: 10, Times: 3, Code: codes.Unavailable}))
	c := dial(t, s)
	for i := range 3 {
		cc := open(t, s, c, testTable)
		cc.send(batchReq(0, rows(0, 10)))
		cc.waitAck(0)
		cc.send(batchReq(1, rows(0, 1)))
		_, err := cc.end()
		wantCode(t, err, codes.Unavailable)
		if n := s.Stats().FaultsFired; n != int64(i+1) {
			t.Fatalf("FaultsFired = %d, want %d", n, i+1)
		}
	}
	cc := open(t, s, c, testTable)
	cc.send(batchReq(0, rows(0, 50)))
	cc.waitAck(0)
}

func TestAdminFaults(t *testing.T) {
	s := newServer(t, WithDiscard())
	var out map[string]any
	body := `[{"kind":"fail_create_stream","code":"UNAVAILABLE","times":2,"table":"Main.Default.Events"},
	          {"kind":"end_call","after_records":100,"signal":true,"signal_duration":"1.5s"}]`
	if code := adminJSON(t, s, http.MethodPost, "/admin/faults", strings.NewReader(body), &out); code != 200 || out["armed"] != float64(2) {
		t.Fatalf("add: HTTP %d %v", code, out)
	}
	one := `{"kind":"delay_acks","delay":"250ms"}`
	if code := adminJSON(t, s, http.MethodPost, "/admin/faults", strings.NewReader(one), &out); code != 200 || out["armed"] != float64(1) {
		t.Fatalf("add one: HTTP %d %v", code, out)
	}
	var list struct{ Faults []Fault }
	if code := adminJSON(t, s, http.MethodGet, "/admin/faults", nil, &list); code != 200 {
		t.Fatalf("list: HTTP %d", code)
	}
	want := []Fault{
		{Kind: FaultFailCreate, Code: codes.Unavailable, Times: 2, Table: testTable},
		{Kind: FaultEndCall, AfterRecords: 100, Signal: true, SignalDuration: 1500 * time.Millisecond, Times: 1},
		{Kind: FaultDelayAcks, Delay: 250 * time.Millisecond, Times: 1},
	}
	if !reflect.DeepEqual(list.Faults, want) {
		t.Fatalf("faults %+v, want %+v", list.Faults, want)
	}
	for _, bad := range []string{`{"kind":"nope"}`, `{"kind":"delay_acks"}`, `{"kind":`, `{"kind":"end_call","extra":1}`, `[{"kind":"end_call","code":"NOPE"}]`} {
		var e map[string]any
		if code := adminJSON(t, s, http.MethodPost, "/admin/faults", strings.NewReader(bad), &e); code != 400 || e["message"] == "" {
			t.Errorf("%s: HTTP %d %v, want 400", bad, code, e)
		}
	}
	if code := adminJSON(t, s, http.MethodPost, "/admin/faults", strings.NewReader(strings.Repeat(" ", maxBody+1)), nil); code != 400 {
		t.Errorf("oversized body: HTTP %d, want 400", code)
	}
	if code := adminJSON(t, s, http.MethodDelete, "/admin/faults", nil, nil); code != http.StatusNoContent {
		t.Fatalf("clear: HTTP %d", code)
	}
	if len(s.Faults()) != 0 {
		t.Fatal("faults left after DELETE")
	}
}

func TestParseFault(t *testing.T) {
	good := []struct {
		spec string
		want Fault
	}{
		{"kind=end_call,after=1000,signal=true,signal_duration=2s", Fault{Kind: FaultEndCall, AfterRecords: 1000, Signal: true, SignalDuration: 2 * time.Second}},
		{"kind=fail_create_stream, code=UNAVAILABLE, times=3, table=main.default.t", Fault{Kind: FaultFailCreate, Code: codes.Unavailable, Times: 3, Table: "main.default.t"}},
		{"kind=fail_call,code=14,message=go away,after_records=5", Fault{Kind: FaultFailCall, Code: codes.Unavailable, Message: "go away", AfterRecords: 5}},
		{"kind=delay_acks,delay=150ms", Fault{Kind: FaultDelayAcks, Delay: 150 * time.Millisecond}},
		{"kind=fail_call,code=cancelled", Fault{Kind: FaultFailCall, Code: codes.Canceled}},
		{"kind=fail_call,code=DeadlineExceeded,", Fault{Kind: FaultFailCall, Code: codes.DeadlineExceeded}},
		{"kind=stop_acks,times=-1", Fault{Kind: FaultStopAcks, Times: -1}},
	}
	for _, g := range good {
		f, err := ParseFault(g.spec)
		if err != nil || f != g.want {
			t.Errorf("ParseFault(%q) = %+v, %v; want %+v", g.spec, f, err, g.want)
		}
	}
	bad := map[string]string{
		"":                                 "fault kind",
		"kind=nope":                        "not one of",
		"kind=end_call,after":              "not key=value",
		"kind=end_call,color=red":          "unknown key",
		"kind=end_call,times=x":            "times",
		"kind=end_call,after=-1":           "negative",
		"kind=fail_call,code=NOPE":         "not a gRPC code name",
		"kind=fail_call,code=99":           "not a gRPC code",
		"kind=end_call,signal=maybe":       "signal",
		"kind=end_call,signal_duration=1x": "signal_duration",
		"kind=delay_acks":                  "positive delay",
		"kind=delay_acks,delay=-1s":        "negative",
		"kind=end_call,table=nope":         "catalog.schema.table",
		"kind=end_call,after_records=1.5":  "after",
		"kind=delay_acks,delay=soon":       "delay",
	}
	for spec, want := range bad {
		if _, err := ParseFault(spec); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseFault(%q) = %v, want an error containing %q", spec, err, want)
		}
	}
	if err := (Fault{Kind: FaultFailCall, Code: 42}).validate(); err == nil {
		t.Error("code 42 accepted")
	}
}

func TestFaultJSON(t *testing.T) {
	in := Fault{Kind: FaultEndCall, Table: testTable, Times: 2, AfterRecords: 7, Code: codes.Aborted, Message: "m",
		Signal: true, SignalDuration: time.Second, Delay: time.Millisecond}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"code":"Aborted"`) || !strings.Contains(string(b), `"signal_duration":"1s"`) {
		t.Errorf("JSON %s", b)
	}
	var out Fault
	if err := json.Unmarshal(b, &out); err != nil || out != in {
		t.Fatalf("round trip %+v, %v; want %+v", out, err, in)
	}
	for _, bad := range []string{`{"kind":"end_call","delay":"x"}`, `{"kind":"end_call","code":"x"}`, `{"kind":1}`} {
		if err := json.Unmarshal([]byte(bad), &out); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	b, _ = json.Marshal(Fault{Kind: FaultStopAcks})
	if string(b) != `{"kind":"stop_acks"}` {
		t.Errorf("minimal fault JSON %s", b)
	}
}

func TestFaultCodeDefault(t *testing.T) {
	f := Fault{Kind: FaultFailCall}
	if f.code() != codes.Unavailable || f.message() != "injected fault fail_call" {
		t.Fatal(f.code(), f.message())
	}
	if f = (Fault{Kind: FaultFailCall, Code: codes.Internal, Message: "x"}); f.code() != codes.Internal || f.message() != "x" {
		t.Fatal(f.code(), f.message())
	}
}

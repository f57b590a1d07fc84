package zerobustest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
)

// FaultKind names what a Fault does.
type FaultKind string

// The fault kinds. Record faults (every kind but FaultFailCreate) fire on the
// first request that takes the records seen on their table past
// Fault.AfterRecords; see Fault.
const (
	// FaultFailCreate fails create_stream with Fault.Code.
	FaultFailCreate FaultKind = "fail_create_stream"
	// FaultEndCall ends the call with status OK. Without Fault.Signal the
	// triggering request is dropped (not stored, not acknowledged) and the
	// call ends once the earlier requests are acknowledged. With Signal the
	// server sends a CloseStreamSignal carrying Fault.SignalDuration, keeps
	// storing and acknowledging requests, and ends the call when that
	// duration has passed, as the real service does.
	FaultEndCall FaultKind = "end_call"
	// FaultFailCall drops the triggering request and ends the call with
	// Fault.Code once the earlier requests are acknowledged.
	FaultFailCall FaultKind = "fail_call"
	// FaultDelayAcks delays every later acknowledgement of the call by
	// Fault.Delay (measured from the request's arrival).
	FaultDelayAcks FaultKind = "delay_acks"
	// FaultStopAcks stops acknowledging: the call stays open and its requests
	// are still stored, but no acknowledgement is sent any more.
	FaultStopAcks FaultKind = "stop_acks"
	// FaultExpireTokens expires every issued token; the call goes on.
	FaultExpireTokens FaultKind = "expire_tokens"
	// FaultRevokeTokens revokes every issued token; the call goes on.
	FaultRevokeTokens FaultKind = "revoke_tokens"
	// FaultDropConnection closes the call's TCP connection abruptly (RST)
	// without processing the triggering request: the client sees the
	// connection die mid-batch.
	FaultDropConnection FaultKind = "drop_connection"
)

var faultKinds = []FaultKind{
	FaultFailCreate, FaultEndCall, FaultFailCall, FaultDelayAcks, FaultStopAcks,
	FaultExpireTokens, FaultRevokeTokens, FaultDropConnection,
}

// A Fault is a failure the server injects on purpose. Zero values of the
// optional fields mean: any table, fire once, after 0 records, code
// Unavailable.
//
// Record faults count the records of the requests they see (on their table,
// across calls, since the fault was armed or last fired). A fault fires on
// the request that would take that count past AfterRecords, so with
// AfterRecords 1500 and batches of 1000 it fires on the second batch, after
// 1000 records were accepted; with AfterRecords 0 it fires on the first
// request that carries a record.
type Fault struct {
	Kind FaultKind
	// Table limits the fault to one table (catalog.schema.table); empty
	// means every table.
	Table string
	// Times is how many times the fault fires before it is disarmed; 0 means
	// once, a negative value means forever.
	Times int
	// AfterRecords is how many records pass before a record fault fires.
	AfterRecords int64
	// Code is the status of FaultFailCreate and FaultFailCall. Default
	// Unavailable.
	Code codes.Code
	// Message is the status message of FaultFailCreate and FaultFailCall.
	Message string
	// Signal makes FaultEndCall send a CloseStreamSignal first.
	Signal bool
	// SignalDuration is the duration carried by the CloseStreamSignal and
	// how long the server keeps the call open after sending it.
	SignalDuration time.Duration
	// Delay is the acknowledgement delay of FaultDelayAcks.
	Delay time.Duration
}

func (f Fault) validate() error {
	known := false
	for _, k := range faultKinds {
		if f.Kind == k {
			known = true
		}
	}
	switch {
	case !known:
		return fmt.Errorf("fault kind %q is not one of %s", f.Kind, kindList())
	case f.Table != "" && validTableName(f.Table) != nil:
		return fmt.Errorf("fault table: %w", validTableName(f.Table))
	case f.AfterRecords < 0:
		return fmt.Errorf("fault after_records %d is negative", f.AfterRecords)
	case f.Code > codes.Unauthenticated:
		return fmt.Errorf("fault code %d is not a gRPC code", f.Code)
	case f.SignalDuration < 0 || f.Delay < 0:
		return errors.New("fault durations must not be negative")
	case f.Kind == FaultDelayAcks && f.Delay == 0:
		return errors.New("fault delay_acks needs a positive delay")
	}
	return nil
}

// code is the status code of a failing fault.
func (f Fault) code() codes.Code {
	if f.Code == codes.OK {
		return codes.Unavailable
	}
	return f.Code
}

func (f Fault) message() string {
	if f.Message != "" {
		return f.Message
	}
	return "injected fault " + string(f.Kind)
}

func kindList() string {
	s := make([]string, len(faultKinds))
	for i, k := range faultKinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// faultJSON is the JSON form of a Fault (admin endpoint): durations as Go
// duration strings, the code as its name.
type faultJSON struct {
	Kind           FaultKind `json:"kind"`
	Table          string    `json:"table,omitempty"`
	Times          int       `json:"times,omitempty"`
	AfterRecords   int64     `json:"after_records,omitempty"`
	Code           string    `json:"code,omitempty"`
	Message        string    `json:"message,omitempty"`
	Signal         bool      `json:"signal,omitempty"`
	SignalDuration string    `json:"signal_duration,omitempty"`
	Delay          string    `json:"delay,omitempty"`
}

// MarshalJSON writes the fault as the admin endpoint reads it.
func (f Fault) MarshalJSON() ([]byte, error) {
	j := faultJSON{
		Kind: f.Kind, Table: f.Table, Times: f.Times, AfterRecords: f.AfterRecords,
		Message: f.Message, Signal: f.Signal,
	}
	if f.Code != codes.OK {
		j.Code = f.Code.String()
	}
	if f.SignalDuration != 0 {
		j.SignalDuration = f.SignalDuration.String()
	}
	if f.Delay != 0 {
		j.Delay = f.Delay.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads a fault such as
// {"kind":"fail_call","code":"UNAVAILABLE","after_records":1000,"times":2}.
// Codes are gRPC code names in either spelling (UNAVAILABLE, Unavailable) or
// numbers; durations are Go durations ("1.5s").
func (f *Fault) UnmarshalJSON(b []byte) error {
	var j faultJSON
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("fault: %w", err)
	}
	out := Fault{Kind: j.Kind, Table: j.Table, Times: j.Times, AfterRecords: j.AfterRecords,
		Message: j.Message, Signal: j.Signal}
	var err error
	if j.Code != "" {
		if out.Code, err = parseCode(j.Code); err != nil {
			return err
		}
	}
	if out.SignalDuration, err = parseDur("signal_duration", j.SignalDuration); err != nil {
		return err
	}
	if out.Delay, err = parseDur("delay", j.Delay); err != nil {
		return err
	}
	*f = out
	return nil
}

func parseDur(name, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("fault %s: %w", name, err)
	}
	return d, nil
}

// parseCode reads a gRPC code name (UNAVAILABLE, Unavailable, unavailable)
// or number.
func parseCode(s string) (codes.Code, error) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		if n > uint64(codes.Unauthenticated) {
			return 0, fmt.Errorf("fault code %s is not a gRPC code", s)
		}
		return codes.Code(n), nil
	}
	norm := strings.ToLower(strings.ReplaceAll(s, "_", ""))
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		if strings.ToLower(c.String()) == norm {
			return c, nil
		}
	}
	if norm == "cancelled" {
		return codes.Canceled, nil
	}
	return 0, fmt.Errorf("fault code %q is not a gRPC code name", s)
}

// ParseFault reads the command-line form of a fault: comma-separated
// key=value pairs with the keys of the JSON form, for example
// "kind=end_call,after_records=1000,signal=true,signal_duration=2s" or
// "kind=fail_create_stream,code=UNAVAILABLE,times=3,table=main.default.t".
// "after" is short for after_records.
func ParseFault(spec string) (Fault, error) {
	var f Fault
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return Fault{}, fmt.Errorf("fault %q: %q is not key=value", spec, part)
		}
		var err error
		switch strings.TrimSpace(k) {
		case "kind":
			f.Kind = FaultKind(v)
		case "table":
			f.Table = v
		case "times":
			f.Times, err = strconv.Atoi(v)
		case "after", "after_records":
			f.AfterRecords, err = strconv.ParseInt(v, 10, 64)
		case "code":
			f.Code, err = parseCode(v)
		case "message":
			f.Message = v
		case "signal":
			f.Signal, err = strconv.ParseBool(v)
		case "signal_duration":
			f.SignalDuration, err = parseDur(k, v)
		case "delay":
			f.Delay, err = parseDur(k, v)
		default:
			return Fault{}, fmt.Errorf("fault %q: unknown key %q", spec, k)
		}
		if err != nil {
			return Fault{}, fmt.Errorf("fault %q: %s: %w", spec, k, err)
		}
	}
	if err := f.validate(); err != nil {
		return Fault{}, fmt.Errorf("fault %q: %w", spec, err)
	}
	return f, nil
}

// armedFault is a fault waiting to fire.
type armedFault struct {
	f    Fault
	left int   // firings left; negative: unlimited
	seen int64 // records seen since armed or last fired
}

// faultSet holds the armed faults. The request path reads only the atomic
// count while no fault is armed.
type faultSet struct {
	n    atomic.Int32
	mu   sync.Mutex
	list []*armedFault
}

func (fs *faultSet) add(f Fault) {
	left := f.Times
	if left == 0 {
		left = 1
	}
	f.Table = canon(f.Table)
	fs.mu.Lock()
	fs.list = append(fs.list, &armedFault{f: f, left: left})
	fs.n.Store(int32(len(fs.list)))
	fs.mu.Unlock()
}

func (fs *faultSet) clear() {
	fs.mu.Lock()
	fs.list = nil
	fs.n.Store(0)
	fs.mu.Unlock()
}

func (fs *faultSet) snapshot() []Fault {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	out := make([]Fault, 0, len(fs.list))
	for _, a := range fs.list {
		f := a.f
		f.Times = a.left
		out = append(out, f)
	}
	return out
}

// fireLocked consumes one firing of list[i].
func (fs *faultSet) fireLocked(i int) {
	a := fs.list[i]
	a.seen = 0
	if a.left > 0 {
		a.left--
		if a.left == 0 {
			fs.list = append(fs.list[:i], fs.list[i+1:]...)
			fs.n.Store(int32(len(fs.list)))
		}
	}
}

// onCreate returns the create-stream fault that fires for table, if any.
func (fs *faultSet) onCreate(table string) (Fault, bool) {
	if fs.n.Load() == 0 {
		return Fault{}, false
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i, a := range fs.list {
		if a.f.Kind == FaultFailCreate && (a.f.Table == "" || a.f.Table == table) {
			f := a.f
			fs.fireLocked(i)
			return f, true
		}
	}
	return Fault{}, false
}

// onRecords counts a request of n records on table and returns the faults
// it fires (nil almost always).
func (fs *faultSet) onRecords(table string, n int) []Fault {
	if fs.n.Load() == 0 {
		return nil
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var fired []Fault
	for i := 0; i < len(fs.list); i++ {
		a := fs.list[i]
		if a.f.Kind == FaultFailCreate || (a.f.Table != "" && a.f.Table != table) {
			continue
		}
		if a.seen+int64(n) <= a.f.AfterRecords {
			a.seen += int64(n)
			continue
		}
		fired = append(fired, a.f)
		before := len(fs.list)
		fs.fireLocked(i)
		if len(fs.list) < before {
			i--
		}
	}
	return fired
}

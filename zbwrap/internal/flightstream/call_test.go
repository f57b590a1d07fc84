package flightstream

import (
	"errors"
	"testing"

	"github.com/pyzerobus/pyzerobus/zbwrap/internal/stream"
)

func TestParseAck(t *testing.T) {
	a, err := parseAck([]byte(`{"ack_up_to_offset": 4, "ack_up_to_records": 40}`))
	if err != nil || *a.UpTo != 4 || *a.Records != 40 {
		t.Fatalf("%+v %v", a, err)
	}
	for _, bad := range []string{``, `{`, `{"ack_up_to_records": 3}`, `[1]`} {
		if _, err := parseAck([]byte(bad)); !errors.Is(err, stream.ErrProtocol) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// An ack whose row count ends inside a message acknowledges only the
// messages wholly before it; later acks count on from there.
func TestWholeUpTo(t *testing.T) {
	c := &call{}
	for _, rows := range []int64{10, 10, 5, 20} { // cumulative 10 20 25 45
		c.mu.Lock()
		total := rows
		if n := len(c.rows); n > 0 {
			total += c.rows[n-1]
		}
		c.rows = append(c.rows, total)
		c.mu.Unlock()
	}
	steps := []struct{ upTo, records, want int64 }{
		{0, 5, -1},   // inside the first message: nothing whole
		{1, 20, 1},   // both of the first two
		{3, 30, 2},   // inside the last: up to the third
		{3, 45, 3},   // all
		{9, 45, 9},   // beyond what was written: passed on for the stream to refuse
		{-5, 45, -5}, // below: likewise
	}
	for _, s := range steps {
		if got := c.wholeUpTo(s.upTo, s.records); got != s.want {
			t.Fatalf("wholeUpTo(%d, %d) = %d, want %d", s.upTo, s.records, got, s.want)
		}
	}
}

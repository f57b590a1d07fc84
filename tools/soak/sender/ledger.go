package main

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/pyzerobus/pyzerobus/zbwrap"
)

// A ledger records what the engine reported for each send, one JSON line
// per send (the format tools/soak/soak.py reads, shared with the Python
// senders):
//
//	{"sender":"go-sync","first":0,"rows":10,"latency_ms":1.5,"success":true,
//	 "attempts":1,"acked":[[0,10]],"failed":[]}
//
// acked and failed hold runs of row indexes of the batch (first + index is
// the row's seq): acked as [start, count], failed as [start, count, kind,
// may_have_landed]. error is the message of the first failed row's error
// (absent when no row failed): it carries the server's status message, by
// which the checker knows the sends a deliberately injected fatal fault
// failed. attempts is -1 when the engine did not say (an async
// batch that succeeded). The last line is {"sender":..., "final":true,
// "next_seq":N, "stats":{...}, "close_error":""}.
type ledger struct {
	mu     sync.Mutex
	enc    *json.Encoder
	sender string
	err    error
}

type sendLine struct {
	Sender    string   `json:"sender"`
	First     int64    `json:"first"`
	Rows      int      `json:"rows"`
	LatencyMs float64  `json:"latency_ms"`
	Success   bool     `json:"success"`
	Attempts  int      `json:"attempts"`
	Acked     [][2]int `json:"acked"`
	Failed    [][4]any `json:"failed"`
	Error     string   `json:"error,omitempty"`
}

type finalLine struct {
	Sender     string       `json:"sender"`
	Final      bool         `json:"final"`
	NextSeq    int64        `json:"next_seq"`
	Stats      zbwrap.Stats `json:"stats"`
	CloseError string       `json:"close_error"`
}

// kindName is the error kind as the Python package names it
// ("retry_exhausted").
func kindName(k zbwrap.Kind) string { return strings.ReplaceAll(k.String(), " ", "_") }

// result records one send of rows rows from seq first. res may be nil (the
// send failed before the engine took the batch): then every row failed,
// certainly not sent.
func (l *ledger) result(first int64, rows int, latency time.Duration, res *zbwrap.TransmissionResult, err error) {
	line := sendLine{Sender: l.sender, First: first, Rows: rows,
		LatencyMs: float64(latency.Microseconds()) / 1000, Acked: [][2]int{}, Failed: [][4]any{}}
	if res == nil {
		kind := "unknown"
		var ze *zbwrap.Error
		if errors.As(err, &ze) {
			kind = kindName(ze.Kind)
		}
		line.Failed = append(line.Failed, [4]any{0, rows, kind, false})
		if err != nil {
			line.Error = err.Error()
		}
		l.write(line)
		return
	}
	line.Success = res.Success && err == nil
	line.Attempts = res.Attempts
	if res.Success && res.SuccessfulRows == nil {
		line.Attempts = -1 // an async batch: the engine reports only failures
		line.Acked = append(line.Acked, [2]int{0, rows})
	}
	for _, r := range res.SuccessfulRows {
		if n := len(line.Acked); n > 0 && line.Acked[n-1][0]+line.Acked[n-1][1] == r {
			line.Acked[n-1][1]++
			continue
		}
		line.Acked = append(line.Acked, [2]int{r, 1})
	}
	for _, f := range res.FailedRows {
		if line.Error == "" && f.Error != nil {
			line.Error = f.Error.Error()
		}
		kind := kindName(f.Error.Kind)
		if n := len(line.Failed); n > 0 {
			last := &line.Failed[n-1]
			if last[0].(int)+last[1].(int) == f.Index && last[2] == kind && last[3] == f.MayHaveLanded {
				last[1] = last[1].(int) + 1
				continue
			}
		}
		line.Failed = append(line.Failed, [4]any{f.Index, 1, kind, f.MayHaveLanded})
	}
	l.write(line)
}

func (l *ledger) final(st zbwrap.Stats, next int64, closeErr error) {
	line := finalLine{Sender: l.sender, Final: true, NextSeq: next, Stats: st}
	if closeErr != nil {
		line.CloseError = closeErr.Error()
	}
	l.write(line)
}

func (l *ledger) write(v any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.enc.Encode(v); err != nil && l.err == nil {
		l.err = err
	}
}

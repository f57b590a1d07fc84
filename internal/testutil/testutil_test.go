package testutil

import (
	"fmt"
	"runtime"
	"slices"
	"testing"
)

func TestEventually(t *testing.T) {
	n := 0
	Eventually(t, "the third call", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Fatalf("cond called %d times, want 3", n)
	}
}

func TestCheck(t *testing.T) {
	type result struct {
		rows int64
		ok   bool
	}
	r := result{rows: 3, ok: true}
	if !Check(t, "result", Want("rows", r.rows, 3), Want("ok", r.ok, true)) {
		t.Fatal("matching fields reported")
	}
	rec := &recorder{TB: t}
	if Check(rec, "result", Want("rows", r.rows, 4), Want("ok", r.ok, true), Want("names", []string{"a"}, []string{"b"})) {
		t.Fatal("differing fields not reported")
	}
	want := []string{"result: rows = 3, want 4", "result: names = [a], want [b]"}
	if !slices.Equal(rec.errs, want) {
		t.Fatalf("reported %q, want %q", rec.errs, want)
	}
}

// recorder keeps what Errorf is given instead of failing the test.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// stopper is a recorder whose FailNow and Fatalf end the calling goroutine
// the way the testing package does, and remember that they were called.
type stopper struct {
	recorder
	stopped bool
	fatal   string
}

func (s *stopper) FailNow() { s.stopped = true; runtime.Goexit() }
func (s *stopper) Fatalf(format string, args ...any) {
	s.fatal = fmt.Sprintf(format, args...)
	s.FailNow()
}

// run calls f on a goroutine of its own, as a test body runs, and waits.
func (s *stopper) run(f func()) {
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	<-done
}

func TestRequireStopsOnADifference(t *testing.T) {
	s := &stopper{recorder: recorder{TB: t}}
	reached := false
	s.run(func() {
		Require(s, "result", Want("rows", 1, 2))
		reached = true
	})
	if !s.stopped || reached || len(s.errs) != 1 {
		t.Fatalf("stopped %v, went on %v, reported %q", s.stopped, reached, s.errs)
	}
	s = &stopper{recorder: recorder{TB: t}}
	s.run(func() { Require(s, "result", Want("rows", 2, 2)) })
	if s.stopped {
		t.Fatal("Require stopped on matching fields")
	}
}

func TestEventuallyGivesUp(t *testing.T) {
	if testing.Short() {
		t.Skip("waits EventuallyTimeout")
	}
	s := &stopper{recorder: recorder{TB: t}}
	s.run(func() { Eventually(s, "never", func() bool { return false }) })
	if !s.stopped || s.fatal != "timed out waiting for never" {
		t.Fatalf("stopped %v with %q", s.stopped, s.fatal)
	}
}

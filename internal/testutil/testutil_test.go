package testutil

import (
	"fmt"
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

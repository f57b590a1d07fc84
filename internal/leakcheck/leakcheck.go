// Package leakcheck fails a test whose goroutines outlive it. The engine's
// tests use it to show that every goroutine has an owner that stops it.
package leakcheck

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// Grace is how long goroutines get to end after a test before they count as
// leaked.
const Grace = 5 * time.Second

// Check registers a cleanup that fails t if, Grace after the test ends, a
// goroutine matched by Running(markers...) is still there.
func Check(t testing.TB, markers ...string) {
	t.Cleanup(func() {
		deadline := time.Now().Add(Grace)
		for {
			left := Running(markers...)
			if len(left) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%d goroutines leaked:\n%s", len(left), strings.Join(left, "\n\n"))
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// Running returns the stacks of the goroutines that contain one of the
// markers (for example "zbwrap/internal/stream.") and no frame of a
// _test.go file: goroutines a test starts itself are the test's business.
func Running(markers ...string) []string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "_test.go") {
			continue
		}
		for _, m := range markers {
			if strings.Contains(g, m) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

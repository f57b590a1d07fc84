package leakcheck

import (
	"testing"
	"time"
)

// fakeT records what Check reports without failing the real test.
type fakeT struct {
	testing.TB
	cleanups []func()
	failed   bool
}

func (f *fakeT) Cleanup(fn func())     { f.cleanups = append(f.cleanups, fn) }
func (f *fakeT) Errorf(string, ...any) { f.failed = true }
func (f *fakeT) runCleanups() {
	for _, fn := range f.cleanups {
		fn()
	}
}

// waitFor polls until Running(marker) has n goroutines.
func waitFor(t *testing.T, marker string, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); len(Running(marker)) != n; {
		if time.Now().After(deadline) {
			t.Fatalf("Running(%q) = %d goroutines, want %d", marker, len(Running(marker)), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRunningAndCheck(t *testing.T) {
	stop := make(chan struct{})
	startParked(stop) // a goroutine started by non-test code
	waitFor(t, "leakcheck.parked", 1)
	if got := Running("no-such-marker"); len(got) != 0 {
		t.Fatalf("unrelated marker matched %d goroutines", len(got))
	}

	leaky := &fakeT{TB: t}
	Check(leaky, "leakcheck.parked")
	start := time.Now()
	leaky.runCleanups()
	if !leaky.failed || time.Since(start) < Grace {
		t.Fatalf("a goroutine alive past Grace: failed=%v after %v", leaky.failed, time.Since(start))
	}

	clean := &fakeT{TB: t}
	Check(clean, "leakcheck.parked")
	time.AfterFunc(50*time.Millisecond, func() { close(stop) })
	clean.runCleanups()
	if clean.failed {
		t.Fatal("a goroutine that ended within Grace was reported as leaked")
	}
	waitFor(t, "leakcheck.parked", 0)
}

// Goroutines started from test files are not counted.
func TestRunningIgnoresTestGoroutines(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	go parked(stop)
	time.Sleep(10 * time.Millisecond)
	if got := Running("leakcheck.parked"); len(got) != 0 {
		t.Fatalf("a goroutine started by a test was counted: %v", got)
	}
}

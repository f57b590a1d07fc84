package benchproc

import (
	"os"
	"path/filepath"
	"testing"
)

func TestPeakRSSFrom(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		path string
		want int64
	}{
		{write("ok", "Name:\tgoengine\nVmHWM:\t   2048 kB\nVmRSS:\t1024 kB\n"), 2048 * 1024},
		{write("bad", "VmHWM:\tmany kB\n"), 0},
		{write("none", "Name:\tgoengine\n"), 0},
		{filepath.Join(dir, "missing"), 0},
	} {
		if got := PeakRSSFrom(tc.path); got != tc.want {
			t.Errorf("%s: %d, want %d", filepath.Base(tc.path), got, tc.want)
		}
	}
}

// This process has a resident set and has used some CPU.
func TestThisProcess(t *testing.T) {
	if PeakRSS() <= 0 {
		t.Errorf("PeakRSS = %d", PeakRSS())
	}
	busy := 0
	for i := range 10_000_000 {
		busy += i
	}
	if CPUSeconds() <= 0 {
		t.Errorf("CPUSeconds = %v after a busy loop (%d)", CPUSeconds(), busy)
	}
}

// Package benchproc measures a benchmark process from the inside: its CPU
// time and its peak resident set. The benchmark commands (tools/bench/goengine
// and the conformance module's sdkbench) report both, so that the harness
// compares every contender the same way.
package benchproc

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// PeakRSS is this process's peak resident set in bytes (VmHWM of
// /proc/self/status), 0 where /proc does not say. A benchmark reads it
// here rather than from its parent's wait4: on Linux the ru_maxrss of a
// child starts from the resident set of the process that forked it.
func PeakRSS() int64 { return PeakRSSFrom("/proc/self/status") }

// PeakRSSFrom reads VmHWM from a file in the format of /proc/PID/status.
func PeakRSSFrom(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}

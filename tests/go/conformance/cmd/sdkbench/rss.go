package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// peakRSS is this process's peak resident set in bytes (VmHWM of
// /proc/self/status), 0 where /proc does not say. A benchmark reads it
// here rather than from its parent's wait4: on Linux the ru_maxrss of a
// child starts from the resident set of the process that forked it.
func peakRSS() int64 { return peakRSSFrom("/proc/self/status") }

// peakRSSFrom reads VmHWM from a file in the format of /proc/PID/status.
func peakRSSFrom(path string) int64 {
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

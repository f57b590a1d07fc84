//go:build !unix

package main

// cpuSeconds is 0 where the platform has no getrusage.
func cpuSeconds() float64 { return 0 }

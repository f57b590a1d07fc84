//go:build !unix

package benchproc

// CPUSeconds is 0 where the platform has no getrusage.
func CPUSeconds() float64 { return 0 }

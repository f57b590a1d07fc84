//go:build !linux

package debugfiles

import "testing"

// readOnlyMount has no meaning where mountTmpfs cannot mount.
const readOnlyMount = 0

// mountTmpfs skips: the tests that need a small or read-only file system
// of their own run on Linux.
func mountTmpfs(t *testing.T, _ string, _ uintptr) string {
	t.Helper()
	t.Skip("tmpfs mounts are Linux only")
	return ""
}

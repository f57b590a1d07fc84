package debugfiles

import (
	"syscall"
	"testing"
)

// readOnlyMount is the flag of a read-only mount.
const readOnlyMount = syscall.MS_RDONLY

// mountTmpfs mounts a tmpfs at a new directory for the test, or skips.
func mountTmpfs(t *testing.T, opts string, flags uintptr) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", flags, opts); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v): needs root", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

//go:build unix

package lake

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// ErrLocked reports a data directory that another open Lake holds.
var ErrLocked = errors.New("lake: data directory is in use by another Lake")

// lockDir takes an exclusive advisory lock on <dir>/.lake.lock, so two
// processes (or two Lakes in one process) never write the same tables.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lake.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err == nil {
		if err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
			return f, nil
		}
		f.Close()
	}
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
	}
	return nil, fmt.Errorf("lake: lock %s: %w", dir, err)
}

// unlockDir releases the lock by closing the file.
func unlockDir(f *os.File) error { return f.Close() }

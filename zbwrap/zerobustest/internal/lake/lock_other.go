//go:build !unix

package lake

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrLocked reports a data directory that another open Lake holds.
var ErrLocked = errors.New("lake: data directory is in use by another Lake")

// lockDir creates <dir>/.lake.lock; without flock the lock is not enforced.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lake.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lake: %w", err)
	}
	return f, nil
}

func unlockDir(f *os.File) error { return f.Close() }

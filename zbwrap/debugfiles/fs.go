package debugfiles

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// Permissions of what the Writer creates: the files hold the data being sent,
// so only their owner may read them.
const (
	dirPerm  = 0o755
	filePerm = 0o600
)

// fileSystem is the part of the os package the Writer uses; tests put a
// failing one in its place.
type fileSystem interface {
	MkdirAll(dir string) error
	// Create opens name for appending, empty.
	Create(name string) (file, error)
	CreateTemp(dir, pattern string) (file, error)
	Rename(from, to string) error
	Remove(name string) error
	Stat(name string) (fs.FileInfo, error)
	ReadDirNames(dir string) ([]string, error)
	ReadFile(name string) ([]byte, error)
}

// file is an open file; *os.File is one.
type file interface {
	Write(p []byte) (int, error)
	Truncate(size int64) error
	Close() error
	Name() string
}

type osFS struct{}

func (osFS) MkdirAll(dir string) error { return os.MkdirAll(dir, dirPerm) }

func (osFS) Create(name string) (file, error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, filePerm)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (osFS) CreateTemp(dir, pattern string) (file, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (osFS) Rename(from, to string) error          { return os.Rename(from, to) }
func (osFS) Remove(name string) error              { return os.Remove(name) }
func (osFS) Stat(name string) (fs.FileInfo, error) { return os.Stat(name) }
func (osFS) ReadFile(name string) ([]byte, error)  { return os.ReadFile(name) }

func (osFS) ReadDirNames(dir string) ([]string, error) {
	es, err := os.ReadDir(dir)
	names := make([]string, 0, len(es))
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names, err
}

// writeFileAtomic writes data to a temporary file in the directory of name
// and renames it over name, so a reader sees the old file or the new one,
// never a part. The temporary name, ".<stem>.<random>.tmp", is hidden and no
// longer than the names the Writer rotates to.
func writeFileAtomic(fsys fileSystem, name, stem string, data []byte) (err error) {
	f, err := fsys.CreateTemp(filepath.Dir(name), "."+stem+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = fsys.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return fsys.Rename(tmp, name)
}

// exists tells whether name is there (an error other than "not found" counts
// as there, so nothing gets overwritten on a doubt).
func exists(fsys fileSystem, name string) bool {
	_, err := fsys.Stat(name)
	return !errors.Is(err, fs.ErrNotExist)
}

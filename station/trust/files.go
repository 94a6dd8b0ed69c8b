package trust

import (
	"fmt"
	"io/fs"
	"os"
)

// StateDirMode is the state directory's mode: it holds the refresh token, the badge hash key and
// the journal, for nobody but the daemon.
const StateDirMode fs.FileMode = 0o700

// SecureDir creates dir if needed and forces it to StateDirMode: a directory that already existed
// with a wider mode (0755 from an image build or an admin's mkdir) is narrowed, and if it cannot
// be, the station refuses to start rather than keep secrets where others can read them.
func SecureDir(dir string) error {
	if err := os.MkdirAll(dir, StateDirMode); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("state dir: %s is not a directory", dir)
	}
	if fi.Mode().Perm() != StateDirMode {
		if err := os.Chmod(dir, StateDirMode); err != nil {
			return fmt.Errorf("state dir: %s has mode %v and cannot be made %v: %w", dir, fi.Mode().Perm(), StateDirMode, err)
		}
	}
	return nil
}

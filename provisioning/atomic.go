package provisioning

import "io/fs"

// WriteFileAtomic replaces path with data durably: a crash at any point leaves the old or the new
// file, never a torn one. Other parts of the station keep their state files with it.
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	return writeFileAtomic(path, data, perm)
}

package provisioning

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// TokenFile is the name of the token file inside Config.StateDir.
const TokenFile = "tokens.json"

// fileVersion is the version of the token file format.
const fileVersion = 1

// saneEpoch: a wall clock before this has not been set yet (a Raspberry Pi
// boots at 1970 until NTP answers), so expiry times cannot be judged by it.
var saneEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func clockSane(t time.Time) bool { return t.After(saneEpoch) }

// tokenFile is the on-disk form of the station's grant.
type tokenFile struct {
	Version      int        `json:"version"`
	AccessToken  string     `json:"access_token"`
	TokenType    string     `json:"token_type,omitempty"`
	RefreshToken string     `json:"refresh_token,omitempty"`
	ExpiresIn    int64      `json:"expires_in,omitempty"` // lifetime the server gave, seconds
	Expiry       *time.Time `json:"expiry,omitempty"`     // absent when obtained with an unset clock
	StationID    string     `json:"station_id,omitempty"`
	Serial       string     `json:"serial,omitempty"`
}

// loadTokens reads the token file; fs.ErrNotExist when there is none.
func loadTokens(path string) (*tokenFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var tf tokenFile
	if err := json.Unmarshal(b, &tf); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	switch {
	case tf.Version != fileVersion:
		return nil, fmt.Errorf("%s: version %d: want %d", filepath.Base(path), tf.Version, fileVersion)
	case tf.AccessToken == "":
		return nil, fmt.Errorf("%s: access_token: empty", filepath.Base(path))
	}
	return &tf, nil
}

// writeFileAtomic replaces path with data so that a crash or power loss at
// any point leaves either the old or the new file, never a torn one: write
// a temporary file in the same directory, fsync it, rename it over path,
// then fsync the directory so the rename itself is durable.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// removeDurably deletes path and makes the deletion durable.
func removeDurably(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

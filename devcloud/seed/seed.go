// Package seed loads devcloud's users, badges, API clients and layouts from one JSON file.
package seed

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"labelstation/label"
)

// File is the seed document.
type File struct {
	V       int      `json:"v"`
	Users   []User   `json:"users"`
	Apps    []App    `json:"apps"`
	Layouts []string `json:"layouts"` // paths relative to the seed file
	Groups  []Group  `json:"groups"`
}

// User is an employee with held jobs and badges. Badges are card numbers as the station formats
// them (station config badge.encoding/byte_order/bits), e.g. upper-case hex of the UID.
// PasswordHash (bcrypt) lets the user sign in to approve stations; without one devcloud
// generates a password at start-up and prints it, so no password lives in the repository.
type User struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	Badges       []string `json:"badges"`
	PasswordHash string   `json:"password_hash,omitempty"`
	// Password is the generated password, in memory only.
	Password string `json:"-"`
}

// App is an external application allowed to submit jobs for a user (client_credentials grant).
// An empty Secret is generated at start-up and printed, so no secret lives in the repository.
type App struct {
	ClientID string `json:"client_id"`
	Secret   string `json:"secret"`
	User     string `json:"user"`
	// Retention, a Go duration ("2h"), overrides how long the app's held jobs wait.
	Retention string `json:"retention,omitempty"`
}

// Group names a set of stations (by hardware serial) that share fleet config and commands.
type Group struct {
	Name    string   `json:"name"`
	Serials []string `json:"serials"`
}

// Seed is a loaded, validated seed file.
type Seed struct {
	File
	// Layouts by id, parsed, with their source JSON (sent to stations with each job).
	Layouts map[string]Layout
}

// Layout is a parsed layout and its document.
type Layout struct {
	Parsed *label.Layout
	Raw    json.RawMessage
}

var bcryptRE = regexp.MustCompile(`^\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}$`)

var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Load reads and validates a seed file; errors name the offending entry.
func Load(path string) (*Seed, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	var f File
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("seed: %s: %w", path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("seed: %s: trailing data after the document", path)
	}
	if f.V != 1 {
		return nil, fmt.Errorf("seed: %s: v: want 1, got %d", path, f.V)
	}
	s := &Seed{File: f, Layouts: map[string]Layout{}}
	users := map[string]bool{}
	badges := map[string]string{}
	for i, u := range f.Users {
		if !idRE.MatchString(u.ID) {
			return nil, fmt.Errorf("seed: users[%d].id: %q is not a valid id", i, u.ID)
		}
		if users[u.ID] {
			return nil, fmt.Errorf("seed: users[%d].id: duplicate %q", i, u.ID)
		}
		users[u.ID] = true
		if u.PasswordHash != "" && !bcryptRE.MatchString(u.PasswordHash) {
			return nil, fmt.Errorf("seed: users[%d].password_hash: want a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters)", i)
		}
		for j, b := range u.Badges {
			if strings.TrimSpace(b) == "" {
				return nil, fmt.Errorf("seed: users[%d].badges[%d]: empty", i, j)
			}
			if other, dup := badges[b]; dup {
				return nil, fmt.Errorf("seed: users[%d].badges[%d]: %q already belongs to %s", i, j, b, other)
			}
			badges[b] = u.ID
		}
	}
	for i, a := range f.Apps {
		if !idRE.MatchString(a.ClientID) {
			return nil, fmt.Errorf("seed: apps[%d].client_id: %q is not a valid id", i, a.ClientID)
		}
		if !users[a.User] {
			return nil, fmt.Errorf("seed: apps[%d].user: unknown user %q", i, a.User)
		}
		if _, err := a.RetentionDuration(); err != nil {
			return nil, fmt.Errorf("seed: apps[%d].retention: %w", i, err)
		}
	}
	for i, p := range f.Layouts {
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(path), p)
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("seed: layouts[%d]: %w", i, err)
		}
		l, err := label.ParseLayout(raw)
		if err != nil {
			return nil, fmt.Errorf("seed: layouts[%d] (%s): %w", i, p, err)
		}
		if _, dup := s.Layouts[l.ID]; dup {
			return nil, fmt.Errorf("seed: layouts[%d]: duplicate layout id %q", i, l.ID)
		}
		s.Layouts[l.ID] = Layout{Parsed: l, Raw: raw}
	}
	for i, g := range f.Groups {
		if !idRE.MatchString(g.Name) {
			return nil, fmt.Errorf("seed: groups[%d].name: %q is not a valid name", i, g.Name)
		}
	}
	return s, nil
}

// ErrNoUser is returned by UserByID for an unknown id.
var ErrNoUser = errors.New("seed: no such user")

// UserByID finds a user.
func (s *Seed) UserByID(id string) (User, error) {
	for _, u := range s.Users {
		if u.ID == id {
			return u, nil
		}
	}
	return User{}, fmt.Errorf("%w: %q", ErrNoUser, id)
}

// RetentionDuration parses Retention; 0 when it is empty.
func (a App) RetentionDuration() (time.Duration, error) {
	if a.Retention == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(a.Retention)
	if err == nil && d <= 0 {
		err = fmt.Errorf("%q is not positive", a.Retention)
	}
	return d, err
}

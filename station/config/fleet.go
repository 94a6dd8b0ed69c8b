package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Fleet is the part of the configuration a fleet manager may push (protocol.ConfigDesired.Config).
// Local wiring — station, cloud, board, printer URL, display kind and size, badge reader and
// device — is not in it, so a push naming one of those is refused as an unknown field with its
// path. Pointers tell "not set" (keep the local value) from a zero value.
type Fleet struct {
	V       int           `json:"v"`
	Printer *FleetPrinter `json:"printer,omitempty"`
	Display *FleetDisplay `json:"display,omitempty"`
	Badge   *FleetBadge   `json:"badge,omitempty"`
	Release *FleetRelease `json:"release,omitempty"`
	Log     *FleetLog     `json:"log,omitempty"`
}

// FleetLog holds the fleet-settable log level, so a support call can turn on debug remotely.
type FleetLog struct {
	Level *string `json:"level,omitempty"`
}

// FleetPrinter holds the fleet-settable printer fields.
type FleetPrinter struct {
	Lang   *string `json:"lang,omitempty"`
	DPI    *int    `json:"dpi,omitempty"`
	Raster *bool   `json:"raster,omitempty"`

	PairingLabel *bool `json:"pairing_label,omitempty"`
}

// FleetDisplay holds the fleet-settable display fields.
type FleetDisplay struct {
	Rotate   *int `json:"rotate,omitempty"`
	Contrast *int `json:"contrast,omitempty"`
}

// FleetBadge holds the fleet-settable badge fields.
type FleetBadge struct {
	Encoding  *string `json:"encoding,omitempty"`
	ByteOrder *string `json:"byte_order,omitempty"`
	Bits      *int    `json:"bits,omitempty"`
	RepeatMS  *int    `json:"repeat_ms,omitempty"`
	HashKey   *string `json:"hash_key,omitempty"`
}

// FleetRelease holds the fleet-settable release fields.
type FleetRelease struct {
	Mode          *string `json:"mode,omitempty"`
	ScreenSeconds *int    `json:"screen_seconds,omitempty"`
}

// ParseFleet decodes a pushed fleet document with the same strictness as Parse ("v" required,
// unknown fields rejected with their path) and checks every value it sets.
func ParseFleet(data []byte) (Fleet, error) {
	if err := checkVersion(data); err != nil {
		return Fleet{}, err
	}
	var f Fleet
	if err := decodeStrict(data, &f); err != nil {
		return Fleet{}, err
	}
	// The defaults are valid, so any problem comes from a value the document sets.
	if err := Defaults().merge(f).validateFleet(); err != nil {
		return Fleet{}, err
	}
	return f, nil
}

// Apply returns c with the fleet values set in f, validated. On error c is returned unchanged, so
// a bad push leaves the station running with what it had.
func (c Config) Apply(f Fleet) (Config, error) {
	out := c.merge(f)
	if err := out.Validate(); err != nil {
		return c, err
	}
	return out, nil
}

// merge copies the values set in f onto c. c is a copy; its only shared part, Cloud.Scopes, is
// never written here.
func (c Config) merge(f Fleet) Config {
	set(&c.Printer.Lang, f.Printer, func(p *FleetPrinter) *string { return p.Lang })
	set(&c.Printer.DPI, f.Printer, func(p *FleetPrinter) *int { return p.DPI })
	set(&c.Printer.Raster, f.Printer, func(p *FleetPrinter) *bool { return p.Raster })
	set(&c.Printer.PairingLabel, f.Printer, func(p *FleetPrinter) *bool { return p.PairingLabel })
	set(&c.Display.Rotate, f.Display, func(d *FleetDisplay) *int { return d.Rotate })
	set(&c.Display.Contrast, f.Display, func(d *FleetDisplay) *int { return d.Contrast })
	set(&c.Badge.Encoding, f.Badge, func(b *FleetBadge) *string { return b.Encoding })
	set(&c.Badge.ByteOrder, f.Badge, func(b *FleetBadge) *string { return b.ByteOrder })
	set(&c.Badge.Bits, f.Badge, func(b *FleetBadge) *int { return b.Bits })
	set(&c.Badge.RepeatMS, f.Badge, func(b *FleetBadge) *int { return b.RepeatMS })
	set(&c.Badge.HashKey, f.Badge, func(b *FleetBadge) *string { return b.HashKey })
	set(&c.Release.Mode, f.Release, func(r *FleetRelease) *string { return r.Mode })
	set(&c.Release.ScreenSeconds, f.Release, func(r *FleetRelease) *int { return r.ScreenSeconds })
	set(&c.Log.Level, f.Log, func(l *FleetLog) *string { return l.Level })
	return c
}

func set[S any, T any](dst *T, section *S, field func(*S) *T) {
	if section == nil {
		return
	}
	if v := field(section); v != nil {
		*dst = *v
	}
}

// FleetFile is the name of the last good fleet document in the state directory.
const FleetFile = "fleet.json"

// SaveFleet stores raw, a fleet document that ParseFleet accepts, as the last good fleet config
// in dir. The write is atomic — temp file, fsync, rename, fsync of the directory — so power loss
// at any point leaves either the old or the new document, never a mix; the file is 0600 because
// it may hold the badge hash key. A document ParseFleet refuses is not saved.
func SaveFleet(dir string, raw []byte) error {
	return saveFleet(dir, raw, writeAll)
}

func writeAll(f *os.File, b []byte) error {
	_, err := f.Write(b)
	return err
}

// saveFleet is SaveFleet with the write step injectable, so tests can fail or crash mid-write.
func saveFleet(dir string, raw []byte, write func(*os.File, []byte) error) error {
	if _, err := ParseFleet(raw); err != nil {
		return fmt.Errorf("config: save fleet: %w", err)
	}
	removeStale(dir)
	tmp, err := os.CreateTemp(dir, "."+FleetFile+".*.tmp") // created 0600
	if err != nil {
		return fmt.Errorf("config: save fleet: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := write(tmp, raw); err != nil {
		return fmt.Errorf("config: save fleet: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("config: save fleet: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("config: save fleet: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, FleetFile)); err != nil {
		return fmt.Errorf("config: save fleet: %w", err)
	}
	ok = true
	// The rename is durable only once the directory entry is on disk.
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("config: save fleet: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("config: save fleet: sync %s: %w", dir, err)
	}
	return nil
}

// removeStale deletes temp files a crash mid-save left behind. Best effort: a leftover file
// wastes a little space but is never read.
func removeStale(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if n := e.Name(); strings.HasPrefix(n, "."+FleetFile+".") && strings.HasSuffix(n, ".tmp") {
			os.Remove(filepath.Join(dir, n))
		}
	}
}

// LoadFleet returns the last good fleet document saved in dir; the error wraps os.ErrNotExist
// (fs.ErrNotExist) when there is none.
func LoadFleet(dir string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, FleetFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("config: no saved fleet config: %w", err)
	}
	if err != nil {
		return nil, fmt.Errorf("config: load fleet: %w", err)
	}
	return b, nil
}

package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
	V         int             `json:"v"`
	Printer   *FleetPrinter   `json:"printer,omitempty"`
	Display   *FleetDisplay   `json:"display,omitempty"`
	Badge     *FleetBadge     `json:"badge,omitempty"`
	Release   *FleetRelease   `json:"release,omitempty"`
	Log       *FleetLog       `json:"log,omitempty"`
	Telemetry *FleetTelemetry `json:"telemetry,omitempty"`
}

// FleetLog holds the fleet-settable log level, so a support call can turn on debug remotely.
type FleetLog struct {
	Level *string `json:"level,omitempty"`
}

// FleetTelemetry holds the fleet-settable telemetry fields.
type FleetTelemetry struct {
	IntervalS *int `json:"interval_s,omitempty"`
}

// FleetPrinter holds the fleet-settable printer fields.
type FleetPrinter struct {
	Lang   *string `json:"lang,omitempty"`
	DPI    *int    `json:"dpi,omitempty"`
	Raster *bool   `json:"raster,omitempty"`

	PairingLabel *bool   `json:"pairing_label,omitempty"`
	ZPLPrefix    *string `json:"zpl_prefix,omitempty"`
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
	Order         *string `json:"order,omitempty"`
	SelectSeconds *int    `json:"select_seconds,omitempty"`
	Preview       *bool   `json:"preview,omitempty"`
	OfflineSecs   *int    `json:"offline_seconds,omitempty"`
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
	set(&c.Printer.ZPLPrefix, f.Printer, func(p *FleetPrinter) *string { return p.ZPLPrefix })
	set(&c.Display.Rotate, f.Display, func(d *FleetDisplay) *int { return d.Rotate })
	set(&c.Display.Contrast, f.Display, func(d *FleetDisplay) *int { return d.Contrast })
	set(&c.Badge.Encoding, f.Badge, func(b *FleetBadge) *string { return b.Encoding })
	set(&c.Badge.ByteOrder, f.Badge, func(b *FleetBadge) *string { return b.ByteOrder })
	set(&c.Badge.Bits, f.Badge, func(b *FleetBadge) *int { return b.Bits })
	set(&c.Badge.RepeatMS, f.Badge, func(b *FleetBadge) *int { return b.RepeatMS })
	set(&c.Badge.HashKey, f.Badge, func(b *FleetBadge) *string { return b.HashKey })
	set(&c.Release.Mode, f.Release, func(r *FleetRelease) *string { return r.Mode })
	set(&c.Release.ScreenSeconds, f.Release, func(r *FleetRelease) *int { return r.ScreenSeconds })
	set(&c.Release.Order, f.Release, func(r *FleetRelease) *string { return r.Order })
	set(&c.Release.SelectSeconds, f.Release, func(r *FleetRelease) *int { return r.SelectSeconds })
	set(&c.Release.Preview, f.Release, func(r *FleetRelease) *bool { return r.Preview })
	set(&c.Release.OfflineSeconds, f.Release, func(r *FleetRelease) *int { return r.OfflineSecs })
	set(&c.Log.Level, f.Log, func(l *FleetLog) *string { return l.Level })
	set(&c.Telemetry.IntervalS, f.Telemetry, func(t *FleetTelemetry) *int { return t.IntervalS })
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
	return writeAtomic(dir, FleetFile, raw, write)
}

// WriteFile writes dir/name atomically with mode 0600 (see writeAtomic); the station keeps
// its other small state files (boot counter, seen command ids) with it.
func WriteFile(dir, name string, data []byte) error { return writeAtomic(dir, name, data, writeAll) }

// writeAtomic writes dir/name: temp file, fsync, rename, fsync of the directory, so power loss
// at any point leaves either the old or the new content, never a mix. The file is 0600.
func writeAtomic(dir, name string, raw []byte, write func(*os.File, []byte) error) error {
	removeStale(dir, name)
	tmp, err := os.CreateTemp(dir, "."+name+".*.tmp") // created 0600
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
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
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
func removeStale(dir, name string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if n := e.Name(); strings.HasPrefix(n, "."+name+".") && strings.HasSuffix(n, ".tmp") {
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

// Source documents: the fleet config a station runs is defaults ⊕ local file ⊕ group ⊕ station,
// recomputed from the documents it accepted — never a merged copy, so a document that leaves a
// field out gives it back to the layer below, and every accepted push survives a restart.

// Doc is one accepted desired document of a source.
type Doc struct {
	Version int64           `json:"version"`
	Config  json.RawMessage `json:"config"`
	// Group is, on the station's own document, the group it puts the station in; on the
	// group's document, the group it belongs to.
	Group string `json:"group,omitempty"`
}

// Sources are the accepted documents of each source; nil means none.
type Sources struct {
	V       int  `json:"v"`
	Group   *Doc `json:"group,omitempty"`
	Station *Doc `json:"station,omitempty"`
}

// GroupName is the group the station's own document puts it in.
func (s Sources) GroupName() string {
	if s.Station == nil {
		return ""
	}
	return s.Station.Group
}

// ErrStale is returned by Offer for a document whose version is not above the applied one.
var ErrStale = errors.New("config: version not newer than the applied one")

// Offer returns s with doc as the document of source (protocol.SourceGroup or SourceStation),
// and the effective config over base. A stale version, a document of another group than the
// station's, or a document that makes the whole invalid changes nothing: s and its effective
// config stay what they were.
func (s Sources) Offer(base Config, source string, doc Doc) (Sources, Config, error) {
	next := s
	switch source {
	case "group":
		if doc.Group == "" || doc.Group != s.GroupName() {
			return s, Config{}, fmt.Errorf("config: group %q: this station is in group %q", doc.Group, s.GroupName())
		}
		if s.Group != nil && s.Group.Group == doc.Group && doc.Version <= s.Group.Version {
			return s, Config{}, fmt.Errorf("%w (%d <= %d)", ErrStale, doc.Version, s.Group.Version)
		}
		next.Group = &doc
	case "station":
		if s.Station != nil && doc.Version <= s.Station.Version {
			return s, Config{}, fmt.Errorf("%w (%d <= %d)", ErrStale, doc.Version, s.Station.Version)
		}
		next.Station = &doc
		if next.Group != nil && next.Group.Group != doc.Group {
			next.Group = nil // left the group: its settings no longer apply
		}
	default:
		return s, Config{}, fmt.Errorf("config: unknown source %q", source)
	}
	c, err := next.Effective(base)
	if err != nil {
		return s, Config{}, err
	}
	return next, c, nil
}

// Effective is base (defaults ⊕ local file) ⊕ group ⊕ station, validated as a whole. Errors
// name the source and the field path (a *Error is wrapped).
func (s Sources) Effective(base Config) (Config, error) {
	c := base
	for _, l := range []struct {
		name string
		doc  *Doc
	}{{"group", s.Group}, {"station", s.Station}} {
		if l.doc == nil {
			continue
		}
		f, err := ParseFleet(l.doc.Config)
		if err != nil {
			return base, err
		}
		c = c.merge(f)
	}
	if err := c.Validate(); err != nil {
		return base, err
	}
	return c, nil
}

// View is the fleet-settable part of c, every field set.
func (c Config) View() Fleet {
	f := Fleet{
		V:         Version,
		Printer:   &FleetPrinter{Lang: &c.Printer.Lang, DPI: &c.Printer.DPI, Raster: &c.Printer.Raster, PairingLabel: &c.Printer.PairingLabel},
		Display:   &FleetDisplay{Rotate: &c.Display.Rotate, Contrast: &c.Display.Contrast},
		Badge:     &FleetBadge{Encoding: &c.Badge.Encoding, ByteOrder: &c.Badge.ByteOrder, Bits: &c.Badge.Bits, RepeatMS: &c.Badge.RepeatMS, HashKey: &c.Badge.HashKey},
		Release:   &FleetRelease{Mode: &c.Release.Mode, ScreenSeconds: &c.Release.ScreenSeconds},
		Telemetry: &FleetTelemetry{IntervalS: &c.Telemetry.IntervalS},
	}
	if c.Printer.ZPLPrefix != "" {
		// Shown only when set, so stations without one keep the hash they had.
		f.Printer.ZPLPrefix = &c.Printer.ZPLPrefix
	}
	return f
}

// Hash is the SHA-256 (hex) of c's fleet settings: two stations running the same fleet
// settings report the same hash, whatever their local wiring.
func (c Config) Hash() string {
	b, _ := json.Marshal(c.View())
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// restartFields are the fleet fields read once, when the hardware is opened.
var restartFields = []struct {
	path string
	get  func(Config) any
}{
	{"display.rotate", func(c Config) any { return c.Display.Rotate }},
	{"display.contrast", func(c Config) any { return c.Display.Contrast }},
	{"badge.repeat_ms", func(c Config) any { return c.Badge.RepeatMS }},
	{"printer.lang", func(c Config) any { return c.Printer.Lang }}, // the status-query dialect
}

// RestartRequired lists the fields that differ between running and next and take effect only
// at the next start.
func RestartRequired(running, next Config) []string {
	var out []string
	for _, f := range restartFields {
		if f.get(running) != f.get(next) {
			out = append(out, f.path)
		}
	}
	return out
}

// SourcesFile holds the accepted documents in the state directory.
const SourcesFile = "fleet-sources.json"

// SaveSources stores s atomically (0600: documents may hold the badge hash key).
func SaveSources(dir string, s Sources) error {
	s.V = Version
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("config: save sources: %w", err)
	}
	if err := writeAtomic(dir, SourcesFile, b, writeAll); err != nil {
		return fmt.Errorf("config: save sources: %w", err)
	}
	return nil
}

// LoadSources returns the accepted documents saved in dir. A state directory from before
// per-source documents holds one merged document (FleetFile); it comes back as the station's
// own document at version 0, so any push replaces it. No file at all is no error.
func LoadSources(dir string) (Sources, error) {
	b, err := os.ReadFile(filepath.Join(dir, SourcesFile))
	if errors.Is(err, fs.ErrNotExist) {
		raw, lerr := LoadFleet(dir)
		if errors.Is(lerr, fs.ErrNotExist) {
			return Sources{V: Version}, nil
		}
		if lerr != nil {
			return Sources{V: Version}, lerr
		}
		return Sources{V: Version, Station: &Doc{Config: raw}}, nil
	}
	if err != nil {
		return Sources{V: Version}, fmt.Errorf("config: load sources: %w", err)
	}
	var s Sources
	if err := json.Unmarshal(b, &s); err != nil {
		return Sources{V: Version}, fmt.Errorf("config: load sources: %s: %w", SourcesFile, err)
	}
	return s, nil
}

// Restore is the effective config at start: local ⊕ the saved documents. With no or unusable
// saved documents it is local, and the error says why.
func Restore(local Config) (Config, Sources, error) {
	s, err := LoadSources(local.Station.StateDir)
	if err != nil {
		return local, Sources{V: Version}, err
	}
	c, err := s.Effective(local)
	if err != nil {
		return local, s, err
	}
	return c, s, nil
}

package config

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"labelstation/internal/selfexec"
)

func ptr[T any](v T) *T { return &v }

func TestParseFleet(t *testing.T) {
	f, err := ParseFleet([]byte(`{"v": 1, "printer": {"dpi": 300, "raster": false}, "display": {"contrast": 0},
		"badge": {"encoding": "dec", "bits": 24}, "release": {"mode": "confirm"}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Fleet{
		V:       1,
		Printer: &FleetPrinter{DPI: ptr(300), Raster: ptr(false)},
		Display: &FleetDisplay{Contrast: ptr(0)},
		Badge:   &FleetBadge{Encoding: ptr("dec"), Bits: ptr(24)},
		Release: &FleetRelease{Mode: ptr("confirm")},
	}
	if !reflect.DeepEqual(f, want) {
		t.Fatalf("ParseFleet = %+v, want %+v", f, want)
	}
}

func TestParseFleetBad(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		kind error
		want string
	}{
		{`{"v": 1, "station": {"name": "x"}}`, ErrUnknownField, "config: station: unknown field"},
		{`{"v": 1, "cloud": {}}`, ErrUnknownField, "config: cloud: unknown field"},
		{`{"v": 1, "printer": {"url": "tcp://evil:9100"}}`, ErrUnknownField, "config: printer.url: unknown field"},
		{`{"v": 1, "display": {"kind": "fb"}}`, ErrUnknownField, "config: display.kind: unknown field"},
		{`{"v": 1, "badge": {"reader": "wedge"}}`, ErrUnknownField, "config: badge.reader: unknown field"},
		{`{"v": 1, "printer": {"dpi": 250}}`, ErrInvalid, "config: printer.dpi: 250 is not one of 203, 300, 600"},
		{`{"v": 1, "badge": {"hash_key": "0011"}}`, ErrInvalid, "config: badge.hash_key: 2 bytes, want at least 16"},
		{`{"v": 1, "release": {"screen_seconds": null}}`, ErrInvalid, "config: release.screen_seconds: want an integer, got null"},
		{`{"v": 1, "printer": {"zpl_prefix": "^MD10^HH"}}`, ErrInvalid,
			"config: printer.zpl_prefix: ^HH at offset 5 is not one of ^MD, ^PR, ^MN, ^MT, ^LH, ^LT, ^LS, ^PW, ^LL, ^PO"},
		{`{"v": 1, "printer": {"font_dir": "/tmp"}}`, ErrUnknownField, "config: printer.font_dir: unknown field"},
		{`{"printer": {"dpi": 300}}`, ErrVersion, "config: v: missing (want 1)"},
		{`{"v": 1} x`, ErrSyntax, "config: trailing data after the document at line 1, column 10"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			_, err := ParseFleet([]byte(tc.doc))
			if err == nil || err.Error() != tc.want || !errors.Is(err, tc.kind) {
				t.Fatalf("ParseFleet(%s) = %v, want %q wrapping %v", tc.doc, err, tc.want, tc.kind)
			}
		})
	}
}

func TestApply(t *testing.T) {
	c, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	f, err := ParseFleet([]byte(`{"v": 1, "printer": {"lang": "tspl", "dpi": 300}, "display": {"rotate": 180},
		"badge": {"byte_order": "lsb", "repeat_ms": 500, "hash_key": "ffeeddccbbaa99887766554433221100"},
		"release": {"screen_seconds": 9}, "log": {"level": "debug"}}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Apply(f)
	if err != nil {
		t.Fatal(err)
	}
	want := c
	want.Printer.Lang, want.Printer.DPI = "tspl", 300
	want.Display.Rotate = 180
	want.Badge.ByteOrder, want.Badge.RepeatMS, want.Badge.HashKey = "lsb", 500, "ffeeddccbbaa99887766554433221100"
	want.Release.ScreenSeconds = 9
	want.Log.Level = "debug"
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Apply =\n%+v\nwant\n%+v", got, want)
	}
	// An empty fleet document changes nothing.
	same, err := c.Apply(Fleet{V: Version})
	if err != nil || !reflect.DeepEqual(same, c) {
		t.Fatalf("Apply(empty) = %+v, %v", same, err)
	}
}

func TestApplyLeavesConfigOnError(t *testing.T) {
	c, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	before, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	// A Fleet built in code bypasses ParseFleet's checks; Apply must still refuse it.
	bad := Fleet{V: Version, Printer: &FleetPrinter{Lang: ptr("escpos")}, Display: &FleetDisplay{Contrast: ptr(300)}}
	got, err := c.Apply(bad)
	if !errors.Is(err, ErrInvalid) || err.Error() != "config: display.contrast: 300 is not in 0-255" {
		t.Fatalf("Apply(bad) error = %v", err)
	}
	if !reflect.DeepEqual(got, before) || !reflect.DeepEqual(c, before) {
		t.Fatalf("Apply(bad) changed the config: got %+v, c %+v", got, c)
	}
}

const (
	fleetOld = `{"v": 1, "printer": {"dpi": 300}}`
	fleetNew = `{"v": 1, "printer": {"dpi": 600}, "release": {"mode": "confirm"}}`
)

func TestSaveLoadFleet(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadFleet(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("LoadFleet(empty dir) = %v, want os.ErrNotExist", err)
	}
	for _, doc := range []string{fleetOld, fleetNew} {
		if err := SaveFleet(dir, []byte(doc)); err != nil {
			t.Fatal(err)
		}
		got, err := LoadFleet(dir)
		if err != nil || string(got) != doc {
			t.Fatalf("LoadFleet = %q, %v; want %q", got, err, doc)
		}
		fi, err := os.Stat(filepath.Join(dir, FleetFile))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
		}
	}
	// A bad push is refused and the last good one stays.
	err := SaveFleet(dir, []byte(`{"v": 1, "printer": {"dpi": 250}}`))
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("SaveFleet(bad) = %v", err)
	}
	if got, _ := LoadFleet(dir); string(got) != fleetNew {
		t.Fatalf("after bad push LoadFleet = %q", got)
	}
	assertOnlyFleetFile(t, dir)
}

func TestSaveFleetWriteFails(t *testing.T) {
	dir := t.TempDir()
	if err := SaveFleet(dir, []byte(fleetOld)); err != nil {
		t.Fatal(err)
	}
	diskFull := errors.New("no space left on device")
	err := saveFleet(dir, []byte(fleetNew), func(f *os.File, b []byte) error {
		if _, err := f.Write(b[:len(b)/2]); err != nil {
			return err
		}
		return diskFull
	})
	if !errors.Is(err, diskFull) {
		t.Fatalf("saveFleet = %v, want the write error", err)
	}
	if got, _ := LoadFleet(dir); string(got) != fleetOld {
		t.Fatalf("after a failed write LoadFleet = %q, want the old document", got)
	}
	assertOnlyFleetFile(t, dir)
}

// crashEnv makes the test binary, re-executed as a child, die in the middle of saveFleet.
const crashEnv = "CONFIG_TEST_CRASH_DIR"

func TestSaveFleetCrash(t *testing.T) {
	if dir := os.Getenv(crashEnv); dir != "" {
		saveFleet(dir, []byte(fleetNew), func(f *os.File, b []byte) error {
			f.Write(b[:len(b)/2])
			os.Exit(3) // no cleanup, no rename: what a power cut leaves behind
			return nil
		})
		os.Exit(4) // not reached
	}
	dir := t.TempDir()
	if err := SaveFleet(dir, []byte(fleetOld)); err != nil {
		t.Fatal(err)
	}
	cmd := selfexec.Command("-test.run=^TestSaveFleetCrash$")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if got, _ := LoadFleet(dir); string(got) != fleetOld {
		t.Fatalf("after a crash LoadFleet = %q, want the old document", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("want the fleet file and the crashed temp file, got %v", entries)
	}
	// The next save succeeds and sweeps the leftover.
	if err := SaveFleet(dir, []byte(fleetNew)); err != nil {
		t.Fatal(err)
	}
	if got, _ := LoadFleet(dir); string(got) != fleetNew {
		t.Fatalf("LoadFleet = %q", got)
	}
	assertOnlyFleetFile(t, dir)
}

func assertOnlyFleetFile(t *testing.T, dir string) {
	t.Helper()
	var names []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if p != dir {
			names = append(names, d.Name())
		}
		return err
	})
	if strings.Join(names, ",") != FleetFile {
		t.Fatalf("directory holds %v, want only %s", names, FleetFile)
	}
}

// TestFleetMarshal: what stationctl marshals from a Fleet is what ParseFleet reads back.
func TestFleetMarshal(t *testing.T) {
	f := Fleet{V: Version, Badge: &FleetBadge{RepeatMS: ptr(0), HashKey: ptr("00112233445566778899aabbccddeeff")}}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseFleet(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, f) {
		t.Fatalf("round trip %s = %+v", b, back)
	}
}

func TestFleetLogLevelRefusedWithPath(t *testing.T) {
	_, err := ParseFleet([]byte(`{"v": 1, "log": {"level": "chatty"}}`))
	var ce *Error
	if !errors.As(err, &ce) || ce.Path != "log.level" || !errors.Is(err, ErrInvalid) {
		t.Fatalf("ParseFleet(log.level chatty) = %v, want an invalid log.level", err)
	}
	c, err := Parse([]byte(minimal))
	if err != nil || c.Log.Level != "info" {
		t.Fatalf("default log.level = %q, %v; want info", c.Log.Level, err)
	}
}

// A fleet may set the ZPL prefix; the view shows it only when set, so the hash of a station
// without one does not change.
func TestFleetZPLPrefix(t *testing.T) {
	base := Defaults()
	f, err := ParseFleet([]byte(`{"v": 1, "printer": {"zpl_prefix": "^MD12^PR3"}}`))
	if err != nil {
		t.Fatal(err)
	}
	c := base.merge(f)
	if c.Printer.ZPLPrefix != "^MD12^PR3" {
		t.Fatalf("prefix %q", c.Printer.ZPLPrefix)
	}
	if v := c.View(); v.Printer.ZPLPrefix == nil || *v.Printer.ZPLPrefix != "^MD12^PR3" {
		t.Errorf("view %+v", v.Printer)
	}
	if v := base.View(); v.Printer.ZPLPrefix != nil {
		t.Errorf("unset prefix in the view: %q", *v.Printer.ZPLPrefix)
	}
	if base.Hash() == c.Hash() {
		t.Error("the prefix does not change the hash")
	}
}

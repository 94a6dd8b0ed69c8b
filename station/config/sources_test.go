package config

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func base(t *testing.T) Config {
	t.Helper()
	c, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	c.Station.StateDir = t.TempDir()
	return c
}

func doc(v int64, cfg string) Doc { return Doc{Version: v, Config: json.RawMessage(cfg)} }

const key1 = "00112233445566778899aabbccddeeff"

// Every bad document is refused with the path of the offending field, and the accepted
// documents and the effective config stay what they were.
func TestOfferRefusesBadDocuments(t *testing.T) {
	corpus := []struct{ doc, path string }{
		{`{"printer": {"dpi": 300}}`, "v"},
		{`{"v": 2}`, "v"},
		{`{"v": "1"}`, "v"},
		{`{"v": 1, "station": {}}`, "station"},
		{`{"v": 1, "cloud": {}}`, "cloud"},
		{`{"v": 1, "board": {}}`, "board"},
		{`{"v": 1, "journal": {}}`, "journal"},
		{`{"v": 1, "Printer": {}}`, "Printer"},
		{`{"v": 1, "printer": {"url": "tcp://evil:9100"}}`, "printer.url"},
		{`{"v": 1, "display": {"kind": "fb"}}`, "display.kind"},
		{`{"v": 1, "display": {"width": 10}}`, "display.width"},
		{`{"v": 1, "badge": {"reader": "sim"}}`, "badge.reader"},
		{`{"v": 1, "badge": {"device": "/dev/ttyS0"}}`, "badge.device"},
		{`{"v": 1, "printer": "zpl"}`, "printer"},
		{`{"v": 1, "printer": {"lang": "pdf"}}`, "printer.lang"},
		{`{"v": 1, "printer": {"dpi": 250}}`, "printer.dpi"},
		{`{"v": 1, "printer": {"dpi": "300"}}`, "printer.dpi"},
		{`{"v": 1, "printer": {"dpi": 300, "dpi": 600}}`, "printer.dpi"},
		{`{"v": 1, "printer": {"raster": "yes"}}`, "printer.raster"},
		{`{"v": 1, "printer": {"pairing_label": 1}}`, "printer.pairing_label"},
		{`{"v": 1, "display": {"rotate": 45}}`, "display.rotate"},
		{`{"v": 1, "display": {"contrast": 256}}`, "display.contrast"},
		{`{"v": 1, "display": {"contrast": -1}}`, "display.contrast"},
		{`{"v": 1, "badge": {"encoding": "oct"}}`, "badge.encoding"},
		{`{"v": 1, "badge": {"byte_order": "middle"}}`, "badge.byte_order"},
		{`{"v": 1, "badge": {"bits": 81}}`, "badge.bits"},
		{`{"v": 1, "badge": {"bits": -1}}`, "badge.bits"},
		{`{"v": 1, "badge": {"repeat_ms": 60001}}`, "badge.repeat_ms"},
		{`{"v": 1, "badge": {"hash_key": "zz"}}`, "badge.hash_key"},
		{`{"v": 1, "badge": {"hash_key": "0011"}}`, "badge.hash_key"},
		{`{"v": 1, "release": {"mode": "some"}}`, "release.mode"},
		{`{"v": 1, "release": {"screen_seconds": 0}}`, "release.screen_seconds"},
		{`{"v": 1, "release": {"screen_seconds": 301}}`, "release.screen_seconds"},
		{`{"v": 1, "release": {"screen_seconds": 1.5}}`, "release.screen_seconds"},
		{`{"v": 1, "release": {"screen_seconds": null}}`, "release.screen_seconds"},
		{`{"v": 1, "release": {"order": "sideways"}}`, "release.order"},
		{`{"v": 1, "release": {"offline_seconds": 604801}}`, "release.offline_seconds"},
		{`{"v": 1, "release": {"preview": "yes"}}`, "release.preview"},
		{`{"v": 1, "telemetry": {"interval_s": 0}}`, "telemetry.interval_s"},
		{`{"v": 1, "telemetry": {"period": 5}}`, "telemetry.period"},
	}
	b := base(t)
	good := Sources{V: Version, Station: &Doc{Version: 3, Config: json.RawMessage(`{"v": 1, "badge": {"hash_key": "` + key1 + `"}, "printer": {"dpi": 300}}`)}}
	goodCfg, err := good.Effective(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range corpus {
		t.Run(tc.doc, func(t *testing.T) {
			next, _, err := good.Offer(b, "station", doc(4, tc.doc))
			var ce *Error
			if !errors.As(err, &ce) || ce.Path != tc.path {
				t.Fatalf("Offer(%s) = %v, want a config.Error at %q", tc.doc, err, tc.path)
			}
			if !reflect.DeepEqual(next, good) {
				t.Fatalf("refused document changed the sources: %+v", next)
			}
			if c, err := next.Effective(b); err != nil || c.Hash() != goodCfg.Hash() {
				t.Fatalf("effective config changed after a refusal: %v", err)
			}
		})
	}
	if len(corpus) < 30 {
		t.Fatalf("corpus has %d documents", len(corpus))
	}
}

// A duplicate or an older version changes nothing; a newer one replaces the document.
func TestOfferIgnoresStaleVersions(t *testing.T) {
	b := base(t)
	s := Sources{V: Version}
	s, c, err := s.Offer(b, "station", doc(5, `{"v": 1, "printer": {"dpi": 300}}`))
	if err != nil || c.Printer.DPI != 300 {
		t.Fatalf("v5: %v dpi %d", err, c.Printer.DPI)
	}
	for _, v := range []int64{5, 4, 1} {
		next, _, err := s.Offer(b, "station", doc(v, `{"v": 1, "printer": {"dpi": 600}}`))
		if !errors.Is(err, ErrStale) || !reflect.DeepEqual(next, s) {
			t.Fatalf("version %d after 5: %v, sources %+v", v, err, next)
		}
	}
	s, c, err = s.Offer(b, "station", doc(6, `{"v": 1, "printer": {"dpi": 600}}`))
	if err != nil || c.Printer.DPI != 600 || s.Station.Version != 6 {
		t.Fatalf("v6: %v dpi %d", err, c.Printer.DPI)
	}
}

// The station's document wins over its group's, which wins over the local file; a field
// the station's document leaves out comes from the group, then from the local file.
func TestGroupStationPrecedence(t *testing.T) {
	b := base(t)
	b.Release.ScreenSeconds = 7 // from the local file
	s := Sources{V: Version}
	s, _, err := s.Offer(b, "station", Doc{Version: 1, Group: "lab", Config: json.RawMessage(`{"v": 1, "printer": {"dpi": 600}}`)})
	if err != nil {
		t.Fatal(err)
	}
	s, c, err := s.Offer(b, "group", Doc{Version: 9, Group: "lab", Config: json.RawMessage(`{"v": 1, "printer": {"dpi": 300, "lang": "tspl"}, "badge": {"hash_key": "` + key1 + `"}}`)})
	if err != nil {
		t.Fatal(err)
	}
	if c.Printer.DPI != 600 || c.Printer.Lang != "tspl" || c.Badge.HashKey != key1 || c.Release.ScreenSeconds != 7 {
		t.Fatalf("effective: dpi %d lang %s key %q screen %d", c.Printer.DPI, c.Printer.Lang, c.Badge.HashKey, c.Release.ScreenSeconds)
	}
	// Another group's document is not for this station.
	if _, _, err := s.Offer(b, "group", Doc{Version: 10, Group: "other", Config: json.RawMessage(`{"v": 1}`)}); err == nil {
		t.Fatal("accepted another group's document")
	}
	// The station drops its dpi: the group's comes back.
	s, c, err = s.Offer(b, "station", Doc{Version: 2, Group: "lab", Config: json.RawMessage(`{"v": 1}`)})
	if err != nil || c.Printer.DPI != 300 {
		t.Fatalf("after the station dropped dpi: %v dpi %d", err, c.Printer.DPI)
	}
	// Leaving the group drops its settings.
	s, c, err = s.Offer(b, "station", Doc{Version: 3, Config: json.RawMessage(`{"v": 1}`)})
	_ = s
	if err != nil || s.Group != nil || c.Printer.DPI != 203 || c.Badge.HashKey != "" {
		t.Fatalf("after leaving the group: %v %+v dpi %d", err, s.Group, c.Printer.DPI)
	}
}

// Accepted documents survive a restart: a key pushed first and a dpi pushed later are both in
// force after Restore.
func TestSourcesSurviveRestart(t *testing.T) {
	b := base(t)
	s := Sources{V: Version}
	s, _, err := s.Offer(b, "station", doc(1, `{"v": 1, "badge": {"hash_key": "`+key1+`"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := SaveSources(b.Station.StateDir, s); err != nil {
		t.Fatal(err)
	}
	s, _, err = s.Offer(b, "station", doc(2, `{"v": 1, "badge": {"hash_key": "`+key1+`"}, "printer": {"dpi": 300}}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := SaveSources(b.Station.StateDir, s); err != nil {
		t.Fatal(err)
	}
	c, got, err := Restore(b)
	if err != nil {
		t.Fatal(err)
	}
	if c.Badge.HashKey != key1 || c.Printer.DPI != 300 || got.Station.Version != 2 {
		t.Fatalf("after restart: key %q dpi %d version %d", c.Badge.HashKey, c.Printer.DPI, got.Station.Version)
	}
}

// A state directory from before per-source documents keeps its last good fleet config.
func TestRestoreLegacyFleetFile(t *testing.T) {
	b := base(t)
	if err := SaveFleet(b.Station.StateDir, []byte(`{"v": 1, "printer": {"dpi": 600}}`)); err != nil {
		t.Fatal(err)
	}
	c, s, err := Restore(b)
	if err != nil || c.Printer.DPI != 600 || s.Station == nil || s.Station.Version != 0 {
		t.Fatalf("legacy restore: %v dpi %d %+v", err, c.Printer.DPI, s.Station)
	}
}

func TestRestartRequired(t *testing.T) {
	a := Defaults()
	b := a
	b.Display.Rotate, b.Release.Mode = 180, "confirm"
	if got := RestartRequired(a, b); !reflect.DeepEqual(got, []string{"display.rotate"}) {
		t.Fatalf("RestartRequired = %v", got)
	}
}

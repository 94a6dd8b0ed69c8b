package station

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"labelstation/protocol"
	"labelstation/station/config"
)

// The hardware hook sees every new effective config before the station takes it: a refusal
// there is reported with its path and changes nothing, not even the saved documents; what it
// takes needs no restart.
func TestApplyHookRefusesAndTakes(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	s, rec := fleetStation(t, dir, now)
	var seen []config.Config
	s.opt.Apply = func(_ context.Context, next config.Config) error {
		seen = append(seen, next)
		if next.Printer.Lang == "tspl" {
			return &config.Error{Path: "printer.lang", Msg: `"tspl": the printer does not answer`, Kind: config.ErrInvalid}
		}
		return nil
	}
	hash := s.ConfigHash()
	s.onConfig(protocol.ConfigDesired{V: 1, Version: 1, Config: json.RawMessage(`{"v": 1, "printer": {"lang": "tspl", "dpi": 300}}`)})
	rep := rec.lastConfig(t)
	if rep.Applied || rep.Path != "printer.lang" || rep.Hash != hash || rep.Versions.Station != 0 {
		t.Fatalf("refusal: %+v", rep)
	}
	if c := s.config(); c.Printer.Lang != "zpl" || c.Printer.DPI != 203 {
		t.Fatalf("running %s %d dpi after the refusal", c.Printer.Lang, c.Printer.DPI)
	}
	if src, err := config.LoadSources(dir); err != nil || src.Station != nil {
		t.Fatalf("saved documents after the refusal: %+v %v", src, err)
	}

	s.onConfig(protocol.ConfigDesired{V: 1, Version: 2, Config: json.RawMessage(`{"v": 1, "display": {"rotate": 90, "contrast": 10}, "badge": {"repeat_ms": 5}}`)})
	rep = rec.lastConfig(t)
	if !rep.Applied || len(rep.RestartRequired) != 0 || rep.Versions.Station != 2 {
		t.Fatalf("taken: %+v", rep)
	}
	if len(seen) != 2 || seen[1].Display.Rotate != 90 || seen[1].Badge.RepeatMS != 5 {
		t.Fatalf("the hook saw %+v", seen)
	}
	s2, _ := fleetStation(t, dir, now)
	if c := s2.config(); c.Display.Rotate != 90 || c.Printer.Lang != "zpl" {
		t.Fatalf("after restart: rotate %d lang %s", c.Display.Rotate, c.Printer.Lang)
	}
}

package station

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"labelstation/drivers/badge"
	"labelstation/protocol"
	"labelstation/station/cloud"
	"labelstation/station/config"
	"labelstation/station/journal"
)

// fleetRecorder is a cloud link that keeps what the station reports.
type fleetRecorder struct {
	fakeCloud
	mu      sync.Mutex
	configs []protocol.ConfigReported
	results []protocol.CommandResult
	tele    []protocol.Telemetry
	group   string
	sent    chan struct{} // a telemetry report arrived
}

var _ fleetCloud = (*fleetRecorder)(nil)

func (r *fleetRecorder) ReportConfig(c protocol.ConfigReported) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.configs = append(r.configs, c)
	return nil
}

func (r *fleetRecorder) ReportCommand(c protocol.CommandResult) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.results = append(r.results, c)
	return nil
}

func (r *fleetRecorder) Telemetry(t protocol.Telemetry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tele = append(r.tele, t)
	if r.sent != nil {
		select {
		case r.sent <- struct{}{}:
		default:
		}
	}
	return nil
}

func (r *fleetRecorder) SetGroup(g string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.group = g
}

func (r *fleetRecorder) lastConfig(t *testing.T) protocol.ConfigReported {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.configs) == 0 {
		t.Fatal("no config report")
	}
	return r.configs[len(r.configs)-1]
}

func (r *fleetRecorder) statuses() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.results {
		out = append(out, c.ID+":"+c.Status)
	}
	return out
}

// fleetStation starts a station (without running it) on dir, as stationd would after a boot.
func fleetStation(t *testing.T, dir string, now time.Time) (*Station, *fleetRecorder) {
	t.Helper()
	j, err := journal.Open(filepath.Join(t.TempDir(), "journal.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	cfg := config.Defaults()
	cfg.Station.StateDir = dir
	cfg.Cloud.Issuer, cfg.Cloud.Broker, cfg.Printer.URL = "http://127.0.0.1:1", "tcp://127.0.0.1:1", "tcp://127.0.0.1:9100"
	rec := &fleetRecorder{fakeCloud: fakeCloud{}}
	s, err := New(Options{
		Config: cfg, Panel: &countingPanel{}, Printer: &fakePrinter{}, Journal: j, Enroller: enrolled{},
		DialCloud: func(cloud.Options) (Cloud, error) { return rec, nil },
		Badges:    make(chan badge.Badge), Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	s.cloud = rec
	return s, rec
}

const testKey = "00112233445566778899aabbccddeeff"

// Each accepted push is kept: after a restart the station runs with the badge key of the first
// push and the dpi of the second, and the group's settings under its own.
func TestFleetPatchesSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	s, rec := fleetStation(t, dir, now)
	s.onConfig(protocol.ConfigDesired{V: 1, Version: 1, Group: "lab", Config: json.RawMessage(`{"v": 1, "printer": {"dpi": 300}}`)})
	s.onGroupConfig("lab", protocol.ConfigDesired{V: 1, Version: 7, Config: json.RawMessage(`{"v": 1, "badge": {"hash_key": "` + testKey + `"}, "printer": {"dpi": 600}}`)})
	rep := rec.lastConfig(t)
	if !rep.Applied || rep.Source != "group" || rep.Versions != (protocol.ConfigVersions{Group: 7, Station: 1}) || rep.Group != "lab" || rep.Hash != s.config().Hash() {
		t.Fatalf("report: %+v", rep)
	}
	if rec.group != "lab" {
		t.Fatalf("link follows group %q, want lab", rec.group)
	}
	s.onConfig(protocol.ConfigDesired{V: 1, Version: 2, Group: "lab", Config: json.RawMessage(`{"v": 1, "printer": {"dpi": 300}, "release": {"mode": "confirm"}}`)})

	s2, _ := fleetStation(t, dir, now)
	c := s2.config()
	if c.Badge.HashKey != testKey || c.Printer.DPI != 300 || c.Release.Mode != "confirm" {
		t.Fatalf("after restart: key %q dpi %d mode %s", c.Badge.HashKey, c.Printer.DPI, c.Release.Mode)
	}
	if s2.Group() != "lab" || s2.ConfigHash() != s.ConfigHash() {
		t.Fatalf("after restart: group %q hash %s, want lab %s", s2.Group(), s2.ConfigHash(), s.ConfigHash())
	}
	if s2.Boot() != s.Boot()+1 {
		t.Fatalf("boot %d after %d", s2.Boot(), s.Boot())
	}
}

// A refused document is reported with its path and leaves the config as it was; a redelivered
// version is confirmed again; an older one changes nothing and is not answered.
func TestFleetConfigRefusedDuplicateReordered(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	s, rec := fleetStation(t, t.TempDir(), now)
	s.onConfig(protocol.ConfigDesired{V: 1, Version: 3, Config: json.RawMessage(`{"v": 1, "printer": {"dpi": 300}}`)})
	hash := s.ConfigHash()
	s.onConfig(protocol.ConfigDesired{V: 1, Version: 4, Config: json.RawMessage(`{"v": 1, "display": {"rotate": 45}}`)})
	rep := rec.lastConfig(t)
	if rep.Applied || rep.Path != "display.rotate" || rep.Version != 4 || rep.Versions.Station != 3 || rep.Hash != hash || s.config().Printer.DPI != 300 {
		t.Fatalf("refusal: %+v, dpi %d", rep, s.config().Printer.DPI)
	}
	s.onConfig(protocol.ConfigDesired{V: 1, Version: 3, Config: json.RawMessage(`{"v": 1, "printer": {"dpi": 300}}`)})
	if rep := rec.lastConfig(t); !rep.Applied || rep.Version != 3 {
		t.Fatalf("redelivery of the applied version: %+v", rep)
	}
	n := len(rec.configs)
	s.onConfig(protocol.ConfigDesired{V: 1, Version: 2, Config: json.RawMessage(`{"v": 1, "printer": {"dpi": 600}}`)})
	if len(rec.configs) != n || s.config().Printer.DPI != 300 {
		t.Fatalf("an older version was answered or applied: dpi %d", s.config().Printer.DPI)
	}
	s.onConfig(protocol.ConfigDesired{V: 1, Version: 5, Config: json.RawMessage(`{"v": 1, "display": {"rotate": 90}}`)})
	if rep := rec.lastConfig(t); !rep.Applied || !slices.Contains(rep.RestartRequired, "display.rotate") || s.config().Printer.DPI != 203 {
		t.Fatalf("v5: %+v dpi %d", rep, s.config().Printer.DPI)
	}
}

// A command runs once: its id is remembered across a restart, and a redelivery is answered
// "duplicate". Unknown and expired commands are only answered.
func TestCommandsDedupAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	s, rec := fleetStation(t, dir, now)
	s.onCommand(protocol.Command{V: 1, ID: "c1", Name: "ping", Expires: now.Add(time.Minute)})
	s.onCommand(protocol.Command{V: 1, ID: "c1", Name: "ping", Expires: now.Add(time.Minute)})
	s.onCommand(protocol.Command{V: 1, ID: "c2", Name: "self_destruct"})
	s.onCommand(protocol.Command{V: 1, ID: "c3", Name: "ping", Expires: now.Add(-time.Second)})
	want := []string{"c1:accepted", "c1:done", "c1:duplicate", "c2:unknown", "c3:expired"}
	if got := rec.statuses(); !slices.Equal(got, want) {
		t.Fatalf("results %v, want %v", got, want)
	}
	s2, rec2 := fleetStation(t, dir, now)
	s2.onCommand(protocol.Command{V: 1, ID: "c1", Name: "ping"})
	s2.onCommand(protocol.Command{V: 1, ID: "c4", Name: "ping"})
	if got := rec2.statuses(); !slices.Equal(got, []string{"c1:duplicate", "c4:accepted", "c4:done"}) {
		t.Fatalf("after restart: %v", got)
	}
}

// A station whose clock is not set drops every command with an expiry; one without runs.
func TestCommandsExpiringDroppedWithoutClock(t *testing.T) {
	unset := time.Date(1970, 1, 1, 0, 1, 0, 0, time.UTC)
	s, rec := fleetStation(t, t.TempDir(), unset)
	s.onCommand(protocol.Command{V: 1, ID: "a", Name: "ping", Expires: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)})
	s.onCommand(protocol.Command{V: 1, ID: "b", Name: "ping"})
	if got := rec.statuses(); !slices.Equal(got, []string{"a:expired", "b:accepted", "b:done"}) {
		t.Fatalf("results %v", got)
	}
}

func TestCommandLogLevelAndTestPrint(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	s, rec := fleetStation(t, t.TempDir(), now)
	lv := new(slog.LevelVar)
	s.opt.LogLevel = lv
	s.onCommand(protocol.Command{V: 1, ID: "l1", Name: "log_level", Args: json.RawMessage(`{"level": "debug"}`)})
	s.onCommand(protocol.Command{V: 1, ID: "l2", Name: "log_level", Args: json.RawMessage(`{"level": "loud"}`)})
	s.onCommand(protocol.Command{V: 1, ID: "t1", Name: "test_print"})
	s.onCommand(protocol.Command{V: 1, ID: "p1", Name: "print_pairing"})
	s.onCommand(protocol.Command{V: 1, ID: "r1", Name: "reboot"})
	if lv.Level() != slog.LevelDebug {
		t.Fatalf("level %v", lv.Level())
	}
	want := []string{"l1:accepted", "l1:done", "l2:accepted", "l2:failed", "t1:accepted", "t1:done", "p1:accepted", "p1:failed", "r1:accepted", "r1:failed"}
	if got := rec.statuses(); !slices.Equal(got, want) {
		t.Fatalf("results %v, want %v", got, want)
	}
	if n := s.opt.Printer.(*fakePrinter).count(); n != 1 {
		t.Fatalf("%d labels printed, want the self-test label", n)
	}
	h := s.Health(context.Background())
	if h.LabelsPrinted != 1 || h.PrinterStatus != "ready" || h.ConfigHash != s.ConfigHash() || h.Boot != s.Boot() {
		t.Fatalf("health %+v", h)
	}
}

// Telemetry goes out every telemetry.interval_s with the station's health.
func TestTelemetryPeriodic(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	s, rec := fleetStation(t, t.TempDir(), now)
	rec.sent = make(chan struct{}, 1)
	s.onConfig(protocol.ConfigDesired{V: 1, Version: 1, Config: json.RawMessage(`{"v": 1, "telemetry": {"interval_s": 1}}`)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.telemetry(ctx) }()
	defer func() { cancel(); <-done }()
	for range 2 {
		select {
		case <-rec.sent:
		case <-time.After(30 * time.Second):
			t.Fatal("no telemetry")
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	tm := rec.tele[0]
	if tm.State != "boot" || tm.Boot != s.Boot() || tm.ConfigHash != s.ConfigHash() || tm.JournalBytes <= 0 || tm.PrinterStatus != "ready" {
		t.Fatalf("telemetry %+v", tm)
	}
}

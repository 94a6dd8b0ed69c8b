package station

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"labelstation/protocol"
	"labelstation/station/journal"
)

// A job the journal has no room for raises the storage alarm in telemetry at once (the period
// is an hour here), and the next job the journal accepts clears it, again at once.
func TestStorageFullAlarmInTelemetry(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	s, rec := fleetStation(t, t.TempDir(), now)
	j, err := journal.Open(filepath.Join(t.TempDir(), "small.db"), journal.Options{MaxSize: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	s.opt.Journal = j
	s.cfg.Telemetry.IntervalS = 3600
	rec.sent = make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.telemetry(ctx) }()
	defer func() { cancel(); <-done }()
	go func() { // the state loop's side: take what the station posts
		for {
			select {
			case <-s.events:
			case <-done:
				return
			}
		}
	}()
	report := func(what string) protocol.Telemetry {
		t.Helper()
		select {
		case <-rec.sent:
		case <-time.After(10 * time.Second):
			t.Fatalf("no telemetry after %s", what)
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.tele[len(rec.tele)-1]
	}

	big := testJob(t)
	big.ID = "too-big"
	big.Data = []byte("name,street,zip,city,tracking\n" + strings.Repeat("Ada Lovelace,1 Sq,1,London,TRK1\n", 20000))
	// As the cloud link does: a job the journal refuses is handed to onReject.
	err = s.onJob(big)
	if !errors.Is(err, journal.ErrFull) {
		t.Fatalf("onJob(big) = %v, want ErrFull", err)
	}
	s.onReject(big.ID, err)
	if tm := report("the refused job"); !slices.Equal(tm.Alarms, []string{protocol.AlarmStorageFull}) {
		t.Fatalf("alarms %q, want [%s]", tm.Alarms, protocol.AlarmStorageFull)
	}
	// A second refusal changes nothing: no second report.
	s.onReject("too-big-2", err)
	select {
	case <-rec.sent:
		t.Fatal("a report for an alarm already raised")
	default:
	}

	if err := s.onJob(testJob(t)); err != nil {
		t.Fatal(err)
	}
	if tm := report("the accepted job"); len(tm.Alarms) != 0 {
		t.Fatalf("alarms %q after a job fitted again", tm.Alarms)
	}
}

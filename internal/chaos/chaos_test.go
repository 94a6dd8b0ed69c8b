package chaos

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// The short seeded run of the harness: every kind of fault, a few times each, against the real
// daemon process. It holds the station to the goals the full run measures: no label lost, the
// cloud agrees with the paper, every fault recovered without outside help, and at most one
// duplicate per iteration (the harness printer has no label counter to reconcile against).
func TestChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts devcloud, stationd and Mosquitto processes; run without -short")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	log := &syncBuilder{b: &strings.Builder{}}
	opt := Options{
		Seed:   1,
		Counts: Counts{Kills: 3, MemRestarts: 1, PersistRestarts: 1, Cuts: 1, Downs: 1, Stalls: 1, PrinterFaults: 4},
		Labels: 2, MaxOutage: 2 * time.Second, Settle: 60 * time.Second,
		Log: log,
	}
	rep, err := Run(ctx, opt)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	t.Logf("seed %d, %v:\n%s", opt.Seed, rep.Took.Round(time.Second), rep.Table())
	defer func() {
		if t.Failed() && os.Getenv("CHAOS_LOG") != "" {
			t.Logf("log:\n%s", log.String())
		}
	}()
	type key struct{ fault, printer string }
	want := map[key]int{{FaultKill, WithCounter}: 2, {FaultKill, WithoutCounter}: 1,
		{FaultMemRestart, WithCounter}: 1, {FaultCut, WithCounter}: 1, {FaultDown, WithCounter}: 1, {FaultStall, WithCounter}: 1,
		{FaultPrinterRefuse, WithCounter}: 1, {FaultPrinterStall, WithCounter}: 1,
		{FaultPrinterClose, WithoutCounter}: 1, {FaultPaperOut, WithoutCounter}: 1,
		{FaultPersistRest, WithCounter}: 1}
	for _, r := range rep.Rows {
		k := key{r.Fault, r.Printer}
		if r.Note != "" && r.Fault == FaultPersistRest {
			t.Logf("%s: %s", r.Fault, r.Note)
			delete(want, k)
			continue
		}
		if r.Iterations != want[k] {
			t.Errorf("%s, %s: %d iterations, want %d", r.Fault, r.Printer, r.Iterations, want[k])
		}
		delete(want, k)
		if r.Once+r.Duplicated+r.Lost != r.Expected || r.Expected != r.Iterations*opt.Labels {
			t.Errorf("%s, %s: counts do not add up: %+v", r.Fault, r.Printer, r)
		}
		if r.Lost != 0 || r.Disagree != 0 || r.Unrecovered != 0 {
			t.Errorf("%s, %s: %d lost, %d cloud disagreements, %d not recovered", r.Fault, r.Printer, r.Lost, r.Disagree, r.Unrecovered)
		}
		// A printer with a label counter lets the station settle a crash without printing
		// twice; without one, the label whose fate is unknown prints again: at most one per
		// iteration.
		if r.Printer == WithCounter && r.Fault == FaultKill && r.Duplicated != 0 {
			t.Errorf("%s with a label counter: %d duplicated labels", r.Fault, r.Duplicated)
		}
		if r.MaxDupPerIteration > 1 {
			t.Errorf("%s, %s: %d duplicated labels in one iteration", r.Fault, r.Printer, r.MaxDupPerIteration)
		}
	}
	for k := range want {
		t.Errorf("%s, %s: no iterations ran", k.fault, k.printer)
	}
}

type syncBuilder struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

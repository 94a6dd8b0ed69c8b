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
		Counts: Counts{Kills: 3, MemRestarts: 1, PersistRestarts: 1, Cuts: 1, Stalls: 1, PrinterFaults: 4},
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
	want := map[string]int{FaultKill: 3, FaultMemRestart: 1, FaultCut: 1, FaultStall: 1,
		FaultPrinterRefuse: 1, FaultPrinterStall: 1, FaultPrinterClose: 1, FaultPaperOut: 1, FaultPersistRest: 1}
	for _, r := range rep.Rows {
		if r.Note != "" && r.Fault == FaultPersistRest {
			t.Logf("%s: %s", r.Fault, r.Note)
			delete(want, r.Fault)
			continue
		}
		if r.Iterations != want[r.Fault] {
			t.Errorf("%s: %d iterations, want %d", r.Fault, r.Iterations, want[r.Fault])
		}
		delete(want, r.Fault)
		if r.Once+r.Duplicated+r.Lost != r.Expected || r.Expected != r.Iterations*opt.Labels {
			t.Errorf("%s: counts do not add up: %+v", r.Fault, r)
		}
		if r.Lost != 0 || r.Disagree != 0 || r.Unrecovered != 0 {
			t.Errorf("%s: %d lost, %d cloud disagreements, %d not recovered", r.Fault, r.Lost, r.Disagree, r.Unrecovered)
		}
		// The harness printer reports no label counter, so a label whose fate the station
		// cannot know (a crash, a printer that stopped answering) may print twice: at most one
		// per iteration.
		if r.Duplicated > r.Iterations {
			t.Errorf("%s: %d duplicated labels in %d iterations", r.Fault, r.Duplicated, r.Iterations)
		}
	}
	for f := range want {
		t.Errorf("%s: no iterations ran", f)
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

package station

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"

	"labelstation/drivers/printer/simprinter"
	"labelstation/station/journal"
)

// A job claimed while the worker and the printer are idle goes to the printer after exactly
// one journal commit: the claim carries the first in-flight window with the counter reading.
// A job claimed while another is unfinished gets no window, and its labels still print once.
func TestClaimRecordsFirstWindow(t *testing.T) {
	var commits, atFirstLabel atomic.Int64
	atFirstLabel.Store(-1)
	sp, err := simprinter.Listen("127.0.0.1:0", simprinter.Options{Counter: 900, OnLabel: func(c int64, _ string) {
		if c == 901 {
			atFirstLabel.Store(commits.Load())
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	j, err := journal.Open(filepath.Join(t.TempDir(), "journal.db"), journal.Options{Committed: func() { commits.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	s := simStation(t, sp, j)
	s.first.idle.Store(true)
	const n = 5
	e, existed, err := s.claim(serialJob(t, "a", n))
	if err != nil || existed {
		t.Fatalf("claim: existed %v, %v", existed, err)
	}
	fl, ok, err := j.InFlight("a")
	if want := (journal.InFlight{From: 0, To: n, Counter: 900, HasCounter: true}); err != nil || !ok || fl != want {
		t.Fatalf("window after claim: %+v, %v, %v; want %+v", fl, ok, err, want)
	}
	// "b" arrives while "a" is unfinished: "a" prints first, so "b" has no window yet.
	if _, _, err := s.claim(serialJob(t, "b", n)); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := j.InFlight("b"); ok {
		t.Fatal("a job queued behind another got a window at claim")
	}
	claims := commits.Load()
	if err := s.printJob(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	if got := atFirstLabel.Load() - claims; got != 0 {
		t.Fatalf("%d journal commits between the claims and the first label, want 0", got)
	}
	if _, err := j.Progress("a", n); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Finish("a", "printed", ""); err != nil {
		t.Fatal(err)
	}
	eb, err := j.Get("b")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.printJob(t.Context(), eb); err != nil {
		t.Fatal(err)
	}
	if len(sp.Labels()) != 2*n {
		t.Fatalf("%d labels on paper, want %d", len(sp.Labels()), 2*n)
	}
}

// The station crashes right after the claim that recorded the first window (nothing sent), or
// part-way through that window: after the restart the window is reconciled against the
// printer's counter, and every label is on paper exactly once, none reported reprinted.
func TestCrashAfterClaimWithWindow(t *testing.T) {
	const n = 6
	for at := int64(0); at < n; at++ {
		crashed := make(chan struct{})
		ctx, crash := context.WithCancel(t.Context())
		sp, err := simprinter.Listen("127.0.0.1:0", simprinter.Options{Counter: 5000, OnLabel: func(c int64, _ string) {
			if at > 0 && c == 5000+at {
				crash()
				close(crashed)
			}
		}})
		if err != nil {
			t.Fatal(err)
		}
		j := openJournal(t)
		s := simStation(t, sp, j)
		s.first.idle.Store(true)
		e, _, err := s.claim(serialJob(t, "job", n))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := j.InFlight("job"); !ok {
			t.Fatal("no window recorded at claim")
		}
		if at > 0 {
			if err := s.printJob(ctx, e); !errors.Is(err, context.Canceled) {
				t.Fatalf("crash at label %d: the crashed run returned %v", at, err)
			}
			<-crashed
		}
		crash()

		s2 := simStation(t, sp, j) // the restarted station: nothing in memory, same journal
		e, err = j.Get("job")
		if err != nil {
			t.Fatal(err)
		}
		if err := s2.printJob(t.Context(), e); err != nil {
			t.Fatalf("crash at label %d: after restart: %v", at, err)
		}
		lost, dup := paperCheck(sp.Labels(), n)
		e, _ = j.Get("job")
		if len(lost) > 0 || len(dup) > 0 || e.Reprinted != 0 {
			t.Errorf("crash at label %d: lost %v, duplicated %v, reported reprinted %d", at, lost, dup, e.Reprinted)
		}
		if e.Printed != n {
			t.Errorf("crash at label %d: journal says %d printed", at, e.Printed)
		}
		if _, ok, _ := j.InFlight("job"); ok {
			t.Errorf("crash at label %d: window left after the job", at)
		}
		sp.Close()
	}
}

// A job released for a preview gets no window at claim: it waits for a button while other jobs
// move the printer's counter, so a window recorded now could not be reconciled.
func TestPreviewJobGetsNoWindowAtClaim(t *testing.T) {
	sp, err := simprinter.Listen("127.0.0.1:0", simprinter.Options{Counter: 900})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	j, err := journal.Open(filepath.Join(t.TempDir(), "journal.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	s := simStation(t, sp, j)
	s.first.idle.Store(true)
	s.rel.mu.Lock()
	s.rel.preview = map[string]bool{"p": true}
	s.rel.mu.Unlock()
	if _, _, err := s.claim(serialJob(t, "p", 3)); err != nil {
		t.Fatal(err)
	}
	if fl, ok, err := j.InFlight("p"); ok || err != nil {
		t.Fatalf("a job to preview got a window at claim: %+v, %v", fl, err)
	}
	if _, _, err := s.claim(serialJob(t, "q", 3)); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := j.InFlight("q"); ok {
		t.Fatal("a job claimed while a held preview job is unfinished got a window")
	}
}

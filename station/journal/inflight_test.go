package journal

import (
	"errors"
	"path/filepath"
	"testing"

	"labelstation/protocol"
)

func TestInFlightSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	j, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	job := protocol.Job{V: 1, ID: "job-1", Labels: 5}
	if _, _, err := j.Claim(job); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := j.InFlight("job-1"); ok || err != nil {
		t.Fatalf("fresh job in flight: %v, %v", ok, err)
	}
	if _, err := j.Progress("job-1", 2); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []InFlight{{From: 1, To: 2}, {From: 3, To: 2}, {From: 4, To: 6}} {
		if err := j.BeginInFlight("job-1", bad); !errors.Is(err, ErrRange) {
			t.Errorf("%+v: got %v, want ErrRange", bad, err)
		}
	}
	if err := j.BeginInFlight("nope", InFlight{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown job: %v", err)
	}
	want := InFlight{From: 2, To: 3, Counter: 41, HasCounter: true}
	if err := j.BeginInFlight("job-1", want); err != nil {
		t.Fatal(err)
	}
	if _, err := j.AddReprinted("job-1", 1); err != nil {
		t.Fatal(err)
	}
	j.Close() // the "crash"

	j, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	got, ok, err := j.InFlight("job-1")
	if err != nil || !ok || got != want {
		t.Fatalf("after reopen: %+v, %v, %v; want %+v", got, ok, err, want)
	}
	e, err := j.Get("job-1")
	if err != nil {
		t.Fatal(err)
	}
	if e.Reprinted != 1 || e.Status().Reprinted != 1 {
		t.Fatalf("reprinted %d, status %+v", e.Reprinted, e.Status())
	}
	if err := j.EndInFlight("job-1"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := j.InFlight("job-1"); ok {
		t.Fatal("window still there after EndInFlight")
	}
	if err := j.EndInFlight("job-1"); err != nil {
		t.Fatalf("ending twice: %v", err)
	}
	if _, err := j.Progress("job-1", 5); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Finish("job-1", protocol.JobPrinted, ""); err != nil {
		t.Fatal(err)
	}
	if err := j.BeginInFlight("job-1", InFlight{From: 5, To: 5}); !errors.Is(err, ErrFinished) {
		t.Fatalf("finished job: %v", err)
	}
	if _, err := j.AddReprinted("job-1", 1); !errors.Is(err, ErrFinished) {
		t.Fatalf("finished job: %v", err)
	}
}

// ClaimInFlight records the first window in the claim's own commit when nothing else is
// unfinished, leaves it out when another job would print first, and changes nothing for a
// redelivery; a window outside the job is refused with nothing recorded.
func TestClaimInFlight(t *testing.T) {
	var commits int
	j, err := Open(filepath.Join(t.TempDir(), "journal.db"), Options{Committed: func() { commits++ }})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	first := InFlight{From: 0, To: 3, Counter: 77, HasCounter: true}
	_, existed, windowed, err := j.ClaimInFlight(job("a", 5), first)
	if err != nil || existed || !windowed {
		t.Fatalf("first job: existed %v, windowed %v, %v", existed, windowed, err)
	}
	if commits != 1 {
		t.Fatalf("%d commits for the claim and its window, want 1", commits)
	}
	if got, ok, err := j.InFlight("a"); err != nil || !ok || got != first {
		t.Fatalf("window: %+v, %v, %v; want %+v", got, ok, err, first)
	}
	// "a" is unfinished: "b" prints after it, so its window cannot be known yet.
	if _, _, windowed, err := j.ClaimInFlight(job("b", 5), first); err != nil || windowed {
		t.Fatalf("second job: windowed %v, %v", windowed, err)
	}
	if _, ok, _ := j.InFlight("b"); ok {
		t.Fatal("second job has a window")
	}
	// A redelivery changes nothing.
	if _, existed, windowed, err := j.ClaimInFlight(job("a", 5), InFlight{To: 1}); err != nil || !existed || windowed {
		t.Fatalf("redelivery: existed %v, windowed %v, %v", existed, windowed, err)
	}
	if got, _, _ := j.InFlight("a"); got != first {
		t.Fatalf("redelivery changed the window to %+v", got)
	}
	for _, bad := range []InFlight{{From: 1, To: 2}, {From: 0, To: 0}, {From: 0, To: 6}} {
		if _, _, _, err := j.ClaimInFlight(job("c", 5), bad); !errors.Is(err, ErrRange) {
			t.Errorf("%+v: got %v, want ErrRange", bad, err)
		}
	}
	if _, err := j.Get("c"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refused claim recorded the job: %v", err)
	}
	// Once every job is finished, a new one gets its window again.
	for _, id := range []string{"a", "b"} {
		if _, err := j.Finish(id, protocol.JobFailed, "test"); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, windowed, err := j.ClaimInFlight(job("d", 1), InFlight{To: 1}); err != nil || !windowed {
		t.Fatalf("after the others finished: windowed %v, %v", windowed, err)
	}
}

// Settle records the last progress and ends the window in one commit; Finish ends a window
// left open; ending a window that is not there writes nothing.
func TestSettleAndFinishEndTheWindow(t *testing.T) {
	var commits int
	j, err := Open(filepath.Join(t.TempDir(), "journal.db"), Options{Committed: func() { commits++ }})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if _, _, _, err := j.ClaimInFlight(job("a", 3), InFlight{To: 3, HasCounter: true}); err != nil {
		t.Fatal(err)
	}
	commits = 0
	e, err := j.Settle("a", 3)
	if err != nil || e.Printed != 3 || e.State != protocol.JobPrinting {
		t.Fatalf("settle: %+v, %v", e, err)
	}
	if _, ok, _ := j.InFlight("a"); ok || commits != 1 {
		t.Fatalf("after Settle: window left %v, %d commits; want none and 1", ok, commits)
	}
	if err := j.EndInFlight("a"); err != nil || commits != 1 {
		t.Fatalf("ending no window: %v, %d commits; want no new commit", err, commits)
	}
	if _, err := j.Settle("a", 2); !errors.Is(err, ErrBackwards) {
		t.Fatalf("settle backwards: %v", err)
	}
	if _, _, err := j.Claim(job("b", 2)); err != nil {
		t.Fatal(err)
	}
	if err := j.BeginInFlight("b", InFlight{To: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Finish("b", protocol.JobFailed, "test"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := j.InFlight("b"); ok {
		t.Fatal("a finished job kept its window")
	}
}

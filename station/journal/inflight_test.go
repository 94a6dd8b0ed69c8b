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

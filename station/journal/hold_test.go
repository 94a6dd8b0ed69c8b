package journal

import (
	"errors"
	"testing"
	"time"

	"labelstation/protocol"
)

// A held job leaves the print queue but keeps its place, survives a restart, and returns to
// the queue in claim order when released; holding changes no reported state.
func TestHoldKeepsJobOutOfQueue(t *testing.T) {
	f := newFixture(t)
	exp := f.clk.Now().Add(8 * time.Hour).UTC().Round(0)
	j1 := job("j1", 2)
	j1.Expires = exp
	for _, jb := range []protocol.Job{j1, job("j2", 1)} {
		if _, _, err := f.j.Claim(jb); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.j.Hold("j1", true); err != nil {
		t.Fatal(err)
	}
	f.reopen()
	pending, err := f.j.Pending()
	if err != nil || len(pending) != 1 || pending[0].Job.ID != "j2" {
		t.Fatalf("Pending = %+v, %v; want only j2", pending, err)
	}
	held, err := f.j.Held()
	if err != nil || len(held) != 1 || held[0].Job.ID != "j1" || !held[0].Held || !held[0].Job.Expires.Equal(exp) {
		t.Fatalf("Held = %+v, %v; want j1 with its expiry", held, err)
	}
	if held[0].Seq != 1 {
		t.Errorf("holding bumped Seq to %d: a hold is no status change", held[0].Seq)
	}
	if err := f.j.Hold("j1", false); err != nil {
		t.Fatal(err)
	}
	pending, _ = f.j.Pending()
	if len(pending) != 2 || pending[0].Job.ID != "j1" || len(pending[0].Job.Data) == 0 {
		t.Fatalf("after release Pending = %+v; want j1 (with data) then j2", pending)
	}
	if _, err := f.j.Finish("j2", protocol.JobFailed, "x"); err != nil {
		t.Fatal(err)
	}
	if err := f.j.Hold("j2", true); !errors.Is(err, ErrFinished) {
		t.Errorf("Hold(finished) = %v, want ErrFinished", err)
	}
	if err := f.j.Hold("nope", true); !errors.Is(err, ErrNotFound) {
		t.Errorf("Hold(unknown) = %v, want ErrNotFound", err)
	}
}

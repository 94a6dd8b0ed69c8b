package jobs

import (
	"errors"
	"testing"
	"time"
)

func TestStoreReleaseAndIdempotentStatus(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	s := NewStore()
	s.Add(Job{ID: "j1", User: "alice", Labels: 3, State: StateHeld, Created: now})
	s.Add(Job{ID: "j2", User: "alice", Labels: 1, State: StateHeld, Created: now.Add(time.Second)})
	s.Add(Job{ID: "j3", User: "bob", Labels: 1, State: StateHeld, Created: now})

	// Only the user's own held jobs are released.
	got := s.Release("alice", "st-1", []string{"j1", "j3", "nope"}, now)
	if len(got) != 1 || got[0].ID != "j1" || got[0].Station != "st-1" {
		t.Fatalf("released %+v", got)
	}
	if again := s.Release("alice", "st-2", []string{"j1"}, now); len(again) != 0 {
		t.Fatalf("a released job was released again: %+v", again)
	}
	if held := s.List("alice", StateHeld); len(held) != 1 || held[0].ID != "j2" {
		t.Fatalf("held = %+v", held)
	}

	steps := []struct {
		station, state string
		printed, seq   int
		changed        bool
		wantErr        bool
	}{
		{"st-1", StateClaimed, 0, 1, true, false},
		{"st-1", StateClaimed, 0, 1, false, false}, // repeat
		{"st-2", StatePrinted, 3, 9, false, true},  // not released to st-2
		{"st-1", StatePrinting, 2, 3, true, false},
		{"st-1", StatePrinting, 1, 2, false, false}, // late, older report
		{"st-1", StatePrinted, 3, 4, true, false},
		{"st-1", StateFailed, 3, 5, false, false}, // printed is final
	}
	for i, st := range steps {
		_, changed, err := s.ApplyStatus(st.station, "j1", st.state, st.printed, st.seq, "", now)
		if (err != nil) != st.wantErr || changed != st.changed {
			t.Fatalf("step %d: changed=%v err=%v", i, changed, err)
		}
	}
	j, _ := s.Get("j1")
	if j.State != StatePrinted || j.Printed != 3 {
		t.Fatalf("final %+v", j)
	}
	if _, _, err := s.ApplyStatus("st-1", "ghost", StatePrinted, 1, 1, "", now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown job: %v", err)
	}
}

package badge

import (
	"errors"
	"testing"
	"time"
)

// When the station moves on (a person backs out of the job list), a card that had already
// been taken away is a new tap when it comes back within the repeat window; a card still
// resting on the reader stays one event.
func TestPumpMovedOn(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reads []string
		at    []int // ms of each read
		moved []int // ms of the last move-on, asked at each read; -1: never
		gone  time.Duration
		want  []string
	}{
		{name: "backed out and tapped again",
			reads: []string{"A", "A"}, at: []int{0, 1800}, moved: []int{-1, 1600},
			want: []string{"A", "A"}},
		{name: "no move-on: the repeat window holds",
			reads: []string{"A", "A"}, at: []int{0, 1800}, moved: []int{-1, -1},
			want: []string{"A"}},
		{name: "resting card across the move-on",
			reads: []string{"A", "A", "A", "A"}, at: []int{0, 50, 100, 150}, moved: []int{-1, -1, 80, 80},
			want: []string{"A"}},
		{name: "moved on before the last sighting",
			reads: []string{"A", "A", "A"}, at: []int{0, 700, 1000}, moved: []int{-1, -1, 600},
			want: []string{"A"}},
		{name: "away for less than Gone",
			reads: []string{"A", "A"}, at: []int{0, 500}, moved: []int{-1, 300}, gone: 400 * time.Millisecond,
			want: []string{"A"}},
		{name: "another card in between",
			reads: []string{"A", "B", "A"}, at: []int{0, 100, 200}, moved: []int{-1, -1, -1},
			want: []string{"A", "B", "A"}},
		{name: "forgotten once only",
			reads: []string{"A", "A", "A"}, at: []int{0, 1000, 1100}, moved: []int{-1, 700, 700},
			want: []string{"A", "A"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &script{}
			for _, u := range tc.reads {
				r.reads = append(r.reads, read{uid: u})
			}
			end := errors.New("end of script")
			r.reads = append(r.reads, read{err: end})
			t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			moved := tc.moved
			out := make(chan Badge, 10)
			done := make(chan error, 1)
			go func() {
				done <- Pump(t.Context(), r, out, PumpOptions{
					Gone: tc.gone, Now: clockAt(t, tc.at...),
					MovedOn: func() time.Time {
						ms := moved[0]
						moved = moved[1:]
						if ms < 0 {
							return time.Time{}
						}
						return t0.Add(time.Duration(ms) * time.Millisecond)
					},
				})
			}()
			for i, w := range tc.want {
				select {
				case b := <-out:
					if string(b.UID) != w {
						t.Fatalf("event %d: got %q, want %q", i, b.UID, w)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("event %d: none", i)
				}
			}
			// The script ends with a read error, so every read was judged when Pump returns.
			if err := <-done; !errors.Is(err, end) {
				t.Fatalf("Pump returned %v", err)
			}
			if len(out) != 0 {
				t.Fatalf("extra event %q", (<-out).UID)
			}
		})
	}
}

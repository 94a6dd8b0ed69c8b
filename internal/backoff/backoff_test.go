package backoff

import (
	"testing"
	"time"
)

func TestDelayBounds(t *testing.T) {
	lowest := func(n int64) int64 { return 0 }
	highest := func(n int64) int64 { return n - 1 }
	p := Policy{Min: time.Second, Max: 10 * time.Second}
	for _, tc := range []struct {
		attempt int
		lo, hi  time.Duration
	}{
		{0, 500 * time.Millisecond, time.Second},
		{1, time.Second, 2 * time.Second},
		{3, 4 * time.Second, 8 * time.Second},
		{4, 5 * time.Second, 10 * time.Second},  // 16 s capped at 10 s
		{70, 5 * time.Second, 10 * time.Second}, // no overflow for huge attempts
		{-1, 500 * time.Millisecond, time.Second},
	} {
		p.Rand = lowest
		if got := p.Delay(tc.attempt); got != tc.lo {
			t.Errorf("attempt %d lowest jitter: %v, want %v", tc.attempt, got, tc.lo)
		}
		p.Rand = highest
		if got := p.Delay(tc.attempt); got != tc.hi {
			t.Errorf("attempt %d highest jitter: %v, want %v", tc.attempt, got, tc.hi)
		}
	}
}

func TestDelayDefaultsAndJitterSpread(t *testing.T) {
	var p Policy
	seen := map[time.Duration]bool{}
	for range 50 {
		d := p.Delay(100)
		if d < 15*time.Second || d > 30*time.Second {
			t.Fatalf("default cap: %v outside [15s, 30s]", d)
		}
		seen[d] = true
	}
	if len(seen) < 2 {
		t.Fatalf("50 delays all equal (%v): no jitter", seen)
	}
}

package badge

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// A repeat window changed while the pump runs applies from the next card on.
func TestPumpRepeatChangesLive(t *testing.T) {
	var window atomic.Int64
	window.Store(int64(2 * time.Second))
	r := &script{reads: []read{
		{uid: "A"}, // 0ms: new -> event
		{uid: "A"}, // 500ms: within 2 s -> dropped; the window then shrinks to 100 ms
		{uid: "A"}, // 700ms: 200 ms since the last sighting >= 100 ms -> event
	}}
	out := make(chan Badge, 10)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	now := clockAt(t, 0, 500, 700)
	reads := 0
	go func() {
		done <- Pump(ctx, r, out, PumpOptions{
			RepeatNow: func() time.Duration {
				reads++
				if reads == 3 {
					window.Store(int64(100 * time.Millisecond))
				}
				return time.Duration(window.Load())
			},
			Now: now,
		})
	}()
	for i := range 2 {
		select {
		case <-out:
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d: none", i)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Pump returned %v", err)
	}
	if len(out) != 0 {
		t.Fatalf("extra event %v", <-out)
	}
}

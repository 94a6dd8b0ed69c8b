package station

import (
	"context"
	"sync"
	"time"

	"labelstation/board"
)

// Signals drives the board's status LED and buzzer from the station's state.
type Signals interface {
	Phase(p Phase, online bool)
}

// BoardSignals lights the LED while the station is connected and beeps for a tap (one short
// beep) and for a failed one (three beeps). Either output may be nil.
type BoardSignals struct {
	LED, Buzzer board.Output
	// After is the timer for buzzer patterns; nil means time.After.
	After func(time.Duration) <-chan time.Time
	// Ctx bounds a pattern; the buzzer is left off when it ends.
	Ctx context.Context

	mu sync.Mutex // one pattern at a time
}

var _ Signals = (*BoardSignals)(nil)

// Phase implements Signals; the buzzer pattern plays in the background so the state machine
// never waits for it.
func (b *BoardSignals) Phase(p Phase, online bool) {
	go b.Signal(p, online)
}

// Signal sets the outputs for p and plays its buzzer pattern, returning when it is done.
func (b *BoardSignals) Signal(p Phase, online bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.LED != nil {
		b.LED.Set(online)
	}
	var pat board.Pattern
	switch p {
	case Lookup, Done, LinkDone:
		pat = board.BeepOK
	case UnknownBadge, Offline, Failed, Paused, LinkRefused:
		pat = board.BeepError
	}
	if b.Buzzer == nil || pat == nil {
		return
	}
	ctx := b.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	board.Play(ctx, b.Buzzer, pat, b.After)
}

package main

import (
	"sync/atomic"
	"time"

	"labelstation/board"
)

// movedOn remembers when a person last pressed a button (badge.PumpOptions.MovedOn): whoever
// backs out of the job list and taps again means a new tap, even within the reader's repeat
// window, while a card left resting on the reader stays one tap.
type movedOn struct {
	now func() time.Time
	at  atomic.Pointer[time.Time]
}

func newMovedOn(now func() time.Time) *movedOn {
	if now == nil {
		now = time.Now
	}
	return &movedOn{now: now}
}

// pressFunc returns how a press reaches the station: onto buttons, marked as a move-on; a
// press while the station is busy with the last one is dropped.
func (m *movedOn) pressFunc(buttons chan<- board.Press) func(board.Press) {
	return func(p board.Press) {
		select {
		case buttons <- p:
			t := m.now()
			m.at.Store(&t)
		default:
		}
	}
}

// When is the last press taken; the zero time before the first.
func (m *movedOn) When() time.Time {
	if t := m.at.Load(); t != nil {
		return *t
	}
	return time.Time{}
}

// Package badge defines the badge reader capability shared by every reader
// driver (PN532, MFRC522, RDM6300, keyboard wedge, sim): one tap yields one
// Badge, whatever the radio or wire underneath.
package badge

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Badge is one tap: the card's UID as read and the technology that read it.
type Badge struct {
	UID  []byte
	Tech string // "iso14443a", "em4100", "wedge", "sim"
}

// String renders the UID in hex, as logs and screens show it.
func (b Badge) String() string {
	return b.Tech + ":" + hex.EncodeToString(b.UID)
}

// Technologies reported in Badge.Tech.
const (
	TechISO14443A = "iso14443a"
	TechEM4100    = "em4100"
	TechWedge     = "wedge"
	TechSim       = "sim"
)

// Reader is one badge reader. Read blocks until a card is presented or ctx
// ends. A reader that polls (PN532, MFRC522) or streams (RDM6300) reports a
// card held on it again and again; Pump turns that into one event.
type Reader interface {
	Read(ctx context.Context) (Badge, error)
	String() string
	// Halt stops sensing (RF field off, port closed).
	Halt() error
}

// ErrBadFrame is wrapped by readers for a single corrupt read (checksum,
// framing). The link is still usable, so Pump skips it and reads again.
var ErrBadFrame = errors.New("badge: bad frame")

// ErrHalted is returned by Read once Halt was called.
var ErrHalted = errors.New("badge: reader halted")

// DefaultRepeat is the repeat window used when PumpOptions.Repeat is zero.
const DefaultRepeat = 2 * time.Second

// DefaultGone is PumpOptions.Gone when it is zero: ten rest intervals of the polling drivers
// (50 ms), so a card resting on the reader is never taken for gone.
const DefaultGone = 500 * time.Millisecond

// PumpOptions configure Pump.
type PumpOptions struct {
	// Repeat is how long the same UID is ignored after it was last seen.
	// A card resting on the reader is seen continuously and so stays one
	// event; it counts again once it was absent for Repeat. 0 means
	// DefaultRepeat.
	Repeat time.Duration
	// RepeatNow, if set, is asked for the window at every read and wins over Repeat, so a
	// window changed while the reader runs (a fleet push) applies from the next card on.
	RepeatNow func() time.Duration
	// MovedOn, if set, is asked at every read for when the station last moved on (a person
	// went back from a list, a screen ended); the zero time means never. A card that was
	// already unseen for Gone at that moment was taken away, so it is a new tap when it comes
	// back, however soon: whoever backs out and taps again means it. A card seen less than
	// Gone before is still resting on the reader and stays ignored for the repeat window.
	MovedOn func() time.Time
	// Gone is how long a card must have been unseen to count as taken away when the station
	// moves on; 0 means DefaultGone.
	Gone time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnBadFrame, if set, is told about each skipped ErrBadFrame read.
	OnBadFrame func(error)
	// OnRead, if set, is told about each successful read (repeats included): the reader works.
	OnRead func()
}

// Pump reads from r and sends debounced badges to out until ctx ends: a card
// held on the reader is one event; the same UID again within opt.Repeat of
// its last sighting is dropped. It returns ctx.Err() when ctx ends, or the
// first read error that is not ErrBadFrame; Supervise restarts the reader then.
func Pump(ctx context.Context, r Reader, out chan<- Badge, opt PumpOptions) error {
	repeat := opt.Repeat
	if repeat == 0 {
		repeat = DefaultRepeat
	}
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	var lastUID string
	var lastSeen time.Time
	for {
		b, err := r.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, ErrBadFrame) {
				if opt.OnBadFrame != nil {
					opt.OnBadFrame(err)
				}
				continue
			}
			return fmt.Errorf("badge: %s: %w", r, err)
		}
		if opt.OnRead != nil {
			opt.OnRead()
		}
		if opt.RepeatNow != nil {
			if repeat = opt.RepeatNow(); repeat == 0 {
				repeat = DefaultRepeat
			}
		}
		if opt.MovedOn != nil && takenAway(lastSeen, opt.MovedOn(), cmp.Or(opt.Gone, DefaultGone)) {
			lastUID = ""
		}
		t := now()
		uid := string(b.UID)
		same := uid == lastUID && !lastSeen.IsZero() && t.Sub(lastSeen) < repeat
		lastUID, lastSeen = uid, t
		if same {
			continue
		}
		select {
		case out <- b:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// takenAway says whether the card last seen at seen had been unseen for at least gone when the
// station moved on at moved.
func takenAway(seen, moved time.Time, gone time.Duration) bool {
	return !seen.IsZero() && !moved.IsZero() && moved.Sub(seen) >= gone
}

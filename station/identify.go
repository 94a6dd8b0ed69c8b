package station

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"time"

	"labelstation/board"
)

// The identify command: a person in a room of stations finds the one a fleet manager means by
// its blinking LED, its beeps and its flashing screen.

// flashPeriod is how long each inverted and each plain frame of a flash stays.
const flashPeriod = 400 * time.Millisecond

// defaultIdentify is how long identify lasts when its args do not say.
const defaultIdentify = 5 * time.Second

// flashFor makes the screen worker flash for d, then show the current screen again.
func (s *screen) flashFor(d time.Duration) {
	select {
	case <-s.flashes:
	default:
	}
	s.flashes <- d
}

// redraw makes the screen worker draw the current screen again even if it looks the same:
// the panel's turn or contrast changed under it.
func (s *screen) redraw() {
	select {
	case s.redraws <- struct{}{}:
	default:
	}
}

// flash returns img inverted or plain by turns while a flash lasts, starting inverted, and
// how long until the next turn (at most wait, unless wait is 0: not by time).
func (s *screen) flash(img *image.Gray, wait time.Duration) (*image.Gray, time.Duration) {
	left := s.flashEnd.Sub(s.now())
	if left <= 0 {
		return img, wait
	}
	k := (left + flashPeriod - 1) / flashPeriod // periods left, this one included
	next := left - (k-1)*flashPeriod
	if wait == 0 || next < wait {
		wait = next
	}
	if k%2 == 1 {
		return img, wait
	}
	inv := image.NewGray(img.Rect)
	for i, p := range img.Pix {
		inv.Pix[i] = 255 - p
	}
	return inv, wait
}

// identifier is a Signals that can blink and beep on request (BoardSignals).
type identifier interface {
	Identify(ctx context.Context, d time.Duration, online bool)
}

var _ identifier = (*BoardSignals)(nil)

// Identify blinks the LED and beeps for d, then leaves the LED as online says.
func (b *BoardSignals) Identify(ctx context.Context, d time.Duration, online bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if b.Buzzer != nil {
			board.Play(ctx, b.Buzzer, board.Pattern{80 * time.Millisecond, 120 * time.Millisecond, 80 * time.Millisecond}, b.After)
		}
	}()
	if b.LED != nil {
		var blink board.Pattern
		for range max(2, int(d/(250*time.Millisecond))) {
			blink = append(blink, 250*time.Millisecond)
		}
		board.Play(ctx, b.LED, blink, b.After)
		b.LED.Set(online)
	}
	<-done
}

// identify flashes the screen and, where the board has them, blinks the LED and beeps, for
// args.seconds (1-60, default 5); it returns when that is over.
func (s *Station) identify(ctx context.Context, args json.RawMessage) (any, error) {
	var a struct {
		Seconds *int `json:"seconds"`
	}
	if len(args) > 0 {
		if err := json.Unmarshal(args, &a); err != nil {
			return nil, fmt.Errorf("args: %w", err)
		}
	}
	d := defaultIdentify
	if a.Seconds != nil {
		if *a.Seconds < 1 || *a.Seconds > 60 {
			return nil, fmt.Errorf("args.seconds: %d is not in 1-60", *a.Seconds)
		}
		d = time.Duration(*a.Seconds) * time.Second
	}
	s.scr.flashFor(d)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if id, ok := s.opt.Signals.(identifier); ok {
			id.Identify(ctx, d, s.online.Load())
		}
	}()
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	<-done
	return map[string]any{"seconds": int(d / time.Second)}, ctx.Err()
}

package station

import (
	"context"
	"fmt"
	"image"
	"log/slog"
	"time"

	"labelstation/display"
)

// screen draws on the panel from its own goroutine, so a slow panel (an e-paper refresh takes
// seconds) never holds up the state loop: the loop hands over views, the newest wins, and
// frames that would look the same are not sent. It also looks after an OLED (display.Care).
type screen struct {
	panel display.Panel
	log   *slog.Logger
	now   func() time.Time
	// care returns the burn-in policy from the current config; ok false leaves frames as
	// Render draws them (e-paper, LCD, the simulator).
	care func() (c display.Care, ok bool)
	// after is time.After; tests drive it.
	after func(time.Duration) <-chan time.Time

	views   chan display.View  // capacity 1: the newest view
	wakes   chan struct{}      // capacity 1
	redraws chan struct{}      // capacity 1: the panel changed (identify.go)
	flashes chan time.Duration // capacity 1: flash the screen this long (identify.go)

	// Owned by run; kept across restarts so a restarted worker redraws what it should.
	view     display.View
	have     bool
	shown    *image.Gray
	contrast int // last contrast set; -1 unknown
	active   time.Time
	flashEnd time.Time // frames are inverted by turns until then
}

func newScreen(p display.Panel, log *slog.Logger, now func() time.Time, care func() (display.Care, bool)) *screen {
	return &screen{panel: p, log: log, now: now, care: care, after: time.After,
		views: make(chan display.View, 1), wakes: make(chan struct{}, 1), contrast: -1, active: now(),
		redraws: make(chan struct{}, 1), flashes: make(chan time.Duration, 1)}
}

// set hands v to the worker, replacing a view it has not drawn yet. Only the state loop calls
// it, so after emptying the slot the send cannot block.
func (s *screen) set(v display.View) {
	select {
	case s.views <- v:
		return
	default:
	}
	select {
	case <-s.views:
	default:
	}
	s.views <- v
}

// wake counts a tap or button press as activity: a dimmed or dark OLED lights up again.
func (s *screen) wake() {
	select {
	case s.wakes <- struct{}{}:
	default:
	}
}

// run draws until ctx ends. A panel error ends it (the supervisor logs it and restarts it
// with backoff, and the restarted worker sends the frame again); a render error is logged and
// the view skipped, since drawing it again would fail the same way.
func (s *screen) run(ctx context.Context) error {
	s.shown = nil // after a restart, the panel may show anything
	s.contrast = -1
	for {
		wait, err := s.draw()
		if err != nil {
			return err
		}
		var timer <-chan time.Time
		if wait > 0 {
			timer = s.after(wait)
		}
		select {
		case <-ctx.Done():
			return nil
		case v := <-s.views:
			if !s.have || v.Kind != s.view.Kind {
				s.active = s.now() // a new screen is activity; a ticking countdown is not
			}
			s.view, s.have = v, true
		case <-s.wakes:
			s.active = s.now()
		case <-s.redraws:
			s.shown, s.contrast = nil, -1
		case d := <-s.flashes:
			s.flashEnd = s.now().Add(d)
		case <-timer:
		}
	}
}

// draw shows the current view as care wants it and returns how long until that changes by
// time alone (0: not by time).
func (s *screen) draw() (time.Duration, error) {
	if !s.have {
		return 0, nil
	}
	img, err := display.Render(s.view, s.panel.Bounds().Size())
	if err != nil {
		s.log.Error("station: render", "screen", s.view.Kind.String(), "err", err)
		return 0, nil
	}
	var wait time.Duration
	if c, ok := s.care(); ok {
		now := s.now()
		var level uint8
		img, level, wait = c.Apply(img, now.Sub(s.active), now)
		if int(level) != s.contrast {
			if ct, ok := s.panel.(display.Contraster); ok {
				if err := ct.SetContrast(level); err != nil {
					return 0, fmt.Errorf("station: panel contrast: %w", err)
				}
				s.contrast = int(level)
			}
		}
	}
	img, wait = s.flash(img, wait)
	if s.shown != nil && s.shown.Rect == img.Rect && string(s.shown.Pix) == string(img.Pix) {
		return wait, nil
	}
	if err := s.panel.Show(img); err != nil {
		return 0, fmt.Errorf("station: panel: %w", err)
	}
	s.shown = img
	return wait, nil
}

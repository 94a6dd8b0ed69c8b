package station

import (
	"bytes"
	"context"
	"errors"
	"image"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"labelstation/display"
	"labelstation/drivers/badge"
	"labelstation/internal/supervise"
	"labelstation/station/cloud"
	"labelstation/station/config"
	"labelstation/station/journal"
)

// slowPanel blocks in Show until released, like an e-paper refreshing for seconds; it can
// also fail, and it records contrast changes.
type slowPanel struct {
	mu       sync.Mutex
	gate     chan struct{} // Show waits for a value; nil: no wait
	entered  chan struct{} // a value when Show starts, if set
	fail     int           // Shows to fail
	frames   []*image.Gray
	contrast []uint8
	shown    chan struct{} // a value per successful Show
}

func (p *slowPanel) Bounds() image.Rectangle { return image.Rect(0, 0, 128, 64) }
func (p *slowPanel) Show(img image.Image) error {
	if p.entered != nil {
		p.entered <- struct{}{}
	}
	if p.gate != nil {
		<-p.gate
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail > 0 {
		p.fail--
		return errors.New("i2c: no ACK")
	}
	p.frames = append(p.frames, img.(*image.Gray))
	select {
	case p.shown <- struct{}{}:
	default:
	}
	return nil
}
func (p *slowPanel) SetContrast(l uint8) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.contrast = append(p.contrast, l)
	return nil
}
func (p *slowPanel) Halt() error    { return nil }
func (p *slowPanel) String() string { return "slow" }

func (p *slowPanel) last() (*image.Gray, []uint8, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var f *image.Gray
	if len(p.frames) > 0 {
		f = p.frames[len(p.frames)-1]
	}
	return f, append([]uint8(nil), p.contrast...), len(p.frames)
}

// A panel stuck in a refresh does not hold up the state machine: taps are handled and the
// phases move on while Show blocks, and once it returns the newest screen is drawn, not
// every one in between.
func TestSlowPanelNeverDelaysATap(t *testing.T) {
	j, err := journal.Open(t.TempDir()+"/journal.db", journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	panel := &slowPanel{gate: make(chan struct{}), entered: make(chan struct{}, 100), shown: make(chan struct{}, 100)}
	models := make(chan Model, 1000)
	badges := make(chan badge.Badge)
	cfg := config.Defaults()
	cfg.Release.ScreenSeconds = 3600 // the result screen stays until the test has looked
	s, err := New(Options{
		Config: cfg, Panel: panel, Printer: &fakePrinter{}, Journal: j, Enroller: enrolled{}, Badges: badges,
		DialCloud: func(cloud.Options) (Cloud, error) { return &fakeCloud{}, nil },
		Observe:   func(m Model) { models <- m },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); close(panel.gate); <-done }()
	deadline := time.After(30 * time.Second)
	select {
	case <-panel.entered:
	case <-deadline:
		t.Fatal("nothing drawn")
	}
	// The first Show is now blocked. The station still comes up and handles a tap.
	waitPhase := func(p Phase) {
		t.Helper()
		for {
			select {
			case m := <-models:
				if m.Phase == p {
					return
				}
			case <-deadline:
				t.Fatalf("never %s while the panel was busy", p)
			}
		}
	}
	waitPhase(Connecting)
	s.post(OnlineChanged{Online: true})
	waitPhase(Idle)
	s.post(BadgeTapped{Err: errors.New("badge: 3 bits")})
	waitPhase(Failed)
	panel.gate <- struct{}{} // the blocked first frame finishes
	<-panel.entered          // then the newest view is drawn, not the ones in between
	panel.gate <- struct{}{}
	<-panel.shown
	<-panel.shown
	got, _, n := panel.last()
	want, _ := display.Render(ViewOf(Model{Phase: Failed, Online: true, Message: "badge: 3 bits"}, time.Time{}, "st-1"), image.Pt(128, 64))
	if n != 2 || !bytes.Equal(got.Pix, want.Pix) {
		lines, _ := display.Text(ViewOf(Model{Phase: Failed, Online: true, Message: "badge: 3 bits"}, time.Time{}, "st-1"), image.Pt(128, 64))
		t.Errorf("after %d frames the panel does not show the newest screen %q", n, lines)
	}
}

// fakeClock is an injected clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// lockedBuffer is a log sink for the test to read.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// An OLED dims after the idle time, goes dark after the longer one, and a tap lights it again;
// a failing panel is logged and drawn again after the supervisor restarts the worker.
func TestScreenCareAndRestart(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	panel := &slowPanel{fail: 1, shown: make(chan struct{}, 100)}
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	care := display.Care{Dim: time.Minute, Blank: 10 * time.Minute, Contrast: 200}
	scr := newScreen(panel, log, clock.Now, func() (display.Care, bool) { return care, true })
	timers := make(chan chan time.Time, 10)
	scr.after = func(time.Duration) <-chan time.Time {
		c := make(chan time.Time, 1)
		timers <- c
		return c
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		supervise.Loop(ctx, log, "station: screen", supervise.Backoff{Min: time.Millisecond, Max: 10 * time.Millisecond}, scr.run)
	}()
	defer func() { cancel(); <-done }()
	scr.set(ViewOf(Model{Phase: Idle, Online: true, Configured: true}, clock.Now(), "Dock 3"))
	wait := func(what string) {
		t.Helper()
		select {
		case <-panel.shown:
		case <-time.After(30 * time.Second):
			t.Fatalf("never %s", what)
		}
	}
	wait("drawn after the failed Show")
	if !strings.Contains(logs.String(), "i2c: no ACK") {
		t.Errorf("the panel error was not logged: %s", logs.String())
	}
	frame, contrast, _ := panel.last()
	if len(contrast) == 0 || contrast[len(contrast)-1] != 200 || lit(frame) == 0 || lit(frame) > len(frame.Pix)/3 {
		t.Fatalf("awake: contrast %v, %d of %d pixels lit", contrast, lit(frame), len(frame.Pix))
	}
	fire := func() {
		t.Helper()
		select {
		case c := <-timers:
			for len(timers) > 0 { // only the newest timer is being waited on
				c = <-timers
			}
			c <- clock.Now()
		case <-time.After(30 * time.Second):
			t.Fatal("the worker set no timer")
		}
	}
	clock.add(61 * time.Second)
	fire()
	waitContrast := func(want uint8) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, c, _ := panel.last()
			if len(c) > 0 && c[len(c)-1] == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("contrast %v, want %d", c, want)
			}
			time.Sleep(5 * time.Millisecond) // the fake panel has no contrast event to wait on
		}
	}
	waitContrast(50)
	clock.add(10 * time.Minute)
	fire()
	wait("dark")
	if frame, _, _ := panel.last(); lit(frame) != 0 {
		t.Errorf("blank: %d pixels lit", lit(frame))
	}
	scr.wake()
	wait("lit again after a tap")
	waitContrast(200)
	if frame, _, _ := panel.last(); lit(frame) == 0 {
		t.Error("woken: nothing lit")
	}
}

func lit(img *image.Gray) int {
	n := 0
	for _, p := range img.Pix {
		if p >= 0x80 {
			n++
		}
	}
	return n
}
